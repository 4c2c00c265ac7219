//! Cross-checks against independent implementations, in Python (`tests/interop/`):
//! pyotp reads the `otpauth://` URI a new API account gets, and its code logs in; the
//! `standardwebhooks` library verifies a Standard Webhooks delivery; the CloudEvents SDK
//! reads a structured-mode delivery; authlib's OAuth2 client impersonates a user by token
//! exchange, introspects and revokes. The first run makes a virtualenv under the target
//! directory and installs `tests/interop/requirements.txt` into it (from PyPI).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_tests::{TestReceiver, TestServer};

const WAIT: Duration = Duration::from_secs(30);
const INTEROP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/interop");

/// The virtualenv's Python, made and filled once per requirements file.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-venv");
        let python = venv.join("bin/python");
        let requirements = Path::new(INTEROP).join("requirements.txt");
        let wanted = std::fs::read_to_string(&requirements).expect("read requirements.txt");
        let stamp = venv.join("installed-requirements.txt");
        if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
            return python;
        }
        run(Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv))
        .expect("python3 -m venv (the interop checks need Python 3 with venv and pip)");
        run(Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements))
        .expect("pip install -r tests/interop/requirements.txt");
        std::fs::write(&stamp, wanted).expect("write the install stamp");
        python
    })
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("cannot start: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Runs one check of `tests/interop/check.py`: its answer, or the library's error. It
/// runs off the test's runtime, which also serves the host the check may call.
async fn check(request: Value) -> Result<Value, String> {
    tokio::task::spawn_blocking(move || run_check(&request))
        .await
        .expect("the check's thread")
}

fn run_check(request: &Value) -> Result<Value, String> {
    let mut child = Command::new(python())
        .arg(Path::new(INTEROP).join("check.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start check.py");
    serde_json::to_writer(child.stdin.take().expect("stdin"), request).expect("write the request");
    let output = child.wait_with_output().expect("check.py ran");
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&output.stdout).expect("check.py answers JSON"))
}

#[tokio::test]
async fn an_authenticator_app_reads_the_totp_uri_and_its_code_logs_in() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let created = api
        .post(
            "/api-accounts",
            json!({"name": "crm", "authorizations": {"permissions": ["events.publish"]}}),
            201,
        )
        .await;
    let uri = created["totp_uri"].as_str().expect("totp_uri");
    let read = check(json!({"check": "totp", "uri": uri}))
        .await
        .expect("pyotp reads the URI");
    assert_eq!(read["issuer"], "Switchyard (default)", "{read}");
    assert_eq!(read["name"], created["id"], "{read}");
    let code = read["code"].as_str().expect("a code");

    let login = |totp: &str| {
        server
            .http
            .post(server.url("/auth/login"))
            .json(&json!({"account": created["id"], "token": created["token"], "totp": totp}))
            .send()
    };
    let answer = login(code).await.expect("POST /auth/login");
    assert_eq!(answer.status(), 200, "pyotp's code logs in");
    let body: Value = answer.json().await.expect("JSON");
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_eq!(
        login(code).await.expect("POST /auth/login").status(),
        401,
        "the same code is not taken twice"
    );
}

#[tokio::test]
async fn standard_webhooks_and_cloudevents_deliveries_pass_their_reference_libraries() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let receiver = TestReceiver::start().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    api.add_receiver(json!({
        "url": receiver.url,
        "topics": ["Accounts.*"],
        "api_account": server.admin.api_account.id,
        "auth": {"protocol": "standard-webhooks", "settings": {"secret": secret}},
        "transform": {"plugin": "cloudevents", "settings": {}},
    }))
    .await;
    // Numbers, escapes and a character JSON allows raw but JavaScript once did not.
    let payload =
        json!({"amount": 1.5, "name": "Zoë \"Z\" Ångström", "note": "a\u{2028}b", "n": [1, -2e-7]});
    let event = api
        .publish(
            "Accounts.Update",
            json!({"kind": "user", "id": "u-7"}),
            payload.clone(),
        )
        .await;
    let got = receiver.next(WAIT).await;
    let headers: serde_json::Map<String, Value> = got
        .headers
        .iter()
        .map(|(name, value)| {
            let value = value.to_str().expect("a text header");
            (name.as_str().to_owned(), Value::from(value))
        })
        .collect();
    let body = std::str::from_utf8(&got.body).expect("a UTF-8 body");

    let verified = check(json!({
        "check": "standard-webhooks", "secret": secret, "headers": headers, "body": body,
    }))
    .await
    .expect("standardwebhooks verifies the delivery");
    assert_eq!(
        verified["payload"],
        got.json(),
        "it verified this very body"
    );
    let tampered = body.replacen("1.5", "2.5", 1);
    assert_ne!(tampered, body);
    let refused = check(json!({
        "check": "standard-webhooks", "secret": secret, "headers": headers, "body": tampered,
    }))
    .await;
    assert!(
        refused.is_err_and(|e| e.contains("No matching signature found")),
        "a changed body fails verification"
    );

    let read = check(json!({"check": "cloudevents", "headers": headers, "body": body}))
        .await
        .expect("the CloudEvents SDK reads the delivery");
    let attributes = &read["attributes"];
    assert_eq!(attributes["specversion"], "1.0", "{read}");
    assert_eq!(attributes["id"], event.as_str(), "{read}");
    assert_eq!(attributes["type"], "Accounts.Update", "{read}");
    assert_eq!(attributes["subject"], "u-7", "{read}");
    assert_eq!(read["data"], payload, "{read}");
}

#[tokio::test]
async fn an_oauth2_client_library_exchanges_introspects_and_revokes() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let user = &server.admin.admin_user.id;
    let answer = check(json!({
        "check": "oauth2", "host": server.url(""), "access_token": api.token, "user": user,
    }))
    .await
    .expect("authlib's client talks to the token endpoints");

    let issued = &answer["issued"];
    assert_eq!(issued["token_type"], "Bearer", "{answer}");
    assert_eq!(
        issued["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token",
        "{answer}"
    );
    assert!(
        issued["expires_in"].as_u64().is_some_and(|s| s > 0),
        "{answer}"
    );
    assert_ne!(
        issued["access_token"],
        api.token.as_str(),
        "a token of its own"
    );

    let introspected = &answer["introspected"];
    assert_eq!(introspected["active"], true, "{answer}");
    assert_eq!(introspected["sub"], user.as_str(), "{answer}");
    assert_eq!(
        introspected["act"]["sub"],
        server.admin.api_account.id.as_str(),
        "the actor is the API account: {answer}"
    );
    assert_eq!(answer["revoke_status"], 200, "{answer}");
    assert_eq!(
        answer["introspected_after_revoke"],
        json!({"active": false}),
        "{answer}"
    );
    assert_eq!(answer["refused"]["error"], "invalid_grant", "{answer}");
}

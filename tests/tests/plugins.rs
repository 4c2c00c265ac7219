//! Hot-loaded plugins over HTTP: tenant and operator uploads, isolation between tenants,
//! refused uploads, and a hot swap under continuous delivery load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use switchyard_tests::{Api, Options, TestReceiver, TestServer, eventually, plugins};

const WAIT: Duration = Duration::from_secs(30);
const OPERATOR_TOKEN: &str = "op-token";

fn component(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

async fn start_with_operator() -> TestServer {
    TestServer::start_with(Options {
        configure: Some(Box::new(|c| {
            c.operator_token = Some(OPERATOR_TOKEN.into());
        })),
        ..Options::default()
    })
    .await
}

/// A client of the operator API.
fn operator(server: &TestServer, api: &Api) -> Api {
    Api {
        base: server.url("/operator"),
        ..api.with_token(OPERATOR_TOKEN)
    }
}

/// A second tenant, `acme`, created through the operator API, and a client of it.
async fn acme(server: &TestServer) -> Api {
    let created: Value = server
        .http
        .post(server.url("/operator/tenants"))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&json!({"name": "acme"}))
        .send()
        .await
        .expect("POST /operator/tenants")
        .json()
        .await
        .expect("JSON");
    let account = &created["api_account"];
    server
        .api_as(
            account["id"].as_str().expect("id"),
            account["token"].as_str().expect("token"),
            account["totp_secret"].as_str().expect("secret"),
            0,
        )
        .await
}

fn receiver_with(receiver: &TestReceiver, account: &str, transform: Value) -> Value {
    json!({
        "url": receiver.url,
        "topics": ["Cases.*"],
        "api_account": account,
        "auth": {"protocol": "websub", "settings": {"secret": "s3cret", "algorithm": "sha256"}},
        "transform": transform,
    })
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("a list")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect()
}

#[tokio::test]
async fn a_tenant_uploads_the_tutorial_plugin_and_its_receiver_gets_the_reshaped_payload() {
    let server = TestServer::start().await;
    let api = server.api().await;

    let (status, info) = api
        .upload("/plugins", component(plugins::CHAT_MESSAGE))
        .await
        .expect("upload");
    assert_eq!(status, 201, "{info}");
    assert_eq!(info["name"], "chat-message");
    assert_eq!(info["version"], "0.1.0");
    assert_eq!(info["kind"], "payload-transform");
    assert_eq!(info["builtin"], false);
    assert_eq!(info["scope"], "tenant");
    assert_eq!(
        info["settings"],
        json!([{"name": "prefix", "description": "Put in front of the text, e.g. an emoji.",
                "secret": false, "required": false}])
    );
    assert_eq!(api.get("/plugins/chat-message").await, info);
    let listed = api.get("/plugins").await;
    assert!(names(&listed).contains(&"chat-message"), "{listed}");
    let json_plugin = listed
        .as_array()
        .and_then(|l| l.iter().find(|p| p["name"] == "json"))
        .expect("the built-in json plugin is listed");
    assert_eq!(json_plugin["builtin"], true);
    assert_eq!(json_plugin["scope"], "global");

    // A setting the plugin does not declare is refused when the receiver is saved.
    let receiver = TestReceiver::start().await;
    let account = server.admin.api_account.id.clone();
    let unknown = receiver_with(
        &receiver,
        &account,
        json!({"plugin": "chat-message", "settings": {"colour": "red"}}),
    );
    assert_eq!(
        api.status(Method::POST, "/receivers", Some(unknown)).await,
        422
    );
    api.add_receiver(receiver_with(
        &receiver,
        &account,
        json!({"plugin": "chat-message", "settings": {"prefix": "[shop] "}}),
    ))
    .await;
    api.publish(
        "Cases.Create",
        json!({"kind": "case", "id": "cas_42", "attributes": {}}),
        json!({"total": 99.5, "currency": "EUR"}),
    )
    .await;

    let got = receiver.next(WAIT).await;
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(
        got.json(),
        json!({
            "text": "[shop] Cases.Create on case cas_42",
            "topic": "Cases.Create",
            "subject": "case cas_42",
            "fields": {"total": 99.5, "currency": "EUR"},
        })
    );
}

#[tokio::test]
async fn a_tenants_plugin_is_invisible_to_other_tenants() {
    let server = start_with_operator().await;
    let api = server.api().await;
    let acme = acme(&server).await;
    let (status, info) = api
        .upload("/plugins", component(plugins::UPPER_V1))
        .await
        .expect("upload");
    assert_eq!(status, 201, "{info}");
    assert!(names(&api.get("/plugins").await).contains(&"upper"));

    assert!(!names(&acme.get("/plugins").await).contains(&"upper"));
    assert_eq!(acme.status(Method::GET, "/plugins/upper", None).await, 404);
    assert_eq!(
        acme.status(Method::DELETE, "/plugins/upper", None).await,
        404
    );
    let receiver = TestReceiver::start().await;
    let acme_account = acme
        .get("/api-accounts")
        .await
        .as_array()
        .and_then(|a| a.first().cloned())
        .expect("acme's API account");
    let borrowed = receiver_with(
        &receiver,
        acme_account["id"].as_str().expect("id"),
        json!({"plugin": "upper", "settings": {}}),
    );
    let (status, answer) = acme
        .call(Method::POST, "/receivers", Some(borrowed))
        .await
        .expect("POST");
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .is_some_and(|d| d.contains("upper")),
        "{answer}"
    );

    // Its owner still has it, and may remove it.
    assert_eq!(api.get("/plugins/upper").await["scope"], "tenant");
    assert_eq!(
        api.status(Method::DELETE, "/plugins/upper", None).await,
        204
    );
    assert_eq!(api.status(Method::GET, "/plugins/upper", None).await, 404);
}

#[tokio::test]
async fn refused_uploads_answer_a_clear_4xx_and_change_nothing() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let before = api.get("/plugins").await;

    for (what, bytes) in [
        ("garbage", b"definitely not WebAssembly".to_vec()),
        ("a core module", b"\0asm\x01\0\0\0".to_vec()),
        ("nothing", Vec::new()),
    ] {
        let (status, answer) = api.upload("/plugins", bytes).await.expect("upload");
        assert_eq!(status, 422, "{what}: {answer}");
        assert_eq!(answer["code"], "plugin_invalid", "{what}: {answer}");
        assert!(
            answer["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {answer}"
        );
    }
    let wrong_type = api
        .http
        .post(format!("{}/plugins", api.base))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("POST");
    assert_eq!(wrong_type.status(), 415);

    // Built-ins cannot be removed; unknown names are not found.
    let (status, answer) = api
        .call(Method::DELETE, "/plugins/json", None)
        .await
        .expect("DELETE");
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["code"], "plugin_built_in");
    let (status, answer) = api
        .call(Method::GET, "/plugins/nope", None)
        .await
        .expect("GET");
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["code"], "plugin_not_found");

    assert_eq!(api.get("/plugins").await, before);
}

#[tokio::test]
async fn operators_install_global_plugins_every_tenant_sees() {
    let server = start_with_operator().await;
    let api = server.api().await;
    let operator = operator(&server, &api);
    let acme = acme(&server).await;

    let (status, _) = operator
        .with_token("wrong")
        .upload("/plugins", component(plugins::UPPER_V1))
        .await
        .expect("upload");
    assert_eq!(status, 401);
    let (status, info) = operator
        .upload("/plugins", component(plugins::UPPER_V1))
        .await
        .expect("upload");
    assert_eq!(status, 201, "{info}");
    assert_eq!(info["scope"], "global");
    assert_eq!(info["version"], "1.0.0");
    assert!(names(&operator.get("/plugins").await).contains(&"upper"));
    for tenant in [&api, &acme] {
        assert_eq!(tenant.get("/plugins/upper").await["scope"], "global");
    }
    // A tenant cannot remove a global plugin; only the operator can.
    assert_eq!(
        api.status(Method::DELETE, "/plugins/upper", None).await,
        404
    );
    assert_eq!(
        operator.status(Method::DELETE, "/plugins/json", None).await,
        409
    );
    assert_eq!(
        operator
            .status(Method::DELETE, "/plugins/upper", None)
            .await,
        204
    );
    assert_eq!(
        operator
            .status(Method::DELETE, "/plugins/upper", None)
            .await,
        404
    );
    assert_eq!(acme.status(Method::GET, "/plugins/upper", None).await, 404);
}

#[tokio::test]
async fn a_plugin_swapped_under_load_loses_no_delivery() {
    const EVENTS: usize = 200;
    let server = TestServer::start().await;
    let api = server.api().await;
    let (status, info) = api
        .upload("/plugins", component(plugins::UPPER_V1))
        .await
        .expect("upload v1");
    assert_eq!(status, 201, "{info}");
    let receiver = TestReceiver::start().await;
    let account = server.admin.api_account.id.clone();
    api.add_receiver(receiver_with(
        &receiver,
        &account,
        json!({"plugin": "upper", "settings": {"label": "swap"}}),
    ))
    .await;

    let mut versions = vec![None; EVENTS];
    api.publish(
        "Cases.Update",
        json!(null),
        json!({"seq": 0, "state": "paid"}),
    )
    .await;
    let first = receiver.next(WAIT).await.json();
    assert_eq!(first["upper"], "1.0.0", "{first}");
    versions[0] = Some("1.0.0".to_owned());

    let published = Arc::new(AtomicUsize::new(1));
    let swapped = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (api, published, swapped) = (api.clone(), published.clone(), swapped.clone());
        tokio::spawn(async move {
            for seq in 1..EVENTS {
                // The swap starts at half the stream; however long it takes on a busy
                // machine, the last quarter is only published once it is done.
                if seq == EVENTS * 3 / 4 {
                    eventually(WAIT, || async {
                        swapped.load(Ordering::SeqCst).then_some(())
                    })
                    .await;
                }
                api.publish(
                    "Cases.Update",
                    json!(null),
                    json!({"seq": seq, "state": "paid"}),
                )
                .await;
                published.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    eventually(WAIT, || async {
        (published.load(Ordering::SeqCst) >= EVENTS / 2).then_some(())
    })
    .await;
    let (status, info) = api
        .upload("/plugins", component(plugins::UPPER_V2))
        .await
        .expect("upload v2");
    assert_eq!(status, 201, "{info}");
    assert_eq!(info["version"], "2.0.0");
    // Every event published from here on started after the swap.
    let swapped_at = published.load(Ordering::SeqCst) + 1;
    swapped.store(true, Ordering::SeqCst);
    assert!(swapped_at < EVENTS, "{swapped_at}");
    publisher.await.expect("publisher");

    for _ in 1..EVENTS {
        let got = receiver.next(WAIT).await.json();
        assert_eq!(got["label"], "swap");
        assert_eq!(got["data"]["state"], "PAID");
        let seq = got["data"]["seq"].as_u64().expect("seq") as usize;
        assert!(versions[seq].is_none(), "event {seq} arrived twice");
        versions[seq] = got["upper"].as_str().map(str::to_owned);
    }
    assert!(receiver.nothing_within(Duration::from_millis(300)).await);
    for (seq, version) in versions.iter().enumerate().skip(swapped_at) {
        assert_eq!(version.as_deref(), Some("2.0.0"), "event {seq}");
    }

    assert_eq!(api.get("/deliveries?status=failed").await, json!([]));
    assert_eq!(api.get("/deliveries?status=retrying").await, json!([]));
    let delivered = api.get("/deliveries?status=delivered&limit=500").await;
    assert_eq!(delivered.as_array().map(Vec::len), Some(EVENTS));
}

#[tokio::test]
async fn uploading_needs_plugins_manage_but_listing_does_not() {
    let server = TestServer::start().await;
    let admin = server.api().await;
    let created = admin
        .post(
            "/api-accounts",
            json!({"name": "publisher", "authorizations": {"permissions": ["events.publish"]}}),
            201,
        )
        .await;
    let publisher = server
        .api_as(
            created["id"].as_str().expect("id"),
            created["token"].as_str().expect("token"),
            created["totp_secret"].as_str().expect("totp_secret"),
            0,
        )
        .await;

    let (status, answer) = publisher
        .upload("/plugins", component(plugins::UPPER_V1))
        .await
        .expect("upload");
    assert_eq!(status, 403, "{answer}");
    assert!(names(&publisher.get("/plugins").await).contains(&"json"));
    assert_eq!(
        publisher.get("/plugins/websub").await["kind"],
        "auth-protocol"
    );

    let (status, _) = admin
        .upload("/plugins", component(plugins::UPPER_V1))
        .await
        .expect("upload");
    assert_eq!(status, 201);
    assert_eq!(
        publisher
            .status(Method::DELETE, "/plugins/upper", None)
            .await,
        403
    );
    assert_eq!(publisher.get("/plugins/upper").await["version"], "1.0.0");
}

#[tokio::test]
async fn an_upload_over_the_size_cap_is_refused_as_too_large() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let (status, answer) = api
        .upload("/plugins", vec![0; 32 * 1024 * 1024 + 1])
        .await
        .expect("upload");
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["code"], "payload_too_large");
    // The larger limit is for uploads only.
    let big_event = json!({"topic": "Cases.Update", "subject": null,
                           "payload": {"blob": "x".repeat(2 * 1024 * 1024)}});
    assert_eq!(
        api.status(Method::POST, "/events", Some(big_event)).await,
        413
    );
}

//! SPEC 4.1 OAuth2 receivers against a token endpoint written here, independently of the
//! host: client credentials with RFC 6749 §2.3.1 Basic encoding (or client_secret_post),
//! token caching, one fresh token after a 401, and never an unauthenticated send.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Value, json};
use switchyard_tests::{TestServer, eventually};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(20);
const CLIENT_ID: &str = "portal:client 1";
const CLIENT_SECRET: &str = "s3cr&t/+=?";

/// What the receiver saw: the bearer token, if any, and the body.
type Hook = (Option<String>, Value);

#[derive(Default)]
struct AuthServer {
    token_requests: AtomicUsize,
    failing: AtomicBool,
    valid: Mutex<HashSet<String>>,
    seen_auth: Mutex<Vec<String>>,
    hooks: Mutex<Option<mpsc::UnboundedSender<Hook>>>,
}

fn decode_form_component(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The client a token request authenticates as: HTTP Basic with each part
/// form-urlencoded first (RFC 6749 §2.3.1), or the body (client_secret_post).
fn client_of(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<(String, String, &'static str)> {
    if let Some(basic) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        return Some((
            decode_form_component(id),
            decode_form_component(secret),
            "basic",
        ));
    }
    Some((
        form.get("client_id")?.clone(),
        form.get("client_secret")?.clone(),
        "post",
    ))
}

async fn token(
    State(state): State<Arc<AuthServer>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    let n = state.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
    if state.failing.load(Ordering::SeqCst) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "server_error"})),
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        );
    }
    match client_of(&headers, &form) {
        Some((id, secret, how)) if id == CLIENT_ID && secret == CLIENT_SECRET => {
            state.seen_auth.lock().expect("lock").push(how.to_owned());
            let token = format!("tok-{n}");
            state.valid.lock().expect("lock").insert(token.clone());
            (
                StatusCode::OK,
                Json(
                    json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": form.get("scope")}),
                ),
            )
        }
        _ => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        ),
    }
}

async fn hook(
    State(state): State<Arc<AuthServer>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> StatusCode {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    if let Some(tx) = state.hooks.lock().expect("lock").as_ref() {
        let _ = tx.send((bearer.clone(), body));
    }
    match bearer {
        Some(t) if state.valid.lock().expect("lock").contains(&t) => StatusCode::OK,
        _ => StatusCode::UNAUTHORIZED,
    }
}

async fn start_auth_server() -> (
    String,
    Arc<AuthServer>,
    mpsc::UnboundedReceiver<(Option<String>, Value)>,
) {
    let state = Arc::new(AuthServer::default());
    let (tx, rx) = mpsc::unbounded_channel();
    *state.hooks.lock().expect("lock") = Some(tx);
    let app = Router::new()
        .route("/token", post(token))
        .route("/hook", post(hook))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, state, rx)
}

fn oauth2_receiver(base: &str, account: &str, client_auth: &str) -> Value {
    json!({
        "url": format!("{base}/hook"),
        "topics": ["Cases.*"],
        "api_account": account,
        "auth": {"protocol": "oauth2", "settings": {
            "token_url": format!("{base}/token"),
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scope": "webhooks",
            "client_auth": client_auth,
        }},
    })
}

#[tokio::test]
async fn tokens_are_fetched_with_basic_auth_cached_and_renewed_once_after_a_401() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let (base, auth, mut hooks) = start_auth_server().await;
    let account = server.admin.api_account.id.clone();
    let id = api
        .add_receiver(oauth2_receiver(&base, &account, "basic"))
        .await;
    let shown = api.get(&format!("/receivers/{id}")).await;
    assert_eq!(
        shown["auth"]["settings"]["client_secret"], "********",
        "write-only"
    );

    api.publish("Cases.Create", json!(null), json!({"n": 1}))
        .await;
    api.publish("Cases.Create", json!(null), json!({"n": 2}))
        .await;
    for _ in 0..2 {
        let (bearer, _) = tokio::time::timeout(WAIT, hooks.recv())
            .await
            .expect("hook")
            .expect("open");
        assert_eq!(bearer.as_deref(), Some("tok-1"));
    }
    assert_eq!(
        auth.token_requests.load(Ordering::SeqCst),
        1,
        "the token is cached"
    );
    assert_eq!(*auth.seen_auth.lock().expect("lock"), ["basic"]);

    // The receiver stops accepting the cached token: one fresh token, one retry.
    auth.valid.lock().expect("lock").clear();
    api.publish("Cases.Create", json!(null), json!({"n": 3}))
        .await;
    let (first, _) = tokio::time::timeout(WAIT, hooks.recv())
        .await
        .expect("hook")
        .expect("open");
    assert_eq!(first.as_deref(), Some("tok-1"));
    let (second, body) = tokio::time::timeout(WAIT, hooks.recv())
        .await
        .expect("hook")
        .expect("open");
    assert_eq!(second.as_deref(), Some("tok-2"));
    assert_eq!(body["n"], 3);
    assert_eq!(auth.token_requests.load(Ordering::SeqCst), 2);
    eventually(WAIT, || async {
        let log = api.get("/deliveries?status=delivered").await;
        (log.as_array().map(Vec::len) == Some(3)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn client_secret_post_is_used_when_configured() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let (base, auth, mut hooks) = start_auth_server().await;
    let account = server.admin.api_account.id.clone();
    api.add_receiver(oauth2_receiver(&base, &account, "post"))
        .await;
    api.publish("Cases.Update", json!(null), json!({})).await;
    let (bearer, _) = tokio::time::timeout(WAIT, hooks.recv())
        .await
        .expect("hook")
        .expect("open");
    assert_eq!(bearer.as_deref(), Some("tok-1"));
    assert_eq!(*auth.seen_auth.lock().expect("lock"), ["post"]);
}

#[tokio::test]
async fn a_failing_token_endpoint_never_leads_to_an_unauthenticated_send() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let (base, auth, mut hooks) = start_auth_server().await;
    auth.failing.store(true, Ordering::SeqCst);
    let account = server.admin.api_account.id.clone();
    api.add_receiver(oauth2_receiver(&base, &account, "basic"))
        .await;
    api.publish("Cases.Update", json!(null), json!({})).await;
    let delivery = eventually(WAIT, || async {
        let log = api.get("/deliveries").await;
        (log[0]["status"] == "retrying").then_some(log[0].clone())
    })
    .await;
    let error = delivery["attempts"][0]["error"].as_str().expect("error");
    assert!(
        error.contains("oauth2") && error.contains("token"),
        "{error}"
    );
    assert_eq!(delivery["attempts"][0]["status_code"], Value::Null);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), hooks.recv())
            .await
            .is_err(),
        "nothing reached the receiver"
    );
}

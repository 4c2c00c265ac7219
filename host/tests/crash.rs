//! Nothing acknowledged is lost: publish under load, `kill -9` the real binary at random
//! moments, restart it on the same data dir, and check that every event the API
//! acknowledged reaches the receiver, duplicates always with the same `Webhook-Id`; and
//! `kill -9` it the moment other writes were answered, and check they are there.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use rand::Rng;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const CYCLES: usize = 6;
const PUBLISHERS: usize = 4;

type Seen = Arc<Mutex<HashMap<u64, HashSet<String>>>>;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn totp(secret: &str, unix_ms: u64) -> String {
    let key = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .expect("base32");
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, key, None, String::new())
        .generate(unix_ms / 1000)
}

fn serve(data: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--data"])
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("SWITCHYARD_DELIVERY__ALLOW_PRIVATE_TARGETS", "true")
        .env("SWITCHYARD_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the switchyard binary")
}

async fn ready(http: &reqwest::Client, port: u16) {
    for _ in 0..600 {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not become ready");
}

async fn start_receiver(seen: Seen) -> String {
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let seen = seen.clone();
        async move {
            let id = headers
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            if let Some(seq) = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|b| b["seq"].as_u64())
            {
                seen.lock()
                    .expect("lock")
                    .entry(seq)
                    .or_default()
                    .insert(id);
            }
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A running server on a data dir made by `switchyard init`, logged in as its API
/// account.
struct Server {
    data: tempfile::TempDir,
    child: Child,
    port: u16,
    http: reqwest::Client,
    /// The init API account: id, token, TOTP secret.
    account: Value,
    token: String,
    /// The tenant API's base URL.
    base: String,
}

impl Server {
    async fn start() -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let init = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["init", "--data"])
            .arg(data.path())
            .output()
            .expect("run init");
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        let creds: Value = serde_json::from_slice(&init.stdout).expect("init prints JSON");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let port = free_port();
        let child = serve(data.path(), port);
        ready(&http, port).await;
        let account = creds["api_account"].clone();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after epoch")
            .as_millis() as u64;
        let secret = account["totp_secret"].as_str().expect("secret");
        let login: Value = http
            .post(format!("http://127.0.0.1:{port}/auth/login"))
            .json(&json!({"account": account["id"], "token": account["token"], "totp": totp(secret, now_ms)}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("login JSON");
        let token = login["access_token"]
            .as_str()
            .expect("access token")
            .to_owned();
        Self {
            data,
            child,
            base: format!("http://127.0.0.1:{port}/t/default/v1"),
            port,
            http,
            account,
            token,
        }
    }

    /// `kill -9`, then a new server on the same data dir.
    async fn crash_and_restart(&mut self) {
        self.child.kill().await.expect("SIGKILL");
        self.restart().await;
    }

    async fn restart(&mut self) {
        self.child = serve(self.data.path(), self.port);
        ready(&self.http, self.port).await;
    }

    /// POSTs `body` to the tenant API's `path`; the answer's status and JSON.
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let answer = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("answer");
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or_default())
    }

    /// GETs the tenant API's `path`: the answer's status.
    async fn status_of(&self, path: &str) -> u16 {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("answer")
            .status()
            .as_u16()
    }

    /// Adds a receiver of `Cases.*` at `url`, signed with WebSub; its id.
    async fn add_receiver(&self, url: &str) -> String {
        let (status, created) = self
            .post(
                "/receivers",
                json!({
                    "url": url, "topics": ["Cases.*"], "api_account": self.account["id"],
                    "auth": {"protocol": "websub", "settings": {"secret": "s"}},
                }),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        created["id"].as_str().expect("receiver id").to_owned()
    }

    /// What the server knows of `missing` events: whether each is stored, and the
    /// deliveries not delivered, so that a failure says where an event stopped.
    async fn explain(&self, missing: &[(u64, String)]) -> String {
        let get = |path: String| async move {
            let url = format!("{}{path}", self.base);
            match self.http.get(&url).bearer_auth(&self.token).send().await {
                Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => format!("no answer: {e}"),
            }
        };
        let mut found = String::new();
        for (seq, id) in missing.iter().take(5) {
            found += &format!(
                "event {seq} ({id}): {}\n",
                get(format!("/events/{id}")).await
            );
        }
        for status in ["pending", "retrying", "failed", "unauthorized", "gone"] {
            found += &format!(
                "deliveries {status}: {}\n",
                get(format!("/deliveries?status={status}&limit=20")).await
            );
        }
        found
    }
}

/// Writes other than events are acknowledged only once on disk too: an access token, a
/// receiver and an API account, the server killed the moment they were answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_kill_9() {
    let mut server = Server::start().await;
    for round in 0..3 {
        let receiver = server.add_receiver("http://127.0.0.1:9/hook").await;
        let (status, account) = server
            .post("/api-accounts", json!({"name": format!("crm {round}")}))
            .await;
        assert_eq!(status, 201, "{account}");
        let account = account["id"].as_str().expect("account id").to_owned();
        server.crash_and_restart().await;
        assert_eq!(
            server.status_of(&format!("/receivers/{receiver}")).await,
            200,
            "round {round}: the access token and the receiver survive"
        );
        assert_eq!(
            server.status_of(&format!("/api-accounts/{account}")).await,
            200,
            "round {round}: the API account survives"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_event_survives_kill_9() {
    let seen: Seen = Arc::default();
    let receiver_url = start_receiver(seen.clone()).await;
    let mut server = Server::start().await;
    server.add_receiver(&receiver_url).await;

    let acked: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let mut next_seq = 0u64;
    for cycle in 0..CYCLES {
        if cycle > 0 {
            server.restart().await;
        }
        let mut publishers = Vec::new();
        for p in 0..PUBLISHERS {
            let (http, base, token, acked) = (
                server.http.clone(),
                server.base.clone(),
                server.token.clone(),
                acked.clone(),
            );
            let first = next_seq + (p as u64) * 100_000;
            publishers.push(tokio::spawn(async move {
                for seq in first..first + 100_000 {
                    let answer = http
                        .post(format!("{base}/events"))
                        .bearer_auth(&token)
                        .json(&json!({"topic": "Cases.Update", "payload": {"seq": seq}}))
                        .send()
                        .await;
                    let Ok(r) = answer else { break };
                    if r.status().as_u16() != 202 {
                        break;
                    }
                    // The status is the acknowledgement; the id, if its body arrived
                    // before the kill, helps explain a loss.
                    let body = r.json::<Value>().await.unwrap_or_default();
                    let id = body["id"].as_str().unwrap_or_default().to_owned();
                    acked.lock().expect("lock").push((seq, id));
                }
            }));
        }
        next_seq += PUBLISHERS as u64 * 100_000;
        let pause = rand::thread_rng().gen_range(100..600);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        server.child.kill().await.expect("SIGKILL");
        for p in publishers {
            let _ = p.await;
        }
    }

    server.restart().await;
    let acked: Vec<(u64, String)> = acked.lock().expect("lock").clone();
    assert!(
        acked.len() > CYCLES * 10,
        "the load was real: {} events acknowledged",
        acked.len()
    );
    let mut missing = Vec::new();
    for _ in 0..1200 {
        missing = {
            let seen = seen.lock().expect("lock");
            acked
                .iter()
                .filter(|(s, _)| !seen.contains_key(s))
                .cloned()
                .collect()
        };
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !missing.is_empty() {
        let found = server.explain(&missing).await;
        panic!(
            "{} acknowledged events were lost, e.g. {:?}\n{found}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
    }
    let seen = seen.lock().expect("lock");
    for (seq, ids) in seen.iter() {
        assert_eq!(
            ids.len(),
            1,
            "event {seq} arrived under several Webhook-Ids: {ids:?}"
        );
    }
}

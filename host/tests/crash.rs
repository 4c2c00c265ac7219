//! Nothing acknowledged is lost: publish under load, `kill -9` the real binary at random
//! moments, restart it on the same data dir, and check that every event the API
//! acknowledged reaches the receiver, duplicates always with the same `Webhook-Id`.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_event_survives_kill_9() {
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
    let account = &creds["api_account"];

    let seen: Seen = Arc::default();
    let receiver_url = start_receiver(seen.clone()).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let port = free_port();

    let mut child = serve(data.path(), port);
    ready(&http, port).await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after epoch")
        .as_millis() as u64;
    let login: Value = http
        .post(format!("http://127.0.0.1:{port}/auth/login"))
        .json(&json!({"account": account["id"], "token": account["token"], "totp": totp(account["totp_secret"].as_str().expect("secret"), now_ms)}))
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
    let base = format!("http://127.0.0.1:{port}/t/default/v1");
    let created = http
        .post(format!("{base}/receivers"))
        .bearer_auth(&token)
        .json(&json!({
            "url": receiver_url, "topics": ["Cases.*"], "api_account": account["id"],
            "auth": {"protocol": "websub", "settings": {"secret": "s"}},
        }))
        .send()
        .await
        .expect("add receiver");
    assert_eq!(created.status(), 201);

    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let mut next_seq = 0u64;
    for cycle in 0..CYCLES {
        if cycle > 0 {
            child = serve(data.path(), port);
            ready(&http, port).await;
        }
        let mut publishers = Vec::new();
        for p in 0..PUBLISHERS {
            let (http, base, token, acked) =
                (http.clone(), base.clone(), token.clone(), acked.clone());
            let first = next_seq + (p as u64) * 100_000;
            publishers.push(tokio::spawn(async move {
                for seq in first..first + 100_000 {
                    let answer = http
                        .post(format!("{base}/events"))
                        .bearer_auth(&token)
                        .json(&json!({"topic": "Cases.Update", "payload": {"seq": seq}}))
                        .send()
                        .await;
                    match answer {
                        Ok(r) if r.status().as_u16() == 202 => {
                            acked.lock().expect("lock").push(seq)
                        }
                        _ => break,
                    }
                }
            }));
        }
        next_seq += PUBLISHERS as u64 * 100_000;
        let pause = rand::thread_rng().gen_range(100..600);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        child.kill().await.expect("SIGKILL");
        for p in publishers {
            let _ = p.await;
        }
    }

    let _final = serve(data.path(), port);
    ready(&http, port).await;
    let acked: Vec<u64> = acked.lock().expect("lock").clone();
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
                .filter(|s| !seen.contains_key(s))
                .copied()
                .collect()
        };
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged events were lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let seen = seen.lock().expect("lock");
    for (seq, ids) in seen.iter() {
        assert_eq!(
            ids.len(),
            1,
            "event {seq} arrived under several Webhook-Ids: {ids:?}"
        );
    }
}

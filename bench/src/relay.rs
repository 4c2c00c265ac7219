//! The forwarding limit: the least any event router must do per event, in a process of
//! its own like the host. It takes `POST /events` from the same publishers, answers 202
//! at once, and posts the payload, signed like a WebSub webhook, to each receiver, with
//! at most as many requests in flight as the host's default. It stores nothing and calls
//! no plugin: two HTTP exchanges per webhook with one receiver, the publish and the
//! delivery, where the baseline makes one. Its delivered/s bounds what a router can reach
//! on this machine, and the host's over it is what the host's own work costs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::host::{LISTENING, Process, stdin_closed};
use crate::load::{TOPIC, signed_post};

/// What the relay forwards to, and how.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayConfig {
    /// The receivers every event goes to.
    pub receivers: Vec<String>,
    /// The WebSub secret the bodies are signed with.
    pub secret: String,
    /// The bearer token publishers must present.
    pub token: String,
    /// Requests in flight to the receivers, at most.
    pub concurrency: usize,
}

/// A relay running in a child process, with the temp dir its config and log live in.
pub struct RelayProcess {
    /// The process; publishers post to `http://{addr}/events`.
    pub process: Process,
    /// The token it takes.
    pub token: String,
    _dir: tempfile::TempDir,
}

impl RelayProcess {
    /// Starts `exe --relay-config <file>` with `config`.
    pub async fn start(exe: &Path, config: &RelayConfig) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let path: PathBuf = dir.path().join("relay-config.json");
        std::fs::write(&path, serde_json::to_vec(config)?)?;
        let process = Process::spawn(exe, "--relay-config", &path).await?;
        Ok(Self {
            process,
            token: config.token.clone(),
            _dir: dir,
        })
    }
}

struct Relay {
    config: RelayConfig,
    authorization: String,
    client: reqwest::Client,
    slots: Arc<Semaphore>,
    next: AtomicU64,
}

#[derive(Deserialize)]
struct NewEvent {
    topic: String,
    payload: Value,
}

/// The child side: relays with the JSON config in `path` on `127.0.0.1:0`, prints where
/// it listens, and stops when its stdin closes.
pub async fn serve(path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let config: RelayConfig = serde_json::from_slice(&text)?;
    let relay = Arc::new(Relay {
        authorization: format!("Bearer {}", config.token),
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(config.concurrency)
            .build()?,
        slots: Arc::new(Semaphore::new(config.concurrency)),
        next: AtomicU64::new(0),
        config,
    });
    let app = axum::Router::new()
        .route("/events", axum::routing::post(publish))
        .with_state(relay);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{LISTENING}{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(stdin_closed())
        .await?;
    Ok(())
}

/// Takes an event as the host's `POST /events` does (a bearer token, a JSON body with a
/// topic and a payload), answers 202, and forwards it afterwards.
async fn publish(
    State(relay): State<Arc<Relay>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, axum::Json<Value>) {
    if headers.get(header::AUTHORIZATION).map(|v| v.as_bytes())
        != Some(relay.authorization.as_bytes())
    {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({})));
    }
    let event = match serde_json::from_slice::<NewEvent>(&body) {
        Ok(event) if event.topic == TOPIC => event,
        _ => return (StatusCode::BAD_REQUEST, axum::Json(json!({}))),
    };
    let seq = relay.next.fetch_add(1, Ordering::Relaxed);
    let body = Bytes::from(event.payload.to_string());
    tokio::spawn(forward(relay, seq, body));
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"id": format!("evt_{seq}")})),
    )
}

/// Posts `body` to every receiver, signed for each (receivers have secrets of their own,
/// though here they share one), each request holding one of the relay's slots.
async fn forward(relay: Arc<Relay>, seq: u64, body: Bytes) {
    for (index, url) in relay.config.receivers.iter().enumerate() {
        let Ok(slot) = relay.slots.clone().acquire_owned().await else {
            return;
        };
        let request = signed_post(
            &relay.client,
            url,
            relay.config.secret.as_bytes(),
            format!("dlv_{seq}_{index}"),
            body.clone(),
        );
        tokio::spawn(async move {
            let _ = request.send().await;
            drop(slot);
        });
    }
}

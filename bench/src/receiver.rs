//! Receivers on `127.0.0.1:0` that check every request's WebSub signature and record
//! when it arrived, for the publish→receive latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::Value;
use tokio::sync::watch;

use crate::clock::now_us;

/// The longest a held request waits for [`Receivers::release`].
const MAX_HOLD: Duration = Duration::from_secs(600);

/// What every receiver of a set has seen so far.
#[derive(Default)]
struct Tally {
    verified: AtomicU64,
    bad_signature: AtomicU64,
    /// Latencies in µs, of verified requests whose body carried `sent_us`.
    latencies: std::sync::Mutex<Vec<u64>>,
    last_us: AtomicU64,
}

/// A set of receivers sharing one WebSub secret and one tally.
pub struct Receivers {
    /// Their URLs, one per receiver.
    pub urls: Vec<String>,
    tally: Arc<Tally>,
    open: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// A snapshot of a receiver set's tally.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Requests whose signature matched.
    pub verified: u64,
    /// Requests whose signature was missing or wrong.
    pub bad_signature: u64,
    /// When the last verified request arrived (µs on the bench clock).
    pub last_us: u64,
}

impl Receivers {
    /// Starts `n` receivers checking signatures under `secret`. While `held`, each request
    /// waits (up to ten minutes) for [`Receivers::release`] before it is answered — a
    /// receiver that is down, from the sender's side.
    pub async fn start(n: usize, secret: &str, held: bool) -> anyhow::Result<Self> {
        let tally = Arc::new(Tally::default());
        let (open, gate) = watch::channel(!held);
        let secret: Arc<[u8]> = Arc::from(secret.as_bytes());
        let mut urls = Vec::with_capacity(n);
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let (tally, gate, secret) = (tally.clone(), gate.clone(), secret.clone());
            let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
                let (tally, mut gate, secret) = (tally.clone(), gate.clone(), secret.clone());
                async move {
                    if !*gate.borrow() {
                        let _ = tokio::time::timeout(MAX_HOLD, gate.wait_for(|open| *open)).await;
                    }
                    receive(&tally, &secret, &headers, &body)
                }
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            urls.push(format!("http://{addr}/hook"));
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }));
        }
        Ok(Self {
            urls,
            tally,
            open,
            tasks,
        })
    }

    /// Answers every held request and every later one.
    pub fn release(&self) {
        let _ = self.open.send(true);
    }

    /// The tally so far.
    pub fn seen(&self) -> Seen {
        Seen {
            verified: self.tally.verified.load(Ordering::SeqCst),
            bad_signature: self.tally.bad_signature.load(Ordering::SeqCst),
            last_us: self.tally.last_us.load(Ordering::SeqCst),
        }
    }

    /// Takes the latencies recorded so far (µs), leaving none.
    pub fn take_latencies(&self) -> Vec<u64> {
        match self.tally.latencies.lock() {
            Ok(mut l) => std::mem::take(&mut *l),
            Err(_) => Vec::new(),
        }
    }

    /// Waits until `target` requests were verified, for at most `within`; true if they were.
    pub async fn wait_for(&self, target: u64, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.tally.verified.load(Ordering::SeqCst) >= target {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

impl Drop for Receivers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn receive(tally: &Tally, secret: &[u8], headers: &HeaderMap, body: &[u8]) -> StatusCode {
    let now = now_us();
    if !signature_matches(secret, headers, body) {
        tally.bad_signature.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    if let Some(sent) = sent_us(body)
        && let Ok(mut latencies) = tally.latencies.lock()
    {
        latencies.push(now.saturating_sub(sent));
    }
    tally.last_us.fetch_max(now, Ordering::SeqCst);
    tally.verified.fetch_add(1, Ordering::SeqCst);
    StatusCode::OK
}

/// Checks `X-Hub-Signature: sha256=<hex>` against the body, in constant time.
pub fn signature_matches(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(hex_digest) = headers
        .get("x-hub-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
    else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_digest) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The publish timestamp the bench put in the payload, wherever the transform put the
/// payload (as is, or under `data` / `payload`).
fn sent_us(body: &[u8]) -> Option<u64> {
    let value: Value = serde_json::from_slice(body).ok()?;
    [&value, &value["data"], &value["payload"]]
        .into_iter()
        .find_map(|v| v["sent_us"].as_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_timestamp_wherever_the_transform_put_it() {
        assert_eq!(sent_us(br#"{"sent_us": 5}"#), Some(5));
        assert_eq!(sent_us(br#"{"data": {"sent_us": 6}}"#), Some(6));
        assert_eq!(sent_us(br#"{"payload": {"sent_us": 7}}"#), Some(7));
        assert_eq!(sent_us(b"nope"), None);
    }

    #[test]
    fn checks_the_signature() {
        let body = b"{}";
        let signature = switchyard_plugin_websub::signature(
            switchyard_plugin_websub::Algorithm::Sha256,
            b"s3cret",
            body,
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-hub-signature", signature.parse().expect("header value"));
        assert!(signature_matches(b"s3cret", &headers, body));
        assert!(!signature_matches(b"other", &headers, body));
        assert!(!signature_matches(b"s3cret", &HeaderMap::new(), body));
    }
}

//! The load generators: publishing events to Switchyard (at a fixed concurrency or a
//! fixed rate) and the baseline, a plain HTTP client posting equally signed bodies
//! straight to the receivers. Every loop is bounded by a count and a deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_plugin_websub::{Algorithm, signature};
use switchyard_tests::Api;
use tokio::sync::Semaphore;

use crate::clock::now_us;

/// The event topic every scenario publishes.
pub const TOPIC: &str = "Cases.Update";

/// The payload of event `seq`, stamped with the time it is sent. About 200 bytes, the
/// size of a typical business webhook.
pub fn payload(seq: u64) -> Value {
    json!({
        "sent_us": now_us(),
        "seq": seq,
        "case": {"id": format!("case-{seq}"), "status": "open", "priority": 2,
                 "owner": "ops@example.com", "note": "customer asked for a callback about the invoice"},
    })
}

/// What a publishing run achieved.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// Events acknowledged with 202 (durable).
    pub acked: u64,
    /// Events refused or that failed in transit.
    pub failed: u64,
    /// Ticks of a fixed-rate run that found every slot busy and were skipped.
    pub skipped: u64,
    /// When the first request went out (µs on the bench clock).
    pub start_us: u64,
    /// When the last acknowledgement came back.
    pub end_us: u64,
}

impl Published {
    /// Acknowledged events per second.
    pub fn per_s(&self) -> f64 {
        per_s(self.acked, self.start_us, self.end_us)
    }
}

/// `count` per second over `[start_us, end_us]`.
pub fn per_s(count: u64, start_us: u64, end_us: u64) -> f64 {
    let secs = end_us.saturating_sub(start_us) as f64 / 1e6;
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

async fn publish_one(api: &Api, seq: u64) -> bool {
    let request = api
        .http
        .post(format!("{}/events", api.base))
        .bearer_auth(&api.token)
        .json(&json!({"topic": TOPIC, "payload": payload(seq)}));
    matches!(request.send().await, Ok(r) if r.status().as_u16() == 202)
}

/// Publishes `total` events from `concurrency` workers, each sending its next event as
/// soon as the previous one was acknowledged; stops early at `deadline`.
pub async fn publish_closed(
    api: &Api,
    total: u64,
    concurrency: usize,
    deadline: Duration,
) -> Published {
    let next = Arc::new(AtomicU64::new(0));
    let (acked, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let start_us = now_us();
    let stop_at = tokio::time::Instant::now() + deadline;
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (api, next, acked, failed) = (api.clone(), next.clone(), acked.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let seq = next.fetch_add(1, Ordering::SeqCst);
                if seq >= total || tokio::time::Instant::now() >= stop_at {
                    break;
                }
                let counter = if publish_one(&api, seq).await {
                    &acked
                } else {
                    &failed
                };
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    Published {
        acked: acked.load(Ordering::SeqCst),
        failed: failed.load(Ordering::SeqCst),
        skipped: 0,
        start_us,
        end_us: now_us(),
    }
}

/// Publishes `rate` events per second for `seconds`, each on its own task, at most
/// `max_in_flight` at once (a tick that finds them all busy is skipped and counted).
pub async fn publish_rate(api: &Api, rate: u64, seconds: u64, max_in_flight: usize) -> Published {
    let total = rate * seconds;
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let (acked, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut skipped = 0;
    let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start_us = now_us();
    let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for seq in 0..total {
        ticks.tick().await;
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        let (api, acked, failed) = (api.clone(), acked.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let counter = if publish_one(&api, seq).await {
                &acked
            } else {
                &failed
            };
            counter.fetch_add(1, Ordering::SeqCst);
            drop(slot);
        }));
    }
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    }
    Published {
        acked: acked.load(Ordering::SeqCst),
        failed: failed.load(Ordering::SeqCst),
        skipped,
        start_us,
        end_us: now_us(),
    }
}

/// A webhook request as the host sends it with the `json` transform and WebSub:
/// `body` under `secret`'s HMAC-SHA256 in `X-Hub-Signature`, with the headers beside it.
pub fn signed_post(
    client: &reqwest::Client,
    url: &str,
    secret: &[u8],
    webhook_id: String,
    body: impl Into<axum::body::Bytes>,
) -> reqwest::RequestBuilder {
    let body = body.into();
    client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", webhook_id)
        .header("x-switchyard-topic", TOPIC)
        .header(
            "x-hub-signature",
            signature(Algorithm::Sha256, secret, &body),
        )
        .body(body)
}

/// The baseline: `total` requests from `concurrency` workers straight to `urls` (round
/// robin), each body signed like a WebSub webhook. Returns `(sent, start_us, end_us)`.
pub async fn post_signed(
    urls: &[String],
    secret: &str,
    total: u64,
    concurrency: usize,
    deadline: Duration,
) -> anyhow::Result<(u64, u64, u64)> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let urls: Arc<[String]> = Arc::from(urls);
    let secret: Arc<[u8]> = Arc::from(secret.as_bytes());
    let next = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let start_us = now_us();
    let stop_at = tokio::time::Instant::now() + deadline;
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (client, urls, secret, next, sent) = (
            client.clone(),
            urls.clone(),
            secret.clone(),
            next.clone(),
            sent.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let seq = next.fetch_add(1, Ordering::SeqCst);
                if seq >= total || tokio::time::Instant::now() >= stop_at {
                    break;
                }
                let index = usize::try_from(seq).unwrap_or(0) % urls.len();
                let body = payload(seq).to_string();
                let request =
                    signed_post(&client, &urls[index], &secret, format!("dlv_{seq}"), body);
                if matches!(request.send().await, Ok(r) if r.status().is_success()) {
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    Ok((sent.load(Ordering::SeqCst), start_us, now_us()))
}

//! The scenarios. Each starts what it needs (a host on a fresh temp data dir, receivers)
//! and returns its figures; nothing outlives it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;
use serde_json::json;
use switchyard::config::Config;
use switchyard_tests::{Api, Options, TestServer, plugins};

use crate::clock::now_us;
use crate::load::{self, Published};
use crate::receiver::Receivers;
use crate::stats;

/// The WebSub secret every receiver checks.
pub const SECRET: &str = "bench-secret-4f1c2a";

/// The longest any one phase may take before the scenario gives up and reports.
const PHASE_LIMIT: Duration = Duration::from_secs(180);
/// The bench hosts' operator token (for global plugin uploads).
const OPERATOR_TOKEN: &str = "bench-operator";

/// The figures of one measured run, Switchyard's or the baseline's.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    /// What ran, e.g. `switchyard/10-receivers`.
    pub name: String,
    /// Events published (acknowledged); for the baseline, requests sent.
    pub events: u64,
    /// Webhooks expected at the receivers.
    pub expected: u64,
    /// Webhooks whose signature the receivers verified.
    pub verified: u64,
    /// Webhooks with a missing or wrong signature.
    pub bad_signatures: u64,
    /// Durably acknowledged events per second (Switchyard only).
    pub publish_per_s: Option<f64>,
    /// Verified webhooks per second, from the first publish to the last arrival.
    pub delivered_per_s: f64,
    /// Publish→receive latency, ms.
    pub p50_ms: Option<f64>,
    /// Publish→receive latency, ms.
    pub p99_ms: Option<f64>,
    /// Publish→receive latency, ms.
    pub p999_ms: Option<f64>,
    /// Peak RSS of the bench process during the run, MiB.
    pub peak_rss_mb: Option<f64>,
    /// Delivered/s as a fraction of the baseline's, when there is one.
    pub ratio_to_baseline: Option<f64>,
    /// Scenario-specific figures.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Figures {
    fn complete(&self) -> bool {
        self.verified >= self.expected && self.bad_signatures == 0
    }
}

/// How a host is set up for a scenario.
fn configure(cache_dir: &Path, timeout: Duration) -> Box<dyn FnOnce(&mut Config) + Send + 'static> {
    let cache_dir = cache_dir.to_owned();
    Box::new(move |config: &mut Config| {
        config.delivery.allow_private_targets = true;
        config.operator_token = Some(OPERATOR_TOKEN.into());
        // The baseline sends with `delivery.concurrency` requests in flight to one
        // receiver; the host may do the same.
        config.delivery.per_receiver_concurrency = config.delivery.concurrency;
        config.delivery.timeout = timeout;
        config.delivery.retry_schedule = vec![Duration::from_secs(1)];
        config.plugins.cache_dir = Some(cache_dir);
    })
}

async fn start_host(cache_dir: &Path, timeout: Duration) -> TestServer {
    TestServer::start_with(Options {
        manual_clock_at: None,
        configure: Some(configure(cache_dir, timeout)),
    })
    .await
}

async fn add_receivers(api: &Api, host: &TestServer, urls: &[String], transform: Option<&str>) {
    let account = &host.admin.api_account.id;
    for url in urls {
        let mut receiver = json!({
            "url": url,
            "topics": [load::TOPIC],
            "api_account": account,
            "auth": {"protocol": "websub", "settings": {"secret": SECRET, "algorithm": "sha256"}},
        });
        if let Some(plugin) = transform {
            receiver["transform"] = json!({"plugin": plugin, "settings": {}});
        }
        api.add_receiver(receiver).await;
    }
}

fn figures(
    name: &str,
    published: &Published,
    fanout: u64,
    receivers: &Receivers,
    publish_rate: bool,
) -> Figures {
    let seen = receivers.seen();
    let [p50_ms, p99_ms, p999_ms] = stats::latency_ms(receivers.take_latencies());
    let mut extra = serde_json::Map::new();
    if published.failed > 0 || published.skipped > 0 {
        extra.insert("publish_failed".into(), published.failed.into());
        extra.insert("rate_ticks_skipped".into(), published.skipped.into());
    }
    Figures {
        name: name.to_owned(),
        events: published.acked,
        expected: published.acked * fanout,
        verified: seen.verified,
        bad_signatures: seen.bad_signature,
        publish_per_s: publish_rate.then(|| published.per_s()),
        delivered_per_s: load::per_s(seen.verified, published.start_us, seen.last_us),
        p50_ms,
        p99_ms,
        p999_ms,
        peak_rss_mb: stats::peak_rss_mb(),
        ratio_to_baseline: None,
        extra,
    }
}

/// The loopback limit: a plain client posting `total` signed bodies to `receivers`
/// receivers at `concurrency`.
pub async fn baseline(receivers: usize, total: u64, concurrency: usize) -> anyhow::Result<Figures> {
    stats::reset_peak_rss();
    let set = Receivers::start(receivers, SECRET, false).await?;
    let (sent, start_us, end_us) =
        load::post_signed(&set.urls, SECRET, total, concurrency, PHASE_LIMIT).await?;
    set.wait_for(total, Duration::from_secs(5)).await;
    let published = Published {
        acked: sent,
        start_us,
        end_us,
        ..Published::default()
    };
    let name = format!("baseline/{receivers}-receivers");
    Ok(figures(&name, &published, 1, &set, false))
}

/// Switchyard: `events` events published at `concurrency`, each delivered to
/// `receivers` receivers through `transform` (the default `json` when `None`).
pub async fn closed_loop(
    cache_dir: &Path,
    receivers: usize,
    transform: Option<&str>,
    events: u64,
    concurrency: usize,
) -> anyhow::Result<Figures> {
    let host = start_host(cache_dir, Duration::from_secs(10)).await;
    let api = host.api().await;
    let set = Receivers::start(receivers, SECRET, false).await?;
    add_receivers(&api, &host, &set.urls, transform).await;
    stats::reset_peak_rss();
    let published = load::publish_closed(&api, events, concurrency, PHASE_LIMIT).await;
    let fanout = receivers as u64;
    set.wait_for(published.acked * fanout, PHASE_LIMIT).await;
    let name = format!(
        "switchyard/{receivers}-receivers/{}",
        transform.unwrap_or("json")
    );
    Ok(figures(&name, &published, fanout, &set, true))
}

/// Switchyard at a fixed publish rate, one receiver: the latency under a steady load.
pub async fn fixed_rate(cache_dir: &Path, rate: u64, seconds: u64) -> anyhow::Result<Figures> {
    let host = start_host(cache_dir, Duration::from_secs(10)).await;
    let api = host.api().await;
    let set = Receivers::start(1, SECRET, false).await?;
    add_receivers(&api, &host, &set.urls, None).await;
    stats::reset_peak_rss();
    let published = load::publish_rate(&api, rate, seconds, 1024).await;
    set.wait_for(published.acked, Duration::from_secs(60)).await;
    let mut figures = figures(
        &format!("switchyard/rate-{rate}/s"),
        &published,
        1,
        &set,
        true,
    );
    figures.extra.insert("target_rate".into(), rate.into());
    Ok(figures)
}

/// `events` deliveries queued against a receiver that holds every request (down, from
/// the sender's side: at most `delivery.concurrency` attempts in flight, the rest
/// pending in the store), then released: the drain rate and the RSS with the backlog.
pub async fn drain(cache_dir: &Path, events: u64, concurrency: usize) -> anyhow::Result<Figures> {
    // Held attempts must outlive the whole queueing phase.
    let host = start_host(cache_dir, Duration::from_secs(900)).await;
    let api = host.api().await;
    let set = Receivers::start(1, SECRET, true).await?;
    add_receivers(&api, &host, &set.urls, None).await;
    stats::reset_peak_rss();
    let published = load::publish_closed(&api, events, concurrency, PHASE_LIMIT * 2).await;
    // Let the router fan the last events out before reading the memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let queued_rss = stats::peak_rss_mb();
    let released_us = now_us();
    set.release();
    let drained = set.wait_for(published.acked, PHASE_LIMIT * 2).await;
    let seen = set.seen();
    let mut figures = figures("switchyard/drain", &published, 1, &set, true);
    // Latency here is dominated by the queueing by design; it is not a figure of merit.
    figures.p50_ms = None;
    figures.p99_ms = None;
    figures.p999_ms = None;
    figures.delivered_per_s = load::per_s(seen.verified, released_us, seen.last_us);
    figures
        .extra
        .insert("queued".into(), published.acked.into());
    figures
        .extra
        .insert("rss_with_backlog_mb".into(), json!(queued_rss));
    figures.extra.insert("drained".into(), drained.into());
    Ok(figures)
}

/// Time from starting a host on an existing data dir to `/readyz` answering 200, with
/// the built-in plugins loading from their precompiled cache; `reps` restarts.
pub async fn restart(cache_dir: &Path, reps: usize) -> anyhow::Result<Figures> {
    let mut host = start_host(cache_dir, Duration::from_secs(10)).await;
    let api = host.api().await;
    let set = Receivers::start(1, SECRET, false).await?;
    add_receivers(&api, &host, &set.urls, None).await;
    let published = load::publish_closed(&api, 100, 8, PHASE_LIMIT).await;
    set.wait_for(published.acked, Duration::from_secs(30)).await;
    // Ten plugins: the six built-ins, and two uploaded components installed globally by
    // the operator and again for the tenant (a tenant's own version shadows the global
    // one; both are loaded).
    let operator = api.with_token(OPERATOR_TOKEN);
    let mut uploaded = 0;
    for path in [plugins::UPPER_V1, plugins::CHAT_MESSAGE] {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
        for (api, at) in [
            (&operator, host.url("/operator/plugins")),
            (&api, "/plugins".into()),
        ] {
            let (status, answer) = api.upload(&at, bytes.clone()).await?;
            anyhow::ensure!(status == 201, "upload to {at}: {status} {answer}");
            uploaded += 1;
        }
    }
    let builtins = match api.call(reqwest::Method::GET, "/plugins", None).await {
        Ok((200, plugins)) => plugins
            .as_array()
            .map(|p| p.iter().filter(|p| p["builtin"] == true).count()),
        _ => None,
    };
    let loaded = builtins.map(|b| b + uploaded);
    host.shutdown().await;

    let client = reqwest::Client::new();
    let store_dir = host.config.data_dir.join("store");
    let mut times_ms = Vec::with_capacity(reps);
    let mut lock_waits_ms = Vec::with_capacity(reps);
    for _ in 0..reps {
        // `Server::run` returns before its last store handles are dropped; wait (bounded)
        // until the store's lock is free so the timed start does not race the old one.
        lock_waits_ms.push(wait_for_store(&store_dir).await);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let ready = format!("http://{}/readyz", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let started = Instant::now();
        let server = switchyard::Server::new(host.config.clone());
        let task = tokio::spawn(server.run(listener, async move {
            let _ = stopped.await;
        }));
        let deadline = started + Duration::from_secs(30);
        loop {
            let up = matches!(client.get(&ready).send().await, Ok(r) if r.status().is_success());
            if up || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        times_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        let _ = stop.send(());
        task.await??;
    }
    times_ms.sort_by(f64::total_cmp);
    let mut figures = Figures {
        name: "switchyard/restart".into(),
        peak_rss_mb: stats::peak_rss_mb(),
        ..Figures::default()
    };
    figures.extra.insert("plugins_loaded".into(), loaded.into());
    figures.extra.insert(
        "restart_ms_median".into(),
        json!(times_ms.get(times_ms.len() / 2)),
    );
    figures
        .extra
        .insert("restart_ms_max".into(), json!(times_ms.last()));
    figures
        .extra
        .insert("restart_ms_all".into(), json!(times_ms));
    figures
        .extra
        .insert("store_lock_wait_ms".into(), json!(lock_waits_ms));
    Ok(figures)
}

/// Waits (at most 10 s) until the store in `dir` can be opened; returns the ms waited.
async fn wait_for_store(dir: &Path) -> f64 {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if switchyard::store::SledStore::open(dir).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    started.elapsed().as_secs_f64() * 1000.0
}

/// Whether a figure set is complete (every expected webhook verified, no bad signature).
pub fn is_complete(figures: &Figures) -> bool {
    figures.complete()
}

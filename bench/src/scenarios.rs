//! The scenarios. Each starts what it needs (a host on a fresh temp data dir, receivers)
//! and returns its figures; nothing outlives it.

use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use serde_json::json;
use switchyard_tests::{Api, plugins};

use crate::clock::now_us;
use crate::host::{HostProcess, Launcher, Process};
use crate::load::{self, Published};
use crate::receiver::Receivers;
use crate::relay::{RelayConfig, RelayProcess};
use crate::stats;

/// The WebSub secret every receiver checks.
pub const SECRET: &str = "bench-secret-4f1c2a";

/// The longest any one phase may take before the scenario gives up and reports.
const PHASE_LIMIT: Duration = Duration::from_secs(180);
/// The bench hosts' operator token (for global plugin uploads).
pub(crate) const OPERATOR_TOKEN: &str = "bench-operator";

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
    /// Peak RSS during the run, MiB: of the host's process for Switchyard, of the bench
    /// process (client and receivers) for the baseline.
    pub peak_rss_mb: Option<f64>,
    /// Delivered/s as a fraction of the baseline's (the mean of the baseline runs just
    /// before and just after), when there is one.
    pub ratio_to_baseline: Option<f64>,
    /// Delivered/s as a fraction of the relay's in the same group (the forwarding limit,
    /// see [`crate::relay`]), for Switchyard's runs.
    pub ratio_to_relay: Option<f64>,
    /// Scenario-specific figures.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Figures {
    fn complete(&self) -> bool {
        self.verified >= self.expected && self.bad_signatures == 0
    }
}

async fn add_receivers(api: &Api, host: &HostProcess, urls: &[String], transform: Option<&str>) {
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

/// A child under measurement (the host or the relay), with the CPU time it had used when
/// the measured phase began, and, once publishing ended, where it stood then.
struct Measured<'a> {
    process: &'a Process,
    cpu_s_before: Option<f64>,
    publish_ended: Option<Standing>,
}

/// Webhooks verified and CPU used by the process at one moment.
#[derive(Debug, Clone, Copy)]
struct Standing {
    /// Webhooks the receivers had verified.
    verified: u64,
    /// The process's CPU time, s.
    cpu_s: Option<f64>,
}

impl<'a> Measured<'a> {
    fn begin(process: &'a Process) -> Self {
        Self {
            process,
            cpu_s_before: process.cpu_s(),
            publish_ended: None,
        }
    }

    /// The last publish was acknowledged: notes what had arrived and the CPU used so far.
    fn publishing_ended(mut self, receivers: &Receivers) -> Self {
        self.publish_ended = Some(Standing {
            verified: receivers.seen().verified,
            cpu_s: self.process.cpu_s(),
        });
        self
    }
}

/// Delivery alone, from the last acknowledgement (`ended`, at `ended_us`) to the last
/// arrival (`now`, at `last_us`): webhooks/s and CPU µs per webhook. With several
/// receivers a router acknowledges faster than it delivers, and delivers a backlog once
/// publishing stops; this is what each webhook costs then, without the publishes. `None`
/// when under a tenth of the run's `expected` webhooks arrived in that span, or it lasted
/// under 100 ms (the CPU clock ticks every 10 ms): too little to measure.
fn after_publish(
    ended: Standing,
    ended_us: u64,
    now: Standing,
    last_us: u64,
    expected: u64,
) -> Option<(f64, Option<f64>)> {
    let webhooks = now.verified.saturating_sub(ended.verified);
    if webhooks == 0 || webhooks * 10 < expected || last_us < ended_us + 100_000 {
        return None;
    }
    let cpu_us = match (ended.cpu_s, now.cpu_s) {
        (Some(before), Some(after)) => Some((after - before) * 1e6 / webhooks as f64),
        _ => None,
    };
    Some((load::per_s(webhooks, ended_us, last_us), cpu_us))
}

fn figures(
    name: &str,
    published: &Published,
    fanout: u64,
    receivers: &Receivers,
    host: Option<&Measured<'_>>,
) -> Figures {
    let seen = receivers.seen();
    let [p50_ms, p99_ms, p999_ms] = stats::latency_ms(receivers.take_latencies());
    let mut extra = serde_json::Map::new();
    if published.failed > 0 || published.skipped > 0 {
        extra.insert("publish_failed".into(), published.failed.into());
        extra.insert("rate_ticks_skipped".into(), published.skipped.into());
    }
    let cpu_s_now = host.and_then(|m| m.process.cpu_s());
    if let Some(m) = host
        && let (Some(before), Some(now)) = (m.cpu_s_before, cpu_s_now)
    {
        let per_event = (now - before) * 1e6 / published.acked.max(1) as f64;
        extra.insert("host_cpu_us_per_event".into(), json!(per_event.round()));
    }
    let now = Standing {
        verified: seen.verified,
        cpu_s: cpu_s_now,
    };
    let expected = published.acked * fanout;
    if let Some(ended) = host.and_then(|m| m.publish_ended)
        && let Some((per_s, cpu_us)) =
            after_publish(ended, published.end_us, now, seen.last_us, expected)
    {
        extra.insert("after_publish_per_s".into(), json!(per_s.round()));
        if let Some(cpu_us) = cpu_us {
            extra.insert(
                "after_publish_cpu_us_per_webhook".into(),
                json!((cpu_us * 10.0).round() / 10.0),
            );
        }
    }
    Figures {
        name: name.to_owned(),
        events: published.acked,
        expected,
        verified: seen.verified,
        bad_signatures: seen.bad_signature,
        publish_per_s: host.map(|_| published.per_s()),
        delivered_per_s: load::per_s(seen.verified, published.start_us, seen.last_us),
        p50_ms,
        p99_ms,
        p999_ms,
        peak_rss_mb: match host {
            Some(m) => m.process.peak_rss_mb(),
            None => stats::peak_rss_mb(),
        },
        ratio_to_baseline: None,
        ratio_to_relay: None,
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
    Ok(figures(&name, &published, 1, &set, None))
}

/// The forwarding limit ([`crate::relay`]): `events` events published at `concurrency`
/// to the relay, each forwarded to `receivers` receivers.
pub async fn relay(
    launcher: &Launcher,
    receivers: usize,
    events: u64,
    concurrency: usize,
) -> anyhow::Result<Figures> {
    let set = Receivers::start(receivers, SECRET, false).await?;
    let config = RelayConfig {
        receivers: set.urls.clone(),
        secret: SECRET.into(),
        token: "bench-relay".into(),
        concurrency: switchyard::config::DeliveryConfig::default().concurrency,
    };
    let mut relay = RelayProcess::start(&launcher.exe, &config).await?;
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://{}", relay.process.addr),
        token: relay.token.clone(),
    };
    let measured = Measured::begin(&relay.process);
    let published = load::publish_closed(&api, events, concurrency, PHASE_LIMIT).await;
    let measured = measured.publishing_ended(&set);
    let fanout = receivers as u64;
    set.wait_for(published.acked * fanout, PHASE_LIMIT).await;
    let name = format!("relay/{receivers}-receivers");
    let figures = figures(&name, &published, fanout, &set, Some(&measured));
    relay.process.stop().await?;
    Ok(figures)
}

/// Switchyard: `events` events published at `concurrency`, each delivered to
/// `receivers` receivers through `transform` (the default `json` when `None`).
pub async fn closed_loop(
    launcher: &Launcher,
    receivers: usize,
    transform: Option<&str>,
    events: u64,
    concurrency: usize,
) -> anyhow::Result<Figures> {
    let host = launcher.start(Duration::from_secs(10)).await?;
    let api = host.api().await?;
    let set = Receivers::start(receivers, SECRET, false).await?;
    add_receivers(&api, &host, &set.urls, transform).await;
    let measured = Measured::begin(&host.process);
    let published = load::publish_closed(&api, events, concurrency, PHASE_LIMIT).await;
    let measured = measured.publishing_ended(&set);
    let fanout = receivers as u64;
    set.wait_for(published.acked * fanout, PHASE_LIMIT).await;
    let name = format!(
        "switchyard/{receivers}-receivers/{}",
        transform.unwrap_or("json")
    );
    Ok(figures(&name, &published, fanout, &set, Some(&measured)))
}

/// Switchyard at a fixed publish rate, one receiver: the latency under a steady load.
pub async fn fixed_rate(launcher: &Launcher, rate: u64, seconds: u64) -> anyhow::Result<Figures> {
    let host = launcher.start(Duration::from_secs(10)).await?;
    let api = host.api().await?;
    let set = Receivers::start(1, SECRET, false).await?;
    add_receivers(&api, &host, &set.urls, None).await;
    let measured = Measured::begin(&host.process);
    let published = load::publish_rate(&api, rate, seconds, 1024).await;
    set.wait_for(published.acked, Duration::from_secs(60)).await;
    let mut figures = figures(
        &format!("switchyard/rate-{rate}/s"),
        &published,
        1,
        &set,
        Some(&measured),
    );
    figures.extra.insert("target_rate".into(), rate.into());
    Ok(figures)
}

/// `events` deliveries queued against a receiver that holds every request (down, from
/// the sender's side: its share of the slots in flight, the rest queued in the store),
/// then released: the drain rate and the RSS with the backlog.
pub async fn drain(
    launcher: &Launcher,
    events: u64,
    concurrency: usize,
) -> anyhow::Result<Figures> {
    // Held attempts must outlive the whole queueing phase. The receiver gets half the
    // slots, so the router keeps free slots and fans every event out: the backlog is
    // deliveries in the store's queue, not events waiting for fan-out.
    let host = launcher
        .start_with(Duration::from_secs(900), |c| {
            c.delivery.per_receiver_concurrency = c.delivery.concurrency / 2;
            // Longer than such attempts may take, as a host's configuration must be (and
            // as claiming deliveries ahead of their slots needs): the defaults' ratio.
            c.jobs.stuck_after = 20 * c.delivery.timeout;
        })
        .await?;
    let api = host.api().await?;
    let set = Receivers::start(1, SECRET, true).await?;
    add_receivers(&api, &host, &set.urls, None).await;
    let measured = Measured::begin(&host.process);
    let published = load::publish_closed(&api, events, concurrency, PHASE_LIMIT * 2).await;
    // Let the router fan the last events out before reading the memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let queued_rss = host.process.peak_rss_mb();
    let queued_deliveries = host.metric("switchyard_queue_depth").await;
    let released_us = now_us();
    set.release();
    let drained = set.wait_for(published.acked, PHASE_LIMIT * 2).await;
    let seen = set.seen();
    let mut figures = figures("switchyard/drain", &published, 1, &set, Some(&measured));
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
    figures
        .extra
        .insert("queued_deliveries".into(), json!(queued_deliveries));
    figures.extra.insert("drained".into(), drained.into());
    Ok(figures)
}

/// Time from starting a host process on an existing data dir to `/readyz` answering 200,
/// with its plugins loading from the precompiled cache; `reps` restarts.
pub async fn restart(launcher: &Launcher, reps: usize) -> anyhow::Result<Figures> {
    let mut host = launcher.start(Duration::from_secs(10)).await?;
    let api = host.api().await?;
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

    let mut times_ms = Vec::with_capacity(reps);
    for _ in 0..reps {
        host.stop().await?;
        let (started, took) = launcher.restart(host).await?;
        host = started;
        times_ms.push(took.as_secs_f64() * 1000.0);
    }
    let peak_rss_mb = host.process.peak_rss_mb();
    host.stop().await?;
    times_ms.sort_by(f64::total_cmp);
    let mut figures = Figures {
        name: "switchyard/restart".into(),
        peak_rss_mb,
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
    Ok(figures)
}

/// Whether a figure set is complete (every expected webhook verified, no bad signature).
pub fn is_complete(figures: &Figures) -> bool {
    figures.complete()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(verified: u64, cpu_s: Option<f64>) -> Standing {
        Standing { verified, cpu_s }
    }

    #[test]
    fn delivery_after_publishing_is_what_arrived_since_over_the_time_and_cpu_it_took() {
        let ended = at(100, Some(1.0));
        let (per_s, cpu_us) =
            after_publish(ended, 1_000_000, at(1_100, Some(1.05)), 1_500_000, 2_000)
                .expect("a tail of half the run");
        assert!((per_s - 2_000.0).abs() < 1e-6, "{per_s}");
        let cpu_us = cpu_us.expect("both CPU readings");
        assert!((cpu_us - 50.0).abs() < 1e-6, "{cpu_us}");
        let unread = after_publish(ended, 1_000_000, at(1_100, None), 1_500_000, 2_000);
        assert_eq!(unread.map(|(_, cpu)| cpu), Some(None), "no CPU reading");
    }

    #[test]
    fn too_short_a_tail_is_not_measured() {
        let ended = at(1_000, Some(1.0));
        let few = after_publish(ended, 0, at(1_099, Some(2.0)), 1_000_000, 1_000);
        assert!(few.is_none(), "under a tenth of the webhooks");
        let brief = after_publish(ended, 0, at(2_000, Some(2.0)), 99_999, 2_000);
        assert!(brief.is_none(), "under 100 ms");
        let none = after_publish(ended, 0, at(1_000, Some(2.0)), 1_000_000, 0);
        assert!(
            none.is_none(),
            "nothing arrived after the last acknowledgement"
        );
        assert!(after_publish(ended, 0, at(1_100, Some(2.0)), 100_000, 1_000).is_some());
    }
}

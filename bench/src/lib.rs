//! The Switchyard benchmark harness. In one run it starts the host in a child process on
//! temp data dirs, local receivers that verify every WebSub signature, and measures the
//! host against a baseline in the same run: a plain HTTP client posting equally signed
//! bodies to the same receivers at the same concurrency — the loopback limit of this
//! machine. A relay ([`relay`]), a router reduced to its two HTTP exchanges per webhook,
//! runs between the same baselines: the forwarding limit.
//!
//! Everything is bounded: each phase has a count and a deadline, and all traffic stays on
//! 127.0.0.1. `docs/PERFORMANCE.md` describes the method and the latest figures.

pub mod clock;
pub mod host;
pub mod load;
pub mod micro;
pub mod receiver;
pub mod relay;
pub mod scenarios;
pub mod stats;

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::micro::CallCost;
use crate::scenarios::Figures;

/// The scenario groups, in the order a full run takes them.
pub const SCENARIOS: &[&str] = &[
    "fanout-1",
    "fanout-10",
    "transform",
    "rate",
    "drain",
    "restart",
    "plugin-calls",
];

/// How big a run is.
#[derive(Debug, Clone, Serialize)]
pub struct Sizes {
    /// Events published in the 1-receiver and transform scenarios.
    pub events: u64,
    /// Events published in the 10-receiver scenario (10 webhooks each).
    pub events_fanout_10: u64,
    /// Publishers (and baseline clients) working at once.
    pub concurrency: usize,
    /// Fixed publish rates, events/s.
    pub rates: Vec<u64>,
    /// How long each fixed rate is held, s.
    pub rate_seconds: u64,
    /// Deliveries queued against a receiver that is down.
    pub drain_events: u64,
    /// Restarts timed.
    pub restarts: usize,
    /// Calls timed per plugin entry point.
    pub plugin_calls: u64,
    /// Times the fan-out groups run, each time between baselines of its own; the report
    /// gives the spread of their ratios (see [`Repeated`]).
    pub repeats: usize,
}

impl Sizes {
    /// A full run: a few minutes on two cores.
    pub fn full() -> Self {
        Self {
            events: 50_000,
            events_fanout_10: 10_000,
            concurrency: 64,
            rates: vec![200, 1_000],
            rate_seconds: 10,
            drain_events: 100_000,
            restarts: 5,
            plugin_calls: 100_000,
            repeats: 3,
        }
    }

    /// `--quick`: under a minute.
    pub fn quick() -> Self {
        Self {
            events: 2_000,
            events_fanout_10: 300,
            concurrency: 64,
            rates: vec![1_000],
            rate_seconds: 3,
            drain_events: 10_000,
            restarts: 3,
            plugin_calls: 2_000,
            repeats: 1,
        }
    }
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The sizes it ran with.
    pub sizes: Sizes,
    /// Cores the machine offers.
    pub cores: usize,
    /// Each measured run, baselines included.
    pub runs: Vec<Figures>,
    /// The ratios of each run measured against a baseline, over its repetitions.
    pub repeated: Vec<Repeated>,
    /// Per plugin call costs.
    pub plugin_calls: Vec<CallCost>,
}

/// Runs the scenario groups `only` (all when empty) at `sizes`, with hosts started from
/// `host_exe` (an executable that runs [`host::serve`] when given `--host-config <file>`).
pub async fn run(sizes: Sizes, only: &[String], host_exe: &Path) -> anyhow::Result<Report> {
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    // One precompiled-plugin cache for every host of the run, as a real restart has.
    let cache = tempfile::tempdir()?;
    let launcher = host::Launcher {
        exe: host_exe.to_owned(),
        cache_dir: cache.path().to_owned(),
    };
    let c = sizes.concurrency;
    let mut runs = Vec::new();
    let mut plugin_calls = Vec::new();

    // Repetitions take the groups in turn, so that each group meets the machine in
    // several of its states.
    for _ in 0..sizes.repeats.max(1) {
        if wanted("fanout-1") || wanted("transform") {
            let before = scenarios::baseline(1, sizes.events, c).await?;
            let relay = scenarios::relay(&launcher, 1, sizes.events, c).await?;
            let mut hosts = Vec::new();
            let transforms = [("fanout-1", None), ("transform", Some("cloudevents"))];
            for (group, transform) in transforms {
                if wanted(group) {
                    hosts.push(
                        scenarios::closed_loop(&launcher, 1, transform, sizes.events, c).await?,
                    );
                }
            }
            let after = scenarios::baseline(1, sizes.events, c).await?;
            bracket(&mut runs, before, relay, hosts, after);
        }
        if wanted("fanout-10") {
            let webhooks = sizes.events_fanout_10 * 10;
            let before = scenarios::baseline(10, webhooks, c).await?;
            let relay = scenarios::relay(&launcher, 10, sizes.events_fanout_10, c).await?;
            let host =
                scenarios::closed_loop(&launcher, 10, None, sizes.events_fanout_10, c).await?;
            let after = scenarios::baseline(10, webhooks, c).await?;
            bracket(&mut runs, before, relay, vec![host], after);
        }
    }
    if wanted("rate") {
        for &rate in &sizes.rates {
            runs.push(scenarios::fixed_rate(&launcher, rate, sizes.rate_seconds).await?);
        }
    }
    if wanted("drain") {
        runs.push(scenarios::drain(&launcher, sizes.drain_events, c).await?);
    }
    if wanted("restart") {
        runs.push(scenarios::restart(&launcher, sizes.restarts).await?);
    }
    if wanted("plugin-calls") {
        plugin_calls = micro::plugin_calls(&launcher.cache_dir, sizes.plugin_calls).await?;
    }
    Ok(Report {
        sizes,
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        repeated: repeated(&runs),
        runs,
        plugin_calls,
    })
}

/// A run measured against a baseline, over its repetitions: one shared machine gives
/// the same build ratios that differ by a tenth or more from one minute to the next, so
/// a target is judged by their median.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Repeated {
    /// The run's name, e.g. `switchyard/10-receivers/json`.
    pub name: String,
    /// How many times it ran.
    pub runs: usize,
    /// Its delivered/s over the baseline's.
    pub ratio: Spread,
    /// Its delivered/s over the relay's, for Switchyard's runs.
    pub ratio_to_relay: Option<Spread>,
}

/// The median, least and greatest of a set of figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// The middle value, or the mean of the middle two.
    pub median: f64,
    /// The least.
    pub min: f64,
    /// The greatest.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; `None` when there are none. The median of an even count
    /// is the mean of the middle two.
    pub fn of(mut values: Vec<f64>) -> Option<Self> {
        values.sort_by(f64::total_cmp);
        let (&min, &max) = (values.first()?, values.last()?);
        let mid = values.len() / 2;
        let median = if values.len() % 2 == 1 {
            values[mid]
        } else {
            (values[mid - 1] + values[mid]) / 2.0
        };
        Some(Self { median, min, max })
    }
}

/// The runs with a ratio to a baseline, by name in the order they first ran.
pub fn repeated(runs: &[Figures]) -> Vec<Repeated> {
    let mut names: Vec<&str> = Vec::new();
    for run in runs.iter().filter(|r| r.ratio_to_baseline.is_some()) {
        if !names.contains(&run.name.as_str()) {
            names.push(&run.name);
        }
    }
    names
        .into_iter()
        .filter_map(|name| {
            let same: Vec<&Figures> = runs.iter().filter(|r| r.name == name).collect();
            let spread = |ratio: fn(&Figures) -> Option<f64>| {
                Spread::of(same.iter().filter_map(|r| ratio(r)).collect())
            };
            Some(Repeated {
                name: name.to_owned(),
                runs: same.len(),
                ratio: spread(|r| r.ratio_to_baseline)?,
                ratio_to_relay: spread(|r| r.ratio_to_relay),
            })
        })
        .collect()
}

fn opt(value: Option<f64>, precision: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.precision$}"))
}

/// Adds the relay's run and host runs measured between two baseline runs, each one's
/// ratio taken against the mean of the two. A machine that speeds up or slows down
/// meanwhile (a shared one does, over seconds) then moves both sides of the ratio alike.
/// Each host run is also compared with the relay's.
fn bracket(
    runs: &mut Vec<Figures>,
    before: Figures,
    mut relay: Figures,
    mut hosts: Vec<Figures>,
    mut after: Figures,
) {
    let base_rate = (before.delivered_per_s + after.delivered_per_s) / 2.0;
    relay.ratio_to_baseline = Some(relay.delivered_per_s / base_rate);
    for host in &mut hosts {
        host.ratio_to_baseline = Some(host.delivered_per_s / base_rate);
        host.ratio_to_relay = Some(host.delivered_per_s / relay.delivered_per_s);
    }
    after.name.push_str("/after");
    runs.push(before);
    runs.push(relay);
    runs.extend(hosts);
    runs.push(after);
}

/// The report as a plain-text table.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<38} {:>8} {:>9} {:>5} {:>10} {:>11} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "run",
        "events",
        "verified",
        "bad",
        "publish/s",
        "delivered/s",
        "ratio",
        "÷ relay",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "RSS MiB"
    );
    for r in &report.runs {
        let _ = writeln!(
            out,
            "{:<38} {:>8} {:>9} {:>5} {:>10} {:>11.0} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}",
            r.name,
            r.events,
            r.verified,
            r.bad_signatures,
            opt(r.publish_per_s, 0),
            r.delivered_per_s,
            opt(r.ratio_to_baseline, 2),
            opt(r.ratio_to_relay, 2),
            opt(r.p50_ms, 2),
            opt(r.p99_ms, 2),
            opt(r.p999_ms, 2),
            opt(r.peak_rss_mb, 0),
        );
        if !r.extra.is_empty() {
            let _ = writeln!(out, "    {}", serde_json::Value::Object(r.extra.clone()));
        }
    }
    if report.repeated.iter().any(|r| r.runs > 1) {
        let _ = writeln!(
            out,
            "\n{:<38} {:>5} {:>24} {:>24}",
            "repeated run", "runs", "ratio: median (min–max)", "÷ relay: median (min–max)"
        );
        let spread = |s: Spread| format!("{:.2} ({:.2}–{:.2})", s.median, s.min, s.max);
        for r in &report.repeated {
            let _ = writeln!(
                out,
                "{:<38} {:>5} {:>24} {:>24}",
                r.name,
                r.runs,
                spread(r.ratio),
                r.ratio_to_relay.map_or_else(|| "-".to_owned(), spread)
            );
        }
    }
    if !report.plugin_calls.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<28} {:>8} {:>12} {:>12} {:>8}",
            "plugin call", "calls", "plugin µs", "native µs", "ratio"
        );
        for c in &report.plugin_calls {
            let _ = writeln!(
                out,
                "{:<28} {:>8} {:>12.2} {:>12.3} {:>8.0}",
                c.call,
                c.calls,
                c.plugin_us,
                c.native_us,
                c.plugin_us / c.native_us.max(1e-9)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, ratio: Option<f64>, to_relay: Option<f64>) -> Figures {
        Figures {
            name: name.to_owned(),
            ratio_to_baseline: ratio,
            ratio_to_relay: to_relay,
            ..Figures::default()
        }
    }

    #[test]
    fn a_spread_has_the_middle_value_or_the_mean_of_the_middle_two() {
        let odd = Spread::of(vec![0.7, 0.4, 0.5]).expect("values");
        assert_eq!(
            odd,
            Spread {
                median: 0.5,
                min: 0.4,
                max: 0.7
            }
        );
        let even = Spread::of(vec![0.6, 0.2, 0.4, 0.9]).expect("values");
        assert!((even.median - 0.5).abs() < 1e-12, "{even:?}");
        assert_eq!((even.min, even.max), (0.2, 0.9));
        assert_eq!(Spread::of(vec![0.3]).map(|s| s.median), Some(0.3));
        assert_eq!(Spread::of(Vec::new()), None);
    }

    #[test]
    fn repetitions_are_summed_up_by_name_and_baselines_are_left_out() {
        let runs = [
            run("baseline/10-receivers", None, None),
            run("relay/10-receivers", Some(0.9), None),
            run("switchyard/10-receivers/json", Some(0.5), Some(0.6)),
            run("baseline/10-receivers/after", None, None),
            run("baseline/10-receivers", None, None),
            run("relay/10-receivers", Some(0.8), None),
            run("switchyard/10-receivers/json", Some(0.7), Some(0.8)),
            run("baseline/10-receivers/after", None, None),
            run("switchyard/10-receivers/json", Some(0.4), Some(0.5)),
        ];
        let summed = repeated(&runs);
        let names: Vec<&str> = summed.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["relay/10-receivers", "switchyard/10-receivers/json"]
        );
        let (relay, host) = (&summed[0], &summed[1]);
        assert_eq!(relay.runs, 2);
        assert!((relay.ratio.median - 0.85).abs() < 1e-12, "{relay:?}");
        assert_eq!(relay.ratio_to_relay, None);
        assert_eq!(host.runs, 3);
        assert_eq!(host.ratio.median, 0.5);
        assert_eq!(
            host.ratio_to_relay.map(|s| (s.median, s.min, s.max)),
            Some((0.6, 0.5, 0.8))
        );
    }
}

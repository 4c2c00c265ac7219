//! Counters for `/metrics`, rendered in the Prometheus text format.
//!
//! A handful of atomics is all the host needs; they are bumped on the hot path and read
//! only when scraped.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::domain::DeliveryStatus;

/// Upper bounds (seconds) of the attempt latency histogram.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

const OUTCOMES: [DeliveryStatus; 5] = [
    DeliveryStatus::Delivered,
    DeliveryStatus::Retrying,
    DeliveryStatus::Failed,
    DeliveryStatus::Unauthorized,
    DeliveryStatus::Gone,
];

/// The host's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    events_published: AtomicU64,
    deliveries_created: AtomicU64,
    outcomes: [AtomicU64; 5],
    attempts: AtomicU64,
    attempt_buckets: [AtomicU64; 10],
    attempt_micros: AtomicU64,
    plugin_failures: AtomicU64,
    plugin_calls: AtomicU64,
    plugin_call_micros: AtomicU64,
}

impl Metrics {
    /// An event was published (acknowledged).
    pub fn event_published(&self) {
        self.events_published.fetch_add(1, Ordering::Relaxed);
    }

    /// Fan-out created `n` deliveries.
    pub fn deliveries_created(&self, n: usize) {
        self.deliveries_created
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A plugin call failed (trap, timeout, limit, bad output or refusal).
    pub fn plugin_failed(&self) {
        self.plugin_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs a plugin call, counting it and its time.
    ///
    /// The call is boxed here, once, as it is made: a plugin call's future takes a
    /// kilobyte or more, which every future awaiting it would otherwise hold (an async
    /// wrapper like this one twice: its argument and what it awaits) and copy each time
    /// one of them is made or moved.
    pub fn time_plugin<T>(&self, call: impl Future<Output = T>) -> impl Future<Output = T> {
        let call = Box::pin(call);
        async move {
            let started = std::time::Instant::now();
            let out = call.await;
            self.plugin_calls.fetch_add(1, Ordering::Relaxed);
            self.plugin_call_micros
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            out
        }
    }

    /// An attempt ended with `status` after `seconds` (`None` when nothing was sent).
    pub fn attempt(&self, status: DeliveryStatus, seconds: Option<f64>) {
        if let Some(i) = OUTCOMES.iter().position(|s| *s == status) {
            self.outcomes[i].fetch_add(1, Ordering::Relaxed);
        }
        let Some(seconds) = seconds else { return };
        self.attempts.fetch_add(1, Ordering::Relaxed);
        self.attempt_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        for (bucket, bound) in self.attempt_buckets.iter().zip(BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The Prometheus text exposition, with gauges read at scrape time.
    pub fn render(&self, queued: usize, plugin_stats: &[(&str, u64)]) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            "switchyard_events_published_total",
            "Events acknowledged by the API.",
            get(&self.events_published),
        );
        counter(
            "switchyard_deliveries_created_total",
            "Deliveries created by fan-out.",
            get(&self.deliveries_created),
        );
        counter(
            "switchyard_plugin_failures_total",
            "Plugin calls that failed.",
            get(&self.plugin_failures),
        );
        let _ = writeln!(
            out,
            "# HELP switchyard_plugin_call_seconds Time spent in plugin calls.\n# TYPE switchyard_plugin_call_seconds summary\nswitchyard_plugin_call_seconds_sum {}\nswitchyard_plugin_call_seconds_count {}",
            get(&self.plugin_call_micros) as f64 / 1e6,
            get(&self.plugin_calls)
        );
        let _ = writeln!(
            out,
            "# HELP switchyard_delivery_outcomes_total Attempts by the status they left the delivery in.\n# TYPE switchyard_delivery_outcomes_total counter"
        );
        for (status, count) in OUTCOMES.iter().zip(&self.outcomes) {
            let label = serde_json::to_value(status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "switchyard_delivery_outcomes_total{{outcome=\"{label}\"}} {}",
                get(count)
            );
        }
        let _ = writeln!(
            out,
            "# HELP switchyard_attempt_duration_seconds Time from sending a webhook to its answer.\n# TYPE switchyard_attempt_duration_seconds histogram"
        );
        for (bucket, bound) in self.attempt_buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "switchyard_attempt_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                get(bucket)
            );
        }
        let attempts = get(&self.attempts);
        let _ = writeln!(
            out,
            "switchyard_attempt_duration_seconds_bucket{{le=\"+Inf\"}} {attempts}\nswitchyard_attempt_duration_seconds_sum {}\nswitchyard_attempt_duration_seconds_count {attempts}",
            get(&self.attempt_micros) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "# HELP switchyard_queue_depth Deliveries waiting for an attempt.\n# TYPE switchyard_queue_depth gauge\nswitchyard_queue_depth {queued}"
        );
        for (name, value) in plugin_stats {
            let _ = writeln!(
                out,
                "# HELP switchyard_plugin_{name} Plugin runtime: {name}.\n# TYPE switchyard_plugin_{name} counter\nswitchyard_plugin_{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let m = Metrics::default();
        m.event_published();
        m.attempt(DeliveryStatus::Delivered, Some(0.02));
        m.attempt(DeliveryStatus::Retrying, Some(2.0));
        m.attempt(DeliveryStatus::Unauthorized, None);
        let text = m.render(7, &[("calls", 3)]);
        assert!(
            text.contains("switchyard_events_published_total 1\n"),
            "{text}"
        );
        assert!(text.contains("switchyard_delivery_outcomes_total{outcome=\"delivered\"} 1\n"));
        assert!(text.contains("switchyard_delivery_outcomes_total{outcome=\"unauthorized\"} 1\n"));
        assert!(text.contains("switchyard_attempt_duration_seconds_bucket{le=\"0.01\"} 0\n"));
        assert!(text.contains("switchyard_attempt_duration_seconds_bucket{le=\"0.025\"} 1\n"));
        assert!(text.contains("switchyard_attempt_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("switchyard_attempt_duration_seconds_count 2\n"));
        assert!(text.contains("switchyard_queue_depth 7\n"));
        assert!(text.contains("switchyard_plugin_calls 3\n"));
        assert!(text.contains("switchyard_plugin_call_seconds_count 0\n"));
    }

    #[tokio::test]
    async fn a_plugin_call_is_counted_with_its_time_once_it_ends() {
        let m = Metrics::default();
        let call = m.time_plugin(async {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            7
        });
        assert!(
            m.render(0, &[])
                .contains("switchyard_plugin_call_seconds_count 0\n")
        );
        assert_eq!(call.await, 7);
        let text = m.render(0, &[]);
        assert!(
            text.contains("switchyard_plugin_call_seconds_count 1\n"),
            "{text}"
        );
        let seconds: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("switchyard_plugin_call_seconds_sum "))
            .and_then(|v| v.parse().ok())
            .expect("the sum is rendered");
        assert!(seconds >= 0.005, "{text}");
    }
}

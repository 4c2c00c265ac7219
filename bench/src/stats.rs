//! Percentiles and the process's memory high-water mark.

/// The `q` quantile (0..=1) of `sorted`, in the unit it holds; `None` when empty.
pub fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted.get(rank.min(sorted.len() - 1)).copied()
}

/// p50, p99 and p99.9 of `latencies_us`, in milliseconds.
pub fn latency_ms(mut latencies_us: Vec<u64>) -> [Option<f64>; 3] {
    latencies_us.sort_unstable();
    [0.5, 0.99, 0.999].map(|q| quantile(&latencies_us, q).map(|us| us as f64 / 1000.0))
}

/// A `kB` field of a `/proc/<pid>/status` text, e.g. `VmHWM:`.
pub fn kib_field(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

fn status_kib(field: &str) -> Option<u64> {
    kib_field(&std::fs::read_to_string("/proc/self/status").ok()?, field)
}

/// The peak resident set size of this process since the last [`reset_peak_rss`], in MiB.
pub fn peak_rss_mb() -> Option<f64> {
    status_kib("VmHWM:").map(|kib| kib as f64 / 1024.0)
}

/// The current resident set size, in MiB.
pub fn rss_mb() -> Option<f64> {
    status_kib("VmRSS:").map(|kib| kib as f64 / 1024.0)
}

/// Resets the peak to the current RSS (Linux: `5` into `clear_refs`), so each scenario
/// reports its own peak. Without it the peak is that of the whole run so far.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_by_rank() {
        let data: Vec<u64> = (1..=1000).collect();
        assert_eq!(quantile(&data, 0.5), Some(501));
        assert_eq!(quantile(&data, 0.99), Some(990));
        assert_eq!(quantile(&data, 0.999), Some(999));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[7], 0.999), Some(7));
    }
}

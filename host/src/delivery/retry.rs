//! When to try again: a pure function of the schedule and the attempts so far.

use std::time::Duration;

use crate::domain::Timestamp;

/// When the next attempt is due after `attempts_made` attempts, the last at `last`;
/// `None` once the schedule is used up. With the default schedule of 1h, 2h, 6h and 24h
/// a delivery gets five attempts in all.
pub fn next_attempt(
    schedule: &[Duration],
    attempts_made: usize,
    last: Timestamp,
) -> Option<Timestamp> {
    let wait = schedule.get(attempts_made.checked_sub(1)?)?;
    Some(last.after(*wait))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3_600_000;

    fn default_schedule() -> Vec<Duration> {
        [1, 2, 6, 24].map(|h| Duration::from_millis(h * H)).to_vec()
    }

    #[test]
    fn follows_the_schedule_from_the_last_attempt() {
        let s = default_schedule();
        let t = Timestamp(1_000);
        assert_eq!(next_attempt(&s, 1, t), Some(Timestamp(1_000 + H)));
        assert_eq!(next_attempt(&s, 2, t), Some(Timestamp(1_000 + 2 * H)));
        assert_eq!(next_attempt(&s, 3, t), Some(Timestamp(1_000 + 6 * H)));
        assert_eq!(next_attempt(&s, 4, t), Some(Timestamp(1_000 + 24 * H)));
    }

    #[test]
    fn stops_after_the_last_retry() {
        let s = default_schedule();
        assert_eq!(next_attempt(&s, 5, Timestamp(0)), None);
        assert_eq!(next_attempt(&s, 50, Timestamp(0)), None);
        assert_eq!(next_attempt(&[], 1, Timestamp(0)), None);
    }

    #[test]
    fn no_attempt_yet_means_no_retry_time() {
        assert_eq!(next_attempt(&default_schedule(), 0, Timestamp(0)), None);
    }
}

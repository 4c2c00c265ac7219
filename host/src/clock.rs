//! The `Clock` seam: every "now" in the host comes from here.
//!
//! Production uses [`SystemClock`]; tests use [`ManualClock`] to drive the retry
//! schedule, TOTP windows and token expiry in milliseconds of real time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// A boxed future, so that `Clock` stays object-safe.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A source of time, in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// The current time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Completes once `now_ms() >= deadline_ms`.
    fn sleep_until(&self, deadline_ms: u64) -> Sleep;
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn sleep_until(&self, deadline_ms: u64) -> Sleep {
        let wait = deadline_ms.saturating_sub(self.now_ms());
        Box::pin(tokio::time::sleep(Duration::from_millis(wait)))
    }
}

/// A clock that moves only when told to; sleepers wake as soon as it passes their deadline.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicU64,
    ticks: watch::Sender<u64>,
}

impl ManualClock {
    /// A clock standing at `start_ms`.
    pub fn new(start_ms: u64) -> Arc<Self> {
        Arc::new(Self {
            now: AtomicU64::new(start_ms),
            ticks: watch::Sender::new(start_ms),
        })
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let now =
            self.now.fetch_add(by.as_millis() as u64, Ordering::SeqCst) + by.as_millis() as u64;
        self.ticks.send_replace(now);
    }

    /// Sets the clock to `ms` (it may go backwards, as real clocks sometimes do).
    pub fn set(&self, ms: u64) {
        self.now.store(ms, Ordering::SeqCst);
        self.ticks.send_replace(ms);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    fn sleep_until(&self, deadline_ms: u64) -> Sleep {
        let mut ticks = self.ticks.subscribe();
        Box::pin(async move {
            // An error means the clock is gone; nothing will ever wake us, so stay pending.
            if ticks.wait_for(|now| *now >= deadline_ms).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleepers_wake_when_the_clock_passes_their_deadline() {
        let clock = ManualClock::new(1_000);
        let sleeper = tokio::spawn(clock.sleep_until(5_000));
        clock.advance(Duration::from_millis(3_000));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_millis(1_000));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("sleeper woke")
            .expect("sleeper ran");
        assert_eq!(clock.now_ms(), 5_000);
    }
}

//! The running parts, shared by the API, the router and the delivery worker.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::Timestamp;
use crate::plugins::Plugins;
use crate::store::{GroupCommit, Store};

/// Everything a request handler or a background task needs.
#[derive(Clone)]
pub struct App {
    /// The configuration it runs with.
    pub config: Arc<Config>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Shared flushes to disk.
    pub commit: GroupCommit,
    /// The plugin runtime.
    pub plugins: Plugins,
    /// Every "now".
    pub clock: SharedClock,
    /// Wakes the router when an event was published.
    pub fanout_ready: Arc<Notify>,
    /// Wakes the delivery worker when a delivery was queued.
    pub deliveries_ready: Arc<Notify>,
    /// Which background tasks run, for `/readyz`.
    pub running: Arc<Running>,
    /// Slots for delivery attempts, shared by the router and the worker.
    pub dispatch: Arc<crate::delivery::Dispatch>,
    /// Counters for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Bearer tokens resolved before.
    pub bearers: Arc<crate::auth::Bearers>,
}

/// Flags the background tasks raise while they run.
#[derive(Debug, Default)]
pub struct Running {
    /// The router (fan-out) runs.
    pub router: AtomicBool,
    /// The delivery worker runs.
    pub worker: AtomicBool,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

impl App {
    /// The current time.
    pub fn now(&self) -> Timestamp {
        Timestamp(self.clock.now_ms())
    }

    /// Runs a few point reads of the store on the calling task: the bearer check of every
    /// API request and the router's and worker's look-ups. sled serves them from its page
    /// cache, so a hop to the blocking pool would cost more than the reads. It cost two
    /// thread switches per request, and with 64 requests at once it grew the pool to 64
    /// threads whose allocator arenas doubled the host's memory. Writes (batched
    /// transactions, which can wait on sled's log) and scans go to [`Self::blocking`].
    pub fn quick<T>(&self, work: impl FnOnce(&dyn Store) -> T) -> T {
        work(self.store.as_ref())
    }

    /// Runs blocking store work off the async threads.
    pub async fn blocking<T, F>(&self, work: F) -> T
    where
        F: FnOnce(&dyn Store) -> T + Send + 'static,
        T: Send + 'static,
    {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || work(store.as_ref())).await {
            Ok(value) => value,
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }
}

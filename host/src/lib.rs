//! Switchyard: a self-hosted, WebAssembly-extensible event router.
//!
//! [`run`] wires the parts together on a listener it is given: the store, the plugin
//! runtime, the router, the delivery worker and the HTTP API. See `docs/ARCHITECTURE.md`.

pub mod api;
pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod jobs;
pub mod metrics;
pub mod plugins;
pub mod router;
pub mod service;
pub mod store;
pub mod ui;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::app::{App, Running};
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::domain::Timestamp;
use crate::plugins::Plugins;
use crate::service::tenants::{self, Initialized};
use crate::store::{GroupCommit, SledStore, Store};

/// The name of the tenant `init` creates unless told otherwise.
pub const DEFAULT_TENANT: &str = "default";

/// Logs to stderr, filtered by `RUST_LOG` (default: `info`, and only warnings from the
/// WebAssembly compiler), in colour only on a terminal. What `switchyard serve` runs
/// with, and the benchmark's host.
pub fn init_logging() {
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,wasmtime=warn,cranelift=warn".into()),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// The multi-threaded runtime `switchyard serve` runs on (and the benchmark's host):
/// tokio's defaults, one worker per core, except for the LIFO slot. With it, a task woken
/// by another one runs next on the same worker and is out of reach of the others, which
/// stay parked; the router, the attempts, their connections and the recorder wake each
/// other in chains, so under load one core often waited while the other worked through
/// a chain. Without it, a woken task goes on the run queue, where an idle worker takes
/// it (docs/performance-history.md, Round 14). The switch is an unstable tokio setting:
/// it is there when the build passes `--cfg tokio_unstable`, as `.cargo/config.toml`
/// does.
pub fn runtime_builder() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    builder
}

/// Where the store lives inside the data dir.
pub fn store_dir(config: &Config) -> PathBuf {
    config.data_dir.join("store")
}

/// Where the publish journal lives (see [`store::Journal`]).
pub fn journal_path(config: &Config) -> PathBuf {
    config.data_dir.join("publish.journal")
}

/// Creates tenant `tenant` in an uninitialized data dir (the `init` command).
pub fn init(config: &Config, tenant: &str) -> anyhow::Result<Initialized> {
    let store = open_store(config)?;
    if !store.tenants()?.is_empty() {
        anyhow::bail!("{} is already initialized", config.data_dir.display());
    }
    let now = Timestamp(SystemClock.now_ms());
    Ok(tenants::create(&store, config, tenant, now)?)
}

/// How long opening the store waits for the directory lock of a store closed just before
/// in this process (sled's flusher thread lets go of it shortly after the last handle).
const STORE_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens the store in the data dir, waiting a little for a lock still held by a store
/// closed just before (a restart in the same process).
pub fn open_store(config: &Config) -> anyhow::Result<SledStore> {
    let dir = store_dir(config);
    let started = std::time::Instant::now();
    loop {
        match SledStore::open(&dir) {
            Ok(store) => return Ok(store),
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && started.elapsed() < STORE_LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot open the store in {} (is another switchyard using it?)",
                        dir.display()
                    )
                });
            }
        }
    }
}

/// Runs `init` when the data dir holds no tenant yet; `None` when it does.
pub fn init_if_empty(config: &Config) -> anyhow::Result<Option<Initialized>> {
    let store = open_store(config)?;
    if !store.tenants()?.is_empty() {
        return Ok(None);
    }
    let now = Timestamp(SystemClock.now_ms());
    Ok(Some(tenants::create(&store, config, DEFAULT_TENANT, now)?))
}

use crate::clock::Clock as _;

/// A configured server, ready to run on a listener.
pub struct Server {
    config: Config,
    clock: SharedClock,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

impl Server {
    /// A server with the real clock.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses `clock` for every "now" (tests pass a manual clock).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Serves on `listener` until `shutdown` completes, then stops accepting, lets
    /// deliveries in flight finish, flushes the store and empties the publish journal.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let mut config = self.config;
        // Where it listens, so that URLs derived from it name the port actually bound.
        config.listen = listener.local_addr()?;
        let config = Arc::new(config);
        let (sled, journal) = tokio::task::spawn_blocking({
            let config = config.clone();
            move || {
                let sled = open_store(&config)?;
                let (journal, replayed) = store::recover(&sled, &journal_path(&config))
                    .context("cannot replay the publish journal")?;
                if replayed > 0 {
                    tracing::info!(events = replayed, "replayed the publish journal");
                }
                anyhow::Ok((sled, journal))
            }
        })
        .await
        .context("opening the store panicked")??;
        let store: Arc<dyn Store> = Arc::new(sled);
        let client = delivery::HttpClient::new(&config.delivery);
        // Token endpoints are held to the same address rules as receivers.
        let mut plugins_config = config.plugins.clone();
        plugins_config.allow_private_token_urls |= config.delivery.allow_private_targets;
        let clock = self.clock.clone();
        let data_dir = config.data_dir.clone();
        let plugins =
            tokio::task::spawn_blocking(move || Plugins::new(&plugins_config, clock, &data_dir))
                .await
                .context("plugin loading panicked")?
                .context("cannot start the plugin runtime")?;
        let (dispatch, handoffs) = delivery::Dispatch::new(&config.delivery);
        let app = App {
            dispatch: Arc::new(dispatch),
            commit: GroupCommit::start(store.clone(), journal),
            store,
            plugins,
            clock: self.clock,
            fanout_ready: Arc::new(Notify::new()),
            deliveries_ready: Arc::new(Notify::new()),
            running: Arc::new(Running::default()),
            metrics: Arc::new(metrics::Metrics::default()),
            bearers: Arc::default(),
            config,
        };

        let (stop_tx, stop_rx) = watch::channel(false);
        let router_task = tokio::spawn({
            let (app, stop) = (app.clone(), stop_rx.clone());
            async move {
                app.running.router.store(true, Ordering::SeqCst);
                router::run(app.clone(), stop).await;
                app.running.router.store(false, Ordering::SeqCst);
            }
        });
        let worker_task = tokio::spawn({
            let (app, stop) = (app.clone(), stop_rx.clone());
            async move {
                app.running.worker.store(true, Ordering::SeqCst);
                delivery::run(app.clone(), client, handoffs, stop).await;
                app.running.worker.store(false, Ordering::SeqCst);
            }
        });

        let jobs_task = tokio::spawn(jobs::run(app.clone(), stop_rx.clone()));

        tracing::info!(addr = %listener.local_addr()?, "serving");
        let served = axum::serve(listener, api::router(app.clone()))
            .with_graceful_shutdown(shutdown)
            .await;
        let _ = stop_tx.send(true);
        let _ = router_task.await;
        let _ = worker_task.await;
        let _ = jobs_task.await;
        // Flushing through the committer also empties the journal, so the next start has
        // nothing to replay.
        app.commit.flush().await.context("cannot flush the store")?;
        tracing::info!("stopped");
        served.context("the HTTP server failed")
    }
}

/// Runs the router on `listener` with the real clock until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Server::new(config).run(listener, shutdown).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    #[test]
    fn a_task_woken_by_a_busy_one_runs_on_another_worker_meanwhile() {
        let runtime = super::runtime_builder()
            .worker_threads(2)
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let ran = Arc::new(AtomicBool::new(false));
            let (wake, woken) = tokio::sync::oneshot::channel::<()>();
            let waiting = tokio::spawn({
                let ran = ran.clone();
                async move {
                    let _ = woken.await;
                    ran.store(true, Ordering::SeqCst);
                }
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
            // Wakes the waiting task from a worker, then keeps that worker busy.
            let busy = tokio::spawn({
                let ran = ran.clone();
                async move {
                    wake.send(()).expect("the task waits");
                    let until = Instant::now() + Duration::from_secs(5);
                    while !ran.load(Ordering::SeqCst) && Instant::now() < until {
                        std::hint::spin_loop();
                    }
                    ran.load(Ordering::SeqCst)
                }
            });
            assert!(
                busy.await.expect("busy task"),
                "the woken task waited for the busy worker (was the build run without \
                 --cfg tokio_unstable, which .cargo/config.toml sets?)"
            );
            waiting.await.expect("woken task");
        });
    }
}

//! One plugin instance's sandbox: its `Store` data, WASI context and limits.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::oauth::{Grant, Token, TokenCache};
use super::runtime::HostWait;
use crate::clock::SharedClock;

/// How much a plugin may write to stderr per instance; the rest is dropped.
const STDERR_CAPACITY: usize = 64 * 1024;
/// Longest stderr or log line passed on to the host's log.
const MAX_LOG_LINE: usize = 4 * 1024;

/// What every instance shares.
pub(crate) struct HostServices {
    pub clock: SharedClock,
    pub tokens: TokenCache,
}

/// The call an instance is serving, set before every call.
#[derive(Default)]
pub(crate) struct CallContext {
    /// The delivery an auth protocol's call serves, which its log lines are tagged with.
    pub delivery: Option<String>,
    pub fresh_tokens: bool,
    /// Time spent in host calls on the plugin's behalf, which the call's deadline does
    /// not count.
    pub wait: Arc<HostWait>,
}

/// The `T` of every plugin `Store<T>`.
pub(crate) struct StoreData {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: StoreLimits,
    stderr: MemoryOutputPipe,
    stderr_logged: usize,
    host: Arc<HostServices>,
    plugin: Arc<str>,
    tenant: Arc<str>,
    pub(crate) call: CallContext,
}

impl StoreData {
    /// A sandbox with nothing in it: no files, sockets, environment or arguments; clocks
    /// read the host's clock; stderr goes to the host's log.
    pub(crate) fn new(
        host: Arc<HostServices>,
        plugin: Arc<str>,
        tenant: Arc<str>,
        memory_limit: usize,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .wall_clock(SeamWallClock(host.clock.clone()))
            .monotonic_clock(SeamMonotonicClock::new())
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory_limit)
            .table_elements(100_000)
            .instances(64)
            .tables(64)
            .memories(8)
            .trap_on_grow_failure(true)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limits,
            stderr,
            stderr_logged: 0,
            host,
            plugin,
            tenant,
            call: CallContext::default(),
        }
    }

    pub(crate) fn clock_now_ms(&self) -> u64 {
        self.host.clock.now_ms()
    }

    pub(crate) fn plugin_log(&self, level: tracing::Level, message: &str) {
        let message = truncate(message, MAX_LOG_LINE);
        let (plugin, tenant) = (&*self.plugin, &*self.tenant);
        let delivery = self.call.delivery.as_deref();
        match level {
            tracing::Level::TRACE => tracing::trace!(plugin, tenant, delivery, "{message}"),
            tracing::Level::DEBUG => tracing::debug!(plugin, tenant, delivery, "{message}"),
            tracing::Level::INFO => tracing::info!(plugin, tenant, delivery, "{message}"),
            tracing::Level::WARN => tracing::warn!(plugin, tenant, delivery, "{message}"),
            tracing::Level::ERROR => tracing::error!(plugin, tenant, delivery, "{message}"),
        }
    }

    /// Passes what the plugin wrote to stderr since the last call on to the log. Returns
    /// false once the capture buffer is half full: the instance should then be retired
    /// before a full buffer makes the plugin's `eprintln!` fail.
    pub(crate) fn flush_stderr(&mut self) -> bool {
        let contents = self.stderr.contents();
        let healthy = contents.len() < STDERR_CAPACITY / 2;
        if contents.len() <= self.stderr_logged {
            return healthy;
        }
        let new = String::from_utf8_lossy(&contents[self.stderr_logged..]).into_owned();
        self.stderr_logged = contents.len();
        for line in new.lines().filter(|l| !l.trim().is_empty()) {
            self.plugin_log(tracing::Level::WARN, &format!("stderr: {line}"));
        }
        healthy
    }

    pub(crate) async fn fetch_token(&mut self, grant: Grant) -> Result<Token, String> {
        let started = Instant::now();
        self.call.wait.active.store(true, Ordering::Release);
        let result = self
            .host
            .tokens
            .token(&self.tenant, grant, self.call.fresh_tokens)
            .await;
        let waited = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.call.wait.ns.fetch_add(waited, Ordering::Release);
        self.call.wait.active.store(false, Ordering::Release);
        result
    }
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// WASI's wall clock, read from the host's Clock seam: a plugin sees the same time as
/// `now-ms`, which is a manual clock in tests.
struct SeamWallClock(SharedClock);

impl HostWallClock for SeamWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.0.now_ms())
    }
}

/// WASI's monotonic clock: real elapsed time since the instance was created, which is
/// needed for nothing but harmless to have.
struct SeamMonotonicClock(Instant);

impl SeamMonotonicClock {
    fn new() -> Self {
        Self(Instant::now())
    }
}

impl HostMonotonicClock for SeamMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000
    }

    fn now(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log sink the test can read back.
    #[derive(Clone, Default)]
    struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("sink").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn plugin_log_lines_name_the_plugin_the_tenant_and_the_delivery() {
        let clock: SharedClock = Arc::new(crate::clock::SystemClock);
        let tokens = TokenCache::new(clock.clone(), Duration::from_secs(1), false).expect("tokens");
        let host = Arc::new(HostServices { clock, tokens });
        let mut data = StoreData::new(host, Arc::from("websub"), Arc::from("acme"), 1 << 20);
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            data.plugin_log(tracing::Level::INFO, "at fan-out");
            data.call.delivery = Some("dlv_1".into());
            data.plugin_log(tracing::Level::WARN, "signing");
        });
        let text = String::from_utf8(sink.0.lock().expect("sink").clone()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].contains("plugin=\"websub\" tenant=\"acme\""),
            "{text}"
        );
        assert!(!lines[0].contains("delivery"), "{text}");
        assert!(lines[1].contains("delivery=\"dlv_1\""), "{text}");
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}

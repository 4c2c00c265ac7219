//! The wasmtime engine, its epoch ticker, and compiling components with an on-disk cache
//! of precompiled artifacts.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::config::PluginsConfig;
use super::error::Error;

/// How often the epoch advances. A running plugin yields to the executor at every tick,
/// so this bounds how long one plugin can hold a worker thread.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

pub(crate) fn new_engine(config: &PluginsConfig) -> Result<Engine, Error> {
    let mut pooling = PoolingAllocationConfig::default();
    let instances = config.max_instances.max(1);
    pooling
        .total_component_instances(instances)
        // A Rust component has a handful of core instances and one or two memories.
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(4))
        .total_stacks(instances)
        .max_memory_size(config.memory_limit_bytes());
    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    Engine::new(&wasm).map_err(|e| Error::Engine(format!("{e:#}")))
}

/// Ticks the engine's epoch from a plain OS thread (a tokio task would starve while a
/// plugin spins on the worker it runs on). Stops when `stop` is set.
pub(crate) fn spawn_epoch_ticker(engine: &Engine, stop: Arc<AtomicBool>) -> Result<(), Error> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("plugin-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .map(|_| ())
        .map_err(Error::Io)
}

/// Hex SHA-256 of a component's bytes: its identity in the cache and on disk.
pub(crate) fn component_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A stable digest of everything that makes a precompiled artifact usable by `engine`
/// (wasmtime version, target, compiler settings, tunables).
fn engine_fingerprint(engine: &Engine) -> String {
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = Sha(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..12])
}

/// Compiles components, reusing precompiled artifacts from `dir` when it has them.
pub(crate) struct Compiler {
    engine: Engine,
    dir: PathBuf,
    fingerprint: String,
}

/// Whether a component came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Compiled,
    Cached,
}

impl Compiler {
    pub(crate) fn new(engine: Engine, dir: PathBuf) -> Result<Self, Error> {
        std::fs::create_dir_all(&dir).map_err(|e| io_context(e, &dir))?;
        let fingerprint = engine_fingerprint(&engine);
        Ok(Self {
            engine,
            dir,
            fingerprint,
        })
    }

    fn artifact_path(&self, hash: &str) -> PathBuf {
        self.dir.join(format!("{hash}-{}.cwasm", self.fingerprint))
    }

    /// Compiles `bytes` (whose hash is `hash`), or loads it precompiled. A cache that
    /// cannot be read or written only costs time: it is logged and compilation goes on.
    /// An invalid component is `Error::Invalid`.
    pub(crate) fn load(&self, bytes: &[u8], hash: &str) -> Result<(Component, Origin), Error> {
        let path = self.artifact_path(hash);
        if let Ok(envelope) = std::fs::read(&path) {
            match switchyard_precompiled::load(&self.engine, &envelope) {
                Ok(component) => return Ok((component, Origin::Cached)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring unusable precompiled plugin")
                }
            }
        }
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| Error::Invalid(format!("not a usable component: {e:#}")))?;
        match switchyard_precompiled::save(&component) {
            Ok(envelope) => {
                if let Err(e) = write_atomically(&path, &envelope) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot cache precompiled plugin");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot serialize compiled plugin"),
        }
        Ok((component, Origin::Compiled))
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so readers never see
/// a half-written file. For the precompiled cache: a file lost in a crash is compiled
/// again.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_through_temp(path, bytes, false)
}

/// [`write_atomically`], and on disk when it returns: for an upload that is answered.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_through_temp(path, bytes, true)
}

fn write_through_temp(path: &Path, bytes: &[u8], sync: bool) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_context(e, dir))?;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("plugin"),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::File::create(&tmp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            if sync { file.sync_all() } else { Ok(()) }
        })
        .map_err(|e| io_context(e, &tmp))?;
    std::fs::rename(&tmp, path).map_err(|e| io_context(e, path))?;
    if sync {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_context(e, dir))?;
    }
    Ok(())
}

pub(crate) fn io_context(error: std::io::Error, path: &Path) -> Error {
    Error::Io(std::io::Error::new(
        error.kind(),
        format!("{}: {error}", path.display()),
    ))
}

//! The plugin runtime: the only module that names wasmtime.
//!
//! Plugins are WebAssembly components of one of three worlds (`wit/`). Each call runs in
//! a fresh store with a memory cap and a CPU deadline (epoch interruption, ticked by a
//! plain OS thread), instantiated from a pre-linked `InstancePre` with the pooling
//! allocator; compiled code is cached on disk, so a restart does not recompile. The
//! registry maps names to loaded plugins: tenant plugins shadow global ones, built-ins
//! are embedded in the binary, and an upload swaps the entry atomically while calls in
//! flight finish on the version they started with.

mod bindings;
mod oauth;
mod sandbox;
mod types;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};

pub use types::*;

use bindings::filter::{AuthorizationFilter, AuthorizationFilterPre};
use bindings::transform::{PayloadTransform, PayloadTransformPre};
use bindings::{AuthProtocol, AuthProtocolPre};
use oauth::TokenCache;
use sandbox::CallState;

use crate::clock::SharedClock;

/// How often the epoch ticks; CPU deadlines are counted in ticks.
const TICK: Duration = Duration::from_millis(10);
/// The largest body or request a plugin may return.
const MAX_OUTPUT_BYTES: usize = 16 * 1024 * 1024;
/// The most headers an auth plugin may return.
const MAX_HEADERS: usize = 100;
/// The largest component accepted.
pub const MAX_COMPONENT_BYTES: usize = 32 * 1024 * 1024;

include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));

/// Limits and places of the plugin runtime.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// A directory of global plugins (`*.wasm`) loaded at start-up.
    pub dir: Option<PathBuf>,
    /// The longest one call may take, host capabilities (token requests) included.
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
    /// The most linear memory one call may use, in MiB.
    pub memory_limit_mb: usize,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            dir: None,
            call_timeout: Duration::from_secs(5),
            memory_limit_mb: 64,
        }
    }
}

/// What goes wrong with plugins.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No plugin of that name for this tenant.
    #[error("no plugin named {0:?}")]
    NotFound(String),
    /// The plugin is of another kind than needed.
    #[error("plugin {name:?} is a {actual} plugin, not a {expected} plugin")]
    WrongKind {
        /// The plugin.
        name: String,
        /// What was needed.
        expected: PluginKind,
        /// What it is.
        actual: PluginKind,
    },
    /// An uploaded component is not a valid plugin.
    #[error("not a valid plugin: {0}")]
    Invalid(String),
    /// Built-in plugins cannot be replaced or removed.
    #[error("{0:?} is a built-in plugin and cannot be replaced or removed")]
    BuiltIn(String),
    /// The call ran out of time.
    #[error("plugin {0:?} did not finish within its time limit")]
    Timeout(String),
    /// The call hit its memory cap.
    #[error("plugin {0:?} exceeded its memory limit")]
    ResourceLimit(String),
    /// The plugin trapped.
    #[error("plugin {plugin:?} crashed: {message}")]
    Trap {
        /// The plugin.
        plugin: String,
        /// The trap.
        message: String,
    },
    /// The plugin returned something unusable.
    #[error("plugin {plugin:?} returned an unusable result: {message}")]
    BadOutput {
        /// The plugin.
        plugin: String,
        /// What is wrong.
        message: String,
    },
    /// The plugin refused, with its reason.
    #[error("{0}")]
    Rejected(String),
    /// A receiver's settings do not fit the plugin.
    #[error("{0}")]
    InvalidSettings(String),
    /// Reading or writing plugin files failed.
    #[error("plugin storage: {0}")]
    Io(#[from] std::io::Error),
}

/// Which world a loaded plugin implements, ready to instantiate.
#[derive(Clone)]
enum Pre {
    Auth(AuthProtocolPre<CallState>),
    Transform(PayloadTransformPre<CallState>),
    Filter(AuthorizationFilterPre<CallState>),
}

/// A validated, compiled plugin.
struct Loaded {
    info: PluginInfo,
    pre: Pre,
    built_in: bool,
}

/// Whose a plugin is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Owner {
    Global,
    Tenant(String),
}

struct Inner {
    engine: Engine,
    linker: Linker<CallState>,
    registry: RwLock<HashMap<(Owner, String), Arc<Loaded>>>,
    config: PluginsConfig,
    clock: SharedClock,
    tokens: Arc<TokenCache>,
    store_dir: PathBuf,
}

/// The plugin runtime; cheap to clone.
#[derive(Clone)]
pub struct Plugins {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Plugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugins").finish_non_exhaustive()
    }
}

fn engine(data_dir: &Path, config: &PluginsConfig) -> Result<Engine, Error> {
    let invalid = |e: wasmtime::Error| Error::Invalid(format!("engine: {e:#}"));
    let mut c = wasmtime::Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_component_instances(1000)
        .total_core_instances(4000)
        .total_memories(2000)
        .total_tables(4000)
        .max_memory_size(config.memory_limit_mb.max(1) << 20);
    c.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    let mut cache = wasmtime::CacheConfig::new();
    cache.with_directory(data_dir.join("compiled"));
    c.cache(Some(wasmtime::Cache::new(cache).map_err(invalid)?));
    Engine::new(&c).map_err(invalid)
}

impl Plugins {
    /// Starts the runtime: the engine, the epoch ticker, the built-in plugins, and the
    /// plugins uploaded before (under `data_dir`) or found in `config.dir`.
    pub async fn new(
        config: &PluginsConfig,
        clock: SharedClock,
        data_dir: &Path,
        http: reqwest::Client,
    ) -> Result<Self, Error> {
        let engine = engine(data_dir, config)?;
        let mut linker = Linker::new(&engine);
        let link = |e: wasmtime::Error| Error::Invalid(format!("linker: {e:#}"));
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link)?;
        bindings::switchyard::plugin::types::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |s| s,
        )
        .map_err(link)?;
        bindings::switchyard::plugin::host::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |s| s,
        )
        .map_err(link)?;

        // A plain OS thread, not a task: a spinning guest must not be able to starve it.
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })?;

        let plugins = Self {
            inner: Arc::new(Inner {
                tokens: Arc::new(TokenCache::new(http, clock.clone())),
                engine,
                linker,
                registry: RwLock::new(HashMap::new()),
                config: config.clone(),
                clock,
                store_dir: data_dir.join("plugins"),
            }),
        };
        plugins.load_all().await?;
        Ok(plugins)
    }

    async fn load_all(&self) -> Result<(), Error> {
        for (name, bytes) in BUILTIN_PLUGINS {
            let loaded = self
                .compile(bytes.to_vec(), true)
                .await
                .map_err(|e| Error::Invalid(format!("built-in plugin {name}: {e}")))?;
            self.register(Owner::Global, loaded);
        }
        let mut dirs: Vec<(Owner, PathBuf)> = Vec::new();
        if let Some(dir) = &self.inner.config.dir {
            dirs.push((Owner::Global, dir.clone()));
        }
        dirs.push((Owner::Global, self.inner.store_dir.join("global")));
        if let Ok(tenants) = std::fs::read_dir(self.inner.store_dir.join("tenants")) {
            for entry in tenants.flatten() {
                let tenant = entry.file_name().to_string_lossy().into_owned();
                dirs.push((Owner::Tenant(tenant), entry.path()));
            }
        }
        for (owner, dir) in dirs {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for path in entries.flatten().map(|e| e.path()) {
                if path.extension().is_none_or(|e| e != "wasm") {
                    continue;
                }
                let loaded = match std::fs::read(&path) {
                    Ok(bytes) => self.compile(bytes, false).await,
                    Err(e) => Err(e.into()),
                };
                match loaded {
                    Ok(loaded) => self.register(owner.clone(), loaded),
                    Err(e) => {
                        tracing::error!(path = %path.display(), error = %e, "skipping plugin")
                    }
                }
            }
        }
        Ok(())
    }

    fn register(&self, owner: Owner, loaded: Loaded) {
        let name = loaded.info.name.clone();
        if let Ok(mut registry) = self.inner.registry.write() {
            registry.insert((owner, name), Arc::new(loaded));
        }
    }

    /// Validates and compiles a component: it must implement exactly one plugin world,
    /// link against the host's capabilities only, and describe itself.
    async fn compile(&self, bytes: Vec<u8>, built_in: bool) -> Result<Loaded, Error> {
        let invalid = |e: wasmtime::Error| Error::Invalid(format!("{e:#}"));
        let engine = self.inner.engine.clone();
        // Compiling takes milliseconds (or a cache read): off the async threads.
        let component = tokio::task::spawn_blocking(move || Component::new(&engine, bytes))
            .await
            .map_err(|e| Error::Invalid(format!("compilation failed: {e}")))?
            .map_err(invalid)?;
        let exports: Vec<String> = component
            .component_type()
            .exports(&self.inner.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let has = |name: &str| exports.iter().any(|e| e == name);
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(invalid)?;
        let pre = match (has("authenticate"), has("transform"), has("allow")) {
            (true, false, false) => Pre::Auth(AuthProtocolPre::new(pre).map_err(invalid)?),
            (false, true, false) => Pre::Transform(PayloadTransformPre::new(pre).map_err(invalid)?),
            (false, false, true) => Pre::Filter(AuthorizationFilterPre::new(pre).map_err(invalid)?),
            _ => {
                return Err(Error::Invalid(format!(
                    "a plugin exports describe and exactly one of authenticate, transform or allow; this one exports {exports:?}"
                )));
            }
        };
        let info = self.describe(&pre).await?;
        if !is_valid_name(&info.name) {
            return Err(Error::Invalid(format!(
                "plugin name {:?} must be 1 to 64 lowercase letters, digits or '-'",
                info.name
            )));
        }
        Ok(Loaded {
            info,
            pre,
            built_in,
        })
    }

    async fn describe(&self, pre: &Pre) -> Result<PluginInfo, Error> {
        let mut store = self.store("(loading)", "", false);
        let name = "(loading)".to_owned();
        let call = async {
            match pre {
                Pre::Auth(p) => {
                    let i = p.instantiate_async(&mut store).await?;
                    let info = i.call_describe(&mut store).await?;
                    Ok(bindings::info(info, PluginKind::AuthProtocol))
                }
                Pre::Transform(p) => {
                    let i = p.instantiate_async(&mut store).await?;
                    let info = i.call_describe(&mut store).await?;
                    Ok(bindings::info(info, PluginKind::PayloadTransform))
                }
                Pre::Filter(p) => {
                    let i = p.instantiate_async(&mut store).await?;
                    let info = i.call_describe(&mut store).await?;
                    Ok(bindings::info(info, PluginKind::AuthorizationFilter))
                }
            }
        };
        self.finish(&name, call).await
    }

    fn store(&self, plugin: &str, tenant: &str, fresh_tokens: bool) -> Store<CallState> {
        let state = CallState::new(
            plugin,
            tenant,
            self.inner.config.memory_limit_mb << 20,
            self.inner.clock.clone(),
            self.inner.tokens.clone(),
            fresh_tokens,
        );
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limits);
        // Yield to the async runtime at every tick, so the call's timeout can fire even
        // while the guest spins.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        store
    }

    /// Runs a call under the time limit and maps what can go wrong.
    async fn finish<T>(
        &self,
        plugin: &str,
        call: impl Future<Output = wasmtime::Result<T>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.inner.config.call_timeout, call).await {
            Err(_) => Err(Error::Timeout(plugin.to_owned())),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                let message = format!("{e:#}");
                if message.contains("memory")
                    && (message.contains("grow") || message.contains("limit"))
                {
                    Err(Error::ResourceLimit(plugin.to_owned()))
                } else {
                    Err(Error::Trap {
                        plugin: plugin.to_owned(),
                        message,
                    })
                }
            }
        }
    }

    fn lookup(&self, tenant: &str, name: &str, kind: PluginKind) -> Result<Arc<Loaded>, Error> {
        let loaded = self
            .find(tenant, name)
            .ok_or_else(|| Error::NotFound(name.to_owned()))?;
        if loaded.info.kind != kind {
            return Err(Error::WrongKind {
                name: name.to_owned(),
                expected: kind,
                actual: loaded.info.kind,
            });
        }
        Ok(loaded)
    }

    fn find(&self, tenant: &str, name: &str) -> Option<Arc<Loaded>> {
        let registry = self.inner.registry.read().ok()?;
        registry
            .get(&(Owner::Tenant(tenant.to_owned()), name.to_owned()))
            .or_else(|| registry.get(&(Owner::Global, name.to_owned())))
            .cloned()
    }

    /// Runs an auth-protocol plugin on a request. With `fresh_tokens`, OAuth2 tokens are
    /// fetched anew rather than taken from the cache.
    pub async fn authenticate(
        &self,
        tenant: &str,
        plugin: &str,
        request: OutgoingRequest,
        context: &DeliveryContext,
        settings: &Settings,
        fresh_tokens: bool,
    ) -> Result<OutgoingRequest, Error> {
        let loaded = self.lookup(tenant, plugin, PluginKind::AuthProtocol)?;
        let Pre::Auth(pre) = &loaded.pre else {
            return Err(Error::NotFound(plugin.to_owned()));
        };
        let mut store = self.store(plugin, tenant, fresh_tokens);
        let (request, context, settings) =
            (request.into(), context.into(), bindings::settings(settings));
        let result = self
            .finish(plugin, async {
                let i: AuthProtocol = pre.instantiate_async(&mut store).await?;
                i.call_authenticate(&mut store, &request, &context, &settings)
                    .await
            })
            .await;
        store.data().flush_output();
        let request: OutgoingRequest = result?.map_err(Error::Rejected)?.into();
        let size = request.body.len()
            + request.url.len()
            + request
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        if size > MAX_OUTPUT_BYTES || request.headers.len() > MAX_HEADERS {
            return Err(Error::BadOutput {
                plugin: plugin.to_owned(),
                message: format!(
                    "the request is too large ({size} bytes, {} headers)",
                    request.headers.len()
                ),
            });
        }
        Ok(request)
    }

    /// Runs a payload-transform plugin on an event.
    pub async fn transform(
        &self,
        tenant: &str,
        plugin: &str,
        event: &Event,
        settings: &Settings,
    ) -> Result<Body, Error> {
        let loaded = self.lookup(tenant, plugin, PluginKind::PayloadTransform)?;
        let Pre::Transform(pre) = &loaded.pre else {
            return Err(Error::NotFound(plugin.to_owned()));
        };
        let mut store = self.store(plugin, tenant, false);
        let (event, settings) = (event.into(), bindings::settings(settings));
        let result = self
            .finish(plugin, async {
                let i: PayloadTransform = pre.instantiate_async(&mut store).await?;
                i.call_transform(&mut store, &event, &settings).await
            })
            .await;
        store.data().flush_output();
        let body: Body = result?.map_err(Error::Rejected)?.into();
        if body.bytes.len() > MAX_OUTPUT_BYTES {
            return Err(Error::BadOutput {
                plugin: plugin.to_owned(),
                message: format!(
                    "the body is {} bytes; at most {MAX_OUTPUT_BYTES}",
                    body.bytes.len()
                ),
            });
        }
        Ok(body)
    }

    /// Asks an authorization-filter plugin whether `principal` may see `event`.
    pub async fn allow(
        &self,
        tenant: &str,
        plugin: &str,
        event: &Event,
        principal: &Principal,
        settings: &Settings,
    ) -> Result<bool, Error> {
        let loaded = self.lookup(tenant, plugin, PluginKind::AuthorizationFilter)?;
        let Pre::Filter(pre) = &loaded.pre else {
            return Err(Error::NotFound(plugin.to_owned()));
        };
        let mut store = self.store(plugin, tenant, false);
        let (event, principal, settings) =
            (event.into(), principal.into(), bindings::settings(settings));
        let result = self
            .finish(plugin, async {
                let i: AuthorizationFilter = pre.instantiate_async(&mut store).await?;
                i.call_allow(&mut store, &event, &principal, &settings)
                    .await
            })
            .await;
        store.data().flush_output();
        result
    }

    /// What the plugin `name` visible to `tenant` says about itself.
    pub fn info(&self, tenant: &str, name: &str) -> Option<PluginInfo> {
        self.find(tenant, name).map(|l| l.info.clone())
    }

    /// The global plugins, and with a tenant also the tenant's own (which shadow them).
    pub fn list(&self, tenant: Option<&str>) -> Vec<PluginInfo> {
        let Ok(registry) = self.inner.registry.read() else {
            return Vec::new();
        };
        let mut visible: HashMap<&str, &Loaded> = HashMap::new();
        for ((owner, name), loaded) in registry.iter() {
            match owner {
                Owner::Global => {
                    visible.entry(name).or_insert(loaded);
                }
                Owner::Tenant(t) if Some(t.as_str()) == tenant => {
                    visible.insert(name, loaded);
                }
                Owner::Tenant(_) => {}
            }
        }
        let mut out: Vec<PluginInfo> = visible.values().map(|l| l.info.clone()).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Checks a receiver's settings against a plugin: it exists, is of `kind`, gets
    /// every required setting and no unknown one.
    pub fn check_settings(
        &self,
        tenant: &str,
        plugin: &str,
        kind: PluginKind,
        settings: &Settings,
    ) -> Result<(), Error> {
        let info = self.lookup(tenant, plugin, kind)?.info.clone();
        if let Some(missing) = info
            .settings
            .iter()
            .find(|s| s.required && settings.get(&s.name).is_none_or(|v| v.is_empty()))
        {
            return Err(Error::InvalidSettings(format!(
                "plugin {plugin:?} requires the setting {:?} ({})",
                missing.name, missing.description
            )));
        }
        if let Some(unknown) = settings
            .keys()
            .find(|k| !info.settings.iter().any(|s| &s.name == *k))
        {
            let known: Vec<&str> = info.settings.iter().map(|s| s.name.as_str()).collect();
            return Err(Error::InvalidSettings(format!(
                "plugin {plugin:?} has no setting {unknown:?}; it takes {known:?}"
            )));
        }
        Ok(())
    }

    /// Validates, compiles, stores and swaps in an uploaded plugin, globally (`None`) or
    /// for one tenant. Calls in flight finish on the version they started with.
    pub async fn install(&self, tenant: Option<&str>, bytes: &[u8]) -> Result<PluginInfo, Error> {
        if bytes.len() > MAX_COMPONENT_BYTES {
            return Err(Error::Invalid(format!(
                "the component is {} bytes; at most {MAX_COMPONENT_BYTES}",
                bytes.len()
            )));
        }
        let loaded = self.compile(bytes.to_vec(), false).await?;
        let name = loaded.info.name.clone();
        if self
            .find_owned(&Owner::Global, &name)
            .is_some_and(|l| l.built_in)
        {
            return Err(Error::BuiltIn(name));
        }
        let (owner, dir) = self.owner_dir(tenant);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.wasm"));
        let partial = dir.join(format!(".{name}.wasm.partial"));
        std::fs::write(&partial, bytes)?;
        std::fs::rename(&partial, &path)?;
        let info = loaded.info.clone();
        self.register(owner, loaded);
        tracing::info!(plugin = %name, tenant = ?tenant, kind = %info.kind, version = %info.version, "plugin installed");
        Ok(info)
    }

    /// Removes an uploaded plugin. Built-ins stay.
    pub fn remove(&self, tenant: Option<&str>, name: &str) -> Result<(), Error> {
        let (owner, dir) = self.owner_dir(tenant);
        let Some(loaded) = self.find_owned(&owner, name) else {
            return Err(Error::NotFound(name.to_owned()));
        };
        if loaded.built_in {
            return Err(Error::BuiltIn(name.to_owned()));
        }
        match std::fs::remove_file(dir.join(format!("{name}.wasm"))) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        if let Ok(mut registry) = self.inner.registry.write() {
            registry.remove(&(owner, name.to_owned()));
        }
        Ok(())
    }

    fn find_owned(&self, owner: &Owner, name: &str) -> Option<Arc<Loaded>> {
        let registry = self.inner.registry.read().ok()?;
        registry.get(&(owner.clone(), name.to_owned())).cloned()
    }

    fn owner_dir(&self, tenant: Option<&str>) -> (Owner, PathBuf) {
        match tenant {
            None => (Owner::Global, self.inner.store_dir.join("global")),
            Some(t) => (
                Owner::Tenant(t.to_owned()),
                self.inner.store_dir.join("tenants").join(t),
            ),
        }
    }
}

fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

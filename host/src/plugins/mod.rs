//! The plugin host: the only module that names wasmtime.
//!
//! Plugins are WebAssembly components implementing one world of `wit/`:
//! `auth-protocol`, `payload-transform` or `authorization-filter`. Built-in plugins are
//! embedded in the binary; operators add global ones (upload, or the watched
//! directory), tenants add their own, which shadow global ones for that tenant only.
//!
//! Every call runs sandboxed: an empty WASI context (no files, sockets, environment or
//! arguments; clocks read the host's Clock; stderr goes to the log), a memory cap, a
//! wall-clock deadline enforced by epoch interruption, and caps on what a plugin may
//! return. A call that traps, times out or returns garbage fails alone with a clear
//! [`Error`]; its instance is thrown away and the next call gets a fresh one.

mod bindings;
mod builtin;
mod config;
mod engine;
mod error;
mod oauth;
mod runtime;
mod store;
mod types;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};

pub use config::PluginsConfig;
pub use error::Error;
pub use types::{
    Body, DeliveryContext, Event, InstalledPlugin, Origin, OutgoingRequest, PluginInfo, PluginKind,
    PluginStats, Principal, Scope, Setting, Settings, Subject,
};

use runtime::{Answer, Loaded, Op, Runtime, Source};
use store::HostServices;

/// The plugin host. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Plugins {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Plugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugins").finish_non_exhaustive()
    }
}

struct Inner {
    runtime: Arc<Runtime>,
    registry: RwLock<Registry>,
    /// `<data_dir>/plugins`: uploaded plugins.
    store_dir: PathBuf,
    config: PluginsConfig,
    stop: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Registry {
    global: HashMap<String, Arc<Loaded>>,
    tenants: HashMap<String, HashMap<String, Arc<Loaded>>>,
}

impl Registry {
    fn find(&self, tenant: &str, name: &str) -> Option<Arc<Loaded>> {
        self.tenants
            .get(tenant)
            .and_then(|plugins| plugins.get(name))
            .or_else(|| self.global.get(name))
            .cloned()
    }
}

impl Plugins {
    /// Starts the plugin host: the engine with its pooling allocator and epoch ticker,
    /// the built-in plugins, plugins uploaded earlier (from `data_dir`) and the plugins in
    /// `config.dir`. Precompiled artifacts are cached (under `data_dir` unless
    /// `config.cache_dir` says otherwise), so a restart does not recompile. A stored
    /// plugin that no longer loads is logged and skipped; a built-in that does not load
    /// is an error.
    ///
    /// When called inside a tokio runtime it also starts watching `config.dir`.
    pub fn new(
        config: &PluginsConfig,
        clock: crate::clock::SharedClock,
        data_dir: &Path,
    ) -> Result<Self, Error> {
        let engine = engine::new_engine(config)?;
        let stop = Arc::new(AtomicBool::new(false));
        engine::spawn_epoch_ticker(&engine, stop.clone())?;
        let store_dir = data_dir.join("plugins");
        let cache_dir = config
            .cache_dir
            .clone()
            .unwrap_or_else(|| store_dir.join("cache"));
        let compiler = engine::Compiler::new(engine.clone(), cache_dir)?;
        let tokens = oauth::TokenCache::new(
            clock.clone(),
            config.token_timeout,
            config.allow_private_token_urls,
        )
        .map_err(Error::Engine)?;
        let host = Arc::new(HostServices { clock, tokens });
        let runtime = Arc::new(Runtime::new(engine, host, compiler, config)?);
        let plugins = Self {
            inner: Arc::new(Inner {
                runtime,
                registry: RwLock::new(Registry::default()),
                store_dir,
                config: config.clone(),
                stop,
            }),
        };

        // Loading calls describe(), which is async. Run it on a private runtime on a
        // scoped thread, so `new` works both inside and outside a tokio runtime.
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(Error::Io)?;
                    rt.block_on(plugins.load_all())
                })
                .join()
                .unwrap_or_else(|_| Err(Error::Engine("plugin loading panicked".into())))
        })?;

        if let (Some(dir), Ok(handle)) = (config.dir.clone(), tokio::runtime::Handle::try_current())
        {
            handle.spawn(watch_dir(
                Arc::downgrade(&plugins.inner),
                dir,
                config.dir_poll_interval,
            ));
        }
        Ok(plugins)
    }

    async fn load_all(&self) -> Result<(), Error> {
        for (package, bytes) in builtin::BUILTIN_PLUGINS {
            let loaded = self
                .inner
                .runtime
                .load(Arc::from(*bytes), Source::BuiltIn)
                .await
                .map_err(|e| {
                    Error::Engine(format!("built-in plugin {package} does not load: {e}"))
                })?;
            self.write_registry()
                .global
                .insert(loaded.info.name.clone(), Arc::new(loaded));
        }
        for path in wasm_files(&self.inner.store_dir.join("global")) {
            if let Err(e) = self
                .load_file(None, &path, Source::Uploaded(path.clone()))
                .await
            {
                tracing::error!(path = %path.display(), error = %e, "skipping stored plugin");
            }
        }
        let tenants_dir = self.inner.store_dir.join("tenants");
        for entry in std::fs::read_dir(&tenants_dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            let Some(tenant) = entry.file_name().to_str().and_then(tenant_from_dir) else {
                continue;
            };
            for path in wasm_files(&entry.path()) {
                if let Err(e) = self
                    .load_file(Some(&tenant), &path, Source::Uploaded(path.clone()))
                    .await
                {
                    tracing::error!(path = %path.display(), tenant, error = %e, "skipping stored plugin");
                }
            }
        }
        if let Some(dir) = &self.inner.config.dir {
            for path in wasm_files(dir) {
                if let Err(e) = self.load_file(None, &path, Source::Dir(path.clone())).await {
                    tracing::error!(path = %path.display(), error = %e, "skipping plugin in the plugin directory");
                }
            }
        }
        Ok(())
    }

    async fn load_file(
        &self,
        tenant: Option<&str>,
        path: &Path,
        source: Source,
    ) -> Result<PluginInfo, Error> {
        let bytes = std::fs::read(path).map_err(|e| engine::io_context(e, path))?;
        let loaded = self.inner.runtime.load(Arc::from(bytes), source).await?;
        self.register(tenant, Arc::new(loaded))
    }

    fn register(&self, tenant: Option<&str>, loaded: Arc<Loaded>) -> Result<PluginInfo, Error> {
        let name = loaded.info.name.clone();
        let info = loaded.info.clone();
        let mut registry = self.write_registry();
        if registry
            .global
            .get(&name)
            .is_some_and(|existing| existing.source == Source::BuiltIn)
        {
            return Err(Error::BuiltIn(name));
        }
        match tenant {
            None => registry.global.insert(name, loaded),
            Some(tenant) => registry
                .tenants
                .entry(tenant.to_string())
                .or_default()
                .insert(name, loaded),
        };
        Ok(info)
    }

    fn read_registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.inner
            .registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn write_registry(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.inner
            .registry
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn find(&self, tenant: &str, plugin: &str, kind: PluginKind) -> Result<Arc<Loaded>, Error> {
        let loaded = self
            .read_registry()
            .find(tenant, plugin)
            .ok_or_else(|| Error::NotFound(plugin.to_string()))?;
        if loaded.kind() != kind {
            return Err(Error::WrongKind {
                name: plugin.to_string(),
                expected: kind,
                actual: loaded.kind(),
            });
        }
        Ok(loaded)
    }

    /// Runs auth-protocol plugin `plugin` on `request`. `fresh_tokens` bypasses the
    /// OAuth2 token cache (for the one retry after a receiver answered 401).
    pub async fn authenticate(
        &self,
        tenant: &str,
        plugin: &str,
        request: OutgoingRequest,
        context: &DeliveryContext,
        settings: &Settings,
        fresh_tokens: bool,
    ) -> Result<OutgoingRequest, Error> {
        let loaded = self.find(tenant, plugin, PluginKind::AuthProtocol)?;
        let op = Op::Authenticate(
            bindings::request(request),
            bindings::context(context),
            bindings::settings(settings),
        );
        match self
            .inner
            .runtime
            .run(&loaded, tenant, fresh_tokens, op, true)
            .await?
        {
            Answer::Request(Ok(request)) => {
                let request = bindings::from_request(request);
                runtime::validate_request(&request)?;
                Ok(request)
            }
            Answer::Request(Err(message)) => Err(Error::Rejected(runtime::truncate(
                &message,
                runtime::MAX_MESSAGE,
            ))),
            _ => Err(Error::Engine(
                "authenticate answered with the wrong shape".into(),
            )),
        }
    }

    /// Runs payload-transform plugin `plugin` on `event`.
    pub async fn transform(
        &self,
        tenant: &str,
        plugin: &str,
        event: &Event,
        settings: &Settings,
    ) -> Result<Body, Error> {
        let loaded = self.find(tenant, plugin, PluginKind::PayloadTransform)?;
        let op = Op::Transform(bindings::event(event), bindings::settings(settings));
        match self
            .inner
            .runtime
            .run(&loaded, tenant, false, op, true)
            .await?
        {
            Answer::Body(Ok(body)) => {
                let body = bindings::from_body(body);
                runtime::validate_body(&body)?;
                Ok(body)
            }
            Answer::Body(Err(message)) => Err(Error::Rejected(runtime::truncate(
                &message,
                runtime::MAX_MESSAGE,
            ))),
            _ => Err(Error::Engine(
                "transform answered with the wrong shape".into(),
            )),
        }
    }

    /// Asks authorization-filter plugin `plugin` whether `principal` may receive `event`.
    pub async fn allow(
        &self,
        tenant: &str,
        plugin: &str,
        event: &Event,
        principal: &Principal,
        settings: &Settings,
    ) -> Result<bool, Error> {
        let loaded = self.find(tenant, plugin, PluginKind::AuthorizationFilter)?;
        let op = Op::Allow(
            bindings::event(event),
            bindings::principal(principal),
            bindings::settings(settings),
        );
        match self
            .inner
            .runtime
            .run(&loaded, tenant, false, op, true)
            .await?
        {
            Answer::Allowed(allowed) => Ok(allowed),
            _ => Err(Error::Engine("allow answered with the wrong shape".into())),
        }
    }

    /// What plugin `plugin` says about itself, as `tenant` sees it (a tenant's own plugin
    /// shadows a global one of the same name).
    pub fn info(&self, tenant: &str, plugin: &str) -> Option<PluginInfo> {
        self.read_registry()
            .find(tenant, plugin)
            .map(|l| l.info.clone())
    }

    /// Global plugins (`None`), or the plugins `tenant` sees: global ones and its own,
    /// its own shadowing global ones. Sorted by name.
    pub fn list(&self, tenant: Option<&str>) -> Vec<PluginInfo> {
        let registry = self.read_registry();
        let mut by_name: std::collections::BTreeMap<&str, &Arc<Loaded>> = registry
            .global
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        if let Some(own) = tenant.and_then(|t| registry.tenants.get(t)) {
            by_name.extend(own.iter().map(|(k, v)| (k.as_str(), v)));
        }
        by_name.into_values().map(|l| l.info.clone()).collect()
    }

    /// The plugins the API shows: the global ones (`None`), or those `tenant` sees, its
    /// own shadowing global ones; each with its scope and origin. Sorted by name.
    pub fn installed(&self, tenant: Option<&str>) -> Vec<InstalledPlugin> {
        let registry = self.read_registry();
        let mut by_name: std::collections::BTreeMap<&str, InstalledPlugin> = registry
            .global
            .iter()
            .map(|(k, v)| (k.as_str(), installed(v, Scope::Global)))
            .collect();
        if let Some(own) = tenant.and_then(|t| registry.tenants.get(t)) {
            by_name.extend(
                own.iter()
                    .map(|(k, v)| (k.as_str(), installed(v, Scope::Tenant))),
            );
        }
        by_name.into_values().collect()
    }

    /// One plugin as [`Plugins::installed`] shows it: a global one (`None`), or the one
    /// `tenant` sees under that name.
    pub fn installed_one(&self, tenant: Option<&str>, name: &str) -> Option<InstalledPlugin> {
        let registry = self.read_registry();
        let own = tenant
            .and_then(|t| registry.tenants.get(t))
            .and_then(|own| own.get(name));
        match own {
            Some(loaded) => Some(installed(loaded, Scope::Tenant)),
            None => registry
                .global
                .get(name)
                .map(|loaded| installed(loaded, Scope::Global)),
        }
    }

    /// Whether `plugin` as `tenant` sees it is built in (cannot be removed).
    pub fn is_builtin(&self, tenant: &str, plugin: &str) -> bool {
        self.read_registry()
            .find(tenant, plugin)
            .is_some_and(|l| l.source == Source::BuiltIn)
    }

    /// Installs a plugin for `tenant` (or globally for `None`): validates it (one world,
    /// imports the host grants, `describe()` answers with a valid name and settings),
    /// precompiles it, stores it under the data directory and swaps it in. Calls in
    /// flight finish on the version they started with. Built-ins cannot be replaced.
    pub async fn install(&self, tenant: Option<&str>, bytes: &[u8]) -> Result<PluginInfo, Error> {
        if bytes.len() > 64 << 20 {
            return Err(Error::Invalid("a component larger than 64 MiB".into()));
        }
        let mut loaded = self
            .inner
            .runtime
            .load(Arc::from(bytes), Source::BuiltIn)
            .await?;
        let name = loaded.info.name.clone();
        if self
            .read_registry()
            .global
            .get(&name)
            .is_some_and(|l| l.source == Source::BuiltIn)
        {
            return Err(Error::BuiltIn(name));
        }
        let path = self.stored_path(tenant, &name);
        engine::write_durably(&path, bytes)?;
        loaded.source = Source::Uploaded(path);
        let loaded = Arc::new(loaded);
        let hash = loaded.hash.clone();
        let info = self.register(tenant, loaded)?;
        tracing::info!(
            plugin = %info.name,
            version = %info.version,
            kind = %info.kind,
            tenant = tenant.unwrap_or("(global)"),
            sha256 = %hash,
            "plugin installed"
        );
        Ok(info)
    }

    /// Removes an uploaded plugin of `tenant` (or a global one for `None`). Built-ins
    /// cannot be removed; a plugin from the watched directory goes away for good only
    /// when its file is deleted.
    pub fn remove(&self, tenant: Option<&str>, name: &str) -> Result<(), Error> {
        let mut registry = self.write_registry();
        if registry
            .global
            .get(name)
            .is_some_and(|l| l.source == Source::BuiltIn)
        {
            return Err(Error::BuiltIn(name.to_string()));
        }
        let removed = match tenant {
            None => registry.global.remove(name),
            Some(tenant) => registry
                .tenants
                .get_mut(tenant)
                .and_then(|own| own.remove(name)),
        }
        .ok_or_else(|| Error::NotFound(name.to_string()))?;
        drop(registry);
        if let Source::Uploaded(path) = &removed.source {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(engine::io_context(e, path)),
            }
        }
        tracing::info!(
            plugin = name,
            tenant = tenant.unwrap_or("(global)"),
            "plugin removed"
        );
        Ok(())
    }

    /// Checks a receiver's settings for `plugin`: it exists for `tenant`, is of `kind`,
    /// every required setting is given (non-empty) and no unknown one is.
    pub fn check_settings(
        &self,
        tenant: &str,
        plugin: &str,
        kind: PluginKind,
        settings: &Settings,
    ) -> Result<(), Error> {
        let loaded = self.find(tenant, plugin, kind)?;
        check_settings(&loaded.info, settings)
    }

    /// Counters: compilations, cache hits, instances, warm calls.
    pub fn stats(&self) -> PluginStats {
        self.inner.runtime.stats()
    }

    fn stored_path(&self, tenant: Option<&str>, name: &str) -> PathBuf {
        match tenant {
            None => self
                .inner
                .store_dir
                .join("global")
                .join(format!("{name}.wasm")),
            Some(t) => self
                .inner
                .store_dir
                .join("tenants")
                .join(tenant_dir(t))
                .join(format!("{name}.wasm")),
        }
    }
}

fn installed(loaded: &Loaded, scope: Scope) -> InstalledPlugin {
    let origin = match loaded.source {
        Source::BuiltIn => Origin::BuiltIn,
        Source::Uploaded(_) => Origin::Uploaded,
        Source::Dir(_) => Origin::Directory,
    };
    InstalledPlugin {
        info: loaded.info.clone(),
        builtin: origin == Origin::BuiltIn,
        scope,
        origin,
    }
}

/// The settings rule of [`Plugins::check_settings`].
pub(crate) fn check_settings(info: &PluginInfo, settings: &Settings) -> Result<(), Error> {
    let known: Vec<&str> = info.settings.iter().map(|s| s.name.as_str()).collect();
    if let Some(unknown) = settings.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(Error::InvalidSettings(if known.is_empty() {
            format!(
                "unknown setting `{unknown}`: `{}` takes no settings",
                info.name
            )
        } else {
            format!(
                "unknown setting `{unknown}`: `{}` takes {}",
                info.name,
                known.join(", ")
            )
        }));
    }
    let missing: Vec<&str> = info
        .settings
        .iter()
        .filter(|s| s.required && settings.get(&s.name).is_none_or(|v| v.is_empty()))
        .map(|s| s.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(Error::InvalidSettings(format!(
            "`{}` requires {}",
            info.name,
            missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}

/// A tenant's directory name: the tenant itself when it is a plain slug, else hex.
fn tenant_dir(tenant: &str) -> String {
    let plain = !tenant.is_empty()
        && tenant.len() <= 64
        && !tenant.starts_with("x-")
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if plain {
        tenant.to_string()
    } else {
        format!("x-{}", hex::encode(tenant))
    }
}

fn tenant_from_dir(dir: &str) -> Option<String> {
    match dir.strip_prefix("x-") {
        Some(encoded) => hex::decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok()),
        None => Some(dir.to_string()),
    }
}

fn wasm_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file())
        .collect();
    files.sort();
    files
}

/// Polls the plugin directory: loads new and changed files, unloads removed ones. Ends
/// when the host is dropped.
async fn watch_dir(inner: Weak<Inner>, dir: PathBuf, every: std::time::Duration) {
    let stamp = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.len(), m.modified().ok()))
    };
    let mut seen: HashMap<PathBuf, _> = wasm_files(&dir)
        .into_iter()
        .map(|p| (p.clone(), stamp(&p)))
        .collect();
    let mut ticker = tokio::time::interval(every.max(std::time::Duration::from_millis(100)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let plugins = Plugins { inner };
        let now: HashMap<PathBuf, _> = wasm_files(&dir)
            .into_iter()
            .map(|p| (p.clone(), stamp(&p)))
            .collect();
        for (path, st) in &now {
            if seen.get(path) != Some(st) {
                match plugins
                    .load_file(None, path, Source::Dir(path.clone()))
                    .await
                {
                    Ok(info) => {
                        tracing::info!(plugin = %info.name, path = %path.display(), "plugin loaded from the plugin directory")
                    }
                    Err(e) => {
                        tracing::error!(path = %path.display(), error = %e, "plugin in the plugin directory does not load")
                    }
                }
            }
        }
        for path in seen.keys().filter(|p| !now.contains_key(*p)) {
            let mut registry = plugins.write_registry();
            registry
                .global
                .retain(|_, l| l.source != Source::Dir(path.clone()));
        }
        seen = now;
    }
}

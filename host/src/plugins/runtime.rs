//! Running plugins: loaded versions, instances (fresh or warm), deadlines, and turning
//! whatever a call ends in into `Error`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};

use super::bindings::{self, auth, filter, transform};
use super::error::Error;
use super::store::{CallContext, HostServices, StoreData};
use super::types::{PluginInfo, PluginKind, PluginStats};

type Wit = bindings::auth::switchyard::plugin::types::OutgoingRequest;
type WitEvent = bindings::auth::switchyard::plugin::types::Event;
type WitPrincipal = bindings::auth::switchyard::plugin::types::Principal;
type WitContext = bindings::auth::switchyard::plugin::types::DeliveryContext;
type WitBody = bindings::auth::switchyard::plugin::types::Body;
type WitInfo = bindings::auth::switchyard::plugin::types::PluginInfo;

/// Largest body a plugin may return.
pub(crate) const MAX_BODY: usize = 16 << 20;
/// Most headers an auth plugin may return.
pub(crate) const MAX_HEADERS: usize = 100;
/// Longest header value an auth plugin may return.
pub(crate) const MAX_HEADER_VALUE: usize = 8 << 10;
/// Longest error message a plugin's `Err` is passed on with.
pub(crate) const MAX_MESSAGE: usize = 1 << 10;

/// Where a loaded plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    BuiltIn,
    /// Uploaded through the API; stored under the data directory.
    Uploaded(std::path::PathBuf),
    /// Found in the watched plugin directory.
    Dir(std::path::PathBuf),
}

/// Instantiation recipes: imports resolved and exports type-checked once per version.
enum Pre {
    Auth(auth::AuthProtocolPre<StoreData>),
    Transform(transform::PayloadTransformPre<StoreData>),
    Filter(filter::AuthorizationFilterPre<StoreData>),
}

enum Bound {
    Auth(auth::AuthProtocol),
    Transform(transform::PayloadTransform),
    Filter(filter::AuthorizationFilter),
}

struct Instance {
    store: Store<StoreData>,
    bound: Bound,
    calls: u32,
}

/// One version of one plugin. Calls hold an `Arc` to it, so a hot swap lets calls in
/// flight finish on the version they started with.
pub(crate) struct Loaded {
    pub info: PluginInfo,
    pub hash: String,
    pub source: Source,
    name: Arc<str>,
    pre: Pre,
    /// Idle instances by tenant; never shared across tenants.
    warm: Mutex<HashMap<Arc<str>, Vec<Instance>>>,
}

impl Loaded {
    pub(crate) fn kind(&self) -> PluginKind {
        self.info.kind
    }
}

/// What a call asks of a plugin.
pub(crate) enum Op {
    Describe,
    Authenticate(Wit, WitContext, Vec<(String, String)>),
    Transform(WitEvent, Vec<(String, String)>),
    Allow(WitEvent, WitPrincipal, Vec<(String, String)>),
}

/// What it answered.
pub(crate) enum Answer {
    Info(WitInfo),
    Request(Result<Wit, String>),
    Body(Result<WitBody, String>),
    Allowed(bool),
}

/// Host time spent on a plugin's behalf during one call (not counted by its deadline).
#[derive(Default)]
pub(crate) struct HostWait {
    pub ns: AtomicU64,
    pub active: AtomicBool,
}

#[derive(Default)]
struct Counters {
    compiled: AtomicU64,
    cache_hits: AtomicU64,
    instantiated: AtomicU64,
    warm_calls: AtomicU64,
}

/// Everything needed to load and call plugins.
pub(crate) struct Runtime {
    pub engine: Engine,
    linker: Linker<StoreData>,
    host: Arc<HostServices>,
    compiler: super::engine::Compiler,
    call_timeout: Duration,
    memory_limit: usize,
    warm_instances: usize,
    max_calls: u32,
    counters: Counters,
}

impl Runtime {
    pub(crate) fn new(
        engine: Engine,
        host: Arc<HostServices>,
        compiler: super::engine::Compiler,
        config: &super::PluginsConfig,
    ) -> Result<Self, Error> {
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| Error::Engine(format!("{e:#}")))?;
        bindings::add_to_linker(&mut linker).map_err(|e| Error::Engine(format!("{e:#}")))?;
        Ok(Self {
            engine,
            linker,
            host,
            compiler,
            call_timeout: config.call_timeout,
            memory_limit: config.memory_limit_bytes(),
            warm_instances: config.warm_instances,
            max_calls: config.max_calls_per_instance.max(1),
            counters: Counters::default(),
        })
    }

    pub(crate) fn stats(&self) -> PluginStats {
        PluginStats {
            compiled: self.counters.compiled.load(Ordering::Relaxed),
            cache_hits: self.counters.cache_hits.load(Ordering::Relaxed),
            instantiated: self.counters.instantiated.load(Ordering::Relaxed),
            warm_calls: self.counters.warm_calls.load(Ordering::Relaxed),
        }
    }

    /// Compiles (or loads precompiled) `bytes`, checks that it implements exactly one
    /// world with every import satisfiable, and asks it to describe itself.
    pub(crate) async fn load(
        self: &Arc<Self>,
        bytes: Arc<[u8]>,
        source: Source,
    ) -> Result<Loaded, Error> {
        let hash = super::engine::component_hash(&bytes);
        let this = self.clone();
        let hash_for_compile = hash.clone();
        let (component, origin) =
            tokio::task::spawn_blocking(move || this.compiler.load(&bytes, &hash_for_compile))
                .await
                .map_err(|e| Error::Engine(format!("compilation task failed: {e}")))??;
        match origin {
            super::engine::Origin::Compiled => {
                self.counters.compiled.fetch_add(1, Ordering::Relaxed)
            }
            super::engine::Origin::Cached => {
                self.counters.cache_hits.fetch_add(1, Ordering::Relaxed)
            }
        };
        let kind = world_of(&self.engine, &component)?;
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            Error::Invalid(format!("it needs imports the host does not grant: {e:#}"))
        })?;
        let pre = match kind {
            PluginKind::AuthProtocol => auth::AuthProtocolPre::new(pre).map(Pre::Auth),
            PluginKind::PayloadTransform => {
                transform::PayloadTransformPre::new(pre).map(Pre::Transform)
            }
            PluginKind::AuthorizationFilter => {
                filter::AuthorizationFilterPre::new(pre).map(Pre::Filter)
            }
        }
        .map_err(|e| Error::Invalid(format!("its exports do not match world `{kind}`: {e:#}")))?;
        let mut loaded = Loaded {
            info: PluginInfo {
                name: String::new(),
                version: String::new(),
                description: String::new(),
                settings: Vec::new(),
                kind,
            },
            hash,
            source,
            name: Arc::from("(loading)"),
            pre,
            warm: Mutex::new(HashMap::new()),
        };
        let info = match self.run(&loaded, "", false, Op::Describe, false).await {
            Ok(Answer::Info(info)) => bindings::from_info(info, kind),
            Ok(_) => {
                return Err(Error::Engine(
                    "describe answered with the wrong shape".into(),
                ));
            }
            Err(e) => return Err(Error::Invalid(format!("describe() failed: {e}"))),
        };
        validate_info(&info).map_err(Error::Invalid)?;
        loaded.name = Arc::from(info.name.as_str());
        loaded.info = info;
        Ok(loaded)
    }

    /// Runs `op` on an instance of `plugin` for `tenant`: a warm one if there is one,
    /// else a fresh one. The instance goes back to the pool only after a clean call.
    pub(crate) async fn run(
        &self,
        plugin: &Loaded,
        tenant: &str,
        fresh_tokens: bool,
        op: Op,
        reuse: bool,
    ) -> Result<Answer, Error> {
        let wait = Arc::new(HostWait::default());
        let warm = if reuse {
            self.take_warm(plugin, tenant)
        } else {
            None
        };
        let mut instance = match warm {
            Some(instance) => {
                self.counters.warm_calls.fetch_add(1, Ordering::Relaxed);
                instance
            }
            None => Box::pin(self.instantiate(plugin, tenant, &wait)).await?,
        };
        let delivery = match &op {
            Op::Authenticate(_, context, _) => Some(context.delivery_id.clone()),
            _ => None,
        };
        instance.store.data_mut().call = CallContext {
            delivery,
            fresh_tokens,
            wait: wait.clone(),
        };
        instance.store.set_epoch_deadline(1);
        let Instance {
            store,
            bound,
            calls,
        } = &mut instance;
        // Boxed: a component call's future takes more than a kilobyte, which every
        // future awaiting this one would carry, and copy each time it moves (boxed
        // before the deadline wraps it, which would hold it twice).
        let outcome =
            with_deadline(self.call_timeout, &wait, Box::pin(invoke(store, bound, op))).await;
        *calls += 1;
        let reusable = store.data_mut().flush_stderr();
        match outcome {
            Some(Ok(answer)) => {
                if reuse && reusable {
                    self.put_back(plugin, tenant, instance);
                }
                Ok(answer)
            }
            Some(Err(trap)) => Err(classify(trap, self.memory_limit)),
            None => Err(Error::Timeout),
        }
    }

    async fn instantiate(
        &self,
        plugin: &Loaded,
        tenant: &str,
        wait: &Arc<HostWait>,
    ) -> Result<Instance, Error> {
        let data = StoreData::new(
            self.host.clone(),
            plugin.name.clone(),
            Arc::from(tenant),
            self.memory_limit,
        );
        let mut store = Store::new(&self.engine, data);
        store.limiter(|data| &mut data.limits);
        store.epoch_deadline_async_yield_and_update(1);
        store.set_epoch_deadline(1);
        let instantiated = with_deadline(self.call_timeout, wait, async {
            Ok::<_, wasmtime::Error>(match &plugin.pre {
                Pre::Auth(pre) => Bound::Auth(pre.instantiate_async(&mut store).await?),
                Pre::Transform(pre) => Bound::Transform(pre.instantiate_async(&mut store).await?),
                Pre::Filter(pre) => Bound::Filter(pre.instantiate_async(&mut store).await?),
            })
        })
        .await;
        self.counters.instantiated.fetch_add(1, Ordering::Relaxed);
        match instantiated {
            Some(Ok(bound)) => Ok(Instance {
                store,
                bound,
                calls: 0,
            }),
            Some(Err(e)) => {
                let text = format!("{e:#}");
                if text.contains("concurrent") || text.contains("limit") {
                    Err(Error::ResourceLimit(format!(
                        "no plugin instance available: {text}"
                    )))
                } else {
                    Err(classify(e, self.memory_limit))
                }
            }
            None => Err(Error::Timeout),
        }
    }

    fn take_warm(&self, plugin: &Loaded, tenant: &str) -> Option<Instance> {
        let mut warm = plugin.warm.lock().unwrap_or_else(|e| e.into_inner());
        warm.get_mut(tenant).and_then(Vec::pop)
    }

    fn put_back(&self, plugin: &Loaded, tenant: &str, instance: Instance) {
        if self.warm_instances == 0 || instance.calls >= self.max_calls {
            return;
        }
        let mut warm = plugin.warm.lock().unwrap_or_else(|e| e.into_inner());
        let idle = match warm.get_mut(tenant) {
            Some(idle) => idle,
            None => warm.entry(Arc::from(tenant)).or_default(),
        };
        if idle.len() < self.warm_instances {
            idle.push(instance);
        }
    }
}

/// Which world a component implements, from its exports. Exactly one must match.
fn world_of(engine: &Engine, component: &Component) -> Result<PluginKind, Error> {
    let ty = component.component_type();
    let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
    let kinds: Vec<PluginKind> = [
        ("authenticate", PluginKind::AuthProtocol),
        ("transform", PluginKind::PayloadTransform),
        ("allow", PluginKind::AuthorizationFilter),
    ]
    .into_iter()
    .filter(|(export, _)| exports.contains(export))
    .map(|(_, kind)| kind)
    .collect();
    match kinds.as_slice() {
        [kind] if exports.contains(&"describe") => Ok(*kind),
        [_] => Err(Error::Invalid("it does not export `describe`".into())),
        [] => Err(Error::Invalid(format!(
            "it implements none of the worlds auth-protocol, payload-transform, authorization-filter (exports: {})",
            exports.join(", ")
        ))),
        _ => Err(Error::Invalid(format!(
            "it mixes several worlds (exports: {}); build one plugin per world",
            exports.join(", ")
        ))),
    }
}

async fn invoke(store: &mut Store<StoreData>, bound: &Bound, op: Op) -> wasmtime::Result<Answer> {
    Ok(match (bound, op) {
        (Bound::Auth(p), Op::Describe) => Answer::Info(p.call_describe(&mut *store).await?),
        (Bound::Transform(p), Op::Describe) => Answer::Info(p.call_describe(&mut *store).await?),
        (Bound::Filter(p), Op::Describe) => Answer::Info(p.call_describe(&mut *store).await?),
        (Bound::Auth(p), Op::Authenticate(request, context, settings)) => Answer::Request(
            p.call_authenticate(&mut *store, &request, &context, &settings)
                .await?,
        ),
        (Bound::Transform(p), Op::Transform(event, settings)) => {
            Answer::Body(p.call_transform(&mut *store, &event, &settings).await?)
        }
        (Bound::Filter(p), Op::Allow(event, principal, settings)) => Answer::Allowed(
            p.call_allow(&mut *store, &event, &principal, &settings)
                .await?,
        ),
        _ => wasmtime::bail!("operation does not match the plugin's world"),
    })
}

/// Runs `fut` for at most `budget` of wall time, not counting time the host spent on the
/// plugin's behalf (`wait`). `None` means the deadline passed and `fut` was dropped,
/// which abandons the guest mid-call; its instance must not be used again.
async fn with_deadline<F: Future>(budget: Duration, wait: &HostWait, fut: F) -> Option<F::Output> {
    let start = tokio::time::Instant::now();
    tokio::pin!(fut);
    // Most calls finish on their first poll: they need no timer.
    if let Poll::Ready(out) = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        return Some(out);
    }
    let mut deadline = start + budget;
    loop {
        tokio::select! {
            biased;
            out = &mut fut => return Some(out),
            () = tokio::time::sleep_until(deadline) => {
                let now = tokio::time::Instant::now();
                if wait.active.load(Ordering::Acquire) {
                    // A host call is in progress; it has its own timeout.
                    deadline = now + super::engine::EPOCH_TICK;
                    continue;
                }
                let extended = start + budget + Duration::from_nanos(wait.ns.load(Ordering::Acquire));
                if extended <= now {
                    return None;
                }
                deadline = extended;
            }
        }
    }
}

/// Names the way a call failed, for the delivery log.
fn classify(error: wasmtime::Error, memory_limit: usize) -> Error {
    let chain = format!("{error:#}");
    if chain.contains("growing memory") || chain.contains("memory growth failure") {
        return Error::ResourceLimit(format!(
            "the memory cap of {} MiB was reached",
            memory_limit >> 20
        ));
    }
    if chain.contains("growing table") {
        return Error::ResourceLimit("the table size cap was reached".into());
    }
    let frames = error
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|bt| {
            bt.frames()
                .iter()
                .filter_map(|f| f.func_name())
                .take(4)
                .map(|name| name.to_string())
                .collect::<Vec<_>>()
                .join(" ← ")
        })
        .unwrap_or_default();
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::StackOverflow) => Error::ResourceLimit("stack overflow".into()),
        Some(wasmtime::Trap::Interrupt | wasmtime::Trap::OutOfFuel) => Error::Timeout,
        Some(trap) if frames.is_empty() => Error::Trap(trap.to_string()),
        Some(trap) => Error::Trap(format!("{trap} (in {frames})")),
        None => Error::Trap(truncate(&chain, MAX_MESSAGE)),
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Checks what `describe()` said.
pub(crate) fn validate_info(info: &PluginInfo) -> Result<(), String> {
    if !valid_name(&info.name) {
        return Err(format!(
            "its name `{}` is not valid: use 1 to 63 lowercase letters, digits and `-`, starting with a letter",
            truncate(&info.name, 80)
        ));
    }
    if info.version.is_empty() || info.version.len() > 64 {
        return Err("its version must be 1 to 64 characters".into());
    }
    if info.description.len() > 4096 {
        return Err("its description is longer than 4 KiB".into());
    }
    if info.settings.len() > 64 {
        return Err("it declares more than 64 settings".into());
    }
    let mut seen = std::collections::HashSet::new();
    for setting in &info.settings {
        let ok = !setting.name.is_empty()
            && setting.name.len() <= 63
            && setting.name.starts_with(|c: char| c.is_ascii_lowercase())
            && setting
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !ok {
            return Err(format!(
                "setting name `{}` is not valid",
                truncate(&setting.name, 80)
            ));
        }
        if !seen.insert(setting.name.as_str()) {
            return Err(format!("setting `{}` is declared twice", setting.name));
        }
        if setting.description.len() > 1024 {
            return Err(format!(
                "the description of setting `{}` is longer than 1 KiB",
                setting.name
            ));
        }
    }
    Ok(())
}

/// Plugin names: `[a-z][a-z0-9-]{0,62}`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Checks a request an auth plugin returned.
pub(crate) fn validate_request(request: &super::types::OutgoingRequest) -> Result<(), Error> {
    let bad = |m: String| Err(Error::BadOutput(m));
    if request.method.is_empty()
        || request.method.len() > 16
        || !request.method.bytes().all(is_tchar)
    {
        return bad(format!(
            "`{}` is not an HTTP method",
            truncate(&request.method, 20)
        ));
    }
    if !(request.url.starts_with("https://") || request.url.starts_with("http://"))
        || request.url.len() > 8192
    {
        return bad("the URL must be an http(s) URL of at most 8 KiB".into());
    }
    if request.headers.len() > MAX_HEADERS {
        return bad(format!(
            "{} headers (at most {MAX_HEADERS})",
            request.headers.len()
        ));
    }
    for (name, value) in &request.headers {
        if name.is_empty() || name.len() > 256 || !name.bytes().all(is_tchar) {
            return bad(format!(
                "`{}` is not a valid header name",
                truncate(name, 40)
            ));
        }
        if value.len() > MAX_HEADER_VALUE
            || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
        {
            return bad(format!(
                "the value of header `{name}` is too long or contains a line break"
            ));
        }
    }
    if request.body.len() > MAX_BODY {
        return bad(format!(
            "a body of {} bytes (at most {MAX_BODY})",
            request.body.len()
        ));
    }
    Ok(())
}

/// Checks a body a transform plugin returned.
pub(crate) fn validate_body(body: &super::types::Body) -> Result<(), Error> {
    if body.bytes.len() > MAX_BODY {
        return Err(Error::BadOutput(format!(
            "a body of {} bytes (at most {MAX_BODY})",
            body.bytes.len()
        )));
    }
    let ct = &body.content_type;
    if ct.is_empty() || ct.len() > 256 || ct.bytes().any(|b| b.is_ascii_control()) {
        return Err(Error::BadOutput(
            "the content type is empty, too long or malformed".into(),
        ));
    }
    Ok(())
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("websub"));
        assert!(valid_name("my-plugin-2"));
        for bad in ["", "Web", "1abc", "a_b", "a b", "../x", &"a".repeat(64)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn requests_with_header_injection_are_bad_output() {
        let mut request = super::super::types::OutgoingRequest {
            method: "POST".into(),
            url: "https://example.com".into(),
            headers: vec![("X-Ok".into(), "fine".into())],
            body: vec![],
        };
        assert!(validate_request(&request).is_ok());
        request
            .headers
            .push(("X-Evil".into(), "a\r\nHost: other".into()));
        assert!(matches!(
            validate_request(&request),
            Err(Error::BadOutput(_))
        ));
        request.headers.pop();
        request.headers.push(("Bad Name".into(), "v".into()));
        assert!(matches!(
            validate_request(&request),
            Err(Error::BadOutput(_))
        ));
        request.headers.pop();
        request.method = "PO ST".into();
        assert!(matches!(
            validate_request(&request),
            Err(Error::BadOutput(_))
        ));
    }
}

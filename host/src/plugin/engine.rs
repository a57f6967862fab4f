//! The sandboxed WASM engine: one wasmtime `Engine`, components cached by digest, a fresh
//! `Store` with hard limits per call.
//!
//! Why these limits: a plugin is untrusted code running inside the operator process. The epoch
//! deadline stops endless loops, the `ResourceLimiter` stops memory bombs, and WASI is linked
//! with an empty context (no files, environment, arguments or sockets), so a plugin can only
//! compute a plan from what the host hands it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{self, WitVersion, v0_1_0};
use super::error::{Error, action_name};
use super::types::{JobPlan, PlanRequest, PluginInfo};

/// How often the background ticker advances the engine's epoch.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Per-call limits of the sandbox.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest linear memory a call may grow to (default 64 MiB).
    pub memory_bytes: usize,
    /// Wall-clock budget of one call, including instantiation (default 1 s).
    pub timeout: Duration,
    /// How much guest stderr is kept per call (default 64 KiB); writing more traps the guest.
    pub stderr_bytes: usize,
    /// How many `log` lines one call may write before further lines are dropped (default 200).
    pub log_lines: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            timeout: Duration::from_secs(1),
            stderr_bytes: 64 << 10,
            log_lines: 200,
        }
    }
}

/// A compiled, version-checked, described plugin, ready to be called.
///
/// Cheap to share (`Arc<Plugin>`); the compiled code is kept alive as long as a handle is.
pub struct Plugin {
    source: String,
    digest: String,
    size: usize,
    wit_version: &'static str,
    info: PluginInfo,
    compiled: Arc<Compiled>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("source", &self.source)
            .field("name", &self.info.name)
            .field("version", &self.info.version)
            .field("wit_version", &self.wit_version)
            .field("digest", &self.digest)
            .finish()
    }
}

impl Plugin {
    /// Where the bytes came from (`builtin:backup`, `configmap:ns/name`, a file path).
    pub fn source(&self) -> &str {
        &self.source
    }
    /// The name the plugin declares in `describe`.
    pub fn name(&self) -> &str {
        &self.info.name
    }
    /// The version the plugin declares in `describe`.
    pub fn version(&self) -> &str {
        &self.info.version
    }
    /// What `describe` returned when the plugin was loaded.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }
    /// Lowercase hex sha256 of the component bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }
    /// Size of the component in bytes.
    pub fn size(&self) -> usize {
        self.size
    }
    /// The `k8up:plugin` contract version the component is built against.
    pub fn wit_version(&self) -> &'static str {
        self.wit_version
    }
    /// Whether the plugin declares that it serves `action`.
    pub fn serves(&self, action: super::types::Action) -> bool {
        self.info.actions.contains(&action)
    }
}

/// One compiled component with its pre-linked instance, per contract version.
enum Compiled {
    V0_1_0(v0_1_0::ActionPluginPre<HostState>),
}

/// The plugin engine: cheap to clone, one per process.
#[derive(Clone)]
pub struct PluginEngine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    limits: Limits,
    /// Compiled components by digest. Weak, so a plugin nobody uses any more (an old
    /// ConfigMap version) frees its code; a reload of the same bytes is a cache hit.
    cache: Mutex<HashMap<String, (Weak<Compiled>, &'static str)>>,
    ticker_stop: Arc<AtomicBool>,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
        if let Ok(mut t) = self.ticker.lock()
            && let Some(handle) = t.take()
        {
            let _ = handle.join();
        }
    }
}

/// The per-call state of a `Store`.
struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: CallLimiter,
    plugin: Arc<str>,
    log_budget: usize,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl v0_1_0::k8up::plugin::host::Host for HostState {
    fn log(&mut self, level: v0_1_0::k8up::plugin::host::LogLevel, message: String) {
        use v0_1_0::k8up::plugin::host::LogLevel;
        if self.log_budget == 0 {
            return;
        }
        self.log_budget -= 1;
        let message = truncate(&message, 4096);
        let plugin = &*self.plugin;
        match level {
            LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            LogLevel::Info => tracing::info!(plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

impl v0_1_0::k8up::plugin::types::Host for HostState {}

/// Caps linear memory and remembers whether the cap was hit, so the error can say so.
struct CallLimiter {
    memory_bytes: usize,
    memory_hit: bool,
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.memory_hit = true;
            // Trap right away: a guest allocator that sees a failed grow may loop or abort
            // with a less useful message.
            return Err(wasmtime::format_err!(
                "memory limit of {} bytes reached",
                self.memory_bytes
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Who is being called, for error messages.
struct CallSite<'a> {
    plugin: &'a str,
    version: &'a str,
    call: &'static str,
}

impl PluginEngine {
    /// Creates the engine and starts its epoch ticker thread.
    pub fn new(limits: Limits) -> Result<Self, Error> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // Guest backtraces cost time on every trap and the panic message is on stderr anyway.
        config.wasm_backtrace_max_frames(None);
        let engine = Engine::new(&config).map_err(|e| Error::CreateEngine(e.to_string()))?;

        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| Error::CreateEngine(e.to_string()))?;
        v0_1_0::ActionPlugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(|e| Error::CreateEngine(e.to_string()))?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.weak();
            let stop = ticker_stop.clone();
            std::thread::Builder::new()
                .name("k8up-plugin-epoch".to_string())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        match engine.upgrade() {
                            Some(engine) => engine.increment_epoch(),
                            None => break,
                        }
                    }
                })
                .map_err(|e| Error::CreateEngine(format!("failed to start the epoch ticker: {e}")))?
        };

        Ok(PluginEngine {
            inner: Arc::new(Inner {
                engine,
                linker,
                limits,
                cache: Mutex::new(HashMap::new()),
                ticker_stop,
                ticker: Mutex::new(Some(ticker)),
            }),
        })
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Compiles (or finds in the cache), version-checks, pre-links and describes a component.
    ///
    /// This blocks for tens of milliseconds on a cache miss: from async code use
    /// [`PluginEngine::load_blocking`].
    pub fn load(&self, source: &str, bytes: &[u8]) -> Result<Arc<Plugin>, Error> {
        let digest = sha256_hex(bytes);
        let (compiled, wit_version) = match self.cached(&digest) {
            Some(hit) => hit,
            None => {
                let compiled = self.compile(source, bytes)?;
                self.remember(&digest, &compiled);
                compiled
            }
        };
        let info = self.call_describe(source, &compiled)?;
        validate_info(source, &info)?;
        Ok(Arc::new(Plugin {
            source: source.to_string(),
            digest,
            size: bytes.len(),
            wit_version,
            info,
            compiled,
        }))
    }

    /// [`PluginEngine::load`] on a blocking thread, so compilation never stalls the async runtime.
    pub async fn load_blocking(&self, source: String, bytes: Vec<u8>) -> Result<Arc<Plugin>, Error> {
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.load(&source, &bytes))
            .await
            .map_err(|e| Error::JoinTask(e.to_string()))?
    }

    /// Calls `describe` again in a fresh store.
    pub fn describe(&self, plugin: &Plugin) -> Result<PluginInfo, Error> {
        self.call_describe(plugin.name(), &plugin.compiled)
    }

    /// Calls `plan` in a fresh store. The result is the plugin's raw, *unchecked* plan: pass it
    /// through [`super::check::check_plan`] before building anything from it.
    pub fn plan(&self, plugin: &Plugin, request: &PlanRequest) -> Result<JobPlan, Error> {
        if !plugin.serves(request.action) {
            return Err(Error::ActionNotServed {
                plugin: plugin.name().to_string(),
                version: plugin.version().to_string(),
                action: action_name(request.action).to_string(),
            });
        }
        let site = CallSite {
            plugin: plugin.name(),
            version: plugin.version(),
            call: "plan",
        };
        let answer = match &*plugin.compiled {
            Compiled::V0_1_0(pre) => self.call(&site, |store| {
                let instance = pre.instantiate(&mut *store)?;
                instance.k8up_plugin_planner().call_plan(&mut *store, request)
            })?,
        };
        answer.map_err(|error| Error::PlanFailed {
            plugin: plugin.name().to_string(),
            version: plugin.version().to_string(),
            error,
        })
    }

    fn cached(&self, digest: &str) -> Option<(Arc<Compiled>, &'static str)> {
        let cache = self.inner.cache.lock().ok()?;
        let (weak, version) = cache.get(digest)?;
        Some((weak.upgrade()?, *version))
    }

    fn remember(&self, digest: &str, compiled: &(Arc<Compiled>, &'static str)) {
        if let Ok(mut cache) = self.inner.cache.lock() {
            cache.retain(|_, (weak, _)| weak.strong_count() > 0);
            cache.insert(digest.to_string(), (Arc::downgrade(&compiled.0), compiled.1));
        }
    }

    fn compile(&self, source: &str, bytes: &[u8]) -> Result<(Arc<Compiled>, &'static str), Error> {
        let engine = &self.inner.engine;
        let component = Component::new(engine, bytes).map_err(|e| Error::CompilePlugin {
            plugin: source.to_string(),
            message: e.to_string(),
        })?;
        let version = match bindings::wit_version(engine, &component) {
            WitVersion::Supported(v) => v,
            WitVersion::Unsupported(found) => {
                return Err(Error::UnsupportedWitVersion {
                    plugin: source.to_string(),
                    found,
                });
            }
            WitVersion::NotAPlugin(detail) => {
                return Err(Error::NotAPlugin {
                    plugin: source.to_string(),
                    detail,
                });
            }
        };
        let instantiate_err = |e: wasmtime::Error| Error::InstantiatePlugin {
            plugin: source.to_string(),
            message: e.to_string(),
        };
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(instantiate_err)?;
        let compiled = match version {
            "0.1.0" => Compiled::V0_1_0(v0_1_0::ActionPluginPre::new(pre).map_err(instantiate_err)?),
            other => {
                return Err(Error::UnsupportedWitVersion {
                    plugin: source.to_string(),
                    found: other.to_string(),
                });
            }
        };
        Ok((Arc::new(compiled), version))
    }

    fn call_describe(&self, source: &str, compiled: &Compiled) -> Result<PluginInfo, Error> {
        let site = CallSite {
            plugin: source,
            version: "(not described yet)",
            call: "describe",
        };
        match compiled {
            Compiled::V0_1_0(pre) => self.call(&site, |store| {
                let instance = pre.instantiate(&mut *store)?;
                instance.k8up_plugin_planner().call_describe(&mut *store)
            }),
        }
    }

    /// Runs `f` in a fresh store under the limits and turns failures into named errors.
    fn call<R>(
        &self,
        site: &CallSite<'_>,
        f: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, Error> {
        let limits = &self.inner.limits;
        let stderr = MemoryOutputPipe::new(limits.stderr_bytes);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut store = Store::new(
            &self.inner.engine,
            HostState {
                wasi,
                table: ResourceTable::new(),
                limiter: CallLimiter {
                    memory_bytes: limits.memory_bytes,
                    memory_hit: false,
                },
                plugin: Arc::from(site.plugin),
                log_budget: limits.log_lines,
            },
        );
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(deadline_ticks(limits.timeout));
        store.epoch_deadline_trap();

        match f(&mut store) {
            Ok(r) => Ok(r),
            Err(err) => {
                let stderr = tail_lossy(&stderr.contents(), 2048);
                if !stderr.is_empty() {
                    tracing::warn!(plugin = site.plugin, call = site.call, stderr = %stderr, "plugin wrote to stderr before failing");
                }
                Err(classify(err, &store, site, limits, stderr))
            }
        }
    }
}

fn classify(
    err: wasmtime::Error,
    store: &Store<HostState>,
    site: &CallSite<'_>,
    limits: &Limits,
    stderr: String,
) -> Error {
    let plugin = site.plugin.to_string();
    let version = site.version.to_string();
    if store.data().limiter.memory_hit {
        return Error::PluginMemory {
            plugin,
            version,
            call: site.call,
            limit_bytes: limits.memory_bytes,
        };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Error::PluginTimeout {
            plugin,
            version,
            call: site.call,
            limit_ms: limits.timeout.as_millis(),
        },
        Some(trap) => Error::PluginTrap {
            plugin,
            version,
            call: site.call,
            trap: trap.to_string(),
            stderr,
        },
        None => Error::CallPlugin {
            plugin,
            version,
            call: site.call,
            message: format!(
                "{err}{}",
                if stderr.is_empty() {
                    String::new()
                } else {
                    format!(" (stderr: {stderr})")
                }
            ),
        },
    }
}

fn validate_info(source: &str, info: &PluginInfo) -> Result<(), Error> {
    let bad = |detail: String| Error::NotAPlugin {
        plugin: source.to_string(),
        detail,
    };
    if info.name.is_empty() || info.name.len() > 63 {
        return Err(bad(format!(
            "describe returned a name of {} bytes (1 to 63 expected)",
            info.name.len()
        )));
    }
    if info.version.len() > 64 || info.description.len() > 4096 {
        return Err(bad(
            "describe returned an oversized version or description".to_string()
        ));
    }
    if info.actions.is_empty() {
        return Err(bad("describe lists no actions".to_string()));
    }
    Ok(())
}

fn deadline_ticks(timeout: Duration) -> u64 {
    let ticks = timeout.as_millis() / EPOCH_TICK.as_millis().max(1);
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
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

fn tail_lossy(bytes: &[u8], max: usize) -> String {
    let start = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(&bytes[start..]).trim().to_string()
}

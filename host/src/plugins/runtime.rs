//! The component runtime: every line of wasmtime glue lives here and in its submodules.
//!
//! Owns the one [`Engine`] (configured only by `engine_config`, pooling allocator, epoch
//! interruption), where native code comes from (a built-in's precompiled code embedded in the
//! binary when it fits this engine, else the on-disk cache keyed by content hash and the engine's
//! compatibility hash, else a compile that fills the cache), pre-linked `InstancePre`s, and one
//! fresh [`Store`] per call with its WASI context (the worktree as the only preopen, no env, no
//! args, no sockets, stdio captured), deadline and memory cap. That store is usually made before
//! the call arrives (`ready`), and its deadline, cancellation and guard are armed when it starts.
//! Traps, timeouts and the memory cap become [`CallError`]s naming the plugin. Each contract
//! version has its own bindings module (`v0_1`, `v0_2`); a loaded component keeps the world of
//! its version, and what it answers is converted to the newest types before it leaves here.
//!
//! Must not decide policy or grants (it is handed [`Grants`]), read manifests, or format output for
//! the model. A wasmtime upgrade should touch this module only.

mod engine_config;
mod guarded_fs;
pub mod plain;
mod ready;
mod v0_1;
mod v0_2;

use crate::plugins::contract::Version;
use crate::plugins::manifest::FsAccess;
use crate::worktree::Worktree;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Precompiled, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// How often the epoch advances; deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Most bytes of a plugin's stdout or stderr kept per call (they go to the log).
const STDIO_CAP: usize = 1 << 20;

/// What a plugin was granted: the intersection of its manifest's asks and the config's grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Grants {
    pub fs: FsAccess,
    pub search: bool,
    pub exec: bool,
    pub ast: bool,
    /// The memory store; only ever granted to a built-in plugin.
    pub memory: bool,
    pub net: Vec<String>,
    /// Environment the config passes to the plugin's commands.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
}

impl Grants {
    /// What a read-only tool of a plugin holding these grants gets: at most a read-only view of
    /// the worktree, and no commands.
    pub fn for_read_only_tool(&self) -> Self {
        use crate::plugins::manifest::FsAccess;
        Self {
            fs: match self.fs {
                FsAccess::ReadWrite => FsAccess::Read,
                other => other,
            },
            exec: false,
            memory: false,
            ..self.clone()
        }
    }
}

/// Per-call resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub timeout: Duration,
    pub memory_bytes: usize,
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            memory_bytes: 256 << 20,
            output_bytes: 256 << 10,
        }
    }
}

/// Everything one call needs besides the component.
#[derive(Debug, Clone)]
pub struct CallEnv {
    pub plugin: Arc<str>,
    pub worktree: Option<Arc<Worktree>>,
    pub grants: Arc<Grants>,
    pub limits: Limits,
    /// The plugin's working directory for commands, relative to the worktree; kept across calls.
    pub session_cwd: Arc<std::sync::Mutex<PathBuf>>,
    /// Set to stop the call early (Ctrl-C); checked every epoch tick.
    pub cancel: Option<Arc<AtomicBool>>,
    /// What each command the plugin runs may take (`[sandbox]`).
    pub commands: crate::sandbox::Resources,
    /// Where the call's progress reports go, if anyone is watching.
    pub progress: Option<ProgressSink>,
}

/// How far a running call has got, as a plugin reports it (contract 0.2's `progress`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: Option<u64>,
    pub message: String,
}

/// Receives a call's progress reports, on the thread that runs the call.
#[derive(Clone)]
pub struct ProgressSink(Arc<dyn Fn(Progress) + Send + Sync>);

impl ProgressSink {
    pub fn new(f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    fn report(&self, p: Progress) {
        (self.0)(p)
    }
}

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}

/// One tool as the component describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub input_schema: String,
    /// JSON Schema of the structured output, for a tool that gives one (contract 0.2 on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<String>,
    pub read_only: bool,
}

/// What a tool call answers: text for the model, and the same as JSON for a tool that gives a
/// structured output (contract 0.2 on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    pub text: String,
    pub structured: Option<String>,
}

/// A tool's own failure, as the contract's `tool-error` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolFailure {
    InvalidInput(String),
    UnknownTool(String),
    Denied(String),
    Failed(String),
}

impl std::fmt::Display for ToolFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToolFailure::InvalidInput(m) => write!(f, "invalid input: {m}"),
            ToolFailure::UnknownTool(m) => write!(f, "unknown tool: {m}"),
            ToolFailure::Denied(m) => write!(f, "denied: {m}"),
            ToolFailure::Failed(m) => f.write_str(m),
        }
    }
}

/// Setting up the runtime or loading a component failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot start the WebAssembly engine: {0}")]
    Engine(String),
    #[error("plugin `{plugin}`: cannot compile its component: {message}")]
    Compile { plugin: String, message: String },
    #[error("plugin `{plugin}`: cannot link its component: {message}")]
    Link { plugin: String, message: String },
}

/// A call that did not come back with an answer from the plugin.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CallError {
    #[error("plugin `{plugin}` ran past its {}s deadline and was stopped (raise it in .cove/config.toml: [plugins.{plugin}] timeout_ms = ...)", .after.as_secs_f64())]
    Timeout { plugin: String, after: Duration },
    #[error(
        "plugin `{plugin}` tried to use more than its {limit_mb} MiB memory cap and was stopped (raise it in .cove/config.toml: [plugins.{plugin}] memory_mb = ...)"
    )]
    Memory { plugin: String, limit_mb: usize },
    #[error("plugin `{plugin}` crashed (trap): {message}")]
    Trap { plugin: String, message: String },
    #[error("plugin `{plugin}`: cannot start the call: {message}")]
    Setup { plugin: String, message: String },
    #[error("plugin `{plugin}` was stopped: the call was cancelled")]
    Cancelled { plugin: String },
}

/// Why the epoch callback stopped a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupt {
    Deadline,
    Cancelled,
}

impl std::fmt::Display for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Interrupt::Deadline => "deadline reached",
            Interrupt::Cancelled => "cancelled",
        })
    }
}

impl std::error::Error for Interrupt {}

/// Where a component's native code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeOrigin {
    /// Precompiled when the binary was built, and carried inside it.
    Embedded,
    /// The on-disk cache.
    Cache,
    /// Compiled now (and written to the cache, if there is one).
    Compiled,
}

/// A compiled, pre-linked component, ready to instantiate many times, with its spare instance.
#[derive(Clone)]
pub struct Loaded {
    world: ToolWorld,
    pub origin: CodeOrigin,
}

/// A pre-linked world and its spare, in the bindings of the contract version it was built for.
#[derive(Clone)]
enum ToolWorld {
    V0_1(Prepared<v0_1::ToolPre<StoreState>>),
    V0_2(Prepared<v0_2::ToolPre<StoreState>>),
    /// A plain component (no cove world): its exported functions are its tools.
    Plain(plain::LoadedPlain),
}

#[derive(Clone)]
enum PolicyWorld {
    V0_1(Prepared<v0_1::policy_world::PolicyPre<StoreState>>),
    V0_2(Prepared<v0_2::policy_world::PolicyPre<StoreState>>),
}

/// One pre-linked world with its spare slot.
struct Prepared<P: ready::Pre> {
    pre: P,
    spare: Arc<ready::Spare<P::Instance>>,
}

impl<P: ready::Pre> Clone for Prepared<P> {
    fn clone(&self) -> Self {
        Self {
            pre: self.pre.clone(),
            spare: self.spare.clone(),
        }
    }
}

impl<P: ready::Pre> Prepared<P> {
    fn new(pre: P) -> Self {
        Self {
            pre,
            spare: Arc::default(),
        }
    }
}

impl Loaded {
    /// Whether an instance is waiting, made ahead of the next call.
    pub fn has_spare(&self) -> bool {
        match &self.world {
            ToolWorld::V0_1(p) => p.spare.is_ready(),
            ToolWorld::V0_2(p) => p.spare.is_ready(),
            ToolWorld::Plain(p) => p.has_spare(),
        }
    }
}

impl From<plain::LoadedPlain> for Loaded {
    fn from(p: plain::LoadedPlain) -> Self {
        Self {
            origin: p.origin,
            world: ToolWorld::Plain(p),
        }
    }
}

/// A compiled, pre-linked policy component, with its spare instance.
#[derive(Clone)]
pub struct LoadedPolicy {
    world: PolicyWorld,
    pub origin: CodeOrigin,
}

/// `ready::Pre` for each world of each version: they differ only in their types.
macro_rules! pre {
    ($($pre:ty => $instance:ty),* $(,)?) => {$(
        impl ready::Pre for $pre {
            type Instance = $instance;
            fn instantiate_into(&self, store: &mut Store<StoreState>) -> wasmtime::Result<$instance> {
                self.instantiate(store)
            }
        }
    )*};
}
pre!(
    v0_1::ToolPre<StoreState> => v0_1::Tool,
    v0_2::ToolPre<StoreState> => v0_2::Tool,
    v0_1::policy_world::PolicyPre<StoreState> => v0_1::policy_world::Policy,
    v0_2::policy_world::PolicyPre<StoreState> => v0_2::policy_world::Policy,
);

/// What a skill component says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillText {
    pub name: String,
    pub description: String,
    pub instructions: String,
}

/// What a policy is asked about one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRequest {
    pub tool: String,
    pub plugin: String,
    pub input: String,
    pub read_only: bool,
    pub role: String,
    pub turns_left: u32,
    pub tokens_left: u64,
}

/// A policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny(String),
    Ask(String),
}

/// The state of one store: one call.
pub struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryCap,
    host: HostState,
    /// When the call must stop; armed when it starts (the store may have been made earlier).
    deadline: Instant,
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// What host capabilities need to know about the call they serve.
struct HostState {
    plugin: Arc<str>,
    worktree: Option<Arc<Worktree>>,
    grants: Arc<Grants>,
    /// Set when the call is cancelled; long host work (a command) checks it.
    cancel: Option<Arc<AtomicBool>>,
    /// Where `progress` reports go during the call.
    progress: Option<ProgressSink>,
    session_cwd: Arc<std::sync::Mutex<PathBuf>>,
    commands: crate::sandbox::Resources,
    /// What `.git` and `.cove` are, so no write reaches them (see `guarded_fs`).
    guard: guarded_fs::Guard,
}

impl HostState {
    fn not_granted(&self, cap: &str, fix: &str) -> String {
        let p = &self.plugin;
        format!(
            "plugin `{p}` was not granted the `{cap}` capability: its plugin.toml must ask for it under [capabilities] \
             ({fix}) and, for a plugin that is not built in, .cove/config.toml must allow it ([plugins.{p}] {fix})"
        )
    }
}

/// Caps linear memory; remembers that it said no so the error can say why.
struct MemoryCap {
    limit: usize,
    exceeded: bool,
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = true;
            return Err(wasmtime::format_err!(
                "memory cap of {} MiB reached",
                self.limit >> 20
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.clone();
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("cove-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the epoch thread; plugin deadlines will not fire: {e}");
        }
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The engine, the linker for each contract version, the compile cache, and the thread that
/// prepares instances ahead of calls.
pub struct Runtime {
    engine: Engine,
    linker: Linker<StoreState>,
    cache_dir: Option<PathBuf>,
    engine_hash: u64,
    /// Components already made in this process, so that a subagent's registry loading the same
    /// plugin neither compiles nor reads the disk cache again. Keyed by a built-in's native code
    /// (its address: it is static) or by the hash of a component's bytes.
    made: std::sync::Mutex<std::collections::HashMap<MadeKey, Component>>,
    worker: ready::Worker,
    _ticker: EpochTicker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum MadeKey {
    Native(usize, usize),
    Bytes([u8; 32]),
}

impl Runtime {
    /// Start the engine. `cache_dir` is where compiled native code is kept (none: compile every time).
    ///
    /// # Errors
    /// [`RuntimeError::Engine`] when wasmtime cannot be configured on this machine.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, RuntimeError> {
        let engine_err = |e: wasmtime::Error| RuntimeError::Engine(format!("{e:#}"));
        let engine = Engine::new(&engine_config::config()).map_err(engine_err)?;

        let mut linker = Linker::new(&engine);
        guarded_fs::add_wasi_to_linker(&mut linker).map_err(engine_err)?;
        // Both versions' imports, under their own names (`cove:plugin/search@0.1.0` and
        // `@0.2.0`); 0.1's are answered by converting to 0.2's.
        v0_2::Tool::add_to_linker::<StoreState, wasmtime::component::HasSelf<StoreState>>(
            &mut linker,
            |s| s,
        )
        .map_err(engine_err)?;
        v0_1::Tool::add_to_linker::<StoreState, wasmtime::component::HasSelf<StoreState>>(
            &mut linker,
            |s| s,
        )
        .map_err(engine_err)?;

        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = hasher.finish();
        let ticker = EpochTicker::start(&engine);
        Ok(Self {
            engine,
            linker,
            cache_dir,
            engine_hash,
            made: std::sync::Mutex::default(),
            worker: ready::Worker::start(),
            _ticker: ticker,
        })
    }

    fn cache_path(&self, hash: &blake3::Hash) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let key = format!("{}-{:016x}.cwasm", hash.to_hex(), self.engine_hash);
        Some(dir.join("components").join(key))
    }

    /// The component made earlier in this process under `key`, if any.
    fn made(&self, key: MadeKey) -> Option<Component> {
        self.made.lock().ok()?.get(&key).cloned()
    }

    fn keep_made(&self, key: MadeKey, c: &Component) {
        if let Ok(mut made) = self.made.lock() {
            made.insert(key, c.clone());
        }
    }

    /// Load a tool (or skill) component built for contract `version` and pre-link it in that
    /// version's world. Its native code comes from `native` (a built-in's code, precompiled when
    /// cove was built) when that fits this engine, else from the cache, else from compiling
    /// `bytes`.
    ///
    /// # Errors
    /// [`RuntimeError::Compile`] for a component wasmtime rejects; [`RuntimeError::Link`] when it
    /// imports something this host does not provide or does not export the version's world.
    pub fn load(
        &self,
        plugin: &str,
        version: Version,
        bytes: &[u8],
        native: Option<&[u8]>,
    ) -> Result<Loaded, RuntimeError> {
        let (component, origin) = self.component(plugin, bytes, native)?;
        let link = |e: wasmtime::Error| RuntimeError::Link {
            plugin: plugin.into(),
            message: link_message(&e),
        };
        let pre = self.linker.instantiate_pre(&component).map_err(link)?;
        let world = match version {
            Version::V0_1 => ToolWorld::V0_1(Prepared::new(v0_1::ToolPre::new(pre).map_err(link)?)),
            Version::V0_2 => ToolWorld::V0_2(Prepared::new(v0_2::ToolPre::new(pre).map_err(link)?)),
        };
        Ok(Loaded { world, origin })
    }

    /// Load a policy component (as [`Runtime::load`] does) and pre-link it.
    ///
    /// # Errors
    /// As [`Runtime::load`].
    pub fn load_policy(
        &self,
        plugin: &str,
        version: Version,
        bytes: &[u8],
        native: Option<&[u8]>,
    ) -> Result<LoadedPolicy, RuntimeError> {
        let (component, origin) = self.component(plugin, bytes, native)?;
        let link = |e: wasmtime::Error| RuntimeError::Link {
            plugin: plugin.into(),
            message: link_message(&e),
        };
        let pre = self.linker.instantiate_pre(&component).map_err(link)?;
        let world = match version {
            Version::V0_1 => PolicyWorld::V0_1(Prepared::new(
                v0_1::policy_world::PolicyPre::new(pre).map_err(link)?,
            )),
            Version::V0_2 => PolicyWorld::V0_2(Prepared::new(
                v0_2::policy_world::PolicyPre::new(pre).map_err(link)?,
            )),
        };
        Ok(LoadedPolicy { world, origin })
    }

    /// Ask a policy about one call, in a fresh instance.
    ///
    /// # Errors
    /// [`CallError`] when the policy traps, times out or hits its memory cap (callers deny then).
    pub fn decide(
        &self,
        policy: &LoadedPolicy,
        env: &CallEnv,
        req: &PolicyRequest,
    ) -> Result<Verdict, CallError> {
        use v0_1::Conv;
        use v0_2::policy_world::exports::cove::plugin::policy_api as api;
        let wit_req = api::Request {
            tool: req.tool.clone(),
            plugin: req.plugin.clone(),
            input: req.input.clone(),
            read_only: req.read_only,
            role: req.role.clone(),
            budget: api::Budget {
                turns_left: req.turns_left,
                tokens_left: req.tokens_left,
            },
        };
        let verdict = match &policy.world {
            PolicyWorld::V0_2(p) => self.with_ready(p, env, |i, store| {
                i.cove_plugin_policy_api().call_decide(store, &wit_req)
            })?,
            PolicyWorld::V0_1(p) => {
                let old_req = wit_req.conv();
                self.with_ready(p, env, |i, store| {
                    i.cove_plugin_policy_api().call_decide(store, &old_req)
                })?
                .conv()
            }
        };
        Ok(match verdict {
            api::Verdict::Allow => Verdict::Allow,
            api::Verdict::Deny(m) => Verdict::Deny(m),
            api::Verdict::Ask(m) => Verdict::Ask(m),
        })
    }

    /// The component for `bytes`: from the embedded native code, from the disk cache, or
    /// compiled (and then cached).
    fn component(
        &self,
        plugin: &str,
        bytes: &[u8],
        native: Option<&[u8]>,
    ) -> Result<(Component, CodeOrigin), RuntimeError> {
        if let Some(native) = native {
            let key = MadeKey::Native(native.as_ptr() as usize, native.len());
            if let Some(c) = self.made(key) {
                return Ok((c, CodeOrigin::Embedded));
            }
            match self.embedded(native) {
                Ok(c) => {
                    self.keep_made(key, &c);
                    return Ok((c, CodeOrigin::Embedded));
                }
                Err(why) => tracing::debug!(
                    plugin,
                    "not using the native code built into cove ({why}); using the cache or compiling"
                ),
            }
        }
        let hash = blake3::hash(bytes);
        let key = MadeKey::Bytes(*hash.as_bytes());
        if let Some(c) = self.made(key) {
            return Ok((c, CodeOrigin::Cache));
        }
        let cache = self.cache_path(&hash);
        if let Some(path) = cache.as_deref().filter(|p| p.exists()) {
            // SAFETY: the file is in cove's own cache directory, written by `store_in_cache` from
            // `Component::serialize` of this same engine configuration (the name carries the
            // engine's compatibility hash); wasmtime checks that header again on load.
            match unsafe { Component::deserialize_file(&self.engine, path) } {
                Ok(c) => {
                    self.keep_made(key, &c);
                    return Ok((c, CodeOrigin::Cache));
                }
                Err(e) => tracing::warn!(
                    plugin,
                    "ignoring unusable cached code {}: {e:#}",
                    path.display()
                ),
            }
        }
        let started = Instant::now();
        let c = Component::new(&self.engine, bytes).map_err(|e| RuntimeError::Compile {
            plugin: plugin.into(),
            message: format!("{e:#}"),
        })?;
        tracing::debug!(plugin, elapsed = ?started.elapsed(), "compiled component");
        if let Some(path) = &cache {
            store_in_cache(&c, path);
        }
        self.keep_made(key, &c);
        Ok((c, CodeOrigin::Compiled))
    }

    /// A built-in's native code, if it was made for an engine like this one.
    fn embedded(&self, native: &[u8]) -> Result<Component, String> {
        if Engine::detect_precompiled(native) != Some(Precompiled::Component) {
            return Err("it is not a precompiled component".into());
        }
        // SAFETY: `native` is only ever a built-in's code from `builtin::BUILTIN`: bytes that
        // host/build.rs produced with `Engine::precompile_component` from the first-party
        // component it embeds beside them, and that are compiled into this binary's read-only
        // data, so nothing outside the build can supply or change them. wasmtime checks the
        // header (its version, the target, the compiler flags, the engine's tunables) against this
        // engine and refuses a mismatch, which the caller answers by compiling instead.
        unsafe { Component::deserialize(&self.engine, native) }.map_err(|e| format!("{e:#}"))
    }

    /// A store with `pre` instantiated for `env`: the spare made before this call if it fits,
    /// else one made now. Either way the call's own deadline, cancellation and guard are armed.
    fn ready<P: ready::Pre>(
        &self,
        pre: &P,
        spare: &Arc<ready::Spare<P::Instance>>,
        env: &CallEnv,
    ) -> Result<ready::Ready<P::Instance>, CallError> {
        let armed = match spare.take(env) {
            Some(mut r) => {
                if arm(&mut r.store, env) {
                    Some(r)
                } else {
                    self.worker.retire(r.store);
                    None
                }
            }
            None => None,
        };
        match armed {
            Some(r) => Ok(r),
            None => self.instantiate_now(pre, env),
        }
    }

    /// A store made and instantiated now, for a call that found no spare.
    fn instantiate_now<P: ready::Pre>(
        &self,
        pre: &P,
        env: &CallEnv,
    ) -> Result<ready::Ready<P::Instance>, CallError> {
        let (mut store, stdio) = new_store(&self.engine, env)?;
        match pre.instantiate_into(&mut store) {
            Ok(instance) => Ok(ready::Ready::new(store, instance, stdio, env)),
            Err(e) => {
                stdio.log(&env.plugin);
                let err = classify(e, &store, env, &stdio);
                self.worker.retire(store);
                Err(err)
            }
        }
    }

    /// After a call: log what the plugin printed, classify a failure, and hand the store to the
    /// background thread, which drops it and then makes the next spare. Both wait until the call
    /// is over, so they never compete with it for the CPU or the address space.
    fn finish<P: ready::Pre, R>(
        &self,
        (pre, spare): (&P, &Arc<ready::Spare<P::Instance>>),
        ready: ready::Ready<P::Instance>,
        env: &CallEnv,
        result: wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        ready.stdio.log(&env.plugin);
        let result = result.map_err(|e| classify(e, &ready.store, env, &ready.stdio));
        self.worker
            .after_call(ready.store, &self.engine, pre, spare, env);
        result
    }

    /// Run `f` on a ready instance of `p` (its spare, or one made now), then finish the call.
    fn with_ready<P: ready::Pre, R>(
        &self,
        p: &Prepared<P>,
        env: &CallEnv,
        f: impl FnOnce(&P::Instance, &mut Store<StoreState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let mut ready = self.ready(&p.pre, &p.spare, env)?;
        let result = f(&ready.instance, &mut ready.store);
        self.finish((&p.pre, &p.spare), ready, env, result)
    }

    /// Instantiate in a fresh store and drop it, calling nothing: the bench times instantiation
    /// alone with this.
    ///
    /// # Errors
    /// [`CallError`] when instantiation traps or fails.
    pub fn instantiate(&self, loaded: &Loaded, env: &CallEnv) -> Result<(), CallError> {
        let (mut store, stdio) = new_store(&self.engine, env)?;
        let result = match &loaded.world {
            ToolWorld::V0_1(p) => p.pre.instantiate(&mut store).map(drop),
            ToolWorld::V0_2(p) => p.pre.instantiate(&mut store).map(drop),
            ToolWorld::Plain(p) => p.instantiate(&mut store),
        };
        result.map_err(|e| classify(e, &store, env, &stdio))
    }

    /// Ask a tool component what it offers.
    ///
    /// # Errors
    /// [`CallError`] when the component traps, times out or hits its memory cap.
    pub fn describe(&self, loaded: &Loaded, env: &CallEnv) -> Result<Vec<ToolSpec>, CallError> {
        let specs = match &loaded.world {
            // Its functions' types say it all; making the first call's instance is what is left.
            ToolWorld::Plain(p) => {
                self.prepare_plain(p, env);
                return Ok(p.specs());
            }
            ToolWorld::V0_2(p) => self.with_ready(p, env, |i, store| {
                i.cove_plugin_tool_api().call_describe(store)
            })?,
            ToolWorld::V0_1(p) => self
                .with_ready(p, env, |i, store| {
                    i.cove_plugin_tool_api().call_describe(store)
                })?
                .into_iter()
                .map(v0_1::spec)
                .collect(),
        };
        Ok(specs
            .into_iter()
            .map(|s| ToolSpec {
                name: s.name,
                description: s.description,
                input_schema: s.input_schema,
                output_schema: s.output_schema,
                read_only: s.read_only,
            })
            .collect())
    }

    /// Ask a skill component (loaded as a tool component: a skill exports `tool-api` too) for
    /// its name, description and instructions, in a fresh instance of its `skill` world.
    ///
    /// # Errors
    /// [`CallError`] when it does not export the skill world, traps, times out or hits its
    /// memory cap.
    pub fn skill_text(&self, loaded: &Loaded, env: &CallEnv) -> Result<SkillText, CallError> {
        let not_skill = |e: wasmtime::Error| CallError::Setup {
            plugin: env.plugin.to_string(),
            message: format!("it does not export the skill world: {e:#}"),
        };
        // The two versions' skill-api is the same three functions.
        macro_rules! text {
            ($pre:expr, $store:expr) => {
                $pre.instantiate(&mut *$store).and_then(|instance| {
                    let api = instance.cove_plugin_skill_api();
                    Ok(SkillText {
                        name: api.call_name(&mut *$store)?,
                        description: api.call_description(&mut *$store)?,
                        instructions: api.call_instructions(&mut *$store)?,
                    })
                })
            };
        }
        if let ToolWorld::Plain(_) = &loaded.world {
            return Err(CallError::Setup {
                plugin: env.plugin.to_string(),
                message: "it is a plain component, which exports no skill world".into(),
            });
        }
        let (mut store, stdio) = new_store(&self.engine, env)?;
        let result = match &loaded.world {
            ToolWorld::Plain(_) => Err(wasmtime::format_err!("a plain component")),
            ToolWorld::V0_1(p) => {
                let pre = v0_1::skill_world::SkillPre::new(p.pre.instance_pre().clone())
                    .map_err(not_skill)?;
                text!(pre, &mut store)
            }
            ToolWorld::V0_2(p) => {
                let pre = v0_2::skill_world::SkillPre::new(p.pre.instance_pre().clone())
                    .map_err(not_skill)?;
                text!(pre, &mut store)
            }
        };
        stdio.log(&env.plugin);
        let result = result.map_err(|e| classify(e, &store, env, &stdio));
        self.worker.retire(store);
        let mut text = result?;
        text.instructions = cut(&text.instructions, env.limits.output_bytes).into_owned();
        Ok(text)
    }

    /// Call one tool in a fresh instance.
    ///
    /// # Errors
    /// [`CallError`] when the component traps, times out or hits its memory cap. A tool that
    /// returns its own error yields `Ok(Err(ToolFailure))`.
    pub fn call(
        &self,
        loaded: &Loaded,
        env: &CallEnv,
        tool: &str,
        input: &str,
    ) -> Result<Result<ToolOutput, ToolFailure>, CallError> {
        let answer = match &loaded.world {
            ToolWorld::Plain(p) => return self.call_plain(p, env, tool, input),
            ToolWorld::V0_2(p) => self.with_ready(p, env, |i, store| {
                i.cove_plugin_tool_api().call_call(store, tool, input)
            })?,
            ToolWorld::V0_1(p) => v0_1::answer(self.with_ready(p, env, |i, store| {
                i.cove_plugin_tool_api().call_call(store, tool, input)
            })?),
        };
        use v0_2::cove::plugin::types::ToolError as E;
        Ok(match answer {
            Ok(out) => Ok(ToolOutput {
                text: cut(&out.text, env.limits.output_bytes).into_owned(),
                // Cut JSON would not parse: one over the cap is left out, the text still goes.
                structured: out
                    .structured
                    .filter(|s| s.len() <= env.limits.output_bytes),
            }),
            Err(E::InvalidInput(m)) => Err(ToolFailure::InvalidInput(m)),
            Err(E::UnknownTool(m)) => Err(ToolFailure::UnknownTool(m)),
            Err(E::Denied(m)) => Err(ToolFailure::Denied(m)),
            Err(E::Failed(m)) => Err(ToolFailure::Failed(m)),
        })
    }
}

/// A fresh store for one call of the plugin `env` describes: its WASI context (the worktree
/// preopened as the grants say, stdio captured), memory cap, guard, and the epoch callback that
/// stops it at its deadline or when it is cancelled.
fn new_store(engine: &Engine, env: &CallEnv) -> Result<(Store<StoreState>, Stdio), CallError> {
    let setup = |message: String| CallError::Setup {
        plugin: env.plugin.to_string(),
        message,
    };
    let mut b = WasiCtx::builder();
    b.allow_blocking_current_thread(true);
    let stdio = Stdio {
        out: MemoryOutputPipe::new(STDIO_CAP),
        err: MemoryOutputPipe::new(STDIO_CAP),
    };
    b.stdout(stdio.out.clone()).stderr(stdio.err.clone());
    if let Some(wt) = &env.worktree {
        let perms = match env.grants.fs {
            FsAccess::None => None,
            FsAccess::Read => Some(wasmtime_wasi::FsPerms::ReadOnly),
            FsAccess::ReadWrite => Some(wasmtime_wasi::FsPerms::ReadWrite),
        };
        if let Some(perms) = perms {
            let root = wt.root();
            let guest = root.to_string_lossy();
            b.preopened_dir(root, &*guest, perms)
                .map_err(|e| setup(format!("cannot open worktree: {e:#}")))?;
            b.preopened_dir(root, ".", perms)
                .map_err(|e| setup(format!("cannot open worktree: {e:#}")))?;
        }
    }
    let state = StoreState {
        wasi: b.build(),
        table: ResourceTable::new(),
        limiter: MemoryCap {
            limit: env.limits.memory_bytes,
            exceeded: false,
        },
        host: HostState {
            plugin: env.plugin.clone(),
            worktree: env.worktree.clone(),
            grants: env.grants.clone(),
            cancel: env.cancel.clone(),
            progress: env.progress.clone(),
            session_cwd: env.session_cwd.clone(),
            commands: env.commands,
            guard: guard_for(env),
        },
        deadline: Instant::now() + env.limits.timeout,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    // Every tick, check for cancellation and the wall-clock deadline of the call under way.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| {
        let state = ctx.data();
        if state
            .host
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Err(wasmtime::Error::new(Interrupt::Cancelled));
        }
        if Instant::now() >= state.deadline {
            return Err(wasmtime::Error::new(Interrupt::Deadline));
        }
        Ok(wasmtime::UpdateDeadline::Continue(1))
    });
    Ok((store, stdio))
}

/// What `.git` and `.cove` are in `env`'s worktree right now.
fn guard_for(env: &CallEnv) -> guarded_fs::Guard {
    env.worktree
        .as_ref()
        .map(|w| guarded_fs::Guard::new(w.root()))
        .unwrap_or_default()
}

/// Arm a store made before its call for the call now starting: its deadline counts from now, it
/// answers this call's cancellation, and its guard sees `.git` and `.cove` as they are now (the
/// model may have made them since). False when the worktree's root is no longer the directory
/// the store opened: then the store must not be used.
fn arm(store: &mut Store<StoreState>, env: &CallEnv) -> bool {
    let guard = guard_for(env);
    let state = store.data_mut();
    if !state.host.guard.same_root(&guard) {
        return false;
    }
    state.host.guard = guard;
    state.host.cancel = env.cancel.clone();
    state.host.progress = env.progress.clone();
    state.deadline = Instant::now() + env.limits.timeout;
    store.set_epoch_deadline(1);
    true
}

/// A plugin's captured stdout and stderr.
struct Stdio {
    out: MemoryOutputPipe,
    err: MemoryOutputPipe,
}

impl Stdio {
    fn log(&self, plugin: &str) {
        for (stream, pipe) in [("stdout", &self.out), ("stderr", &self.err)] {
            let bytes = pipe.contents();
            if !bytes.is_empty() {
                tracing::debug!(target: "cove::plugin", plugin, stream, "{}", String::from_utf8_lossy(&bytes).trim_end());
            }
        }
    }

    /// The last lines the plugin wrote to stderr (a Rust panic message lands there).
    fn stderr_tail(&self) -> String {
        let bytes = self.err.contents();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(3)..].join(" / ")
    }
}

fn classify(
    err: wasmtime::Error,
    store: &Store<StoreState>,
    env: &CallEnv,
    stdio: &Stdio,
) -> CallError {
    let plugin = env.plugin.to_string();
    if store.data().limiter.exceeded {
        return CallError::Memory {
            plugin,
            limit_mb: env.limits.memory_bytes >> 20,
        };
    }
    match err.downcast_ref::<Interrupt>() {
        Some(Interrupt::Deadline) => {
            return CallError::Timeout {
                plugin,
                after: env.limits.timeout,
            };
        }
        Some(Interrupt::Cancelled) => return CallError::Cancelled { plugin },
        None => {}
    }
    if matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        return CallError::Timeout {
            plugin,
            after: env.limits.timeout,
        };
    }
    let mut message = match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{err:#}"),
    };
    let tail = stdio.stderr_tail();
    if !tail.is_empty() {
        message = format!("{message}; its stderr said: {}", cut(&tail, 1000));
    }
    CallError::Trap { plugin, message }
}

fn link_message(e: &wasmtime::Error) -> String {
    let text = format!("{e:#}");
    if text.contains("was not found") || text.contains("not defined") || text.contains("missing") {
        format!(
            "{text}; it imports an interface this host does not provide (cove offers WASI 0.2 and cove:plugin/{{log,search,exec,ast,memory}})"
        )
    } else {
        text
    }
}

fn store_in_cache(component: &Component, path: &Path) {
    let write = || -> std::io::Result<()> {
        let bytes = component.serialize().map_err(std::io::Error::other)?;
        let dir = path
            .parent()
            .ok_or_else(|| std::io::Error::other("cache path has no parent"))?;
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".tmp-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        tracing::warn!(
            "cannot write compiled code to the cache at {}: {e}",
            path.display()
        );
    }
}

/// `text` cut to at most `max` bytes, keeping the head and the tail and saying what was cut.
pub fn cut(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let head_end = floor_char_boundary(text, max * 2 / 3);
    let tail_start = ceil_char_boundary(text, text.len() - max / 3);
    let cut_bytes = tail_start - head_end;
    let cut_lines = text[head_end..tail_start].matches('\n').count();
    format!(
        "{}\n[... {cut_bytes} bytes ({cut_lines} lines) cut from the middle of this output; page with offset/limit or narrow the search to see them ...]\n{}",
        &text[..head_end],
        &text[tail_start..]
    )
    .into()
}

/// The largest character boundary of `s` at or below byte `i`.
pub(crate) fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::builtin::BUILTIN;
    use crate::plugins::manifest::{Kind, Manifest};

    type Res = anyhow::Result<()>;

    /// The contract the first-party components and the Rust test guests are built for.
    const V: crate::plugins::contract::Version = crate::plugins::contract::Version::V0_2;

    fn evil() -> anyhow::Result<Vec<u8>> {
        Ok(std::fs::read(
            Path::new(env!("COVE_TEST_GUESTS")).join("cove_guest_evil.wasm"),
        )?)
    }

    fn worktree(dir: &Path) -> anyhow::Result<Arc<Worktree>> {
        std::fs::create_dir_all(dir.join(".git"))?;
        Ok(Arc::new(Worktree::open(dir)?))
    }

    fn env_for(wt: &Arc<Worktree>, fs: FsAccess, timeout: Duration) -> CallEnv {
        CallEnv {
            plugin: "evil".into(),
            worktree: Some(wt.clone()),
            grants: Arc::new(Grants {
                fs,
                ..Grants::default()
            }),
            limits: Limits {
                timeout,
                ..Limits::default()
            },
            session_cwd: Arc::default(),
            cancel: None,
            commands: crate::sandbox::Resources::default(),
            progress: None,
        }
    }

    fn precompile_with(config: &wasmtime::Config, wasm: &[u8]) -> anyhow::Result<Vec<u8>> {
        Engine::new(config)
            .and_then(|e| e.precompile_component(wasm))
            .map_err(|e| anyhow::anyhow!("{e:#}"))
    }

    /// Wait for the background thread to make a spare (how long it takes is not the point).
    fn spare_of(loaded: &Loaded) -> &ready::Spare<v0_2::Tool> {
        match &loaded.world {
            ToolWorld::V0_2(p) => &p.spare,
            ToolWorld::V0_1(_) | ToolWorld::Plain(_) => panic!("the evil guest is built for 0.2"),
        }
    }

    fn wait_for_spare(loaded: &Loaded) -> bool {
        for _ in 0..20_000 {
            if loaded.has_spare() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    #[test]
    fn every_builtin_runs_from_the_native_code_built_into_the_binary() -> Res {
        let rt = Runtime::new(None)?;
        for b in BUILTIN {
            let m = Manifest::parse(b.manifest, Path::new("built-in"))?;
            assert!(
                b.native.is_some(),
                "build.rs made no native code for `{}`",
                m.name
            );
            let version =
                crate::plugins::contract::version(m.contract.as_deref().unwrap_or("none"))?;
            assert_eq!(
                version.as_str(),
                crate::plugins::contract::NEWEST,
                "`{}`",
                m.name
            );
            let origin = match m.kind {
                Kind::Policy => rt.load_policy(&m.name, version, b.wasm, b.native)?.origin,
                _ => rt.load(&m.name, version, b.wasm, b.native)?.origin,
            };
            assert_eq!(origin, CodeOrigin::Embedded, "`{}`", m.name);
        }
        Ok(())
    }

    #[test]
    fn native_code_from_another_engine_configuration_is_refused_and_compiled_instead() -> Res {
        let smallest = BUILTIN
            .iter()
            .filter(|b| b.manifest.contains("kind = \"policy\""))
            .min_by_key(|b| b.wasm.len())
            .ok_or_else(|| anyhow::anyhow!("no built-in policy"))?;
        let wasm = smallest.wasm;
        // The same configuration but one setting: code made by it must not run here.
        let mut other = engine_config::config();
        other.epoch_interruption(false);
        let foreign = precompile_with(&other, wasm)?;

        let cache = tempfile::tempdir()?;
        let rt = Runtime::new(Some(cache.path().to_path_buf()))?;
        let first = rt.load_policy("p", V, wasm, Some(&foreign))?;
        assert_eq!(first.origin, CodeOrigin::Compiled);
        // The fallback filled the cache, so the next mismatch loads from it.
        let second = rt.load_policy("p", V, wasm, Some(&foreign))?;
        assert_eq!(second.origin, CodeOrigin::Cache);
        // Bytes that are not native code at all are refused the same way.
        let rt = Runtime::new(None)?;
        assert_eq!(
            rt.load_policy("p", V, wasm, Some(wasm))?.origin,
            CodeOrigin::Compiled
        );
        // Code this configuration made is used as it is.
        let own = precompile_with(&engine_config::config(), wasm)?;
        assert_eq!(
            rt.load_policy("p", V, wasm, Some(&own))?.origin,
            CodeOrigin::Embedded
        );
        Ok(())
    }

    #[test]
    fn a_spare_serves_one_call_with_the_privileges_it_was_made_for() -> Res {
        let dir = tempfile::tempdir()?;
        let wt = worktree(dir.path())?;
        let rt = Runtime::new(None)?;
        let loaded = rt.load("evil", V, &evil()?, None)?;
        let reader = env_for(&wt, FsAccess::Read, Duration::from_secs(30));
        rt.describe(&loaded, &reader)?;
        assert!(wait_for_spare(&loaded), "no spare was made after describe");

        // A call with other grants does not get it, and it is dropped rather than kept.
        let writer = env_for(&wt, FsAccess::ReadWrite, Duration::from_secs(30));
        assert!(spare_of(&loaded).take(&writer).is_none());
        assert!(!loaded.has_spare());

        // The same privileges get it, once.
        rt.describe(&loaded, &reader)?;
        assert!(wait_for_spare(&loaded));
        assert!(spare_of(&loaded).take(&reader).is_some());
        assert!(spare_of(&loaded).take(&reader).is_none());

        // Another registry's plugin (its own session directory) never gets it either.
        rt.describe(&loaded, &reader)?;
        assert!(wait_for_spare(&loaded));
        let elsewhere = env_for(&wt, FsAccess::Read, Duration::from_secs(30));
        assert!(spare_of(&loaded).take(&elsewhere).is_none());
        Ok(())
    }

    #[test]
    fn a_spare_gets_its_deadline_and_cancellation_when_its_call_starts() -> Res {
        let dir = tempfile::tempdir()?;
        let wt = worktree(dir.path())?;
        let rt = Runtime::new(None)?;
        let loaded = rt.load("evil", V, &evil()?, None)?;
        let env = env_for(&wt, FsAccess::Read, Duration::from_millis(50));
        rt.describe(&loaded, &env)?;
        assert!(wait_for_spare(&loaded));
        // Older than its timeout: the deadline counts from the call, not from when it was made.
        std::thread::sleep(Duration::from_millis(200));
        let echo = rt.call(&loaded, &env, "echo", r#"{"text":"hi"}"#)?;
        assert_eq!(echo.map(|o| o.text), Ok("hi".to_string()));

        assert!(wait_for_spare(&loaded));
        let spin = rt.call(&loaded, &env, "spin", "{}");
        assert!(matches!(spin, Err(CallError::Timeout { .. })), "{spin:?}");

        assert!(wait_for_spare(&loaded));
        let mut cancelled = env_for(&wt, FsAccess::Read, Duration::from_secs(30));
        cancelled.session_cwd = env.session_cwd.clone();
        cancelled.cancel = Some(Arc::new(AtomicBool::new(true)));
        let spin = rt.call(&loaded, &cancelled, "spin", "{}");
        assert!(matches!(spin, Err(CallError::Cancelled { .. })), "{spin:?}");
        Ok(())
    }

    #[test]
    fn cut_keeps_head_and_tail() {
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let out = cut(&text, 300);
        assert!(out.starts_with("line 0\n"));
        assert!(out.trim_end().ends_with("line 999"));
        assert!(out.contains("cut from the middle"));
        assert!(out.len() < 300 + 150);
        assert_eq!(cut("short", 300), "short");
        let wide = "é".repeat(500);
        assert!(cut(&wide, 101).contains("cut"));
    }
}

//! The WebAssembly runtime: the one module that touches wasmtime.
//!
//! A [`Runtime`] owns one engine (epoch interruption on, compiled code cached
//! on disk and keyed by the component's bytes, so a changed `.wasm` is
//! recompiled), one linker, and the thread that ticks epochs. It loads a
//! plugin directory into a [`PluginSet`]: each good component compiled and
//! pre-instantiated once, each bad one refused with a one-line reason.
//! A [`Connector`] binds a plugin to one connection's [`Broker`]; each call
//! runs in a fresh instance with a memory cap and a CPU budget, and calls
//! from many tasks run concurrently.

pub mod contract;
mod discovery;
pub mod registry;
mod sandbox;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::Instrument;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};

use crate::broker::{Broker, HttpError};
use contract::Bindings;
use contract::{
    AttributeSpec, Capability, ConnectionReport, Descriptor, Group, GroupOperation, GroupPage,
    Match, Operation, Outcome, Page, StoreError, Value,
};
use sandbox::{CallLimits, LogTags, PluginState};

pub use discovery::{RECORD_TYPE, check_value};
pub use registry::{PluginRegistry, ReloadReport};

/// How often the epoch advances; the CPU budget is checked, and a busy
/// plugin yields to other tasks, at this granularity.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The environment variable that turns on a perf map of guest code.
const PERF_MAP_VARIABLE: &str = "PROVISIONER_PERF_MAP";

/// Plugin calls that may run at once, across every plugin: the instance
/// pool's size. Further calls wait for a slot.
const POOL_SLOTS: u32 = 128;

/// Linear memory a finished call's slot keeps resident for the next call,
/// reset with `memset` instead of being unmapped and faulted in again:
/// enough for a batch of 200 records and its JSON.
const KEEP_RESIDENT: usize = 4 << 20;

/// The largest `.wasm` file the host will read.
const MAX_COMPONENT_BYTES: u64 = 64 << 20;

/// Limits that apply to every plugin call.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Linear memory one call's instance may use, in bytes.
    pub memory_limit: usize,
    /// Time a call may spend running guest code (waiting on brokered HTTP
    /// does not count).
    pub cpu_budget: Duration,
    /// Wall-clock ceiling for one call, HTTP included.
    pub call_timeout: Duration,
    /// Where compiled code is cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            memory_limit: 128 << 20,
            cpu_budget: Duration::from_secs(10),
            call_timeout: Duration::from_secs(300),
            cache_dir: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("configuring the WebAssembly engine: {0}")]
    Engine(String),
    #[error("compiled-code cache at {path}: {reason}")]
    Cache { path: PathBuf, reason: String },
    #[error("reading plugin directory {path}: {source}")]
    PluginDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Stops the epoch thread when the runtime goes away.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The engine, the linker and the limits, shared by every plugin.
pub struct Runtime {
    engine: Engine,
    linker: Linker<PluginState>,
    options: RuntimeOptions,
    cache: Option<wasmtime::Cache>,
    /// One permit per slot of the instance pool, so that a call beyond the
    /// pool's size waits for a slot instead of failing.
    slots: tokio::sync::Semaphore,
    _ticker: EpochTicker,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    pub fn new(options: RuntimeOptions) -> Result<Arc<Runtime>, RuntimeError> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // For profiling connectors: with this set, compiled guest code is
        // named in `/tmp/perf-<pid>.map`, so that `perf report` shows the
        // guest's functions instead of bare addresses. Off by default: the
        // map grows with every component loaded.
        if std::env::var_os(PERF_MAP_VARIABLE).is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        // Every call gets a fresh instance; the pooling allocator gives it a
        // slot whose memory is already mapped and resident, where a fresh
        // mapping costs a page fault for every page the guest touches.
        // Where Linux offers PAGEMAP_SCAN (6.7 on), a finished call's slot
        // is reset page by page, only where the guest wrote, instead of
        // with a `memset` of all its memory up to `KEEP_RESIDENT`: about
        // 50 µs a call instead of 100 to 150 for the Salesforce connector.
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_component_instances(POOL_SLOTS)
            .total_core_instances(POOL_SLOTS * 8)
            .total_memories(POOL_SLOTS * 2)
            .total_tables(POOL_SLOTS * 8)
            .total_stacks(POOL_SLOTS)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let cache = match &options.cache_dir {
            Some(dir) => {
                let cache_error = |reason: String| RuntimeError::Cache {
                    path: dir.clone(),
                    reason,
                };
                std::fs::create_dir_all(dir).map_err(|e| cache_error(e.to_string()))?;
                let dir = std::fs::canonicalize(dir).map_err(|e| cache_error(e.to_string()))?;
                let mut cache_config = wasmtime::CacheConfig::new();
                cache_config.with_directory(dir);
                let cache =
                    wasmtime::Cache::new(cache_config).map_err(|e| cache_error(e.to_string()))?;
                config.cache(Some(cache.clone()));
                Some(cache)
            }
            None => None,
        };
        let engine = Engine::new(&config).map_err(|e| RuntimeError::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;
        Bindings::add_to_linker(&mut linker).map_err(|e| RuntimeError::Engine(e.to_string()))?;

        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("wasm-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| RuntimeError::Engine(format!("starting the epoch thread: {e}")))?
        };
        Ok(Arc::new(Runtime {
            engine,
            linker,
            options,
            cache,
            slots: tokio::sync::Semaphore::new(POOL_SLOTS as usize),
            _ticker: EpochTicker {
                stop,
                thread: Some(thread),
            },
        }))
    }

    pub fn options(&self) -> &RuntimeOptions {
        &self.options
    }

    /// Compiled-code cache hits and misses so far, if the cache is on.
    pub fn cache_stats(&self) -> Option<(usize, usize)> {
        self.cache
            .as_ref()
            .map(|c| (c.cache_hits(), c.cache_misses()))
    }

    fn call_limits(&self) -> CallLimits {
        CallLimits {
            memory_bytes: self.options.memory_limit,
            cpu_budget: self.options.cpu_budget,
        }
    }

    /// Loads every `*.wasm` in `dir`. Fails only if the directory cannot be
    /// read; bad files end up in [`PluginSet::refused`], and names that
    /// more than one file claims in [`PluginSet::clashes`].
    pub async fn load_dir(self: &Arc<Self>, dir: &Path) -> Result<PluginSet, RuntimeError> {
        Ok(PluginRegistry::load_with(self.clone(), dir, false)
            .await?
            .snapshot())
    }

    /// Loads one component: validates, compiles (or takes it from the cache),
    /// pre-instantiates, and asks it to describe itself.
    pub async fn load_file(self: &Arc<Self>, path: &Path) -> Result<Plugin, Refusal> {
        let refuse = |reason: String| Refusal {
            path: path.to_path_buf(),
            reason,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| refuse(format!("cannot be read: {e}")))?
            .len();
        if size > MAX_COMPONENT_BYTES {
            return Err(refuse(format!(
                "is {size} bytes; the host reads components up to {MAX_COMPONENT_BYTES} bytes"
            )));
        }
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| refuse(format!("cannot be read: {e}")))?;
        discovery::check_header(&bytes).map_err(refuse)?;

        let engine = self.engine.clone();
        let component = tokio::task::spawn_blocking(move || Component::new(&engine, &bytes))
            .await
            .map_err(|e| refuse(format!("compiling was interrupted: {e}")))?
            .map_err(|e| refuse(format!("is not a valid component: {}", first_line(&e))))?;

        let ty = component.component_type();
        let contract = discovery::contract_version(ty.exports(&self.engine).map(|(name, _)| name))
            .map_err(refuse)?;
        discovery::check_imports(ty.imports(&self.engine).map(|(name, _)| name), &contract)
            .map_err(refuse)?;

        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| refuse(format!("cannot be linked: {}", first_line(&e))))?;
        let pre = Bindings::new(&contract, pre).map_err(|e| {
            refuse(format!(
                "does not match contract {contract}: {}",
                first_line(&e)
            ))
        })?;

        let file_stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut core = PluginCore {
            runtime: self.clone(),
            label: Arc::from(file_stem.as_str()),
            pre,
        };
        let descriptor = core
            .describe()
            .await
            .map_err(|e| refuse(format!("failed to describe itself: {e}")))?;
        let descriptor = discovery::check_descriptor(descriptor).map_err(refuse)?;
        core.label = Arc::from(descriptor.name.as_str());
        Ok(Plugin {
            core,
            descriptor,
            contract,
            path: path.to_path_buf(),
        })
    }
}

fn first_line(error: &wasmtime::Error) -> String {
    let text = format!("{error:#}");
    text.lines().next().unwrap_or_default().to_string()
}

/// A file the host would not load, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused plugin {}: {}", self.path.display(), self.reason)
    }
}

/// What is wrong when more than one file claims the plugin name `name`:
/// the one text that `check`, refusals and status all show.
pub fn clash_reason(name: &str, files: impl IntoIterator<Item = impl fmt::Display>) -> String {
    let files: Vec<String> = files.into_iter().map(|f| f.to_string()).collect();
    format!(
        "plugin name {name} is claimed by more than one file ({}); each is refused until only one claims it: remove or rename all but one",
        files.join(", ")
    )
}

/// The plugins of one directory.
#[derive(Default)]
pub struct PluginSet {
    pub plugins: BTreeMap<String, Arc<Plugin>>,
    pub refused: Vec<Refusal>,
    /// Plugin names more than one file claims, and those files. A one-shot
    /// command serves none of them; a running host keeps the version it
    /// had.
    pub clashes: BTreeMap<String, Vec<PathBuf>>,
}

impl PluginSet {
    pub fn get(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.get(name)
    }

    /// Why `name` is in doubt, if more than one file claims it.
    pub fn clash(&self, name: &str) -> Option<String> {
        self.clashes
            .get(name)
            .map(|files| clash_reason(name, files.iter().map(|f| f.display())))
    }

    /// The refusal of a file whose name suggests it was meant to be `name`,
    /// to explain why a configured plugin is missing.
    pub fn refusal_for(&self, name: &str) -> Option<&Refusal> {
        self.refused.iter().find(|r| file_suggests(&r.path, name))
    }
}

/// Whether a file's name suggests it was meant to provide plugin `name`:
/// `json-store.wasm`, `json_store_connector.wasm`, `json-store-0.2.0.wasm`
/// for `json-store`, not `json-store-extra.wasm`. A refused file's
/// descriptor may be unreadable, and its name is all there is to go by.
pub fn file_suggests(path: &std::path::Path, name: &str) -> bool {
    let wanted = name.replace('-', "_");
    if wanted.is_empty() {
        return false;
    }
    let Some(stem) = path.file_stem() else {
        return false;
    };
    let stem = stem.to_string_lossy().replace('-', "_");
    let rest = match stem.strip_prefix(&wanted) {
        Some(rest) => rest,
        None => return false,
    };
    let rest = rest.strip_prefix("_connector").unwrap_or(rest);
    rest.is_empty()
        || rest
            .strip_prefix('_')
            .is_some_and(|version| version.starts_with(|c: char| c.is_ascii_digit() || c == 'v'))
}

/// One loaded, validated, pre-instantiated component.
pub struct Plugin {
    core: PluginCore,
    descriptor: Descriptor,
    contract: semver::Version,
    path: PathBuf,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.core.label)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.core.label
    }

    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// The contract version the component was built against.
    pub fn contract(&self) -> &semver::Version {
        &self.contract
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What every call needs: the engine and limits, the pre-instantiated
/// component, and the name to tag its log lines with.
struct PluginCore {
    runtime: Arc<Runtime>,
    /// The file stem until the plugin has described itself, then its name.
    label: Arc<str>,
    pre: Bindings,
}

impl PluginCore {
    fn new_store(&self, broker: Option<Arc<Broker>>) -> Store<PluginState> {
        let tags = LogTags {
            plugin: self.label.clone(),
            connection: broker.as_ref().map(|b| Arc::from(b.connection())),
            budget: Default::default(),
        };
        sandbox::new_store(
            &self.runtime.engine,
            tags,
            broker,
            self.runtime.call_limits(),
        )
    }

    async fn describe(&self) -> Result<Descriptor, CallError> {
        let _slot = self.runtime.slots.acquire().await;
        let mut store = self.new_store(None);
        let future = self.pre.describe(&mut store);
        let result = tokio::time::timeout(self.runtime.options.call_timeout, future).await;
        self.report_dropped_output(&store);
        self.settle(&mut store, result)
    }

    /// One line for the output a call dropped past its caps, so that a
    /// flood is visible without filling the log.
    fn report_dropped_output(&self, store: &Store<PluginState>) {
        if let Some((messages, bytes)) = store.data().log_dropped() {
            tracing::warn!(
                plugin = %self.label,
                messages,
                bytes,
                "the plugin wrote more output in one call than the host logs; the rest was dropped"
            );
        }
    }

    /// Turns the outcome of a call into the host's terms, using what the
    /// sandbox saw to explain a trap.
    fn settle<T>(
        &self,
        store: &mut Store<PluginState>,
        result: Result<wasmtime::Result<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, CallError> {
        let plugin = self.label.to_string();
        let result = match result {
            Ok(result) => result,
            Err(_) => {
                return Err(CallError::Timeout {
                    plugin,
                    limit: self.runtime.options.call_timeout,
                });
            }
        };
        let error = match result {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let fault = store.data().fault();
        if let Some(budget) = fault.out_of_time {
            return Err(CallError::Deadline { plugin, budget });
        }
        if let Some((requested, limit)) = fault.memory_refused {
            return Err(CallError::Memory {
                plugin,
                limit,
                requested,
            });
        }
        let trap = match error.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => trap.to_string(),
            None => first_line(&error),
        };
        let message = match fault.stderr_tail {
            Some(said) => format!("{said} ({trap})"),
            None => trap,
        };
        Err(CallError::Trap { plugin, message })
    }
}

/// Why a plugin call produced no answer, or the store's classified error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The connector answered with a classified store error. `cause` is the
    /// broker's last HTTP failure in this call, which often says more
    /// exactly what happened (the refused URL, the TLS error).
    #[error("{error}{}", cause.as_ref().map(|c| format!(" [broker: {c}]")).unwrap_or_default())]
    Store {
        error: StoreError,
        cause: Option<HttpError>,
    },
    #[error("plugin {plugin} ran past its CPU budget of {} ms and was stopped", budget.as_millis())]
    Deadline { plugin: String, budget: Duration },
    #[error("plugin {plugin} hit its memory cap of {} MiB (it asked for {} MiB) and was stopped", limit >> 20, requested >> 20)]
    Memory {
        plugin: String,
        limit: usize,
        requested: usize,
    },
    #[error("plugin {plugin} trapped: {message}")]
    Trap { plugin: String, message: String },
    #[error("plugin {plugin} did not finish within {} s", limit.as_secs())]
    Timeout { plugin: String, limit: Duration },
    #[error("plugin {plugin} broke the contract: {message}")]
    Contract { plugin: String, message: String },
}

impl CallError {
    /// The store error, when the connector answered with one.
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            CallError::Store { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A plugin bound to one connection.
#[derive(Clone, Debug)]
pub struct Connector {
    plugin: Arc<Plugin>,
    broker: Arc<Broker>,
}

fn capability_of(operation: &Operation) -> Capability {
    match operation {
        Operation::Create { .. } => Capability::Create,
        Operation::Update { .. } => Capability::Update,
        Operation::Enable { .. } => Capability::Enable,
        Operation::Disable { .. } => Capability::Disable,
        Operation::Delete { .. } => Capability::Delete,
        Operation::Convert { .. } => Capability::Convert,
    }
}

/// Runs one export call in a fresh instance. A macro rather than a function
/// because each export has its own generated signature.
macro_rules! call_export {
    ($connector:expr, $method:literal, |$bindings:ident, $store:ident| $call:expr) => {{
        let connector = $connector;
        let plugin = &connector.plugin.core;
        let span = tracing::info_span!(
            "plugin_call",
            plugin = %plugin.label,
            connection = %connector.broker.connection(),
            method = $method
        );
        async {
            let _slot = plugin.runtime.slots.acquire().await;
            let mut store = plugin.new_store(Some(connector.broker.clone()));
            let started = std::time::Instant::now();
            let future = async {
                let $bindings = &plugin.pre;
                let $store = &mut store;
                $call.await
            };
            let result = tokio::time::timeout(plugin.runtime.options.call_timeout, future).await;
            let elapsed = started.elapsed();
            crate::telemetry::plugin_call(&plugin.label, $method, elapsed.as_secs_f64());
            // Everything but the waits on brokered HTTP: instantiation,
            // guest code and the calls across the boundary. The benchmarks
            // sum it to bound what the sandbox costs.
            tracing::debug!(
                elapsed_ms = elapsed.as_millis() as u64,
                sandbox_us = store.data().guest_time().as_micros() as u64,
                "plugin call finished"
            );
            plugin.report_dropped_output(&store);
            let cause = store.data_mut().take_http_error();
            plugin.settle(&mut store, result).map(|value| (value, cause))
        }
        .instrument(span)
        .await
    }};
}

impl Connector {
    pub fn new(plugin: Arc<Plugin>, broker: Arc<Broker>) -> Connector {
        Connector { plugin, broker }
    }

    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    fn store_error(error: impl Into<StoreError>, cause: Option<HttpError>) -> CallError {
        CallError::Store {
            error: error.into(),
            cause,
        }
    }

    /// PingOne's Test Connection.
    pub async fn test_connection(&self) -> Result<ConnectionReport, CallError> {
        let (result, cause) = call_export!(self, "test-connection", |bindings, store| bindings
            .test_connection(store))?;
        result.map_err(|e| Self::store_error(e, cause))
    }

    /// Applies a batch; one result per operation, in order. Operations whose
    /// capability the plugin did not declare are answered `unsupported`
    /// without reaching it.
    pub async fn apply(
        &self,
        operations: Vec<Operation>,
    ) -> Result<Vec<Result<Outcome, StoreError>>, CallError> {
        let descriptor = self.plugin.descriptor();
        let mut results: Vec<Option<Result<Outcome, StoreError>>> = Vec::new();
        let mut allowed = Vec::new();
        for operation in operations {
            let capability = capability_of(&operation);
            if !descriptor.has(capability) {
                results.push(Some(Err(self.undeclared(capability))));
            } else if let Some(name) = self.list_for_0_1(&operation) {
                results.push(Some(Err(StoreError::Unsupported(format!(
                    "plugin {} speaks contract {}, which has no list values; {name} needs a connector built against 0.2",
                    self.plugin.name(),
                    self.plugin.contract()
                )))));
            } else {
                results.push(None);
                allowed.push(operation);
            }
        }
        if allowed.is_empty() {
            return Ok(results.into_iter().flatten().collect());
        }
        let sent = allowed.len();
        let (answers, _cause) = call_export!(self, "apply", |bindings, store| bindings
            .apply(store, allowed))?;
        if answers.len() != sent {
            return Err(CallError::Contract {
                plugin: self.plugin.name().to_string(),
                message: format!(
                    "apply returned {} results for {sent} operations",
                    answers.len()
                ),
            });
        }
        let mut answers = answers.into_iter();
        Ok(results
            .into_iter()
            .map(|slot| match slot {
                Some(result) => result,
                None => answers
                    .next()
                    .unwrap_or_else(|| Err(StoreError::Unsupported("missing result".into()))),
            })
            .collect())
    }

    /// Finds records by `attribute`.
    pub async fn lookup(
        &self,
        attribute: &str,
        values: Vec<String>,
    ) -> Result<Vec<Match>, CallError> {
        let (result, cause) = call_export!(self, "lookup-records", |bindings, store| bindings
            .lookup(store, attribute, &values))?;
        result.map_err(|e| Self::store_error(e, cause))
    }

    /// One page of every record the connection manages.
    pub async fn list(&self, cursor: Option<String>) -> Result<Page, CallError> {
        let (result, cause) = call_export!(self, "list-records", |bindings, store| bindings
            .list(store, cursor.as_deref()))?;
        result.map_err(|e| Self::store_error(e, cause))
    }

    /// Answers `unsupported` for a call whose capability the plugin did
    /// not declare, without reaching it.
    fn require(&self, capability: Capability) -> Result<(), CallError> {
        if self.plugin.descriptor().has(capability) {
            Ok(())
        } else {
            Err(Self::store_error(self.undeclared(capability), None))
        }
    }

    fn undeclared(&self, capability: Capability) -> StoreError {
        StoreError::Unsupported(format!(
            "plugin {} does not declare the {capability} capability",
            self.plugin.name()
        ))
    }

    /// The attribute of `operation` that holds a list, when the plugin
    /// speaks contract 0.1, which cannot carry one. The configuration
    /// refuses such a mapping; this keeps any other path from sending it.
    fn list_for_0_1<'o>(&self, operation: &'o Operation) -> Option<&'o str> {
        if self.plugin.contract().minor != 1 {
            return None;
        }
        let attributes = match operation {
            Operation::Create { attributes }
            | Operation::Update { attributes, .. }
            | Operation::Enable { attributes, .. }
            | Operation::Convert { attributes, .. } => attributes.as_slice(),
            Operation::Disable { .. } | Operation::Delete { .. } => &[],
        };
        attributes
            .iter()
            .find(|a| matches!(a.value, Value::TextList(_)))
            .map(|a| a.name.as_str())
    }

    /// Applies a batch of group operations (contract 0.2, `groups`).
    pub async fn apply_groups(
        &self,
        operations: Vec<GroupOperation>,
    ) -> Result<Vec<Result<Outcome, StoreError>>, CallError> {
        if !self.plugin.descriptor().has(Capability::Groups) {
            let refusal = self.undeclared(Capability::Groups);
            return Ok(operations.iter().map(|_| Err(refusal.clone())).collect());
        }
        let sent = operations.len();
        let (answers, _cause) = call_export!(self, "apply-groups", |bindings, store| bindings
            .apply_groups(store, operations))?;
        if answers.len() != sent {
            return Err(CallError::Contract {
                plugin: self.plugin.name().to_string(),
                message: format!(
                    "apply-groups returned {} results for {sent} operations",
                    answers.len()
                ),
            });
        }
        Ok(answers)
    }

    /// Finds groups by display name (contract 0.2, `groups`).
    pub async fn lookup_groups(&self, display_names: Vec<String>) -> Result<Vec<Group>, CallError> {
        self.require(Capability::Groups)?;
        let (result, cause) = call_export!(self, "lookup-groups", |bindings, store| bindings
            .lookup_groups(store, &display_names))?;
        result.map_err(|e| Self::store_error(e, cause))
    }

    /// One page of the connection's groups (contract 0.2, `groups`).
    pub async fn list_groups(&self, cursor: Option<String>) -> Result<GroupPage, CallError> {
        self.require(Capability::Groups)?;
        let (result, cause) = call_export!(self, "list-groups", |bindings, store| bindings
            .list_groups(store, cursor.as_deref()))?;
        result.map_err(|e| Self::store_error(e, cause))
    }

    /// The store's attributes, with types (contract 0.2, `schema`).
    pub async fn discover_schema(&self) -> Result<Vec<AttributeSpec>, CallError> {
        self.require(Capability::Schema)?;
        let (result, cause) = call_export!(self, "discover-schema", |bindings, store| bindings
            .discover_schema(store))?;
        result.map_err(|e| Self::store_error(e, cause))
    }
}

#[cfg(test)]
mod tests {
    use super::file_suggests;
    use std::path::Path;

    #[test]
    fn a_file_name_suggests_its_plugin_but_not_a_longer_one() {
        for file in [
            "plugins/json-store.wasm",
            "json_store_connector.wasm",
            "json-store-0.2.0.wasm",
            "json_store_connector-v2.wasm",
        ] {
            assert!(file_suggests(Path::new(file), "json-store"), "{file}");
        }
        for file in ["json-store-extra.wasm", "json.wasm", "store.wasm"] {
            assert!(!file_suggests(Path::new(file), "json-store"), "{file}");
        }
        assert!(!file_suggests(Path::new("ldap_ad_connector.wasm"), "ldap"));
        assert!(!file_suggests(Path::new("anything.wasm"), ""));
    }
}

//! Transform: runs a tenant's chain of WebAssembly plugins (component model, WIT package
//! `postwire:plugin@0.1.0` in `guest-sdk/wit`) over an event.
//!
//! - [`Transformer`]: the engine (built once, pooling allocator, epoch interruption), the
//!   loaded plugins (one `InstancePre` each, reloaded when the file changes) and the error
//!   counters.
//! - `engine.rs`: engine settings, the epoch ticker, the precompiled-component cache.
//! - `instance.rs`: one call: a fresh store per message with a memory cap, fuel, an epoch
//!   deadline and a deny-all WASI context whose stdout/stderr are captured (`output.rs`).
//! - [`stage`]: chain outcome → deliveries, audit records, dead letters.
//! - [`step`]: transform as a stage of the process worker (the plugin host started on demand).
//! - `bindings.rs`: the `bindgen!` output, private to this module.

mod bindings;
mod chain;
mod engine;
mod instance;
mod limits;
mod output;
pub mod scaffold;
mod slot;
pub mod stage;
pub mod step;
pub mod trial;
pub mod uploads;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use wasmtime::Engine;
use wasmtime::component::Linker;

pub use chain::{CallTags, ChainRun, OwnedTags};
pub use engine::LoadSource;
use instance::HostState;
pub use output::OUTPUT_LIMIT_BYTES;
pub use slot::{HostError, PluginSlot};

/// Host settings shared by every plugin.
#[derive(Debug, Clone)]
pub struct TransformSettings {
    /// Wall-clock limit of one plugin call (a backstop; fuel is the CPU bound).
    pub deadline: Duration,
    /// Linear memory one plugin instance may grow to.
    pub memory_limit_bytes: usize,
    /// WebAssembly instructions (roughly) one call may execute; 0: no fuel limit.
    pub fuel: u64,
    /// Where precompiled components are kept; `None` compiles at every load.
    pub cache_dir: Option<PathBuf>,
}

impl TransformSettings {
    /// The settings of `[plugin_host]`: the one place the worker and `postwire plugin test`
    /// take their limits from, so a plugin behaves the same in both.
    pub fn from_config(ph: &postwire_core::config::PluginHostConfig) -> Self {
        Self {
            deadline: Duration::from_millis(ph.deadline_ms),
            memory_limit_bytes: ph.memory_limit_bytes,
            fuel: ph.fuel,
            cache_dir: (!ph.cache_dir.is_empty()).then(|| ph.cache_dir.clone().into()),
        }
    }
}

impl Default for TransformSettings {
    /// The defaults of `[plugin_host]`, without a cache.
    fn default() -> Self {
        Self {
            cache_dir: None,
            ..Self::from_config(&Default::default())
        }
    }
}

/// One plugin of a chain: the component file and its config (JSON).
#[derive(Debug, Clone)]
pub struct PluginSpec {
    pub path: PathBuf,
    pub config: serde_json::Value,
}

/// What the chain decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Deliver this JSON to the route the mail matched.
    Deliver(serde_json::Value),
    /// Deliver nothing.
    Drop { reason: String },
    /// Deliver to these routes instead: `(route, json)`.
    Route(Vec<(String, serde_json::Value)>),
}

/// The kind of a plugin's own error (`plugin-error` in the WIT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginErrorKind {
    InvalidEvent,
    InvalidConfig,
    Failed,
}

/// Why a plugin produced no outcome. Each is counted by [`TransformError::kind`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransformError {
    #[error("plugin {plugin}: cannot load: {message}")]
    Load { plugin: String, message: String },
    #[error("plugin {plugin}: deadline of {deadline_ms} ms exceeded")]
    Timeout { plugin: String, deadline_ms: u64 },
    #[error("plugin {plugin}: CPU limit of {fuel} fuel units exhausted")]
    Fuel { plugin: String, fuel: u64 },
    #[error("plugin {plugin}: memory limit of {limit_bytes} bytes exceeded")]
    MemoryLimit { plugin: String, limit_bytes: usize },
    #[error("plugin {plugin}: trapped: {message}")]
    Trap { plugin: String, message: String },
    #[error("plugin {plugin}: returned an error ({kind:?}): {message}")]
    Plugin {
        plugin: String,
        kind: PluginErrorKind,
        message: String,
    },
    #[error("plugin {plugin}: invalid output: {message}")]
    InvalidOutput { plugin: String, message: String },
}

/// Error kinds, as counted (`postwire_plugin_errors_total{kind}`).
pub const ERROR_KINDS: [&str; 7] = [
    "load",
    "timeout",
    "fuel",
    "memory",
    "trap",
    "plugin",
    "invalid_output",
];

impl TransformError {
    pub fn kind(&self) -> &'static str {
        match self {
            TransformError::Load { .. } => "load",
            TransformError::Timeout { .. } => "timeout",
            TransformError::Fuel { .. } => "fuel",
            TransformError::MemoryLimit { .. } => "memory",
            TransformError::Trap { .. } => "trap",
            TransformError::Plugin { .. } => "plugin",
            TransformError::InvalidOutput { .. } => "invalid_output",
        }
    }
}

/// A loaded plugin: its `InstancePre` and what identifies the file version it came from.
struct Loaded {
    pre: bindings::PluginPre<HostState>,
    stamp: FileStamp,
    source: LoadSource,
    load_time: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    /// A replaced file (written elsewhere, then renamed) is a new inode.
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> std::io::Result<Self> {
        let m = std::fs::metadata(path)?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&m);
        #[cfg(not(unix))]
        let inode = 0;
        Ok(Self {
            len: m.len(),
            modified: m.modified().ok(),
            inode,
        })
    }
}

/// Details of a load, for `postwire plugin test` and logs.
#[derive(Debug, Clone, Copy)]
pub struct LoadInfo {
    pub source: LoadSource,
    pub time: Duration,
}

/// The plugin host. Cheap to share (`Arc`); calls are synchronous and run on a blocking
/// thread (see [`Transformer::run_chain_blocking`]).
pub struct Transformer {
    engine: Engine,
    linker: Linker<HostState>,
    settings: TransformSettings,
    plugins: Mutex<HashMap<PathBuf, Arc<Loaded>>>,
    errors: [AtomicU64; ERROR_KINDS.len()],
    /// Instances alive at once stay within what the pool holds.
    slots: engine::Slots,
    _ticker: engine::EpochTicker,
}

impl Transformer {
    pub fn new(settings: TransformSettings) -> Result<Self, TransformError> {
        let fail = |e: wasmtime::Error| TransformError::Load {
            plugin: "(engine)".into(),
            message: format!("{e:#}"),
        };
        let engine = engine::build_engine(&settings).map_err(fail)?;
        let linker = instance::linker(&engine).map_err(fail)?;
        Ok(Self {
            slots: engine::Slots::new(engine::CONCURRENT_INSTANCES),
            _ticker: engine::EpochTicker::start(&engine),
            engine,
            linker,
            settings,
            plugins: Mutex::new(HashMap::new()),
            errors: Default::default(),
        })
    }

    pub fn settings(&self) -> &TransformSettings {
        &self.settings
    }

    /// A slot for one instance (waits while the pool is full).
    pub(crate) fn slot(&self) -> engine::Slot<'_> {
        self.slots.take()
    }

    /// How many errors of `kind` (one of [`ERROR_KINDS`]) plugins have produced.
    pub fn error_count(&self, kind: &str) -> u64 {
        ERROR_KINDS
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |i| self.errors[i].load(Ordering::Relaxed))
    }

    /// Loads `path` now (or returns the loaded version when the file is unchanged).
    pub fn load(&self, path: &Path) -> Result<LoadInfo, TransformError> {
        let l = self.loaded(path)?;
        Ok(LoadInfo {
            source: l.source,
            time: l.load_time,
        })
    }

    /// Loads `path` and instantiates it once (without calling it): what an uploaded plugin
    /// must pass before it is accepted.
    pub fn check(&self, path: &Path) -> Result<LoadInfo, TransformError> {
        let l = self.loaded(path)?;
        instance::instantiate(self, &l.pre, path)?;
        Ok(LoadInfo {
            source: l.source,
            time: l.load_time,
        })
    }

    /// The plugin at `path`, loaded again when the file changed since the last call (hot
    /// reload: the next message sees the new version, no restart).
    fn loaded(&self, path: &Path) -> Result<Arc<Loaded>, TransformError> {
        let name = plugin_name(path);
        let load_err = |message: String| TransformError::Load {
            plugin: name.clone(),
            message,
        };
        let stamp = FileStamp::of(path).map_err(|e| load_err(e.to_string()))?;
        let reload = {
            let plugins = self.plugins.lock().unwrap_or_else(|p| p.into_inner());
            match plugins.get(path) {
                Some(l) if l.stamp == stamp => return Ok(l.clone()),
                other => other.is_some(),
            }
        };
        // Compiled without holding the lock: other plugins keep running meanwhile. Two
        // messages that both see the change may both load it; the cache makes that cheap.
        let started = Instant::now();
        let wasm = std::fs::read(path).map_err(|e| load_err(e.to_string()))?;
        // The file may have changed between stat and read; stamp what was read.
        let stamp = FileStamp::of(path).map_err(|e| load_err(e.to_string()))?;
        let (component, source) =
            engine::load_component(&self.engine, &wasm, self.settings.cache_dir.as_deref())
                .map_err(|e| load_err(format!("{e:#}")))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(bindings::PluginPre::new)
            .map_err(|e| load_err(format!("{e:#}")))?;
        let load_time = started.elapsed();
        tracing::info!(plugin = %name, ?source, load_ms = load_time.as_millis() as u64, reload, "Loaded a plugin.");
        let loaded = Arc::new(Loaded {
            pre,
            stamp,
            source,
            load_time,
        });
        self.plugins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path.to_path_buf(), loaded.clone());
        Ok(loaded)
    }
}

/// The file name without `.wasm`: how errors and logs name a plugin.
pub fn plugin_name(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin")
        .to_string()
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_isolation;
#[cfg(test)]
mod tests_misbehave;

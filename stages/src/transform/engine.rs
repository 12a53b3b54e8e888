//! The wasmtime engine (built once per process), the epoch ticker that enforces deadlines,
//! and the on-disk cache of compiled components.
//!
//! Compiling a Python or JavaScript component takes seconds (they embed an interpreter);
//! loading its precompiled form takes milliseconds. Cache files are named by the sha256 of
//! the `.wasm` bytes and of the engine's compatibility hash (wasmtime version, target and
//! settings), so a new wasmtime or another setting never loads a stale artifact.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; deadlines are rounded up to a multiple of it.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Bytes of each pooled memory and table slot kept resident between instances when the
/// kernel cannot say which pages an instance wrote: the first pages, zeroed on reuse.
const KEEP_RESIDENT_BYTES: usize = 128 << 10;

/// Bytes of each pooled memory and table slot kept resident between instances when the
/// kernel can say which pages an instance wrote (Linux `PAGEMAP_SCAN`, 6.7 and later): only
/// the written pages are copied back from the module's image (or zeroed), up to this many
/// bytes; the rest is handed back to the kernel as before. A Python or JavaScript plugin
/// writes a few MiB of its interpreter's heap per message; kept resident, the next message
/// takes no page fault and no TLB flush for them (docs/decisions.md, issue 17).
const KEEP_RESIDENT_SCANNED_BYTES: usize = 32 << 20;

/// Slots that held an instance and are free, kept warm for the next instance of the same
/// plugin, beyond which free warm slots are reused rather than new ones warmed.
const MAX_UNUSED_WARM_SLOTS: u32 = 4;

/// The pool's core instance slots, and what one component instance may take of them (a
/// Python or JavaScript component holds dozens of core instances).
const TOTAL_CORE_INSTANCES: u32 = 512;
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 64;

/// Plugin instances alive at once, at most: what the pool holds when every one takes all the
/// core instances a component may (memories, tables and stacks allow more). A further
/// instance would trap ("maximum concurrent limit … reached") and fail its mail; it waits for
/// a slot instead ([`Slots`]).
pub(crate) const CONCURRENT_INSTANCES: usize =
    (TOTAL_CORE_INSTANCES / MAX_CORE_INSTANCES_PER_COMPONENT) as usize;

/// A counting semaphore for the threads that instantiate plugins (calls run on blocking
/// threads, so they wait on a condition variable).
pub(crate) struct Slots {
    free: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
}

impl Slots {
    pub(crate) fn new(n: usize) -> Slots {
        Slots {
            free: std::sync::Mutex::new(n),
            freed: std::sync::Condvar::new(),
        }
    }

    /// Waits for a free slot; it is free again when the guard is dropped.
    pub(crate) fn take(&self) -> Slot<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Slot(self)
    }
}

pub(crate) struct Slot<'a>(&'a Slots);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

/// What stays resident in each memory slot after an instance (see the two constants above).
pub(crate) fn keep_resident_bytes(pagemap_scan: bool, memory_limit_bytes: usize) -> usize {
    if pagemap_scan {
        KEEP_RESIDENT_SCANNED_BYTES.min(memory_limit_bytes.max(KEEP_RESIDENT_BYTES))
    } else {
        KEEP_RESIDENT_BYTES
    }
}

/// Whether `/proc/swaps` (its text, `None` when unreadable) lists an active swap area, or
/// cannot say. The first line is the header; every further line is an area in use.
pub(crate) fn swap_may_be_active(proc_swaps: Option<&str>) -> bool {
    match proc_swaps {
        Some(text) => text.lines().skip(1).any(|l| !l.trim().is_empty()),
        None => true,
    }
}

/// Whether the pool may reset memory by `PAGEMAP_SCAN`: the kernel has the ioctl and the
/// host swaps nothing. wasmtime 48 asks the kernel for pages that are written *and present*;
/// a page an instance wrote that the kernel swapped out before the reset is neither reset
/// nor released, and the next instance in the slot would read it back: an earlier mail's
/// data (docs/decisions.md, "Issue 17: plugin call floor"). With swap on, the pool keeps
/// the first pages and releases the rest, which never leaves a written page behind.
fn pagemap_scan_is_safe() -> bool {
    if !PoolingAllocationConfig::is_pagemap_scan_available() {
        return false;
    }
    let swaps = std::fs::read_to_string("/proc/swaps").ok();
    if swap_may_be_active(swaps.as_deref()) {
        tracing::info!(
            "The host has swap (or /proc/swaps is unreadable): plugin memory is reset without PAGEMAP_SCAN, which costs more per call."
        );
        return false;
    }
    true
}

/// Builds the engine: component model, pooling allocator, epoch interruption, and fuel when
/// `settings.fuel` is set.
pub(crate) fn build_engine(settings: &super::TransformSettings) -> wasmtime::Result<Engine> {
    let memory_limit_bytes = settings.memory_limit_bytes;
    let pagemap_scan = pagemap_scan_is_safe();
    let keep_resident = keep_resident_bytes(pagemap_scan, memory_limit_bytes);
    let mut pool = PoolingAllocationConfig::default();
    // Generous slots: Python and JavaScript components hold several core instances, memories
    // and large tables each. Slots are address space reserved up front, not resident memory.
    pool.total_component_instances(64)
        .total_core_instances(TOTAL_CORE_INSTANCES)
        .total_memories(256)
        .total_tables(512)
        .total_stacks(64)
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(8)
        .max_tables_per_component(32)
        .max_memories_per_module(2)
        .table_elements(200_000)
        .max_component_instance_size(16 << 20)
        .max_core_instance_size(16 << 20)
        .max_memory_size(memory_limit_bytes.max(1 << 20))
        // A fresh instance per message: the pages an instance wrote are reset to the module's
        // image on reuse (copied back, or zeroed) and stay resident, instead of being handed
        // back to the kernel and faulted in again at the next message. Either way the next
        // instance sees exactly the module's initial memory, never a previous message.
        .pagemap_scan(if pagemap_scan {
            Enabled::Yes
        } else {
            Enabled::No
        })
        .linear_memory_keep_resident(keep_resident)
        .table_keep_resident(keep_resident)
        // Reuse the slots that held an instance before (least recently used first) rather
        // than warming new ones: the slots ever used, and the pages they keep resident, stay
        // about the number of calls at once plus this many.
        .max_unused_warm_slots(MAX_UNUSED_WARM_SLOTS);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(settings.fuel > 0)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (engine, flag) = (engine.weak(), stop.clone());
        std::thread::Builder::new()
            .name("postwire-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match engine.upgrade() {
                        Some(e) => e.increment_epoch(),
                        None => return,
                    }
                }
            })
            .expect("spawning the epoch thread");
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// How a component was obtained, for logs and `postwire plugin test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadSource {
    /// Compiled from the `.wasm` now (and written to the cache when one is configured).
    Compiled,
    /// Loaded from the precompiled cache.
    Cached,
}

/// The cache key of `wasm` under `engine`: sha256 of both.
pub(crate) fn cache_key(engine: &Engine, wasm: &[u8]) -> String {
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut engine_hash = Sha(Sha256::new());
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let mut h = Sha256::new();
    h.update(engine_hash.0.finalize());
    h.update(Sha256::digest(wasm));
    h.finalize()
        .iter()
        .take(20)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compiles `wasm`, or loads it precompiled from `cache_dir`.
pub(crate) fn load_component(
    engine: &Engine,
    wasm: &[u8],
    cache_dir: Option<&Path>,
) -> wasmtime::Result<(Component, LoadSource)> {
    let Some(dir) = cache_dir else {
        return Ok((Component::new(engine, wasm)?, LoadSource::Compiled));
    };
    let file: PathBuf = dir.join(format!("{}.cwasm", cache_key(engine, wasm)));
    if file.is_file() {
        match deserialize_file(engine, &file) {
            Ok(c) => return Ok((c, LoadSource::Cached)),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "A cached plugin artifact is unusable; compiling again.")
            }
        }
    }
    let compiled = engine.precompile_component(wasm)?;
    let component = deserialize(engine, &compiled)?;
    if let Err(e) = write_atomically(dir, &file, &compiled) {
        tracing::warn!(dir = %dir.display(), error = %e, "Cannot write the plugin cache; plugins will be compiled at every start.");
    }
    Ok((component, LoadSource::Compiled))
}

/// Loads a precompiled artifact from memory. The bytes come from
/// [`Engine::precompile_component`] of this engine, just now.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: see above: the bytes are wasmtime's own output.
    unsafe { Component::deserialize(engine, bytes) }
}

/// Loads a precompiled artifact from the cache by mapping the file (no copy: a Python or
/// JavaScript artifact is ~35 MB, and reading it took most of a cached load). Artifacts only
/// come from [`Engine::precompile_component`] of this engine configuration, written by this
/// module into the operator's cache folder (temp file + rename, so never half-written, and a
/// file is never rewritten in place: a new version is a new inode, so the mapping keeps the
/// old one); wasmtime also checks the header and the compatibility hash before using one.
#[allow(unsafe_code)]
fn deserialize_file(engine: &Engine, file: &Path) -> wasmtime::Result<Component> {
    // SAFETY: see above: the file is wasmtime's own output, never modified after the rename.
    unsafe { Component::deserialize_file(engine, file) }
}

fn write_atomically(dir: &Path, file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // A temporary name of its own per writer (process and call), so two writers of the same
    // artifact never write into one file.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    std::fs::create_dir_all(dir)?;
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("artifact");
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, file)
}

//! One plugin call: a fresh store per message (memory cap, epoch deadline, deny-all WASI),
//! an instance from the plugin's `InstancePre`, the call, and the translation of what came
//! back into [`Outcome`] or a typed [`TransformError`].

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{self, Level};
use super::limits::MemoryCap;
use super::output::CapturedOutput;
use super::{
    CallTags, Outcome, PluginErrorKind, PluginSpec, TransformError, TransformSettings, Transformer,
    engine, plugin_name,
};

/// The store data of one call.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: MemoryCap,
    config: String,
    plugin: String,
    tenant: String,
    route: String,
    mail_id: String,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        let (plugin, tenant, route, mail_id) =
            (&self.plugin, &self.tenant, &self.route, &self.mail_id);
        // Plugins write sentences; cap them so one plugin cannot flood the log.
        let message: String = message.chars().take(2_000).collect();
        match level {
            Level::Debug => tracing::debug!(plugin, tenant, route, mail_id, "{message}"),
            Level::Info => tracing::info!(plugin, tenant, route, mail_id, "{message}"),
            Level::Warn => tracing::warn!(plugin, tenant, route, mail_id, "{message}"),
            Level::Error => tracing::error!(plugin, tenant, route, mail_id, "{message}"),
        }
    }

    fn config(&mut self) -> String {
        self.config.clone()
    }
}

impl bindings::postwire::plugin::types::Host for HostState {}

/// The linker: WASI (denied by the context, see [`deny_all_wasi`]) and the `host` interface.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    bindings::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// No files (no preopens), no environment, no arguments, no sockets, no name lookups; stdin
/// is empty and stdout/stderr go to `output` (bounded; logged and kept with a dead letter).
fn deny_all_wasi(output: &CapturedOutput) -> WasiCtx {
    WasiCtx::builder()
        .stdout(output.clone())
        .stderr(output.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }))
        .build()
}

/// Instantiates the plugin once, with the same limits as a call, without calling it: the
/// check an uploaded plugin passes before it is accepted.
pub(crate) fn instantiate(
    host: &Transformer,
    pre: &bindings::PluginPre<HostState>,
    path: &std::path::Path,
) -> Result<(), TransformError> {
    let name = plugin_name(path);
    let settings = host.settings();
    let output = CapturedOutput::default();
    let _slot = host.slot();
    let mut store = store(
        pre.engine(),
        settings,
        &output,
        &name,
        "{}".into(),
        &CallTags::default(),
    )?;
    pre.instantiate(&mut store)
        .map(|_| ())
        .map_err(|e| classify_trap(&store, &name, settings, e))
}

/// What one call produced besides its outcome.
pub(crate) struct CallTrace {
    /// stdout and stderr (bounded), empty when the plugin wrote nothing.
    pub(crate) output: String,
    /// Fuel the call consumed (0 when fuel is off).
    pub(crate) fuel_used: u64,
}

/// A fresh store for one call: memory cap, fuel, epoch deadline, deny-all WASI.
fn store(
    engine: &Engine,
    settings: &TransformSettings,
    output: &CapturedOutput,
    name: &str,
    config: String,
    tags: &CallTags<'_>,
) -> Result<Store<HostState>, TransformError> {
    let state = HostState {
        wasi: deny_all_wasi(output),
        table: ResourceTable::new(),
        limits: MemoryCap::new(settings.memory_limit_bytes),
        config,
        plugin: name.to_string(),
        tenant: tags.tenant.into(),
        route: tags.route.into(),
        mail_id: tags.mail_id.into(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    if settings.fuel > 0 {
        store
            .set_fuel(settings.fuel)
            .map_err(|e| TransformError::Load {
                plugin: name.to_string(),
                message: format!("setting the fuel: {e:#}"),
            })?;
    }
    let tick = engine::EPOCH_TICK.as_millis().max(1);
    let ticks = (settings.deadline.as_millis().div_ceil(tick) as u64).max(1);
    // +1: the current tick is already partly over.
    store.set_epoch_deadline(ticks + 1);
    store.epoch_deadline_trap();
    Ok(store)
}

pub(crate) fn call(
    host: &Transformer,
    pre: &bindings::PluginPre<HostState>,
    plugin: &PluginSpec,
    event: &str,
    tags: &CallTags<'_>,
) -> (Result<Outcome, TransformError>, CallTrace) {
    let name = plugin_name(&plugin.path);
    let settings = host.settings();
    let config = if plugin.config.is_null() {
        "{}".into()
    } else {
        plugin.config.to_string()
    };
    let output = CapturedOutput::default();
    // Dropped after the store (declared before it): the instance is gone when the slot frees.
    let _slot = host.slot();
    let mut store = match store(pre.engine(), settings, &output, &name, config, tags) {
        Ok(s) => s,
        Err(e) => {
            let trace = CallTrace {
                output: String::new(),
                fuel_used: 0,
            };
            return (Err(e), trace);
        }
    };
    let result = pre
        .instantiate(&mut store)
        .and_then(|p| p.call_transform(&mut store, event))
        .map_err(|e| classify_trap(&store, &name, settings, e))
        .and_then(|r| outcome(&name, r));
    let fuel_used = match store.get_fuel() {
        Ok(left) if settings.fuel > 0 => settings.fuel.saturating_sub(left),
        _ => 0,
    };
    drop(store);
    let trace = CallTrace {
        output: output.text(),
        fuel_used,
    };
    (result, trace)
}

/// What the plugin returned, as an [`Outcome`] or its own error.
fn outcome(
    name: &str,
    result: Result<bindings::Outcome, bindings::PluginError>,
) -> Result<Outcome, TransformError> {
    let name = name.to_string();
    match result {
        Ok(outcome) => convert(&name, outcome),
        Err(err) => {
            let (kind, message) = match err {
                bindings::PluginError::InvalidEvent(m) => (PluginErrorKind::InvalidEvent, m),
                bindings::PluginError::InvalidConfig(m) => (PluginErrorKind::InvalidConfig, m),
                bindings::PluginError::Failed(m) => (PluginErrorKind::Failed, m),
            };
            Err(TransformError::Plugin {
                plugin: name,
                kind,
                message,
            })
        }
    }
}

fn classify_trap(
    store: &Store<HostState>,
    plugin: &str,
    settings: &TransformSettings,
    e: wasmtime::Error,
) -> TransformError {
    let plugin = plugin.to_string();
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => {
            return TransformError::Timeout {
                plugin,
                deadline_ms: settings.deadline.as_millis() as u64,
            };
        }
        Some(Trap::OutOfFuel) => {
            return TransformError::Fuel {
                plugin,
                fuel: settings.fuel,
            };
        }
        _ => {}
    }
    if store.data().limits.exceeded {
        return TransformError::MemoryLimit {
            plugin,
            limit_bytes: store.data().limits.max_bytes,
        };
    }
    // The trap itself ("wasm `unreachable` instruction executed"), not the wasm backtrace
    // wrapped around it: what went wrong is in the plugin's output (a panic message, a
    // traceback).
    let message = match e.downcast_ref::<Trap>() {
        Some(Trap::UnreachableCodeReached) => {
            "wasm `unreachable` executed (a panic, an abort or an uncaught exception; see the plugin's output)".to_string()
        }
        Some(trap) => format!("wasm trap: {trap}"),
        None => e.root_cause().to_string(),
    };
    TransformError::Trap { plugin, message }
}

fn convert(plugin: &str, outcome: bindings::Outcome) -> Result<Outcome, TransformError> {
    let parse = |json: &str| {
        serde_json::from_str::<serde_json::Value>(json).map_err(|e| TransformError::InvalidOutput {
            plugin: plugin.into(),
            message: format!("not JSON: {e}"),
        })
    };
    Ok(match outcome {
        bindings::Outcome::Deliver(json) => Outcome::Deliver(parse(&json)?),
        bindings::Outcome::Drop(reason) => Outcome::Drop { reason },
        bindings::Outcome::Route(routes) => {
            if routes.is_empty() {
                return Err(TransformError::InvalidOutput {
                    plugin: plugin.into(),
                    message: "route with no routes (use drop to deliver nothing)".into(),
                });
            }
            Outcome::Route(
                routes
                    .into_iter()
                    .map(|r| Ok((r.route, parse(&r.event)?)))
                    .collect::<Result<_, TransformError>>()?,
            )
        }
    })
}

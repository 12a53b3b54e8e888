//! One plugin call: a fresh store per message (memory cap, epoch deadline, deny-all WASI),
//! an instance from the plugin's `InstancePre`, the call, and the translation of what came
//! back into [`Outcome`] or a typed [`TransformError`].

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{self, Level};
use super::limits::MemoryCap;
use super::{
    CallTags, Outcome, PluginErrorKind, PluginSpec, TransformError, Transformer, engine,
    plugin_name,
};

/// The store data of one call.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: MemoryCap,
    config: String,
    plugin: String,
    tenant: String,
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
        let (plugin, tenant, mail_id) = (&self.plugin, &self.tenant, &self.mail_id);
        // Plugins write sentences; cap them so one plugin cannot flood the log.
        let message: String = message.chars().take(2_000).collect();
        match level {
            Level::Debug => tracing::debug!(plugin, tenant, mail_id, "{message}"),
            Level::Info => tracing::info!(plugin, tenant, mail_id, "{message}"),
            Level::Warn => tracing::warn!(plugin, tenant, mail_id, "{message}"),
            Level::Error => tracing::error!(plugin, tenant, mail_id, "{message}"),
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
/// is empty and stdout/stderr are discarded.
fn deny_all_wasi() -> WasiCtx {
    WasiCtx::builder()
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
    let state = HostState {
        wasi: deny_all_wasi(),
        table: ResourceTable::new(),
        limits: MemoryCap::new(settings.memory_limit_bytes),
        config: "{}".into(),
        plugin: name.clone(),
        tenant: String::new(),
        mail_id: String::new(),
    };
    let mut store = Store::new(pre.engine(), state);
    store.limiter(|s| &mut s.limits);
    let tick = engine::EPOCH_TICK.as_millis().max(1);
    store.set_epoch_deadline((settings.deadline.as_millis().div_ceil(tick) as u64).max(1) + 1);
    store.epoch_deadline_trap();
    pre.instantiate(&mut store)
        .map(|_| ())
        .map_err(|e| classify_trap(&store, &name, settings.deadline, e))
}

pub(crate) fn call(
    host: &Transformer,
    pre: &bindings::PluginPre<HostState>,
    plugin: &PluginSpec,
    event: &str,
    tags: &CallTags<'_>,
) -> Result<Outcome, TransformError> {
    let name = plugin_name(&plugin.path);
    let settings = host.settings();
    let state = HostState {
        wasi: deny_all_wasi(),
        table: ResourceTable::new(),
        limits: MemoryCap::new(settings.memory_limit_bytes),
        config: if plugin.config.is_null() {
            "{}".into()
        } else {
            plugin.config.to_string()
        },
        plugin: name.clone(),
        tenant: tags.tenant.into(),
        mail_id: tags.mail_id.into(),
    };
    let mut store = Store::new(pre.engine(), state);
    store.limiter(|s| &mut s.limits);
    let tick = engine::EPOCH_TICK.as_millis().max(1);
    let ticks = (settings.deadline.as_millis().div_ceil(tick) as u64).max(1);
    // +1: the current tick is already partly over.
    store.set_epoch_deadline(ticks + 1);
    store.epoch_deadline_trap();

    let result = pre
        .instantiate(&mut store)
        .and_then(|p| p.call_transform(&mut store, event));
    let result = match result {
        Ok(r) => r,
        Err(e) => return Err(classify_trap(&store, &name, settings.deadline, e)),
    };
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
    deadline: std::time::Duration,
    e: wasmtime::Error,
) -> TransformError {
    let plugin = plugin.to_string();
    if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return TransformError::Timeout {
            plugin,
            deadline_ms: deadline.as_millis() as u64,
        };
    }
    if store.data().limits.exceeded {
        return TransformError::MemoryLimit {
            plugin,
            limit_bytes: store.data().limits.max_bytes,
        };
    }
    TransformError::Trap {
        plugin,
        message: format!("{e:#}"),
    }
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

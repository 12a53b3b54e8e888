//! Calls and chains: one plugin over one event, a tenant's chain in order, on a blocking
//! thread for async callers; what the plugins wrote to stdout/stderr is logged with the
//! plugin, tenant, route and mail id and returned with the outcome ([`ChainRun`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{ERROR_KINDS, Outcome, PluginSpec, TransformError, Transformer, instance, plugin_name};

impl Transformer {
    /// Runs one plugin over `event` (JSON text).
    pub fn call(
        &self,
        plugin: &PluginSpec,
        event: &str,
        tags: &CallTags<'_>,
    ) -> Result<Outcome, TransformError> {
        self.call_traced(plugin, event, tags).result
    }

    /// Runs one plugin over `event` and reports what it wrote and the fuel it used. What it
    /// wrote to stdout/stderr is logged with the plugin, tenant, route and mail id.
    ///
    /// Synchronous: a plugin that writes to stdout/stderr needs a blocking thread when a
    /// tokio runtime is around (`tokio::task::spawn_blocking`), as in
    /// [`Transformer::run_chain_blocking`].
    pub fn call_traced(&self, plugin: &PluginSpec, event: &str, tags: &CallTags<'_>) -> ChainRun {
        let name = plugin_name(&plugin.path);
        let (result, trace) = match self.loaded(&plugin.path) {
            Ok(l) => instance::call(self, &l.pre, plugin, event, tags),
            Err(e) => (
                Err(e),
                instance::CallTrace {
                    output: String::new(),
                    fuel_used: 0,
                },
            ),
        };
        let (tenant, route, mail_id) = (tags.tenant, tags.route, tags.mail_id);
        let output = trace.output;
        match &result {
            Err(e) => {
                if let Some(i) = ERROR_KINDS.iter().position(|k| *k == e.kind()) {
                    self.errors[i].fetch_add(1, Ordering::Relaxed);
                }
                tracing::warn!(plugin = %name, tenant, route, mail_id, kind = e.kind(), error = %e, output = %output, "A plugin failed.");
            }
            Ok(_) if !output.is_empty() => {
                tracing::info!(plugin = %name, tenant, route, mail_id, output = %output, "A plugin wrote to stdout or stderr.");
            }
            Ok(_) => {}
        }
        ChainRun {
            result,
            output: if output.is_empty() {
                String::new()
            } else {
                format!("[{name}] {output}")
            },
            fuel_used: trace.fuel_used,
        }
    }

    /// Runs a chain: each `deliver` feeds the next plugin; `drop` and `route` end the chain.
    /// An empty chain delivers the event unchanged.
    pub fn run_chain(
        &self,
        chain: &[PluginSpec],
        event: &serde_json::Value,
        tags: &CallTags<'_>,
    ) -> Result<Outcome, TransformError> {
        self.run_chain_traced(chain, event, tags).result
    }

    /// [`Transformer::run_chain`], with the output of every plugin of the chain and the
    /// fuel they used together.
    pub fn run_chain_traced(
        &self,
        chain: &[PluginSpec],
        event: &serde_json::Value,
        tags: &CallTags<'_>,
    ) -> ChainRun {
        // The event a plugin delivered, once one did: the input is only read (serialised
        // for the first plugin), never copied.
        let mut current: Option<serde_json::Value> = None;
        let mut outputs: Vec<String> = Vec::new();
        let mut fuel_used = 0;
        for plugin in chain {
            let text = current.as_ref().unwrap_or(event).to_string();
            let run = self.call_traced(plugin, &text, tags);
            fuel_used += run.fuel_used;
            if !run.output.is_empty() {
                outputs.push(run.output);
            }
            let done = |result| ChainRun {
                result,
                output: outputs.join("\n"),
                fuel_used,
            };
            match run.result {
                Ok(Outcome::Deliver(next)) => current = Some(next),
                other => return done(other),
            }
        }
        ChainRun {
            result: Ok(Outcome::Deliver(current.unwrap_or_else(|| event.clone()))),
            output: outputs.join("\n"),
            fuel_used,
        }
    }

    /// [`Transformer::run_chain_traced`] on a blocking thread, for async callers. The event
    /// is shared, not copied: the caller keeps it for a `fail-open` delivery.
    pub async fn run_chain_blocking(
        self: &Arc<Self>,
        chain: Vec<PluginSpec>,
        event: Arc<serde_json::Value>,
        tags: OwnedTags,
    ) -> ChainRun {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.run_chain_traced(&chain, &event, &tags.borrow()))
            .await
            .unwrap_or_else(|e| ChainRun {
                result: Err(TransformError::Trap {
                    plugin: "(host)".into(),
                    message: format!("the plugin thread failed: {e}"),
                }),
                output: String::new(),
                fuel_used: 0,
            })
    }
}

/// A call's or a chain's outcome, with what the plugins wrote to stdout/stderr and the fuel
/// they used.
#[derive(Debug, Clone)]
pub struct ChainRun {
    pub result: Result<Outcome, TransformError>,
    /// Each plugin's output as `[name] text`, one after the other; empty when none wrote
    /// anything. Bounded per call ([`super::OUTPUT_LIMIT_BYTES`]).
    pub output: String,
    /// Fuel consumed (0 when fuel is off).
    pub fuel_used: u64,
}

/// What a plugin's log lines and output are tagged with.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallTags<'a> {
    pub tenant: &'a str,
    pub route: &'a str,
    pub mail_id: &'a str,
}

/// [`CallTags`] that can move to another thread.
#[derive(Debug, Clone, Default)]
pub struct OwnedTags {
    pub tenant: String,
    pub route: String,
    pub mail_id: String,
}

impl OwnedTags {
    pub fn borrow(&self) -> CallTags<'_> {
        CallTags {
            tenant: &self.tenant,
            route: &self.route,
            mail_id: &self.mail_id,
        }
    }
}

//! The transform stage: runs the tenant's plugin chain over the event of each matched route
//! and turns the outcome into deliveries, audit records and dead letters.
//!
//! - `deliver(json)`: one delivery per endpoint of the route, body = json.
//! - `drop(reason)`: no delivery; an audit record (`audit.<tenant>.drop.<mail_id>`).
//! - `route([(r, json)…])`: one delivery per endpoint of each named route (ids from mail id,
//!   route and endpoint, so they are distinct and stable). An unknown route is an error.
//! - an error under `fail-open`: the untransformed event is delivered and an audit record
//!   (`audit.<tenant>.plugin.<mail_id>`) says why; under `fail-closed`: no delivery, the mail
//!   goes to `dlq.<tenant>._plugin` with the error.

use std::sync::Arc;

use postwire_core::Config;
use postwire_core::config::PluginFailure;
use serde::Serialize;

use super::{ChainRun, Outcome, OwnedTags, PluginSpec, TransformError, Transformer};
use crate::StageError;
use crate::prepare::{Delivery, RouteEvent, deliveries_for};

/// An audit record of the transform stage (`drop` or `plugin` kind).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TransformAudit {
    /// `drop` or `plugin`.
    pub kind: &'static str,
    pub mail_id: String,
    pub tenant: String,
    pub route: String,
    /// The drop reason, or the plugin error.
    pub reason: String,
    /// For errors: `timeout`, `memory`, `trap`, `plugin`, `load` or `invalid_output`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<&'static str>,
    /// For errors: `fail-open` (delivered untransformed) or `fail-closed` (sent to the DLQ).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    /// What the chain's plugins wrote to stdout/stderr (bounded), when they wrote anything.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub output: String,
    pub at: String,
}

/// What the transform stage produced for one mail.
#[derive(Debug, Default)]
pub struct Transformed {
    pub deliveries: Vec<Delivery>,
    /// Audit records to append (drops, fail-open errors).
    pub audits: Vec<TransformAudit>,
    /// Routes whose event failed under `fail-closed`: the mail goes to the DLQ with the error.
    pub dead: Vec<TransformAudit>,
}

/// The tenant's chain as the host takes it.
pub fn chain(cfg: &Config, tenant: &str) -> Vec<PluginSpec> {
    cfg.tenants
        .get(tenant)
        .map(|t| {
            t.plugins
                .iter()
                .map(|p| PluginSpec {
                    path: p.path.clone(),
                    config: p.config.clone().unwrap_or(serde_json::Value::Null),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the chain over each route's event. Without a host (no tenant has plugins) or with an
/// empty chain, each event is delivered as it is.
pub async fn apply(
    host: Option<&Arc<Transformer>>,
    cfg: &Config,
    tenant: &str,
    mail_id: &str,
    events: Vec<RouteEvent>,
) -> Result<Transformed, StageError> {
    let ser = |e: serde_json::Error| StageError::Permanent(format!("serialising the event: {e}"));
    let chain = chain(cfg, tenant);
    let failure = cfg
        .tenants
        .get(tenant)
        .map(|t| t.plugin_failure)
        .unwrap_or_default();
    let mut out = Transformed::default();
    for RouteEvent { route, event } in events {
        let value = Arc::new(serde_json::to_value(&event).map_err(ser)?);
        let host = match host {
            Some(h) if !chain.is_empty() => h,
            _ => {
                let d = deliveries_for(cfg, tenant, mail_id, &route, &value).map_err(ser)?;
                out.deliveries.extend(d);
                continue;
            }
        };
        let started = std::time::Instant::now();
        let tags = OwnedTags {
            tenant: tenant.into(),
            route: route.clone(),
            mail_id: mail_id.into(),
        };
        let ChainRun { result, output, .. } = host
            .run_chain_blocking(chain.clone(), Arc::clone(&value), tags)
            .await;
        let result = result.and_then(|o| check_routes(cfg, tenant, o));
        let audit = |kind, reason: String, error_kind, mode| TransformAudit {
            kind,
            mail_id: mail_id.into(),
            tenant: tenant.into(),
            route: route.clone(),
            reason,
            error_kind,
            mode,
            output: output.clone(),
            at: now(),
        };
        postwire_core::metrics::observe(
            "postwire_plugin_duration_seconds",
            "Time a tenant's plugin chain took for one event.",
            &[("tenant", tenant)],
            started.elapsed(),
        );
        if let Err(e) = &result {
            postwire_core::metrics::inc(
                "postwire_plugin_errors_total",
                "Plugin failures by kind (timeout, memory, trap, plugin, load, invalid output).",
                &[("tenant", tenant), ("kind", e.kind())],
            );
        }
        match result {
            Ok(Outcome::Deliver(v)) => {
                let d = deliveries_for(cfg, tenant, mail_id, &route, &v).map_err(ser)?;
                out.deliveries.extend(d);
            }
            Ok(Outcome::Drop { reason }) => {
                tracing::info!(route, "A plugin dropped the mail.");
                out.audits.push(audit("drop", reason, None, None));
            }
            Ok(Outcome::Route(routes)) => {
                for (r, v) in routes {
                    let d = deliveries_for(cfg, tenant, mail_id, &r, &v).map_err(ser)?;
                    for d in d {
                        if !out.deliveries.iter().any(|x| x.id == d.id) {
                            out.deliveries.push(d);
                        }
                    }
                }
            }
            Err(e) => match failure {
                PluginFailure::FailOpen => {
                    let d = deliveries_for(cfg, tenant, mail_id, &route, &value).map_err(ser)?;
                    out.deliveries.extend(d);
                    out.audits.push(audit(
                        "plugin",
                        e.to_string(),
                        Some(e.kind()),
                        Some("fail-open"),
                    ));
                }
                PluginFailure::FailClosed => {
                    out.dead.push(audit(
                        "plugin",
                        e.to_string(),
                        Some(e.kind()),
                        Some("fail-closed"),
                    ));
                }
            },
        }
    }
    Ok(out)
}

/// A `route` outcome may only name routes of the tenant.
fn check_routes(cfg: &Config, tenant: &str, o: Outcome) -> Result<Outcome, TransformError> {
    if let Outcome::Route(routes) = &o {
        let known = cfg.tenants.get(tenant).map(|t| &t.routes);
        for (r, _) in routes {
            if !known.is_some_and(|k| k.iter().any(|k| &k.name == r)) {
                return Err(TransformError::InvalidOutput {
                    plugin: "(chain)".into(),
                    message: format!("route {r:?} is not a route of tenant {tenant}"),
                });
            }
        }
    }
    Ok(o)
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

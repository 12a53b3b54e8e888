//! Audit records of operator actions (issue #18): DLQ replay and purge, quarantine release
//! and purge, endpoint enable and disable, key rotation. Each is one record on
//! `audit.<tenant>.operation` — who, what, when, and which items — read back with the
//! configuration changes by `GET /api/v1/audit`. Actions that concern no tenant (key
//! rotation) are recorded under [`NO_TENANT`], which only the global token sees.

use std::collections::BTreeMap;

use postwire_core::bus;
use serde_json::{Value, json};

use crate::{AdminError, Api, Caller};

/// The tenant segment of actions that belong to no tenant (tenant names never start with `_`).
pub const NO_TENANT: &str = "_global";

/// The audit kind (subject token) of operator actions.
pub const KIND: &str = "operation";

/// Writes one record: `change` names the action (`dlq.replay`, `endpoint.disable`, …),
/// `detail` what it took. Best effort: a lost record is logged, the action stands.
pub async fn record(a: &Api, c: &Caller, tenant: &str, change: &str, detail: Value) {
    write(&a.js, &c.name, tenant, change, detail).await;
}

/// [`record`] for any writer: the CLI's operator commands name themselves `cli:<user>`.
pub async fn write(
    js: &async_nats::jetstream::Context,
    by: &str,
    tenant: &str,
    change: &str,
    detail: Value,
) {
    if let Err(e) = try_write(js, by, tenant, change, detail).await {
        tracing::warn!(error = %e, change, "Could not write the audit record of an operator action.");
    }
}

/// [`write`] that says whether the record was stored: for callers that must tell their user
/// (the CLI's `keys rotate`, whose action happens on files whether or not NATS is there).
pub async fn try_write(
    js: &async_nats::jetstream::Context,
    by: &str,
    tenant: &str,
    change: &str,
    detail: Value,
) -> Result<(), AdminError> {
    let record = json!({
        "at": postwire_core::envelope::now_rfc3339(),
        "by": by,
        "tenant": tenant,
        "kind": KIND,
        "change": change,
        "detail": detail,
    });
    publish(js, tenant, &record).await
}

/// Who runs the CLI, for its audit records: `cli:<login name>`.
pub fn cli_user() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

/// [`record`] once per tenant of `items` (`(tenant, item)` pairs), the items of each listed.
pub async fn record_each(
    a: &Api,
    c: &Caller,
    change: &str,
    items: impl IntoIterator<Item = (String, Value)>,
) {
    let mut by_tenant: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (t, v) in items {
        by_tenant.entry(t).or_default().push(v);
    }
    for (t, items) in by_tenant {
        record(a, c, &t, change, json!({ "items": items })).await;
    }
}

async fn publish(
    js: &async_nats::jetstream::Context,
    tenant: &str,
    record: &Value,
) -> Result<(), AdminError> {
    let body = serde_json::to_vec(record).map_err(AdminError::Encode)?;
    js.publish(bus::subject_audit(tenant, KIND), body.into())
        .await
        .map_err(|e| AdminError::Publish(Box::new(e)))?
        .await
        .map_err(|e| AdminError::Publish(Box::new(e)))?;
    Ok(())
}

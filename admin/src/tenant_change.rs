//! Changing one tenant: read it from the config bucket, apply the change, validate the whole
//! configuration, write it with the revision read (or `If-Match`), wait until this node has
//! seen the write, and record who changed what (AUDIT).

use std::collections::BTreeMap;

use axum::http::{HeaderMap, StatusCode};
use postwire_core::bus;
use postwire_core::live::{self, Source, StoredTenant};
use postwire_core::tenant_config::TenantConfig;
use serde_json::{Value, json};

use crate::problem::ApiResult;
use crate::secrets::server_refs;
use crate::tenants::{Entry, TenantDoc, all, bucket, doc, redacted};
use crate::{Api, Caller, Problem};

/// Reads, changes, validates and writes one tenant, then records who changed what.
pub(crate) async fn change(
    a: &Api,
    caller: &Caller,
    tenant: &str,
    what: &str,
    headers: &HeaderMap,
    f: impl FnOnce(Option<TenantConfig>) -> ApiResult<Option<TenantConfig>>,
) -> ApiResult<(StatusCode, Option<TenantDoc>)> {
    if !a.writable {
        return Err(Problem::conflict(
            "the live configuration is off (admin.live_config = false): change the config file",
        ));
    }
    caller.check(tenant)?;
    let tenants = all(a).await?;
    let current = tenants.get(tenant);
    if let Some(want) = headers.get("if-match").and_then(|v| v.to_str().ok()) {
        let have = current.map_or(0, |e| e.revision);
        if want.trim_matches('"') != have.to_string() {
            return Err(Problem::conflict(format!(
                "tenant {tenant} is at revision {have}, not {want}: read it again"
            )));
        }
    }
    let before = current.map(|e| e.stored.config.clone());
    let existed = before.is_some();
    let after = f(before.clone())?;
    if !existed && after.is_some() {
        caller.require_global()?;
    }
    if after == before {
        let code = StatusCode::OK;
        return Ok((code, current.map(|e| doc(tenant, e))));
    }
    if let Some(t) = &after {
        // Plugin paths name files on the servers: a tenant token may only keep its plugins
        // or use versions uploaded for it; other paths need the global token.
        let own = format!("{tenant}/");
        let allowed = |p: &postwire_core::config::PluginConfig| {
            before.as_ref().is_some_and(|b| b.plugins.contains(p))
                || a.base
                    .plugin_host
                    .uploaded_object(&p.path)
                    .is_some_and(|o| o.starts_with(&own))
        };
        if !caller.is_global() && !t.plugins.iter().all(allowed) {
            return Err(Problem::forbidden(
                "plugins name files on the servers: a tenant token may only use plugins uploaded for it (PUT …/plugins/{name})",
            ));
        }
        // Key files, key directories and environment variables are the servers' secrets: a
        // tenant token could otherwise have another tenant's key, or a cloud credential,
        // signed into (or sent as) its own webhooks. It may keep the ones it has.
        if !caller.is_global() {
            let had = before.as_ref().map(server_refs).unwrap_or_default();
            if let Some((ep, key, _)) = server_refs(t).into_iter().find(|r| !had.contains(r)) {
                return Err(Problem::forbidden(format!(
                    "endpoints.{ep}: {key} names a file or variable on the servers; setting it needs the global token (send the secret itself)"
                )));
            }
        }
        // The alert URL is POSTed to by the deliver workers with the endpoints' signatures:
        // a protected field, like the server references above. A tenant token may keep it
        // or remove it.
        let had_alert = before.as_ref().and_then(|b| b.alert_url.as_ref());
        if !caller.is_global() && t.alert_url.is_some() && t.alert_url.as_ref() != had_alert {
            return Err(Problem::forbidden(
                "alert_url: setting or changing it needs the global token",
            ));
        }
        // A domain of another tenant: said without naming that tenant.
        for (i, d) in t.domains.iter().enumerate() {
            let taken = tenants.iter().any(|(n, e)| {
                n != tenant
                    && e.stored
                        .config
                        .domains
                        .iter()
                        .any(|x| x.eq_ignore_ascii_case(d))
            });
            if taken {
                return Err(Problem::invalid(
                    format!("tenants.{tenant}.domains[{i}]"),
                    format!("{d} belongs to another tenant"),
                ));
            }
        }
    }
    let mut configs: BTreeMap<String, TenantConfig> = tenants
        .iter()
        .map(|(n, e)| (n.clone(), e.stored.config.clone()))
        .collect();
    match &after {
        Some(t) => configs.insert(tenant.to_string(), t.clone()),
        None => configs.remove(tenant),
    };
    live::compose(&a.base, configs)?;
    let kv = bucket(a).await?;
    let revision = current.map_or(0, |e| e.revision);
    let written = match &after {
        Some(t) => {
            let stored = StoredTenant::new(t.clone(), Source::Api, &caller.name);
            let body: bytes::Bytes = serde_json::to_vec(&stored)
                .map_err(|e| Problem::bad_request(e.to_string()))?
                .into();
            let r = if revision == 0 {
                kv.create(tenant, body).await.map_err(|e| e.to_string())
            } else {
                kv.update(tenant, body, revision)
                    .await
                    .map_err(|e| e.to_string())
            };
            let rev = r.map_err(|e| {
                Problem::conflict(format!(
                    "tenant {tenant} changed meanwhile ({e}): read it again"
                ))
            })?;
            // Read your writes: the answer comes once this node's configuration has it.
            a.live
                .wait_seen(rev, std::time::Duration::from_secs(5))
                .await;
            Some(Entry {
                stored,
                revision: rev,
            })
        }
        None => {
            kv.delete_expect_revision(tenant, Some(revision))
                .await
                .map_err(|e| {
                    Problem::conflict(format!("tenant {tenant} changed meanwhile ({e})"))
                })?;
            None
        }
    };
    let record = json!({
        "at": postwire_core::envelope::now_rfc3339(),
        "by": caller.name,
        "tenant": tenant,
        "change": what,
        "revision": written.as_ref().map_or(0, |e| e.revision),
        "before": before.as_ref().map(redacted),
        "after": after.as_ref().map(redacted),
    });
    if let Err(e) = audit(a, tenant, &record).await {
        tracing::warn!(error = %e, "Could not write the audit record of a configuration change.");
    }
    tracing::info!(tenant, by = %caller.name, change = what, "Tenant configuration changed through the admin API.");
    let status = if existed || written.is_none() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, written.as_ref().map(|e| doc(tenant, e))))
}

async fn audit(a: &Api, tenant: &str, record: &Value) -> Result<(), crate::AdminError> {
    use crate::AdminError;
    let body = serde_json::to_vec(record).map_err(AdminError::Encode)?;
    a.js.publish(bus::subject_audit(tenant, "config"), body.into())
        .await
        .map_err(|e| AdminError::Publish(Box::new(e)))?
        .await
        .map_err(|e| AdminError::Publish(Box::new(e)))?;
    Ok(())
}

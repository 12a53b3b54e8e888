//! Operations: endpoint health and state, signing keys, and the audit trail of
//! configuration changes (the DLQ and quarantine are in [`crate::dlq`]).

use std::collections::HashMap;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use postwire_core::bus;
use postwire_stages::deliver::audit::{self, AttemptRecord};
use postwire_stages::deliver::{scan, state};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::deliveries::time_arg;
use crate::dlq::TenantQuery;
use crate::problem::{ApiResult, P, Q};
use crate::{Api, Caller, Problem};

#[derive(Serialize, utoipa::ToSchema)]
pub struct EndpointHealth {
    tenant: String,
    endpoint: String,
    url: String,
    disabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The last attempt's HTTP status (none: no answer, or no attempt in 24 h).
    last_status: Option<u16>,
    last_result: Option<String>,
    last_at: Option<String>,
    delivered_24h: u64,
    failed_24h: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EndpointList {
    endpoints: Vec<EndpointHealth>,
}

/// Every endpoint this token sees: enabled or not, and how its last 24 hours went.
#[utoipa::path(get, path = "/api/v1/endpoints", tag = "operations", params(TenantQuery),
    responses((status = 200, body = EndpointList), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn endpoints(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    Q(q): Q<TenantQuery>,
) -> ApiResult<Json<EndpointList>> {
    let scope = c.scope(q.tenant.as_deref())?;
    let since = time::OffsetDateTime::now_utc() - time::Duration::hours(24);
    let subject = audit::filter(scope.single(), None);
    let records = scan::read(&a.js, bus::STREAM_AUDIT, &subject, Some(since))
        .await
        .map_err(Problem::unavailable)?;
    let mut tally: HashMap<(String, String), (u64, u64, Option<AttemptRecord>)> = HashMap::new();
    for s in records {
        let tenant = s.subject.split('.').nth(1).unwrap_or_default().to_string();
        for r in audit::attempts_in(&s.subject, &s.payload) {
            let e = tally
                .entry((tenant.clone(), r.endpoint.clone()))
                .or_default();
            match r.result.as_str() {
                "delivered" => e.0 += 1,
                "failed" | "refused" => e.1 += 1,
                _ => {}
            }
            // The latest attempt (records are stored about, not exactly, in time order).
            let later =
                |l: &AttemptRecord| audit::made(&l.at, l.attempt) <= audit::made(&r.at, r.attempt);
            if e.2.as_ref().is_none_or(later) {
                e.2 = Some(r);
            }
        }
    }
    let snap = a.live.get();
    let mut out = Vec::new();
    for (tenant, t) in snap.cfg.tenants.iter().filter(|(n, _)| scope.has(n)) {
        for (name, ep) in &t.endpoints {
            let st = state::get(&a.js, tenant, name)
                .await
                .map_err(Problem::unavailable)?;
            let (ok, bad, last) = tally
                .remove(&(tenant.clone(), name.clone()))
                .unwrap_or_default();
            out.push(EndpointHealth {
                tenant: tenant.clone(),
                endpoint: name.clone(),
                url: postwire_core::redact::url(&ep.url),
                disabled: st.is_some(),
                reason: st.map(|s| s.reason),
                last_status: last.as_ref().and_then(|r| r.status),
                last_result: last.as_ref().map(|r| r.result.clone()),
                last_at: last.map(|r| r.at),
                delivered_24h: ok,
                failed_24h: bad,
            });
        }
    }
    Ok(Json(EndpointList { endpoints: out }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EndpointStateView {
    tenant: String,
    endpoint: String,
    disabled: bool,
    was_disabled: bool,
}

fn known_endpoint(a: &Api, c: &Caller, tenant: &str, endpoint: &str) -> ApiResult<()> {
    c.check(tenant)?;
    let snap = a.live.get();
    snap.cfg
        .tenants
        .get(tenant)
        .and_then(|t| t.endpoints.get(endpoint))
        .map(|_| ())
        .ok_or_else(|| Problem::not_found(format!("no endpoint {endpoint:?} in tenant {tenant:?}")))
}

/// Re-enables an endpoint (after a 410 Gone, or a manual disable).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/endpoints/{endpoint}/enable", tag = "operations",
    params(("tenant" = String, Path), ("endpoint" = String, Path)),
    responses((status = 200, body = EndpointStateView), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn endpoint_enable(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    P((tenant, endpoint)): P<(String, String)>,
) -> ApiResult<Json<EndpointStateView>> {
    known_endpoint(&a, &c, &tenant, &endpoint)?;
    let was = state::enable(&a.js, &tenant, &endpoint)
        .await
        .map_err(Problem::unavailable)?;
    tracing::info!(tenant, endpoint, by = %c.name, "Endpoint enabled through the admin API.");
    let detail = json!({"endpoint": endpoint, "was_disabled": was});
    crate::oplog::record(&a, &c, &tenant, "endpoint.enable", detail).await;
    Ok(Json(EndpointStateView {
        tenant,
        endpoint,
        disabled: false,
        was_disabled: was,
    }))
}

/// Disables an endpoint: its deliveries go to the DLQ until it is enabled again.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/endpoints/{endpoint}/disable", tag = "operations",
    params(("tenant" = String, Path), ("endpoint" = String, Path)),
    responses((status = 200, body = EndpointStateView), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn endpoint_disable(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    P((tenant, endpoint)): P<(String, String)>,
) -> ApiResult<Json<EndpointStateView>> {
    known_endpoint(&a, &c, &tenant, &endpoint)?;
    let was = state::get(&a.js, &tenant, &endpoint)
        .await
        .map_err(Problem::unavailable)?
        .is_some();
    state::disable(
        &a.js,
        &tenant,
        &endpoint,
        &format!("disabled by {}", c.name),
    )
    .await
    .map_err(Problem::unavailable)?;
    tracing::info!(tenant, endpoint, by = %c.name, "Endpoint disabled through the admin API.");
    let detail = json!({"endpoint": endpoint, "was_disabled": was});
    crate::oplog::record(&a, &c, &tenant, "endpoint.disable", detail).await;
    Ok(Json(EndpointStateView {
        tenant,
        endpoint,
        disabled: true,
        was_disabled: was,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyringView {
    keyring: String,
    domain: String,
    #[schema(value_type = Vec<Object>)]
    keys: Vec<Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyList {
    keyrings: Vec<KeyringView>,
}

/// Signing key directories and their keys (public facts only: selector, type, dates).
#[utoipa::path(get, path = "/api/v1/keys", tag = "operations",
    responses((status = 200, body = KeyList), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn keys(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
) -> ApiResult<Json<KeyList>> {
    c.require_global()?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut keyrings = Vec::new();
    for dir in a.keyrings.iter() {
        match postwire_sign::keydir::KeyDir::load(dir) {
            Ok(kd) => keyrings.push(KeyringView {
                keyring: dir.display().to_string(),
                domain: kd.domain.clone(),
                keys: kd
                    .keys
                    .iter()
                    .map(|k| {
                        json!({"selector": k.selector, "type": k.key_type, "created": k.created,
                               "retire_at": k.retire_at, "active": k.is_active(now),
                               "keyid": kd.keyid(k)})
                    })
                    .collect(),
            }),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "A key directory cannot be read.")
            }
        }
    }
    Ok(Json(KeyList { keyrings }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// One of the key directories `GET /api/v1/keys` lists.
    keyring: String,
    /// `ed25519` (default) or `rsa`.
    #[serde(default)]
    alg: Option<String>,
    /// How long the old keys stay published (default 7 days).
    #[serde(default)]
    overlap_secs: Option<i64>,
}

/// Adds a new key to a key directory; the current keys retire after the overlap.
#[utoipa::path(post, path = "/api/v1/keys/rotate", tag = "operations", request_body = RotateBody,
    responses((status = 200, body = KeyringView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn keys_rotate(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    body: axum::body::Bytes,
) -> ApiResult<Json<KeyringView>> {
    // Authorised before the body is read: a tenant token gets 403 whatever it sent.
    c.require_global()?;
    let b: RotateBody = crate::problem::parse_json(&body)?;
    let dir = a
        .keyrings
        .iter()
        .find(|d| d.display().to_string() == b.keyring)
        .ok_or_else(|| Problem::not_found(format!("no key directory {:?}", b.keyring)))?;
    let alg: postwire_sign::keys::KeyType = b
        .alg
        .as_deref()
        .unwrap_or("ed25519")
        .parse()
        .map_err(|e: postwire_sign::KeyError| Problem::invalid("alg", e.to_string()))?;
    let overlap = b.overlap_secs.unwrap_or(7 * 86_400);
    if !(0..=365 * 86_400).contains(&overlap) {
        return Err(Problem::invalid("overlap_secs", "0 to 31536000"));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut kd = postwire_sign::keydir::KeyDir::load(dir)
        .map_err(|e| Problem::unavailable(format!("key directory: {e}")))?;
    let selector = format!("pw{now}");
    kd.rotate(&selector, alg, now, overlap)
        .map_err(|e| Problem::conflict(e.to_string()))?;
    kd.save()
        .map_err(|e| Problem::unavailable(format!("saving the key directory: {e}")))?;
    tracing::info!(keyring = %dir.display(), selector, by = %c.name, "Signing key rotated through the admin API.");
    let detail = json!({"keyring": dir.display().to_string(), "selector": selector, "alg": b.alg.as_deref().unwrap_or("ed25519"), "overlap_secs": overlap});
    crate::oplog::record(&a, &c, crate::oplog::NO_TENANT, "keys.rotate", detail).await;
    let view = KeyringView {
        keyring: dir.display().to_string(),
        domain: kd.domain.clone(),
        keys: kd
            .keys
            .iter()
            .map(|k| json!({"selector": k.selector, "type": k.key_type, "created": k.created,
                           "retire_at": k.retire_at, "active": k.is_active(now), "keyid": kd.keyid(k)}))
            .collect(),
    };
    Ok(Json(view))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditList {
    /// `{at, by, tenant, change, revision, before, after}` (configuration changes, secrets
    /// hidden) and `{at, by, tenant, kind: "operation", change, detail}` (operator actions),
    /// oldest first.
    #[schema(value_type = Vec<Object>)]
    changes: Vec<Value>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    #[param(pattern = "^[a-z0-9_-]{1,64}$")]
    tenant: Option<String>,
    /// RFC 3339 time or an age (default `7d`).
    since: Option<String>,
}

/// Configuration changes and operator actions (DLQ, quarantine, endpoint state, keys): who
/// did what, when. Operator actions have `"kind": "operation"` and a `detail`.
#[utoipa::path(get, path = "/api/v1/audit", tag = "operations", params(AuditQuery),
    responses((status = 200, body = AuditList), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn audit(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    Q(q): Q<AuditQuery>,
) -> ApiResult<Json<AuditList>> {
    let scope = c.scope(q.tenant.as_deref())?;
    let since = time_arg("since", q.since.as_deref().unwrap_or("7d"))?;
    let t = scope.single().unwrap_or("*");
    let mut records = Vec::new();
    for kind in ["config", crate::oplog::KIND] {
        let subject = format!("audit.{t}.{kind}");
        records.extend(
            scan::read(&a.js, bus::STREAM_AUDIT, &subject, Some(since))
                .await
                .map_err(Problem::unavailable)?,
        );
    }
    // Configuration changes and operator actions, in the order they were written.
    records.sort_by_key(|s| s.seq);
    let changes = records
        .iter()
        .filter(|s| scope.has(s.subject.split('.').nth(1).unwrap_or_default()))
        .filter_map(|s| serde_json::from_slice(&s.payload).ok())
        .collect();
    Ok(Json(AuditList { changes }))
}

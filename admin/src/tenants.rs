//! Tenants, their domains, routes and endpoints: read from the live configuration, changed in
//! the config bucket (`postwire_tenants`) after validating the whole configuration, with an
//! audit record (who, what, when) for each change. Secrets never leave: they read as
//! `"********"`, and a `"********"` sent back keeps the stored secret.

use std::collections::BTreeMap;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use postwire_core::bus;
use postwire_core::live::{self, Source, StoredTenant};
use postwire_core::tenant_config::{TenantConfig, is_valid_name};
use serde::Serialize;
use serde_json::Value;

use crate::problem::{ApiResult, Body, P};
use crate::secrets::{redact, unredact};
use crate::{Api, Caller, Problem};

pub(crate) use crate::tenant_change::change;

pub(super) fn redacted<T: Serialize>(t: &T) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    redact(&mut v);
    v
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TenantSummary {
    name: String,
    domains: Vec<String>,
    routes: usize,
    endpoints: usize,
    plugins: usize,
    source: Source,
    /// The bucket revision of this tenant's entry (0: not in the bucket).
    revision: u64,
    updated_at: String,
    updated_by: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TenantList {
    tenants: Vec<TenantSummary>,
}

/// A tenant's configuration (secrets hidden) and its provenance.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TenantDoc {
    name: String,
    revision: u64,
    source: Source,
    updated_at: String,
    updated_by: String,
    /// The same fields as `[tenants.<name>]` in the config file.
    #[schema(value_type = TenantConfig)]
    config: Value,
}

/// One tenant as stored, with its bucket revision.
pub(super) struct Entry {
    pub(super) stored: StoredTenant,
    pub(super) revision: u64,
}

pub(super) async fn bucket(a: &Api) -> ApiResult<async_nats::jetstream::kv::Store> {
    a.js.get_key_value(bus::KV_TENANTS)
        .await
        .map_err(Problem::unavailable)
}

/// Every tenant: from the bucket when the configuration is live, else from the file.
pub(super) async fn all(a: &Api) -> ApiResult<BTreeMap<String, Entry>> {
    if !a.writable {
        return Ok(a
            .live
            .get()
            .cfg
            .tenants
            .iter()
            .map(|(n, t)| {
                let mut stored = StoredTenant::new(t.clone(), Source::File, "config file");
                stored.updated_at = String::new();
                (
                    n.clone(),
                    Entry {
                        stored,
                        revision: 0,
                    },
                )
            })
            .collect());
    }
    let kv = bucket(a).await?;
    let (stored, _) = live::read_all(&kv).await.map_err(Problem::unavailable)?;
    let mut out = BTreeMap::new();
    for (name, s) in stored {
        let revision = match kv.entry(&name).await {
            Ok(Some(e)) => e.revision,
            _ => 0,
        };
        out.insert(
            name,
            Entry {
                stored: s,
                revision,
            },
        );
    }
    Ok(out)
}

pub(super) fn doc(name: &str, e: &Entry) -> TenantDoc {
    TenantDoc {
        name: name.into(),
        revision: e.revision,
        source: e.stored.source,
        updated_at: e.stored.updated_at.clone(),
        updated_by: e.stored.updated_by.clone(),
        config: redacted(&e.stored.config),
    }
}

pub(super) fn name_ok(kind: &str, name: &str) -> ApiResult<()> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(Problem::invalid(
            kind,
            format!("{kind} names use a-z, 0-9, - and _ (at most 64): {name:?}"),
        ))
    }
}

pub(super) fn respond((status, d): (StatusCode, Option<TenantDoc>)) -> Response {
    match d {
        Some(d) => (status, Json(d)).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// The tenants this token sees.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants",
    responses((status = 200, body = TenantList), (status = 401, body = Problem)))]
pub async fn list_tenants(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
) -> ApiResult<Json<TenantList>> {
    let tenants = all(&a)
        .await?
        .into_iter()
        .filter(|(n, _)| c.sees(n))
        .map(|(name, e)| {
            let t = &e.stored.config;
            TenantSummary {
                domains: t.domains.clone(),
                routes: t.routes.len(),
                endpoints: t.endpoints.len(),
                plugins: t.plugins.len(),
                source: e.stored.source,
                revision: e.revision,
                updated_at: e.stored.updated_at.clone(),
                updated_by: e.stored.updated_by.clone(),
                name,
            }
        })
        .collect();
    Ok(Json(TenantList { tenants }))
}

pub(super) async fn one(a: &Api, c: &Caller, tenant: &str) -> ApiResult<(Entry, u64)> {
    c.check(tenant)?;
    let mut tenants = all(a).await?;
    let e = tenants
        .remove(tenant)
        .ok_or_else(|| Problem::not_found(format!("no tenant {tenant:?}")))?;
    let rev = e.revision;
    Ok((e, rev))
}

/// One tenant's configuration (secrets hidden). The `ETag` is its revision, for `If-Match`.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path)),
    responses((status = 200, body = TenantDoc), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn get_tenant(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    P(tenant): P<String>,
) -> ApiResult<Response> {
    let (e, rev) = one(&a, &c, &tenant).await?;
    Ok(([("etag", format!("\"{rev}\""))], Json(doc(&tenant, &e))).into_response())
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(what: &str, v: Value) -> ApiResult<T> {
    serde_json::from_value(v).map_err(|e| Problem::invalid(what, e.to_string()))
}

/// Creates (global token) or replaces a tenant. Send `If-Match: "<revision>"` to refuse
/// overwriting a change you have not seen.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path)),
    request_body = TenantConfig,
    responses((status = 200, body = TenantDoc), (status = 201, body = TenantDoc),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn put_tenant(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    headers: HeaderMap,
    P(tenant): P<String>,
    Body(mut body): Body<Value>,
) -> ApiResult<Response> {
    name_ok("tenant", &tenant)?;
    let r = change(&a, &c, &tenant, "put tenant", &headers, |old| {
        if let Some(old) = &old {
            unredact(&mut body, &serde_json::to_value(old).unwrap_or(Value::Null));
        }
        Ok(Some(parse("body", body)?))
    })
    .await?;
    Ok(respond(r))
}

/// Deletes a tenant (global token).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_tenant(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    headers: HeaderMap,
    P(tenant): P<String>,
) -> ApiResult<Response> {
    c.require_global()?;
    let r = change(
        &a,
        &c,
        &tenant,
        "delete tenant",
        &headers,
        |old| match old {
            Some(_) => Ok(None),
            None => Err(Problem::not_found(format!("no tenant {tenant:?}"))),
        },
    )
    .await?;
    Ok(respond(r))
}

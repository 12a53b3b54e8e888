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
use postwire_core::tenant_config::{EndpointConfig, RouteConfig, TenantConfig, is_valid_name};
use serde::Serialize;
use serde_json::{Value, json};

use super::problem::{ApiResult, Body, P};
use super::{Api, Caller, Problem};

/// What a secret reads as.
pub const REDACTED: &str = "********";
const SECRET_KEYS: [&str; 3] = ["secret", "password", "token"];

/// Replaces every secret value with [`REDACTED`].
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                if SECRET_KEYS.contains(&k.as_str()) && val.is_string() {
                    *val = Value::String(REDACTED.into());
                } else {
                    redact(val);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

/// Puts the stored secret back wherever `new` holds [`REDACTED`] at the same place.
fn unredact(new: &mut Value, old: &Value) {
    match (new, old) {
        (Value::Object(n), Value::Object(o)) => {
            for (k, val) in n.iter_mut() {
                match o.get(k) {
                    Some(ov) if val.as_str() == Some(REDACTED) => *val = ov.clone(),
                    Some(ov) => unredact(val, ov),
                    None => {}
                }
            }
        }
        (Value::Array(n), Value::Array(o)) => {
            for (nv, ov) in n.iter_mut().zip(o) {
                if nv.as_str() == Some(REDACTED) {
                    *nv = ov.clone();
                } else {
                    unredact(nv, ov);
                }
            }
        }
        _ => {}
    }
}

/// Fields whose value names something on the servers rather than holding a secret.
const SERVER_REFS: [&str; 6] = [
    "secret_env",
    "key_env",
    "token_env",
    "password_env",
    "key_file",
    "keyring",
];

/// (endpoint, field, value) of every server reference in a tenant's endpoints.
fn server_refs(t: &TenantConfig) -> std::collections::BTreeSet<(String, String, String)> {
    fn walk(ep: &str, v: &Value, out: &mut std::collections::BTreeSet<(String, String, String)>) {
        match v {
            Value::Object(m) => {
                for (k, val) in m {
                    match val {
                        Value::String(s) if SERVER_REFS.contains(&k.as_str()) => {
                            out.insert((ep.to_string(), k.clone(), s.clone()));
                        }
                        other => walk(ep, other, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(ep, x, out)),
            _ => {}
        }
    }
    let mut out = std::collections::BTreeSet::new();
    for (name, e) in &t.endpoints {
        walk(
            name,
            &serde_json::to_value(e).unwrap_or(Value::Null),
            &mut out,
        );
    }
    out
}

fn redacted<T: Serialize>(t: &T) -> Value {
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
struct Entry {
    stored: StoredTenant,
    revision: u64,
}

async fn bucket(a: &Api) -> ApiResult<async_nats::jetstream::kv::Store> {
    a.js.get_key_value(bus::KV_TENANTS)
        .await
        .map_err(Problem::unavailable)
}

/// Every tenant: from the bucket when the configuration is live, else from the file.
async fn all(a: &Api) -> ApiResult<BTreeMap<String, Entry>> {
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

fn doc(name: &str, e: &Entry) -> TenantDoc {
    TenantDoc {
        name: name.into(),
        revision: e.revision,
        source: e.stored.source,
        updated_at: e.stored.updated_at.clone(),
        updated_by: e.stored.updated_by.clone(),
        config: redacted(&e.stored.config),
    }
}

fn name_ok(kind: &str, name: &str) -> ApiResult<()> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(Problem::invalid(
            kind,
            format!("{kind} names use a-z, 0-9, - and _ (at most 64): {name:?}"),
        ))
    }
}

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
    let mut tenants = all(a).await?;
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
    tenants.remove(tenant);
    let status = if existed || written.is_none() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, written.as_ref().map(|e| doc(tenant, e))))
}

async fn audit(a: &Api, tenant: &str, record: &Value) -> Result<(), String> {
    let body = serde_json::to_vec(record).map_err(|e| e.to_string())?;
    a.js.publish(bus::subject_audit(tenant, "config"), body.into())
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn respond((status, d): (StatusCode, Option<TenantDoc>)) -> Response {
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

async fn one(a: &Api, c: &Caller, tenant: &str) -> ApiResult<(Entry, u64)> {
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

fn parse<T: serde::de::DeserializeOwned>(what: &str, v: Value) -> ApiResult<T> {
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

fn existing(old: Option<TenantConfig>, tenant: &str) -> ApiResult<TenantConfig> {
    old.ok_or_else(|| Problem::not_found(format!("no tenant {tenant:?}")))
}

/// One endpoint of a tenant (secrets hidden).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/endpoints/{endpoint}", tag = "tenants",
    params(("tenant" = String, Path), ("endpoint" = String, Path)),
    responses((status = 200, body = EndpointConfig), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn get_endpoint(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    P((tenant, endpoint)): P<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (e, _) = one(&a, &c, &tenant).await?;
    let ep = e
        .stored
        .config
        .endpoints
        .get(&endpoint)
        .ok_or_else(|| Problem::not_found(format!("no endpoint {endpoint:?} in {tenant}")))?;
    Ok(Json(redacted(ep)))
}

/// Adds or replaces an endpoint.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/endpoints/{endpoint}", tag = "tenants",
    params(("tenant" = String, Path), ("endpoint" = String, Path)),
    request_body = EndpointConfig,
    responses((status = 200, body = TenantDoc), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn put_endpoint(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    headers: HeaderMap,
    P((tenant, endpoint)): P<(String, String)>,
    Body(mut body): Body<Value>,
) -> ApiResult<Response> {
    name_ok("endpoint", &endpoint)?;
    let what = format!("put endpoint {endpoint}");
    let r = change(&a, &c, &tenant, &what, &headers, |old| {
        let mut t = existing(old, &tenant)?;
        if let Some(old) = t.endpoints.get(&endpoint) {
            unredact(&mut body, &serde_json::to_value(old).unwrap_or(Value::Null));
        }
        let ep: EndpointConfig = parse("body", body)?;
        t.endpoints.insert(endpoint.clone(), ep);
        Ok(Some(t))
    })
    .await?;
    Ok(respond(r))
}

/// Removes an endpoint (no route may still name it).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/endpoints/{endpoint}", tag = "tenants",
    params(("tenant" = String, Path), ("endpoint" = String, Path)),
    responses((status = 200, body = TenantDoc), (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn delete_endpoint(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    headers: HeaderMap,
    P((tenant, endpoint)): P<(String, String)>,
) -> ApiResult<Response> {
    let what = format!("delete endpoint {endpoint}");
    let r = change(&a, &c, &tenant, &what, &headers, |old| {
        let mut t = existing(old, &tenant)?;
        t.endpoints
            .remove(&endpoint)
            .ok_or_else(|| Problem::not_found(format!("no endpoint {endpoint:?} in {tenant}")))?;
        Ok(Some(t))
    })
    .await?;
    Ok(respond(r))
}

/// One route of a tenant.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/routes/{route}", tag = "tenants",
    params(("tenant" = String, Path), ("route" = String, Path)),
    responses((status = 200, body = RouteConfig), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn get_route(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    P((tenant, route)): P<(String, String)>,
) -> ApiResult<Json<RouteConfig>> {
    let (e, _) = one(&a, &c, &tenant).await?;
    e.stored
        .config
        .routes
        .into_iter()
        .find(|r| r.name == route)
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no route {route:?} in {tenant}")))
}

/// The body of `PUT …/routes/{route}` (the name comes from the path).
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteBody {
    /// `user@domain`, `*@domain` or `*`.
    recipients: Vec<String>,
    endpoints: Vec<String>,
    /// Where the route goes in the order routes are tried (default: where it is, or last).
    #[serde(default)]
    position: Option<usize>,
}

/// Adds or replaces a route.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/routes/{route}", tag = "tenants",
    params(("tenant" = String, Path), ("route" = String, Path)),
    request_body = RouteBody,
    responses((status = 200, body = TenantDoc), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn put_route(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    headers: HeaderMap,
    P((tenant, route)): P<(String, String)>,
    Body(body): Body<Value>,
) -> ApiResult<Response> {
    name_ok("route", &route)?;
    let body: RouteBody = parse("body", body)?;
    let what = format!("put route {route}");
    let r = change(&a, &c, &tenant, &what, &headers, |old| {
        let mut t = existing(old, &tenant)?;
        let rc = RouteConfig {
            name: route.clone(),
            recipients: body.recipients,
            endpoints: body.endpoints,
        };
        let at = t.routes.iter().position(|r| r.name == route);
        if let Some(i) = at {
            t.routes.remove(i);
        }
        let pos = body
            .position
            .or(at)
            .unwrap_or(t.routes.len())
            .min(t.routes.len());
        t.routes.insert(pos, rc);
        Ok(Some(t))
    })
    .await?;
    Ok(respond(r))
}

/// Removes a route.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/routes/{route}", tag = "tenants",
    params(("tenant" = String, Path), ("route" = String, Path)),
    responses((status = 200, body = TenantDoc), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_route(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    headers: HeaderMap,
    P((tenant, route)): P<(String, String)>,
) -> ApiResult<Response> {
    let what = format!("delete route {route}");
    let r = change(&a, &c, &tenant, &what, &headers, |old| {
        let mut t = existing(old, &tenant)?;
        let before = t.routes.len();
        t.routes.retain(|r| r.name != route);
        if t.routes.len() == before {
            return Err(Problem::not_found(format!(
                "no route {route:?} in {tenant}"
            )));
        }
        Ok(Some(t))
    })
    .await?;
    Ok(respond(r))
}

/// Adds a domain to a tenant (no other tenant may have it).
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/domains/{domain}", tag = "tenants",
    params(("tenant" = String, Path), ("domain" = String, Path)),
    responses((status = 200, body = TenantDoc), (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_domain(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    headers: HeaderMap,
    P((tenant, domain)): P<(String, String)>,
) -> ApiResult<Response> {
    let d = domain.trim().to_ascii_lowercase();
    let valid = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !valid {
        return Err(Problem::invalid(
            "domain",
            format!("{domain:?} is not a domain name"),
        ));
    }
    let what = format!("add domain {d}");
    let r = change(&a, &c, &tenant, &what, &headers, |old| {
        let mut t = existing(old, &tenant)?;
        if !t.domains.iter().any(|x| x.eq_ignore_ascii_case(&d)) {
            t.domains.push(d.clone());
        }
        Ok(Some(t))
    })
    .await?;
    Ok(respond(r))
}

/// Removes a domain (a tenant keeps at least one).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/domains/{domain}", tag = "tenants",
    params(("tenant" = String, Path), ("domain" = String, Path)),
    responses((status = 200, body = TenantDoc), (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn delete_domain(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    headers: HeaderMap,
    P((tenant, domain)): P<(String, String)>,
) -> ApiResult<Response> {
    let what = format!("remove domain {domain}");
    let r = change(&a, &c, &tenant, &what, &headers, |old| {
        let mut t = existing(old, &tenant)?;
        let before = t.domains.len();
        t.domains.retain(|x| !x.eq_ignore_ascii_case(&domain));
        if t.domains.len() == before {
            return Err(Problem::not_found(format!(
                "no domain {domain:?} in {tenant}"
            )));
        }
        Ok(Some(t))
    })
    .await?;
    Ok(respond(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden_and_kept_when_sent_back_hidden() {
        let stored = json!({"url": "https://x", "secret": "whsec_abc",
            "signing": [{"scheme": "bearer", "token": "t0k"}, {"scheme": "basic", "username": "u", "password": "p"}]});
        let mut shown = stored.clone();
        redact(&mut shown);
        assert_eq!(shown["secret"], REDACTED);
        assert_eq!(shown["signing"][0]["token"], REDACTED);
        assert_eq!(shown["signing"][1]["password"], REDACTED);
        assert_eq!(shown["signing"][1]["username"], "u");
        let mut back = shown.clone();
        back["url"] = json!("https://y");
        unredact(&mut back, &stored);
        assert_eq!(back["secret"], "whsec_abc");
        assert_eq!(back["signing"][0]["token"], "t0k");
        assert_eq!(back["url"], "https://y");
        // A new secret replaces the old one.
        let mut changed = shown.clone();
        changed["secret"] = json!("whsec_new");
        unredact(&mut changed, &stored);
        assert_eq!(changed["secret"], "whsec_new");
    }
}

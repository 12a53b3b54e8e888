//! A tenant's endpoints, routes and domains, each changed on its own (read, change,
//! validate, write, audit: [`crate::tenants::change`]).

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use postwire_core::tenant_config::{EndpointConfig, RouteConfig, TenantConfig};
use serde_json::Value;

use crate::problem::{ApiResult, Body, P};
use crate::secrets::unredact;
use crate::tenants::{TenantDoc, change, name_ok, one, parse, redacted, respond};
use crate::{Api, Caller, Problem};

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

/// A tenant's routes in the order they are tried (by `priority`, then as listed).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RouteList {
    routes: Vec<RouteEntry>,
}

/// One route of [`RouteList`]: its configuration, where it is in the tenant's list, and
/// whether an earlier `stop` route would always take its mail first.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RouteEntry {
    #[serde(flatten)]
    route: RouteConfig,
    /// Index in the tenant's list (what `position` of a PUT sets).
    position: usize,
    /// The earlier routes that shadow this one (empty for a route that can match).
    shadowed_by: Vec<String>,
}

/// The routes of a tenant, in the order they are tried, with `priority`, `stop` and list
/// position (to move one, PUT it with another `priority`, `position` or `before`).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/routes", tag = "tenants",
    params(("tenant" = String, Path)),
    responses((status = 200, body = RouteList), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn list_routes(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    P(tenant): P<String>,
) -> ApiResult<Json<RouteList>> {
    let (e, _) = one(&a, &c, &tenant).await?;
    let t = e.stored.config;
    let shadows = postwire_core::routing::shadowed(&t.domains, &t.routes);
    let routes = postwire_core::routing::ordered(&t.routes)
        .into_iter()
        .map(|(position, r)| RouteEntry {
            route: r.clone(),
            position,
            shadowed_by: shadows
                .iter()
                .find(|s| s.index == position)
                .map(|s| s.by.clone())
                .unwrap_or_default(),
        })
        .collect();
    Ok(Json(RouteList { routes }))
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
    /// `user@domain`, `sales-*@domain`, `*@domain`, `*` or `/regex/`.
    recipients: Vec<String>,
    endpoints: Vec<String>,
    /// Conditions on headers: `[{"name": "Subject", "regex": "(?i)invoice"}]`.
    #[serde(default)]
    headers: Vec<postwire_core::routing::HeaderCondition>,
    /// Accepted verdicts: `{"dmarc": ["pass"]}`.
    #[serde(default)]
    verdicts: postwire_core::routing::VerdictCondition,
    /// Lower is tried first (default 0; with `before`, the priority of that route).
    #[serde(default)]
    priority: Option<i32>,
    /// `false`: a match does not end the search (fan-out). Default `true`.
    #[serde(default)]
    stop: Option<bool>,
    /// Where the route goes in the list (default: where it is, or last).
    #[serde(default)]
    position: Option<usize>,
    /// Put the route just before this one, with its priority.
    #[serde(default)]
    before: Option<String>,
}

/// Adds or replaces a route. A route that an earlier `stop` route would always take first is
/// refused (422) with a problem naming that route.
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
        let at = t.routes.iter().position(|r| r.name == route);
        let previous = at.map(|i| t.routes.remove(i));
        let before = match &body.before {
            None => None,
            Some(b) => Some(t.routes.iter().position(|r| &r.name == b).ok_or_else(|| {
                Problem::invalid("before", format!("no route {b:?} in {tenant}"))
            })?),
        };
        let mut rc = RouteConfig::new(&route, body.recipients, body.endpoints);
        rc.headers = body.headers;
        rc.verdicts = body.verdicts;
        rc.priority = body
            .priority
            .or(before.map(|i| t.routes[i].priority))
            .or(previous.as_ref().map(|p| p.priority))
            .unwrap_or(0);
        rc.stop = body
            .stop
            .or(previous.as_ref().map(|p| p.stop))
            .unwrap_or(true);
        let pos = before
            .or(body.position)
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

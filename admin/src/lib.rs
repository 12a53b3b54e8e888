//! The admin HTTP API (docs/api.md): bearer tokens scoped per tenant, RFC 9457 problem
//! details, an OpenAPI document generated from the handlers (`/api/openapi.json`), the
//! dashboard (`/ui`) and the public keys (`/.well-known/postwire-keys.json`).
//!
//! Files: [`problem`] (errors and extractors), [`tenants`] (live configuration CRUD, with
//! [`parts`] for endpoints, routes and domains and [`secrets`] for what is hidden),
//! [`deliveries`] (deliveries; [`search`] finds a mail), [`stats`] (the charts), [`resend`]
//! (resend, recover), [`probe`] (test events), [`dlq`] (DLQ, quarantine), [`ops`]
//! (endpoints, keys, audit), [`plugins`] (versions, uploads), [`ui`] (the dashboard's
//! static files).

pub mod client;
pub mod client_body;
pub mod deliveries;
pub mod dlq;
pub mod error;
pub mod oplog;
pub mod ops;
pub mod parts;
pub mod plugin_events;
pub mod plugin_try;
pub mod plugins;
pub mod probe;
pub mod problem;
pub mod resend;
pub mod search;
pub mod secrets;
pub mod stats;
pub mod tenant_change;
pub mod tenants;
pub mod ui;

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use postwire_core::Config;
use postwire_core::config::TokenGrant;
use postwire_core::live::LiveConfig;
use postwire_core::tenant_config::is_valid_name;
use serde_json::json;
use tokio::net::TcpListener;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::AdminError;
pub use problem::Problem;

/// What every handler shares.
#[derive(Clone)]
pub struct Api {
    pub js: async_nats::jetstream::Context,
    pub grants: Arc<Vec<TokenGrant>>,
    /// The config file (tenants aside, the live configuration is built on it).
    pub base: Arc<Config>,
    pub live: Arc<LiveConfig>,
    /// Whether tenant changes go to the config bucket (`admin.live_config`).
    pub writable: bool,
    pub keyrings: Arc<Vec<std::path::PathBuf>>,
    /// Checks uploaded plugins (started at the first upload).
    pub plugin_host: Arc<
        std::sync::OnceLock<
            Result<
                Arc<postwire_stages::transform::Transformer>,
                Arc<postwire_stages::transform::TransformError>,
            >,
        >,
    >,
}

/// The token a request came with, and what it may see.
#[derive(Clone, Debug)]
pub struct Caller {
    pub name: String,
    /// `None`: every tenant.
    pub tenants: Option<Vec<String>>,
}

impl Caller {
    pub fn is_global(&self) -> bool {
        self.tenants.is_none()
    }

    pub fn sees(&self, tenant: &str) -> bool {
        self.tenants
            .as_ref()
            .is_none_or(|t| t.iter().any(|x| x == tenant))
    }

    /// A tenant this token may not see does not exist for it (404, not 403).
    pub fn check(&self, tenant: &str) -> Result<(), Problem> {
        if is_valid_name(tenant) && self.sees(tenant) {
            Ok(())
        } else {
            Err(Problem::not_found(format!("no tenant {tenant:?}")))
        }
    }

    pub fn require_global(&self) -> Result<(), Problem> {
        if self.is_global() {
            Ok(())
        } else {
            Err(Problem::forbidden(
                "this needs the global admin token, not a tenant token",
            ))
        }
    }

    /// The tenant filter of a listing: the one asked for (if visible) or all visible ones.
    pub fn scope(&self, asked: Option<&str>) -> Result<Scope, Problem> {
        match asked {
            Some(t) => {
                if !is_valid_name(t) {
                    return Err(Problem::bad_request(format!(
                        "tenant={t:?} is not a tenant name (a-z, 0-9, - and _)"
                    )));
                }
                self.check(t)?;
                Ok(Scope::One(t.to_string()))
            }
            None => Ok(match &self.tenants {
                None => Scope::All,
                Some(ts) => Scope::Some(ts.clone()),
            }),
        }
    }
}

/// Which tenants a listing covers.
#[derive(Debug, Clone)]
pub enum Scope {
    All,
    One(String),
    Some(Vec<String>),
}

impl Scope {
    pub fn has(&self, tenant: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::One(t) => t == tenant,
            Scope::Some(ts) => ts.iter().any(|t| t == tenant),
        }
    }

    /// The one tenant, for a narrower stream filter.
    pub fn single(&self) -> Option<&str> {
        match self {
            Scope::One(t) => Some(t),
            Scope::Some(ts) if ts.len() == 1 => Some(&ts[0]),
            _ => None,
        }
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "postwire admin API",
        description = "Tenants, routes and endpoints (live configuration), deliveries, the dead-letter queue, quarantine, endpoint state, signing keys and plugins. Errors are RFC 9457 problem details. See docs/api.md.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "tenants", description = "Live tenant configuration"),
        (name = "deliveries", description = "Deliveries and their attempts"),
        (name = "operations", description = "DLQ, quarantine, endpoints, keys, plugins, audit"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The routes of `/api/v1` and the OpenAPI document describing them.
pub fn api_routes() -> (Router<Api>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(whoami))
        .routes(routes!(tenants::list_tenants))
        .routes(routes!(
            tenants::get_tenant,
            tenants::put_tenant,
            tenants::delete_tenant
        ))
        .routes(routes!(
            parts::get_endpoint,
            parts::put_endpoint,
            parts::delete_endpoint
        ))
        .routes(routes!(parts::list_routes))
        .routes(routes!(
            parts::get_route,
            parts::put_route,
            parts::delete_route
        ))
        .routes(routes!(parts::put_domain, parts::delete_domain))
        .routes(routes!(deliveries::list_deliveries))
        .routes(routes!(deliveries::show_delivery))
        .routes(routes!(deliveries::mail_deliveries))
        .routes(routes!(resend::resend))
        .routes(routes!(resend::recover))
        .routes(routes!(probe::test_endpoint))
        .routes(routes!(stats::stats))
        .routes(routes!(dlq::dlq_list))
        .routes(routes!(dlq::dlq_show))
        .routes(routes!(dlq::dlq_replay))
        .routes(routes!(dlq::dlq_purge))
        .routes(routes!(dlq::quarantine_list))
        .routes(routes!(dlq::quarantine_show))
        .routes(routes!(dlq::quarantine_release))
        .routes(routes!(dlq::quarantine_purge))
        .routes(routes!(ops::endpoints))
        .routes(routes!(ops::endpoint_enable))
        .routes(routes!(ops::endpoint_disable))
        .routes(routes!(ops::keys))
        .routes(routes!(ops::keys_rotate))
        .routes(routes!(plugins::plugins))
        .routes(routes!(plugin_events::plugin_events))
        .merge(OpenApiRouter::new().routes(routes!(plugins::upload)).layer(
            axum::extract::DefaultBodyLimit::max(plugins::MAX_PLUGIN_BYTES),
        ))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(plugin_try::try_plugin))
                .layer(axum::extract::DefaultBodyLimit::max(
                    plugins::MAX_PLUGIN_BYTES,
                )),
        )
        .routes(routes!(ops::audit))
        .split_for_parts()
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct WhoAmI {
    /// The token's name (`admin` for the global token).
    token: String,
    global: bool,
    /// The tenants this token sees.
    tenants: Vec<String>,
}

/// Who this token is and which tenants it sees.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "tenants",
    responses((status = 200, body = WhoAmI), (status = 401, body = Problem)))]
async fn whoami(State(a): State<Api>, axum::Extension(c): axum::Extension<Caller>) -> Json<WhoAmI> {
    let tenants = match &c.tenants {
        None => a.live.get().cfg.tenants.keys().cloned().collect(),
        Some(t) => t.clone(),
    };
    Json(WhoAmI {
        token: c.name,
        global: c.tenants.is_none(),
        tenants,
    })
}

/// Every key directory (`keyring = …`) the endpoints sign with.
pub fn keyrings(cfg: &Config) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<std::path::PathBuf> = cfg
        .tenants
        .values()
        .flat_map(|t| t.endpoints.values())
        .flat_map(|e| e.signing.iter())
        .filter_map(|s| {
            serde_json::to_value(s)
                .ok()?
                .get("keyring")?
                .as_str()
                .map(Into::into)
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// `GET /.well-known/postwire-keys.json`: the active public keys of every key directory.
async fn jwks(State(a): State<Api>) -> Response {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut keys = Vec::new();
    for dir in a.keyrings.iter() {
        match postwire_sign::keydir::KeyDir::load(dir).and_then(|kd| kd.jwks(now)) {
            Ok(doc) => keys.extend(
                doc.get("keys")
                    .and_then(|k| k.as_array())
                    .cloned()
                    .unwrap_or_default(),
            ),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "A key directory cannot be read for the JWKS.")
            }
        }
    }
    Json(json!({"keys": keys})).into_response()
}

/// Constant-time comparison of two tokens.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Finds the caller's token (every grant is compared, so timing tells nothing).
async fn authorize(State(a): State<Api>, mut req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .as_bytes();
    let mut found = None;
    for g in a.grants.iter() {
        if same(given, g.token.as_bytes()) && found.is_none() {
            found = Some(Caller {
                name: g.name.clone(),
                tenants: g.tenants.clone(),
            });
        }
    }
    match found {
        Some(c) => {
            req.extensions_mut().insert(c);
            next.run(req).await
        }
        None => Problem::unauthorized().into_response(),
    }
}

/// A body over a route's limit is refused by axum's extractors with a plain-text 413
/// (uploads read `Bytes`): every such answer becomes the problem document.
async fn problem_413(r: Response) -> Response {
    let plain = r
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_none_or(|v| v != "application/problem+json");
    if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE && plain {
        return Problem::too_large().into_response();
    }
    r
}

/// The whole admin listener: API, OpenAPI document, dashboard, JWKS.
pub fn app(api: Api) -> Router {
    let (routes, doc) = api_routes();
    let doc = Arc::new(doc);
    let protected = routes
        .layer(middleware::map_response(problem_413))
        .layer(middleware::from_fn_with_state(api.clone(), authorize))
        .fallback(|| async { Problem::not_found("no such API route") })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() });
    Router::new()
        .merge(protected)
        .route(
            "/api/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { Json((*doc).clone()) }
            }),
        )
        .route("/.well-known/postwire-keys.json", get(jwks))
        .merge(ui::routes())
        .with_state(api)
}

pub async fn serve(
    listener: TcpListener,
    api: Api,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if let Err(e) = axum::serve(listener, app(api))
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "The admin API stopped.");
    }
}

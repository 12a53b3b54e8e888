//! The admin HTTP API: the DLQ, replay, the audit trail and endpoint state, behind a bearer
//! token (`admin.token_env`). JSON in, JSON out.
//!
//! - `GET  /v1/dlq?tenant=&since=&id=`                 dead letters
//! - `POST /v1/dlq/replay?tenant=&since=&id=`          replay them (same webhook-id)
//! - `GET  /v1/deliveries/{mail_id}`                   attempts of one mail
//! - `GET  /v1/endpoints/{tenant}/{endpoint}`          enabled or disabled
//! - `POST /v1/endpoints/{tenant}/{endpoint}/enable`   re-enable after a 410

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use postwire_stages::deliver::{audit, dlq, state};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;

#[derive(Clone)]
struct Admin {
    js: async_nats::jetstream::Context,
    token: Arc<String>,
    keyrings: Arc<Vec<std::path::PathBuf>>,
}

/// Every key directory (`keyring = …`) the endpoints sign with.
pub fn keyrings(cfg: &postwire_core::Config) -> Vec<std::path::PathBuf> {
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
async fn jwks(State(a): State<Admin>) -> Response {
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

#[derive(Deserialize)]
struct FilterQuery {
    tenant: Option<String>,
    since: Option<String>,
    id: Option<String>,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

impl FilterQuery {
    fn filter(self) -> Result<dlq::Filter, Box<Response>> {
        crate::ops::filter(self.tenant, self.since, self.id).map_err(|e| match e {
            crate::tools::Failure::Usage(m) | crate::tools::Failure::Failed(m) => {
                Box::new(error(StatusCode::BAD_REQUEST, m))
            }
        })
    }
}

pub async fn serve(
    listener: TcpListener,
    js: async_nats::jetstream::Context,
    token: String,
    keyrings: Vec<std::path::PathBuf>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let admin = Admin {
        js,
        keyrings: Arc::new(keyrings),
        token: Arc::new(token),
    };
    let app = Router::new()
        .route("/v1/dlq", get(list))
        .route("/v1/dlq/replay", post(replay))
        .route("/v1/deliveries/{mail_id}", get(deliveries))
        .route("/v1/endpoints/{tenant}/{endpoint}", get(endpoint_status))
        .route("/v1/endpoints/{tenant}/{endpoint}/enable", post(enable))
        .layer(middleware::from_fn_with_state(admin.clone(), authorize))
        // Public keys are public: no token for the JWKS document.
        .route("/.well-known/postwire-keys.json", get(jwks))
        .with_state(admin);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "The admin API stopped.");
    }
}

/// Constant-time bearer token check.
async fn authorize(State(admin): State<Admin>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = admin.token.as_bytes();
    let same = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    next.run(req).await
}

async fn list(State(a): State<Admin>, Query(q): Query<FilterQuery>) -> Response {
    let f = match q.filter() {
        Ok(f) => f,
        Err(r) => return *r,
    };
    match dlq::list(&a.js, &f).await {
        Ok(items) => Json(json!({"dead_letters": items})).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn replay(State(a): State<Admin>, Query(q): Query<FilterQuery>) -> Response {
    let f = match q.filter() {
        Ok(f) => f,
        Err(r) => return *r,
    };
    if f.tenant.is_none() && f.since.is_none() && f.id.is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "say what to replay: tenant, since and/or id",
        );
    }
    let items = match dlq::list(&a.js, &f).await {
        Ok(i) => i,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    let mut replayed = Vec::new();
    let mut failed = Vec::new();
    for d in &items {
        match dlq::replay(&a.js, d).await {
            Ok(()) => replayed.push(d.delivery_id.clone()),
            Err(e) => failed.push(json!({"seq": d.seq, "error": e})),
        }
    }
    Json(json!({"replayed": replayed, "failed": failed})).into_response()
}

async fn deliveries(State(a): State<Admin>, Path(mail_id): Path<String>) -> Response {
    match audit::attempts(&a.js, &mail_id).await {
        Ok(r) => Json(json!({"mail_id": mail_id, "attempts": r})).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn endpoint_status(
    State(a): State<Admin>,
    Path((tenant, endpoint)): Path<(String, String)>,
) -> Response {
    match state::get(&a.js, &tenant, &endpoint).await {
        Ok(s) => {
            Json(json!({"tenant": tenant, "endpoint": endpoint, "disabled": s})).into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn enable(
    State(a): State<Admin>,
    Path((tenant, endpoint)): Path<(String, String)>,
) -> Response {
    match state::enable(&a.js, &tenant, &endpoint).await {
        Ok(was) => Json(json!({"tenant": tenant, "endpoint": endpoint, "was_disabled": was}))
            .into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

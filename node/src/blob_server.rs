//! The blob server of the filesystem storage backend: `GET /blobs/<tenant>/<sha256>` with a
//! signed, expiring query (`?expires=…&sig=…`), like an S3 presigned URL — 403 when expired
//! or tampered, 404 when absent.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use postwire_stages::store::{BlobStore, fs_url};
use tokio::net::TcpListener;

#[derive(Clone)]
struct Blobs {
    store: Arc<BlobStore>,
    key: Arc<Vec<u8>>,
}

struct Signed {
    expires: i64,
    sig: String,
}

pub async fn serve(
    listener: TcpListener,
    store: Arc<BlobStore>,
    key: Vec<u8>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let app = axum::Router::new()
        .route("/blobs/{tenant}/{sha}", axum::routing::get(get))
        .with_state(Blobs {
            store,
            key: Arc::new(key),
        });
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "The blob server stopped.");
    }
}

async fn get(
    State(b): State<Blobs>,
    Path((tenant, sha)): Path<(String, String)>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let signed = q
        .get("expires")
        .and_then(|e| e.parse().ok())
        .zip(q.get("sig").cloned());
    let Some((expires, sig)) = signed else {
        return (StatusCode::FORBIDDEN, "a signed URL is required\n").into_response();
    };
    let q = Signed { expires, sig };
    let key = format!("{tenant}/{sha}");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Err(e) = fs_url::verify(&b.key, &key, q.expires, &q.sig, now) {
        return (StatusCode::FORBIDDEN, format!("{e}\n")).into_response();
    }
    match b.store.get(&key).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(object_store::Error::NotFound { .. }) => {
            (StatusCode::NOT_FOUND, "no such object\n").into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "Reading a stored object failed.");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The URL signing key of the filesystem backend: from the environment, or (for `dev`)
/// a fresh random one when `allow_random`.
pub fn signing_key(env: &str, allow_random: bool) -> Result<Option<Vec<u8>>, String> {
    match std::env::var(env) {
        Ok(k) if k.len() >= 32 => Ok(Some(k.into_bytes())),
        Ok(_) => Err(format!("{env} must hold at least 32 characters")),
        Err(_) if allow_random => Ok(Some(
            postwire_core::ids::hex(&rand::random::<[u8; 32]>()).into_bytes(),
        )),
        Err(_) => Ok(None),
    }
}

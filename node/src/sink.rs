//! The sink (`postwire sink`, and inside `postwire dev`): a local webhook receiver for trying postwire out. It verifies the
//! Standard Webhooks signature of every request and prints each delivery.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use postwire_stages::deliver::sign;
use tokio::net::TcpListener;

/// Signatures older or newer than this are refused (replay protection).
const TOLERANCE_SECS: i64 = 5 * 60;

pub async fn serve(
    listener: TcpListener,
    keys: Vec<Vec<u8>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let app = axum::Router::new()
        .fallback(receive)
        .with_state(Arc::new(keys));
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "The sink stopped.");
    }
}

async fn receive(
    State(keys): State<Arc<Vec<Vec<u8>>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let id = get(sign::HEADER_ID).unwrap_or("-");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let verdict = sign::verify(
        &keys,
        get(sign::HEADER_ID),
        get(sign::HEADER_TIMESTAMP),
        get(sign::HEADER_SIGNATURE),
        &body,
        now,
        TOLERANCE_SECS,
    );
    if let Err(e) = verdict {
        println!("REJECTED  {id}  {uri}  ({e}); answered 401");
        return StatusCode::UNAUTHORIZED;
    }
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) => {
            let s = |p: &str| {
                v.pointer(p)
                    .and_then(|x| x.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            println!(
                "verified  {id}  {}/{}  from {}  subject {:?}  ({} bytes)",
                s("/tenant"),
                s("/route"),
                s("/envelope/mail_from"),
                s("/message/subject"),
                body.len()
            );
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        Err(_) => println!(
            "verified  {id}  {uri}  (body is not JSON, {} bytes)",
            body.len()
        ),
    }
    StatusCode::NO_CONTENT
}

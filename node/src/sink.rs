//! The sink (`postwire sink`, and inside `postwire dev`): a local webhook receiver for trying
//! postwire out. It verifies the signature of every request on the path `postwire verify`
//! takes (a replayed request, or one with conflicting repeated signature headers, is refused
//! with 401) and prints each delivery. Inside `postwire dev` it takes the endpoints' secrets
//! from the live configuration per request, so an endpoint added through the admin API is
//! verified too.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use postwire_core::live::LiveConfig;
use postwire_stages::deliver::verify;
use tokio::net::TcpListener;

/// Signatures older or newer than this are refused (replay protection).
const TOLERANCE_SECS: i64 = 5 * 60;

/// The secrets the sink accepts.
pub enum Keys {
    /// Given on the command line (`postwire sink --secret`).
    Fixed(Vec<Vec<u8>>),
    /// Every endpoint's secret, as the configuration is now (`postwire dev`).
    Live(Arc<LiveConfig>),
}

impl Keys {
    fn now(&self) -> Vec<Vec<u8>> {
        match self {
            Keys::Fixed(k) => k.clone(),
            Keys::Live(live) => live
                .get()
                .cfg
                .tenants
                .values()
                .flat_map(|t| t.endpoints.values())
                .filter_map(|e| e.secret_key().ok())
                .collect(),
        }
    }
}

pub async fn serve(
    listener: TcpListener,
    keys: Keys,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let app = axum::Router::new()
        .fallback(receive)
        .with_state(Arc::new((keys, verify::Receiver::new(TOLERANCE_SECS))));
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "The sink stopped.");
    }
}

async fn receive(
    State(sink): State<Arc<(Keys, verify::Receiver)>>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (keys, receiver) = &*sink;
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let id = get(verify::HEADER_ID).unwrap_or("-");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let host = get("host").unwrap_or("localhost");
    let req = verify::Captured {
        method: method.to_string(),
        url: format!("http://{host}{uri}"),
        // Every header line, repeated ones included (they are checked, not picked from).
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    if let Err(e) = receiver.verify(&keys.now(), &req, now) {
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

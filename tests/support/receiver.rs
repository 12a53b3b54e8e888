//! An in-process HTTP webhook receiver that records every request and answers with
//! scripted status codes (then 204).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct Inner {
    script: VecDeque<u16>,
    always: Option<u16>,
    got: Vec<Received>,
    /// Schema violations of received payloads.
    invalid: Vec<String>,
}

#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { inner, url }
    }

    /// The next responses, in order; afterwards 204.
    pub fn script(&self, statuses: &[u16]) {
        self.inner.lock().expect("lock").script = statuses.iter().copied().collect();
    }

    /// Answer every request with this status.
    pub fn always(&self, status: u16) {
        self.inner.lock().expect("lock").always = Some(status);
    }

    /// Everything received so far; panics if a payload violated the schema.
    pub fn received(&self) -> Vec<Received> {
        let g = self.inner.lock().expect("lock");
        assert!(
            g.invalid.is_empty(),
            "schema violations:\n{}",
            g.invalid.join("\n")
        );
        g.got.clone()
    }

    pub fn count(&self) -> usize {
        self.inner.lock().expect("lock").got.len()
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let violations = match serde_json::from_slice(&body) {
        Ok(v) => crate::schema::violations(&v),
        Err(e) => vec![format!("not JSON: {e}")],
    };
    let mut g = inner.lock().expect("lock");
    g.invalid.extend(violations);
    let status = g.always.or_else(|| g.script.pop_front()).unwrap_or(204);
    g.got.push(Received {
        headers,
        body,
        status,
    });
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

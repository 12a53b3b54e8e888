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
    pub path: String,
    pub at: std::time::Instant,
}

/// A scripted answer: status and extra response headers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
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
    script: VecDeque<Answer>,
    always: Option<u16>,
    delay: std::time::Duration,
    got: Vec<Received>,
    /// Requests that arrived, answered or not yet.
    arrived: usize,
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
        self.inner.lock().expect("lock").script = statuses
            .iter()
            .map(|s| Answer {
                status: *s,
                headers: Vec::new(),
            })
            .collect();
    }

    /// The next answers with headers (e.g. `Retry-After`, `Location`).
    pub fn script_answers(&self, answers: Vec<Answer>) {
        self.inner.lock().expect("lock").script = answers.into();
    }

    /// Wait this long before answering each request.
    pub fn delay(&self, d: std::time::Duration) {
        self.inner.lock().expect("lock").delay = d;
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

    /// Requests answered so far.
    pub fn count(&self) -> usize {
        self.inner.lock().expect("lock").got.len()
    }

    /// Requests that arrived so far, including those still waiting for their [`Receiver::delay`].
    pub fn arrived(&self) -> usize {
        self.inner.lock().expect("lock").arrived
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let violations = match serde_json::from_slice::<serde_json::Value>(&body) {
        // Not an event: alert events, or a plugin's own output (a Slack message …).
        Ok(v) if v.get("schema").is_none() && v.get("mail_id").is_none() => Vec::new(),
        Ok(v) => crate::schema::violations(&v),
        Err(e) => vec![format!("not JSON: {e}")],
    };
    let at = std::time::Instant::now();
    let delay = {
        let mut g = inner.lock().expect("lock");
        g.arrived += 1;
        g.delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut g = inner.lock().expect("lock");
    g.invalid.extend(violations);
    let answer = match g.always {
        Some(status) => Answer {
            status,
            headers: Vec::new(),
        },
        None => g.script.pop_front().unwrap_or(Answer {
            status: 204,
            headers: Vec::new(),
        }),
    };
    g.got.push(Received {
        headers,
        body,
        status: answer.status,
        path: uri.path().to_string(),
        at,
    });
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = status.into_response();
    for (k, v) in answer.headers {
        if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

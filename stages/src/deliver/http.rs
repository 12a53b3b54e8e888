//! The HTTP side of a delivery: one POST, redirects never followed, the response body read
//! up to a cap, the result classified.

use std::sync::Arc;
use std::time::{Duration, Instant};

use postwire_core::config::DeliveryConfig;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};

use super::DeliverError;
use super::retry::{Outcome, classify, parse_retry_after};
use super::ssrf::{Guard, SsrfError};

/// The delivery HTTP client: redirects never followed, certificates verified against the
/// webpki roots (plus `delivery.ca_file`), host names resolved through the SSRF guard.
pub fn client(cfg: &DeliveryConfig, guard: Guard) -> Result<reqwest::Client, DeliverError> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(cfg.request_timeout())
        .connect_timeout(Duration::from_secs(10).min(cfg.request_timeout()))
        .user_agent(concat!("postwire/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(guard));
    // HTTP(S)_PROXY from the environment is ignored: a proxy resolves the endpoint's name
    // itself, past the SSRF guard. Only `delivery.proxy_url` sets one (its own address then
    // goes through the guard's resolver).
    b = match &cfg.proxy_url {
        Some(p) => b.proxy(
            reqwest::Proxy::all(p)
                .map_err(|e| DeliverError::Config(format!("delivery.proxy_url: {e}")))?,
        ),
        None => b.no_proxy(),
    };
    if let Some(path) = &cfg.ca_file {
        let bad = |e: &dyn std::fmt::Display| {
            DeliverError::Config(format!("delivery.ca_file {path}: {e}"))
        };
        let pem = std::fs::read(path).map_err(|e| bad(&e))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(&e))? {
            b = b.add_root_certificate(cert);
        }
    }
    b.build()
        .map_err(|e| DeliverError::Config(format!("HTTP client: {e}")))
}

/// Result of one attempt, with what the audit trail keeps.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub outcome: Outcome,
    pub duration: Duration,
}

pub async fn post(
    client: &reqwest::Client,
    guard: &Guard,
    url: &str,
    headers: HeaderMap,
    body: Vec<u8>,
    max_response_bytes: usize,
) -> Attempt {
    let started = Instant::now();
    let checked = url::Url::parse(url)
        .map_err(|e| e.to_string())
        .and_then(|u| guard.check_url(&u).map_err(|e| e.to_string()))
        .map_err(|e| postwire_core::redact::text(&e));
    if let Err(error) = checked {
        return Attempt {
            outcome: Outcome::Permanent { status: 0, error },
            duration: started.elapsed(),
        };
    }
    let outcome = match client
        .post(url)
        .headers(headers)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(body)
        .send()
        .await
    {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            // Read (and discard) a bounded amount so the connection can be reused.
            let mut read = 0usize;
            while read < max_response_bytes {
                match resp.chunk().await {
                    Ok(Some(chunk)) => read += chunk.len(),
                    _ => break,
                }
            }
            classify(status, retry_after)
        }
        Err(e) => {
            let kind = if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            // reqwest's text holds the whole URL, query included: redacted here, where the
            // error is made, so no log line, audit record or dead letter carries it.
            let error = postwire_core::redact::text(&format!("{kind}: {}", error_chain(&e)));
            if refused_by_guard(&e) {
                Outcome::Permanent { status: 0, error }
            } else {
                Outcome::Retry {
                    status: None,
                    error,
                    retry_after: None,
                }
            }
        }
    };
    Attempt {
        outcome,
        duration: started.elapsed(),
    }
}

/// Whether the SSRF guard refused the connection (its error is in the chain): permanent,
/// where a DNS failure is worth another attempt.
fn refused_by_guard(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(s) = err.downcast_ref::<SsrfError>() {
            return s.is_refusal();
        }
        cur = err.source();
    }
    false
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

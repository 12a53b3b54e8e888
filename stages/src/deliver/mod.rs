//! The deliver worker: consumes `OUTBOX`, signs and POSTs each delivery, acks on 2xx,
//! naks with a backoff delay on a retryable failure, and after the last attempt (or a
//! permanent refusal) copies the delivery to `DLQ` before terminating it.

pub mod http;
pub mod retry;
pub mod sign;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer::pull};
use postwire_core::{Config, bus};
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::json;

use self::retry::Outcome;
use crate::StageError;

/// Runs the deliver worker until `shutdown` resolves; in-flight deliveries finish first.
pub async fn run(
    js: jetstream::Context,
    cfg: Arc<Config>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StageError> {
    let client = http::client(&cfg.delivery)
        .map_err(|e| StageError::Permanent(format!("HTTP client: {e}")))?;
    let consumer = pull::Config {
        durable_name: Some(bus::CONSUMER_DELIVER.into()),
        ack_wait: cfg.delivery.request_timeout() + Duration::from_secs(30),
        max_ack_pending: 10_000,
        ..Default::default()
    };
    let worker = Arc::new(Worker {
        js: js.clone(),
        cfg: cfg.clone(),
        client,
    });
    crate::runner::consume(
        &js,
        bus::STREAM_OUTBOX,
        consumer,
        cfg.delivery.concurrency,
        shutdown,
        move |msg| {
            let worker = worker.clone();
            async move { worker.handle(msg).await }
        },
    )
    .await;
    Ok(())
}

struct Worker {
    js: jetstream::Context,
    cfg: Arc<Config>,
    client: reqwest::Client,
}

fn header<'a>(msg: &'a jetstream::Message, name: &str) -> Option<&'a str> {
    msg.headers.as_ref()?.get(name).map(|v| v.as_str())
}

impl Worker {
    async fn handle(&self, msg: jetstream::Message) {
        let (attempt, stream_seq) = match msg.info() {
            Ok(i) => (
                u32::try_from(i.delivered).unwrap_or(u32::MAX),
                i.stream_sequence,
            ),
            Err(_) => (1, 0),
        };
        let (Some(id), Some(tenant), Some(route), Some(endpoint)) = (
            header(&msg, bus::HEADER_DELIVERY_ID),
            header(&msg, bus::HEADER_TENANT),
            header(&msg, bus::HEADER_ROUTE),
            header(&msg, bus::HEADER_ENDPOINT),
        ) else {
            tracing::error!(subject = %msg.subject, "An OUTBOX message lacks postwire headers; terminating it.");
            let _ = msg.ack_with(AckKind::Term).await;
            return;
        };
        let span = tracing::info_span!(
            "deliver",
            delivery_id = id,
            tenant,
            route,
            endpoint,
            attempt
        );
        let _enter = span.enter();
        let ep = self
            .cfg
            .tenants
            .get(tenant)
            .and_then(|t| t.endpoints.get(endpoint));
        let (attempt_result, url) = match ep.map(|e| (e, e.secret_key())) {
            None => (None, None),
            Some((_, Err(e))) => (
                Some(http::Attempt {
                    outcome: Outcome::Permanent {
                        status: 0,
                        error: format!("endpoint secret: {e}"),
                    },
                    duration: Duration::ZERO,
                }),
                None,
            ),
            Some((ep, Ok(key))) => {
                let ts = time::OffsetDateTime::now_utc().unix_timestamp();
                let mut headers = reqwest::header::HeaderMap::new();
                let put = |h: &mut reqwest::header::HeaderMap, n: &'static str, v: &str| {
                    if let Ok(v) = HeaderValue::from_str(v) {
                        h.insert(HeaderName::from_static(n), v);
                    }
                };
                put(&mut headers, sign::HEADER_ID, id);
                put(&mut headers, sign::HEADER_TIMESTAMP, &ts.to_string());
                put(
                    &mut headers,
                    sign::HEADER_SIGNATURE,
                    &sign::sign_v1(&key, id, ts, &msg.payload),
                );
                let a = http::post(
                    &self.client,
                    &ep.url,
                    headers,
                    msg.payload.to_vec(),
                    self.cfg.delivery.max_response_bytes,
                )
                .await;
                (Some(a), Some(ep.url.clone()))
            }
        };
        let attempt_result = attempt_result.unwrap_or(http::Attempt {
            outcome: Outcome::Permanent {
                status: 0,
                error: format!("endpoint {endpoint:?} is not configured for tenant {tenant:?}"),
            },
            duration: Duration::ZERO,
        });
        self.audit(tenant, id, route, endpoint, attempt, &attempt_result)
            .await;
        let max = self.cfg.delivery.max_attempts;
        match &attempt_result.outcome {
            Outcome::Delivered { status } => {
                tracing::info!(
                    status,
                    ms = attempt_result.duration.as_millis() as u64,
                    "Delivered."
                );
                if let Err(e) = msg.ack().await {
                    tracing::warn!(error = %e, "Acknowledging a delivered message failed; it may be delivered again.");
                }
            }
            Outcome::Retry {
                status,
                error,
                retry_after,
            } if attempt < max => {
                let delay = retry::backoff(
                    &self.cfg.delivery,
                    attempt,
                    *retry_after,
                    rand::random::<f64>(),
                );
                tracing::info!(status, error = %error, next_in_ms = delay.as_millis() as u64, url = url.as_deref().unwrap_or(""), "Delivery failed; will retry.");
                let _ = msg.ack_with(AckKind::Nak(Some(delay))).await;
            }
            outcome => {
                let (status, error) = match outcome {
                    Outcome::Retry { status, error, .. } => (*status, error.clone()),
                    Outcome::Permanent { status, error } => {
                        (Some(*status).filter(|s| *s != 0), error.clone())
                    }
                    Outcome::Delivered { .. } => (None, String::new()),
                };
                tracing::warn!(status, error = %error, attempts = attempt, "Delivery gave up; moving it to the dead-letter stream.");
                match self
                    .dead_letter(&msg, tenant, route, attempt, status, &error, stream_seq)
                    .await
                {
                    Ok(()) => {
                        let _ = msg.ack_with(AckKind::Term).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "Writing to the dead-letter stream failed; keeping the delivery for later.");
                        let _ = msg
                            .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                            .await;
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn dead_letter(
        &self,
        msg: &jetstream::Message,
        tenant: &str,
        route: &str,
        attempts: u32,
        status: Option<u16>,
        error: &str,
        stream_seq: u64,
    ) -> Result<(), String> {
        let mut headers = msg.headers.clone().unwrap_or_default();
        let id = header(msg, bus::HEADER_DELIVERY_ID).unwrap_or_default();
        headers.insert(
            bus::HEADER_MSG_ID,
            format!("{id}:dlq:{stream_seq}").as_str(),
        );
        headers.insert(bus::HEADER_ATTEMPTS, attempts.to_string().as_str());
        headers.insert(
            bus::HEADER_LAST_STATUS,
            status.map(|s| s.to_string()).unwrap_or_default().as_str(),
        );
        let one_line: String = error
            .chars()
            .filter(|c| !c.is_control())
            .take(1000)
            .collect();
        headers.insert(bus::HEADER_LAST_ERROR, one_line.as_str());
        let ack = self
            .js
            .publish_with_headers(
                bus::subject_dlq(tenant, route),
                headers,
                msg.payload.clone(),
            )
            .await
            .map_err(|e| e.to_string())?;
        ack.await.map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Appends an attempt record to AUDIT. Best effort: a lost audit record never blocks
    /// a delivery.
    async fn audit(
        &self,
        tenant: &str,
        id: &str,
        route: &str,
        endpoint: &str,
        attempt: u32,
        a: &http::Attempt,
    ) {
        let (result, status, error) = match &a.outcome {
            Outcome::Delivered { status } => ("delivered", Some(*status), None),
            Outcome::Retry { status, error, .. } => ("failed", *status, Some(error.as_str())),
            Outcome::Permanent { status, error } => {
                ("refused", Some(*status), Some(error.as_str()))
            }
        };
        let record = json!({
            "delivery_id": id, "route": route, "endpoint": endpoint, "attempt": attempt,
            "result": result, "status": status, "error": error,
            "duration_ms": a.duration.as_millis() as u64, "at": postwire_core::envelope::now_rfc3339(),
        });
        let mut headers = HeaderMap::new();
        headers.insert(bus::HEADER_DELIVERY_ID, id);
        if let Err(e) = self
            .js
            .publish_with_headers(
                bus::subject_audit(tenant, "attempt"),
                headers,
                record.to_string().into(),
            )
            .await
        {
            tracing::warn!(error = %e, "Could not append an audit record.");
        }
    }
}

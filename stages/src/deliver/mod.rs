//! The deliver worker: consumes `OUTBOX`, signs and POSTs each delivery, acks on 2xx, naks
//! with the scheduled delay on a retryable failure, and after the last attempt (or a
//! permanent refusal) copies the delivery to `DLQ` before terminating it.
//!
//! Files: [`retry`] (status classes, schedule), [`http`] (the request), [`sign`],
//! [`ssrf`] (the address guard), [`limits`] (rates, concurrency, isolation), [`state`]
//! (disabled endpoints, alerts), [`dlq`], [`audit`], [`scan`] (reading streams back).

pub mod audit;
pub mod http;
pub mod limits;
pub mod retry;
pub mod scan;
pub mod sign;
pub mod ssrf;
pub mod state;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull, kv};
use postwire_core::live::LiveConfig;
use postwire_core::tenant_config::EndpointConfig;
use postwire_core::{Config, bus, metrics};
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::json;
use tracing::Instrument as _;

use self::audit::AttemptRecord;
use self::retry::Outcome;
use crate::StageError;
use crate::held::dlq::{self, Dead};

/// Runs the deliver worker until `shutdown` resolves; in-flight deliveries finish first.
pub async fn run(
    js: jetstream::Context,
    cfg: Arc<Config>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StageError> {
    run_live(js, LiveConfig::fixed(cfg), shutdown).await
}

/// [`run`] following the live configuration: endpoints, secrets and limits changed in the
/// config bucket apply to the next attempt.
pub async fn run_live(
    js: jetstream::Context,
    live: Arc<LiveConfig>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StageError> {
    let cfg = live.get().cfg.clone();
    let dns = cfg
        .delivery
        .dns_server
        .as_deref()
        .and_then(|d| d.parse().ok());
    let guard = ssrf::Guard::new(&cfg.delivery.ssrf_allow, dns).map_err(StageError::Permanent)?;
    let client = http::client(&cfg.delivery, guard.clone()).map_err(StageError::Permanent)?;
    let consumer = pull::Config {
        durable_name: Some(bus::CONSUMER_DELIVER.into()),
        ack_wait: cfg.delivery.ack_wait(),
        // Bounds what one worker holds (waiting plus in flight), and so its memory.
        max_ack_pending: i64::try_from(cfg.delivery.concurrency.saturating_mul(8).max(1024))
            .unwrap_or(i64::MAX),
        ..Default::default()
    };
    let worker = Arc::new(Worker {
        kv_attempts: tokio::sync::OnceCell::new(),
        kv_endpoints: tokio::sync::OnceCell::new(),
        signers: Signers::default(),
        js: js.clone(),
        limits: limits::Limits::live(live.clone()),
        failures: state::FailureCounter::default(),
        live,
        client,
        guard,
    });
    // Concurrency is bounded by the limiters and the consumer's max_ack_pending, not here:
    // a delivery waiting for a slow endpoint must not take a slot another endpoint needs.
    crate::runner::consume(
        &js,
        bus::STREAM_OUTBOX,
        consumer,
        usize::MAX,
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
    kv_attempts: tokio::sync::OnceCell<kv::Store>,
    kv_endpoints: tokio::sync::OnceCell<kv::Store>,
    signers: Signers,
    live: Arc<LiveConfig>,
    client: reqwest::Client,
    guard: ssrf::Guard,
    limits: limits::Limits,
    failures: state::FailureCounter,
}

/// One signer per (tenant, endpoint), built when first needed and again when the endpoint's
/// configuration changed.
#[derive(Default)]
struct Signers(std::sync::Mutex<SignerMap>);

type SignerMap = std::collections::HashMap<
    (String, String),
    (EndpointConfig, Result<Arc<postwire_sign::Signer>, String>),
>;

impl Signers {
    fn get(
        &self,
        tenant: &str,
        endpoint: &str,
        ep: &EndpointConfig,
    ) -> Result<Arc<postwire_sign::Signer>, String> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = (tenant.to_string(), endpoint.to_string());
        if let Some((cfg, signer)) = map.get(&key)
            && cfg == ep
        {
            return signer.clone();
        }
        let signer = ep.signer().map(Arc::new);
        if let Err(e) = &signer {
            tracing::error!(tenant, endpoint, error = %e, "An endpoint cannot sign; its deliveries will be dead-lettered.");
        }
        map.insert(key, (ep.clone(), signer.clone()));
        signer
    }
}

fn header<'a>(msg: &'a jetstream::Message, name: &str) -> Option<&'a str> {
    msg.headers.as_ref()?.get(name).map(|v| v.as_str())
}

/// Keeps JetStream from redelivering a message while this worker still holds it.
fn keep_alive(msg: &jetstream::Message, ack_wait: Duration) -> tokio::task::JoinHandle<()> {
    let acker = msg.clone();
    tokio::spawn(async move {
        let every = ack_wait / 3;
        loop {
            tokio::time::sleep(every).await;
            if acker.ack_with(AckKind::Progress).await.is_err() {
                return;
            }
        }
    })
}

struct Ids<'a> {
    id: &'a str,
    mail_id: &'a str,
    tenant: &'a str,
    route: &'a str,
    endpoint: &'a str,
}

impl Worker {
    /// The configuration now (it may change between two messages).
    fn cfg(&self) -> Arc<Config> {
        self.live.get().cfg.clone()
    }

    async fn handle(&self, msg: jetstream::Message) {
        let (delivered, seq) = match msg.info() {
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
        let ids = Ids {
            id,
            mail_id: header(&msg, bus::HEADER_MAIL_ID).unwrap_or_default(),
            tenant,
            route,
            endpoint,
        };
        if !self.limits.has_room(tenant, endpoint) {
            // Too many already wait for this endpoint here: hand it back, not as an attempt.
            let delay = Duration::from_millis(500 + rand::random_range(0..1500));
            let _ = msg.ack_with(AckKind::Nak(Some(delay))).await;
            return;
        }
        let attempts_key = format!("{id}.{seq}");
        let attempt = self.previous_attempts(&attempts_key, delivered).await + 1;
        let span = tracing::info_span!(
            "deliver",
            delivery_id = id,
            mail_id = ids.mail_id,
            tenant,
            route,
            endpoint,
            stage = "deliver",
            attempt,
            http.status = tracing::field::Empty,
        );
        postwire_core::telemetry::continue_from(&span, msg.headers.as_ref());
        let started = std::time::Instant::now();
        async {
            let alive = keep_alive(&msg, self.cfg().delivery.ack_wait());
            let result = self.attempt(&msg, &ids, attempt).await;
            alive.abort();
            self.settle(&msg, &ids, attempt, seq, &attempts_key, result)
                .await;
        }
        .instrument(span)
        .await;
        metrics::observe(
            "postwire_stage_duration_seconds",
            "Time a stage took for one message.",
            &[("stage", "deliver")],
            started.elapsed(),
        );
    }

    /// Attempts already made for this OUTBOX message (deferrals do not count).
    async fn previous_attempts(&self, key: &str, delivered: u32) -> u32 {
        if delivered <= 1 {
            return 0;
        }
        match self.attempts_kv().await {
            Some(kv) => match kv.get(key).await {
                Ok(Some(v)) => std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                Ok(None) => 0,
                Err(_) => delivered - 1,
            },
            None => delivered - 1,
        }
    }

    /// The attempts bucket, looked up once (a lookup is a JetStream API request).
    async fn attempts_kv(&self) -> Option<kv::Store> {
        let kv = self
            .kv_attempts
            .get_or_try_init(|| self.js.get_key_value(bus::KV_ATTEMPTS))
            .await;
        kv.ok().cloned()
    }

    async fn endpoint_state(
        &self,
        tenant: &str,
        endpoint: &str,
    ) -> Result<Option<state::EndpointState>, String> {
        let kv = self
            .kv_endpoints
            .get_or_try_init(|| self.js.get_key_value(bus::KV_ENDPOINTS))
            .await
            .map_err(|e| e.to_string())?;
        state::get_in(kv, tenant, endpoint).await
    }

    /// One attempt: checks, waits for the limits, signs, POSTs.
    async fn attempt(
        &self,
        msg: &jetstream::Message,
        ids: &Ids<'_>,
        attempt: u32,
    ) -> http::Attempt {
        let refused = |error: String| http::Attempt {
            outcome: Outcome::Permanent { status: 0, error },
            duration: Duration::ZERO,
        };
        let cfg = self.cfg();
        let Some(ep) = cfg
            .tenants
            .get(ids.tenant)
            .and_then(|t| t.endpoints.get(ids.endpoint))
        else {
            return refused(format!(
                "endpoint {:?} is not configured for tenant {:?}",
                ids.endpoint, ids.tenant
            ));
        };
        match self.endpoint_state(ids.tenant, ids.endpoint).await {
            Ok(Some(s)) => {
                return refused(format!("endpoint disabled since {} ({})", s.at, s.reason));
            }
            Ok(None) => {}
            Err(e) => {
                return http::Attempt {
                    outcome: Outcome::Retry {
                        status: None,
                        error: format!("endpoint state unavailable: {e}"),
                        retry_after: None,
                    },
                    duration: Duration::ZERO,
                };
            }
        }
        let Ok(signer) = self.signers.get(ids.tenant, ids.endpoint, ep) else {
            return refused("the endpoint's signing configuration is invalid".into());
        };
        let _permits = self.limits.acquire(ids.tenant, ids.endpoint).await;
        // Body and digest are fixed per delivery; the signatures are made now, per attempt.
        let digest = postwire_sign::ContentDigest::of(&msg.payload);
        let parts = postwire_sign::RequestParts {
            method: "POST",
            url: &ep.url,
            content_type: "application/json",
            webhook_id: ids.id,
            body: &msg.payload,
            content_digest: &digest,
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let signed = match signer.sign(&parts, now) {
            Ok(h) => h,
            Err(e) => return refused(format!("signing failed: {e}")),
        };
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in signed {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.append(n, v);
            }
        }
        tracing::debug!(attempt, url = %http::redact_url(&ep.url), "Posting.");
        http::post(
            &self.client,
            &self.guard,
            &ep.url,
            headers,
            msg.payload.to_vec(),
            self.cfg().delivery.max_response_bytes,
        )
        .await
    }

    /// Acks, naks or dead-letters after an attempt, with audit records and alerts.
    async fn settle(
        &self,
        msg: &jetstream::Message,
        ids: &Ids<'_>,
        attempt: u32,
        seq: u64,
        attempts_key: &str,
        a: http::Attempt,
    ) {
        let d = &self.cfg().delivery;
        let (result, status, error) = match &a.outcome {
            Outcome::Delivered { status } => ("delivered", Some(*status), None),
            Outcome::Retry { status, error, .. } => ("failed", *status, Some(error.clone())),
            Outcome::Permanent { status, error } => (
                "refused",
                Some(*status).filter(|s| *s != 0),
                Some(error.clone()),
            ),
        };
        let record = AttemptRecord {
            delivery_id: ids.id.into(),
            mail_id: ids.mail_id.into(),
            route: ids.route.into(),
            endpoint: ids.endpoint.into(),
            attempt,
            result: result.into(),
            status,
            error: error.clone(),
            duration_ms: a.duration.as_millis() as u64,
            at: postwire_core::envelope::now_rfc3339(),
        };
        audit::record(&self.js, ids.tenant, &record).await;
        if let Some(s) = status {
            tracing::Span::current().record("http.status", s);
        }
        let class = match status {
            Some(s) => format!("{}xx", s / 100),
            None => "error".into(),
        };
        metrics::inc(
            "postwire_deliveries_total",
            "Delivery attempts by HTTP status class.",
            &[("class", &class)],
        );
        let ms = a.duration.as_millis() as u64;
        match &a.outcome {
            Outcome::Delivered { status } => {
                tracing::info!(status, ms, attempt, "Delivered.");
                self.failures.succeeded(ids.tenant, ids.endpoint);
                self.forget_attempts(attempts_key, attempt).await;
                if let Err(e) = msg.double_ack().await {
                    tracing::warn!(error = %e, "Acknowledging a delivered message failed; it may be delivered again.");
                }
                return;
            }
            Outcome::Retry { retry_after, .. } => {
                self.count_failure(ids).await;
                if let Some(delay) = retry::backoff(d, attempt, *retry_after, rand::random::<f64>())
                {
                    tracing::info!(
                        status,
                        error = error.as_deref().unwrap_or(""),
                        attempt,
                        next_in_ms = delay.as_millis() as u64,
                        "Delivery failed; will retry."
                    );
                    if let Some(kv) = self.attempts_kv().await {
                        let _ = kv.put(attempts_key, attempt.to_string().into()).await;
                    }
                    metrics::inc(
                        "postwire_delivery_retries_total",
                        "Delivery attempts scheduled again.",
                        &[],
                    );
                    let _ = msg.ack_with(AckKind::Nak(Some(delay))).await;
                    return;
                }
            }
            Outcome::Permanent { status: 410, .. } => {
                self.count_failure(ids).await;
                if let Err(e) = state::disable(
                    &self.js,
                    ids.tenant,
                    ids.endpoint,
                    "the endpoint answered 410 Gone",
                )
                .await
                {
                    tracing::error!(error = %e, "Could not record the endpoint as disabled.");
                }
                let event = json!({"kind": "endpoint_disabled", "endpoint": ids.endpoint, "reason": "HTTP 410 Gone"});
                state::alert(&self.js, &self.cfg(), &self.client, ids.tenant, event).await;
            }
            Outcome::Permanent { status: 0, .. } => {}
            Outcome::Permanent { .. } => self.count_failure(ids).await,
        }
        let error = error.unwrap_or_default();
        tracing::warn!(status, error = %error, attempts = attempt, "Delivery gave up; moving it to the dead-letter stream.");
        let held = msg.headers.clone().unwrap_or_default();
        let dead = Dead::Delivery {
            headers: &held,
            body: msg.payload.clone(),
            tenant: ids.tenant,
            route: ids.route,
            attempts: attempt,
            status,
            error: &error,
            outbox_seq: seq,
        };
        match dlq::write(&self.js, dead).await {
            Ok(()) => {
                metrics::inc(
                    "postwire_dlq_messages_total",
                    "Deliveries moved to the dead-letter stream.",
                    &[("tenant", ids.tenant)],
                );
                self.forget_attempts(attempts_key, attempt).await;
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

    async fn forget_attempts(&self, key: &str, attempt: u32) {
        if attempt > 1
            && let Some(kv) = self.attempts_kv().await
        {
            let _ = kv.purge(key).await;
        }
    }

    async fn count_failure(&self, ids: &Ids<'_>) {
        if let Some(n) = self.failures.failed(
            ids.tenant,
            ids.endpoint,
            self.cfg().delivery.alert_after_failures,
        ) {
            let event =
                json!({"kind": "consecutive_failures", "endpoint": ids.endpoint, "failures": n});
            state::alert(&self.js, &self.cfg(), &self.client, ids.tenant, event).await;
        }
    }
}

//! What an attempt comes to: its audit record, its metrics, the endpoint's failure count
//! (alerts; a 410 disables the endpoint), and the runner's [`Outcome`]: done, retry after
//! the scheduled delay, or give up into the dead-letter stream.

use postwire_core::{bus, metrics};
use serde_json::json;

use super::audit::AttemptRecord;
use super::retry::{self, Outcome as Attempted};
use super::{Deliver, Ids, http, state};
use crate::held::dlq::Dead;
use crate::runner::{Input, Outcome, Publish};

impl Deliver {
    /// Records (unless the process worker did, `record` false) and classifies attempt
    /// number `attempt` of `input`.
    pub(super) async fn settle(
        &self,
        input: &Input,
        ids: &Ids<'_>,
        attempt: u32,
        a: http::Attempt,
        record: bool,
    ) -> Outcome {
        let cfg = self.live.get().cfg.clone();
        let (_, status, error) = fields(&a.outcome);
        if record {
            self.record(input, ids, attempt, &a);
        }
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
            Attempted::Delivered { status } => {
                tracing::info!(status, ms, attempt, "Delivered.");
                self.failures.succeeded(ids.tenant, ids.endpoint);
                return Outcome::Done(Vec::new());
            }
            Attempted::Retry { retry_after, .. } => {
                self.count_failure(ids).await;
                let unit = rand::random::<f64>();
                if let Some(delay) = retry::backoff(&cfg.delivery, attempt, *retry_after, unit) {
                    tracing::info!(
                        status,
                        error = error.as_deref().unwrap_or(""),
                        attempt,
                        next_in_ms = delay.as_millis() as u64,
                        "Delivery failed; will retry."
                    );
                    let key = super::attempts::key(ids.id, input.stream_sequence());
                    self.attempts.remember(&key, attempt).await;
                    metrics::inc(
                        "postwire_delivery_retries_total",
                        "Delivery attempts scheduled again.",
                        &[],
                    );
                    return Outcome::Retry(delay);
                }
            }
            Attempted::Permanent { status: 410, .. } => {
                self.count_failure(ids).await;
                let why = "the endpoint answered 410 Gone";
                if let Err(e) =
                    state::disable(&self.dispatch.js, ids.tenant, ids.endpoint, why).await
                {
                    tracing::error!(error = %e, "Could not record the endpoint as disabled.");
                }
                let event = json!({"kind": "endpoint_disabled", "endpoint": ids.endpoint, "reason": "HTTP 410 Gone"});
                self.alert(ids.tenant, event).await;
            }
            Attempted::Permanent { status: 0, .. } => {}
            Attempted::Permanent { .. } => self.count_failure(ids).await,
        }
        let error = error.unwrap_or_default();
        tracing::warn!(status, error = %error, attempts = attempt, "Delivery gave up; moving it to the dead-letter stream.");
        Outcome::Dead(Dead::Delivery {
            headers: input.headers(),
            body: input.payload().clone(),
            tenant: ids.tenant.into(),
            route: ids.route.into(),
            attempts: attempt,
            status,
            error,
            outbox_seq: input.stream_sequence(),
        })
    }

    /// Notes the attempt's audit record (best effort: a lost record never blocks a delivery).
    /// Its message id is the same for a redelivered input's attempt, so that copy is dropped.
    fn record(&self, input: &Input, ids: &Ids<'_>, attempt: u32, a: &http::Attempt) {
        let msg_id = format!("{}:attempt:{}:{attempt}", ids.id, input.stream_sequence());
        let Ok(body) = serde_json::to_vec(&record_of(ids, attempt, a)) else {
            return;
        };
        input.record(
            Publish::new(
                bus::subject_audit_mail(ids.tenant, "attempt", ids.mail_id),
                msg_id,
                body,
            )
            .header(bus::HEADER_DELIVERY_ID, ids.id),
        );
    }

    async fn count_failure(&self, ids: &Ids<'_>) {
        let threshold = self.live.get().cfg.delivery.alert_after_failures;
        if let Some(n) = self.failures.failed(ids.tenant, ids.endpoint, threshold) {
            let event =
                json!({"kind": "consecutive_failures", "endpoint": ids.endpoint, "failures": n});
            self.alert(ids.tenant, event).await;
        }
    }

    async fn alert(&self, tenant: &str, event: serde_json::Value) {
        let cfg = self.live.get().cfg.clone();
        state::alert(&self.dispatch, &cfg, tenant, event).await;
    }
}

/// An attempt's result as its record and log lines give it (`delivered`, `failed`,
/// `refused`), its HTTP status (none when no answer came) and its error.
pub(super) fn fields(o: &Attempted) -> (&'static str, Option<u16>, Option<String>) {
    match o {
        Attempted::Delivered { status } => ("delivered", Some(*status), None),
        Attempted::Retry { status, error, .. } => ("failed", *status, Some(error.clone())),
        Attempted::Permanent { status, error } => (
            "refused",
            Some(*status).filter(|s| *s != 0),
            Some(error.clone()),
        ),
    }
}

/// The record of attempt number `attempt`.
pub(super) fn record_of(ids: &Ids<'_>, attempt: u32, a: &http::Attempt) -> AttemptRecord {
    let (result, status, error) = fields(&a.outcome);
    AttemptRecord {
        delivery_id: ids.id.into(),
        mail_id: ids.mail_id.into(),
        route: ids.route.into(),
        endpoint: ids.endpoint.into(),
        attempt,
        result: result.into(),
        status,
        error,
        duration_ms: a.duration.as_millis() as u64,
        at: postwire_core::envelope::now_rfc3339(),
    }
}

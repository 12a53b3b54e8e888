//! The process worker's first attempt (`delivery.inline_attempt_ms` > 0): each delivery the
//! worker prepared is attempted at once, from the worker, before its `OUTBOX` message is
//! written. A delivery that succeeds never touches `OUTBOX` (one stream write, one
//! acknowledgement and one consumer hop fewer per mail); any other goes to `OUTBOX` as before,
//! marked with the attempt made (`Postwire-Attempted`), and the deliver worker carries on
//! with the retry schedule: attempt 2 after its first delay. A delivery the receiver refused
//! for good (a 4xx other than 408 and 429, or the SSRF guard) is marked `Postwire-Refused`
//! too, and the deliver worker settles it as its own refusal (dead-letter stream; a 410
//! disables the endpoint) without posting again; a `Retry-After` it answered travels along
//! (`Postwire-Retry-After-Ms`) and sets the next attempt's delay as it would in the deliver
//! worker. An endpoint whose traffic was limited on purpose (a request rate, or a
//! concurrency of its own or its tenant's) is left to the deliver worker: a first attempt
//! here would take its slot from this process's limiter and add to the configured limit. The
//! attempts made here are recorded in the mail's `received` record (see [`super::audit`]).
//!
//! The guarantee is unchanged: the `MAIL` message is acknowledged only after every delivery
//! was made or written to `OUTBOX`. A worker that dies after a POST and before that
//! acknowledgement makes the POST again (same `webhook-id`), as a deliver worker that dies
//! before its acknowledgement does.
//!
//! The worker must not wait for a slow receiver (it would hold mail of every tenant back), so
//! an attempt is made only when it can start now (the endpoint's, tenant's and worker's
//! limits free, see [`super::limits::Limits::try_acquire`]), it is cut at
//! `inline_attempt_ms`, and an endpoint whose attempt failed or was cut is left to the
//! deliver worker for [`COOL_DOWN`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use postwire_core::live::LiveConfig;
use postwire_core::{Config, bus, metrics};
use tokio::time::Instant;
use tracing::Instrument;

use super::audit::AttemptRecord;
use super::dispatch::Dispatch;
use super::retry::Outcome as Attempted;
use super::settle::{fields, record_of};
use super::{Ids, http};
use crate::StageError;
use crate::runner::{Output, Publish};

/// How long an endpoint whose inline attempt failed or was cut is left to the deliver worker.
pub const COOL_DOWN: Duration = Duration::from_secs(30);

pub struct Inline {
    dispatch: Dispatch,
    live: Arc<LiveConfig>,
    timeout: Duration,
    /// Endpoints left to the deliver worker until the instant.
    cooling: Mutex<HashMap<(String, String), Instant>>,
}

impl Inline {
    /// `None` when `delivery.inline_attempt_ms` is 0.
    pub fn new(
        js: jetstream::Context,
        live: Arc<LiveConfig>,
        cfg: &Config,
    ) -> Result<Option<Inline>, StageError> {
        let d = &cfg.delivery;
        if d.inline_attempt_ms == 0 {
            return Ok(None);
        }
        Ok(Some(Inline {
            dispatch: Dispatch::from_config(js, live.clone(), cfg)?,
            live,
            timeout: Duration::from_millis(d.inline_attempt_ms),
            cooling: Mutex::new(HashMap::new()),
        }))
    }

    /// Attempts every `OUTBOX` output now (concurrently); returns the outputs still to
    /// publish and the records of the attempts made, which the mail's `received` record
    /// carries (one audit write per mail instead of one more per delivery).
    pub async fn first_attempts(&self, outputs: Vec<Output>) -> (Vec<Output>, Vec<AttemptRecord>) {
        let cfg = self.live.get().cfg.clone();
        let records = Mutex::new(Vec::new());
        let attempts = outputs.into_iter().map(|o| self.one(&cfg, &records, o));
        let outputs = futures::future::join_all(attempts)
            .await
            .into_iter()
            .flatten()
            .collect();
        (
            outputs,
            records.into_inner().unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// One output: `None` when it was delivered, else what to publish.
    async fn one(
        &self,
        cfg: &Config,
        records: &Mutex<Vec<AttemptRecord>>,
        o: Output,
    ) -> Option<Output> {
        let Output::Publish(p) = o else {
            return Some(o);
        };
        if !p.subject.starts_with("outbox.") {
            return Some(Output::Publish(p));
        }
        let Some(ids) = ids(&p) else {
            return Some(Output::Publish(p));
        };
        let key = (ids.tenant.to_string(), ids.endpoint.to_string());
        if self.cooling(&key) || self.dispatch.limits.limited(ids.tenant, ids.endpoint) {
            return Some(Output::Publish(p));
        }
        // The attempt's span, as the deliver worker's would be (a child of the process span:
        // one trace per mail, whichever worker posts).
        let span = tracing::info_span!(
            "deliver",
            delivery_id = ids.id,
            mail_id = ids.mail_id,
            tenant = ids.tenant,
            route = ids.route,
            endpoint = ids.endpoint,
            stage = "deliver",
            attempt = 1,
            http.status = tracing::field::Empty,
            inline = true,
        );
        let attempt = tokio::time::timeout(
            self.timeout,
            self.dispatch.attempt_now(cfg, &p.payload, &ids),
        )
        .instrument(span.clone())
        .await;
        let a = match attempt {
            Ok(Some(a)) => a,
            // Busy or disabled: the deliver worker decides, no attempt was made.
            Ok(None) => return Some(Output::Publish(p)),
            Err(_) => http::Attempt {
                outcome: Attempted::Retry {
                    status: None,
                    error: format!(
                        "timeout: no answer within inline_attempt_ms ({} ms); handed to the deliver worker",
                        self.timeout.as_millis()
                    ),
                    retry_after: None,
                },
                duration: self.timeout,
            },
        };
        let (_, status, error) = fields(&a.outcome);
        if let Some(s) = status {
            span.record("http.status", s);
        }
        let class = status.map_or("error".to_string(), |s| format!("{}xx", s / 100));
        metrics::inc(
            "postwire_deliveries_total",
            "Delivery attempts by HTTP status class.",
            &[("class", &class)],
        );
        let record = record_of(&ids, 1, &a);
        records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
        if matches!(a.outcome, Attempted::Delivered { .. }) {
            tracing::info!(
                status,
                ms = a.duration.as_millis() as u64,
                delivery_id = ids.id,
                "Delivered by the process worker."
            );
            return None;
        }
        tracing::info!(
            status,
            error = error.as_deref().unwrap_or(""),
            delivery_id = ids.id,
            "The process worker's attempt failed; handing the delivery to the deliver worker."
        );
        self.cool(key);
        let p = p.header(bus::HEADER_ATTEMPTED, "1");
        Some(Output::Publish(match a.outcome {
            // Refused for good: the deliver worker settles it without posting again.
            Attempted::Permanent { status, .. } => {
                p.header(bus::HEADER_REFUSED, &status.to_string()).header(
                    bus::HEADER_LAST_ERROR,
                    &crate::held::one_line(&error.unwrap_or_default(), 1000),
                )
            }
            Attempted::Retry {
                retry_after: Some(after),
                ..
            } => p.header(bus::HEADER_RETRY_AFTER_MS, &after.as_millis().to_string()),
            _ => p,
        }))
    }

    fn cooling(&self, key: &(String, String)) -> bool {
        let mut c = self.cooling.lock().unwrap_or_else(|e| e.into_inner());
        match c.get(key) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                c.remove(key);
                false
            }
            None => false,
        }
    }

    fn cool(&self, key: (String, String)) {
        let mut c = self.cooling.lock().unwrap_or_else(|e| e.into_inner());
        c.insert(key, Instant::now() + COOL_DOWN);
    }
}

/// The postwire headers of a prepared `OUTBOX` publish.
fn ids(p: &Publish) -> Option<Ids<'_>> {
    let h = |n: &str| p.headers.get(n).map(|v| v.as_str());
    Some(Ids {
        id: h(bus::HEADER_DELIVERY_ID)?,
        mail_id: h(bus::HEADER_MAIL_ID).unwrap_or_default(),
        tenant: h(bus::HEADER_TENANT)?,
        route: h(bus::HEADER_ROUTE)?,
        endpoint: h(bus::HEADER_ENDPOINT)?,
    })
}

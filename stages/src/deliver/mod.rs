//! The deliver worker: consumes `OUTBOX`, signs and POSTs each delivery, acks on 2xx, naks
//! with the scheduled delay on a retryable failure, and after the last attempt (or a
//! permanent refusal) copies the delivery to `DLQ` before terminating it — the acks, the
//! dead letter, the span and the metrics through the [`crate::runner`].
//!
//! Files: [`dispatch`] (one attempt: checks, limits, signing, the POST), [`sign`] (the
//! signing step), [`http`] (the request, redirects never followed), [`retry`] (retry policy:
//! status classes, schedule), `settle.rs` (an attempt → record, alerts, outcome),
//! [`attempts`] (the attempt counter), [`ssrf`] (the address guard), [`limits`] (rates,
//! concurrency, isolation), [`state`] (disabled endpoints, alerts), [`audit`] (the attempt
//! records), [`scan`] (reading streams back), [`verify`] (how a receiver checks a delivery),
//! [`inline`] (the process worker's first attempt), [`error`].

pub mod attempts;
pub mod audit;
pub mod dispatch;
pub mod error;
pub mod http;
pub mod inline;
pub mod limits;
pub mod retry;
pub mod scan;
mod settle;
pub mod sign;
pub mod ssrf;
pub mod state;
mod state_mirror;
pub mod verify;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use postwire_core::live::LiveConfig;
use postwire_core::{Config, bus};

pub use error::DeliverError;

use crate::StageError;
use crate::runner::{self, Input, Kind, Outcome, Settled};

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
    let (deliver, consumer) = Deliver::new(js.clone(), live, &cfg)?;
    runner::run(&js, Arc::new(deliver), consumer, shutdown).await;
    Ok(())
}

/// The deliver worker as the runner runs it.
pub struct Deliver {
    live: Arc<LiveConfig>,
    dispatch: dispatch::Dispatch,
    attempts: attempts::Attempts,
    failures: state::FailureCounter,
}

/// The postwire headers of one OUTBOX message.
pub struct Ids<'a> {
    pub id: &'a str,
    pub mail_id: &'a str,
    pub tenant: &'a str,
    pub route: &'a str,
    pub endpoint: &'a str,
}

impl<'a> Ids<'a> {
    fn read(input: &'a Input) -> Option<Ids<'a>> {
        Some(Ids {
            id: input.header(bus::HEADER_DELIVERY_ID)?,
            mail_id: input.mail_id().unwrap_or_default(),
            tenant: input.tenant()?,
            route: input.header(bus::HEADER_ROUTE)?,
            endpoint: input.header(bus::HEADER_ENDPOINT)?,
        })
    }
}

impl Deliver {
    /// The worker for `cfg` (`[delivery]`), and its durable consumer of `OUTBOX`.
    pub fn new(
        js: jetstream::Context,
        live: Arc<LiveConfig>,
        cfg: &Config,
    ) -> Result<(Deliver, runner::Consumer), StageError> {
        let d = &cfg.delivery;
        let consumer = runner::Consumer {
            stream: bus::STREAM_OUTBOX,
            config: pull::Config {
                durable_name: Some(bus::CONSUMER_DELIVER.into()),
                ack_wait: d.ack_wait(),
                // Bounds what one worker holds (waiting plus in flight), and so its memory.
                max_ack_pending: i64::try_from(d.concurrency.saturating_mul(8).max(1024))
                    .unwrap_or(i64::MAX),
                ..Default::default()
            },
            // Concurrency is bounded by the limiters and max_ack_pending, not here: a
            // delivery waiting for a slow endpoint must not take a slot another one needs.
            concurrency: usize::MAX,
            error_delay: Duration::from_secs(5),
        };
        let deliver = Deliver {
            dispatch: dispatch::Dispatch::from_config(js.clone(), live.clone(), cfg)?,
            attempts: attempts::Attempts::new(js),
            failures: state::FailureCounter::default(),
            live,
        };
        Ok((deliver, consumer))
    }
}

impl runner::Stage for Deliver {
    fn kind(&self) -> Kind {
        Kind::Deliver
    }

    async fn handle(&self, input: &Input) -> Result<Outcome, StageError> {
        let ids = Ids::read(input).ok_or_else(|| {
            StageError::Permanent("an OUTBOX message lacks postwire headers".into())
        })?;
        if !self.dispatch.limits.has_room(ids.tenant, ids.endpoint) {
            // Too many already wait for this endpoint here: hand it back, not as an attempt.
            let delay = Duration::from_millis(500 + rand::random_range(0..1500));
            return Ok(Outcome::Retry(delay));
        }
        let delivered = u32::try_from(input.delivered()).unwrap_or(u32::MAX);
        let key = attempts::key(ids.id, input.stream_sequence());
        // Attempts made before: this worker's (counted), or the process worker's first one.
        let before = input
            .header(bus::HEADER_ATTEMPTED)
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0);
        let cfg = self.live.get().cfg.clone();
        if before > 0
            && let Some(status) = input
                .header(bus::HEADER_REFUSED)
                .and_then(|v| v.parse::<u16>().ok())
        {
            // The receiver refused the process worker's attempt for good: settled as this
            // worker's own refusal would be, without posting again (the attempt is recorded).
            let refused = http::Attempt {
                outcome: retry::Outcome::Permanent {
                    status,
                    error: input
                        .header(bus::HEADER_LAST_ERROR)
                        .unwrap_or_default()
                        .to_string(),
                },
                duration: Duration::ZERO,
            };
            return Ok(self.settle(input, &ids, before, refused, false).await);
        }
        let retry_after = input
            .header(bus::HEADER_RETRY_AFTER_MS)
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis);
        if delivered == 1
            && before > 0
            && let Some(delay) =
                retry::backoff(&cfg.delivery, before, retry_after, rand::random::<f64>())
        {
            // The process worker's attempt failed a moment ago: the next waits the
            // schedule's delay, as after any failed attempt.
            return Ok(Outcome::Retry(delay));
        }
        let attempt = self.attempts.previous(&key, delivered).await.max(before) + 1;
        tracing::Span::current().record("attempt", attempt);
        let a = self
            .dispatch
            .attempt(&cfg, input.payload(), &ids, attempt)
            .await;
        Ok(self.settle(input, &ids, attempt, a, true).await)
    }

    async fn settled(&self, input: &Input, how: Settled) {
        // Settled for good: the attempt counter is no longer needed (there is none before a
        // redelivery).
        if matches!(how, Settled::Acked | Settled::Terminated)
            && input.delivered() > 1
            && let Some(id) = input.header(bus::HEADER_DELIVERY_ID)
        {
            let key = attempts::key(id, input.stream_sequence());
            self.attempts.forget(&key).await;
        }
    }
}

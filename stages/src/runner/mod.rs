//! The runner: what every worker does around its stage, written once. A [`Stage`] only looks
//! at an [`Input`] and says what happened ([`Outcome`]); the runner owns the rest:
//!
//! - `consume.rs`: the durable pull consumer (created, re-created after a NATS restart,
//!   bounded concurrency, stops pulling on shutdown and lets in-flight messages finish).
//! - `input.rs`: [`Input`], the consumed message with its postwire headers, and the
//!   best-effort records a stage notes on it.
//! - `progress.rs`: in-progress acks while a stage works (slow DNS, a slow scanner, a slow
//!   endpoint must not make JetStream hand the message to another worker meanwhile).
//! - `publish.rs`: [`Output`] and the one publisher: every output with its `Nats-Msg-Id` and
//!   the trace context, all PubAcks awaited; dead letters through [`crate::held::dlq::write`],
//!   held mail through [`crate::held::quarantine::hold`].
//! - `settle.rs`: outcome → outputs written, then ack / nak with delay / term.
//! - `observe.rs`: the span per message (`mail_id`, `tenant`, `stage`, continued from the
//!   `traceparent` header) and the metrics per stage.
//!
//! Ack discipline: the input is acknowledged only after every output was acknowledged by
//! JetStream; a retryable failure naks it with a delay; a permanent one terminates it.

mod consume;
mod input;
mod observe;
mod progress;
mod publish;
mod settle;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use tracing::Instrument as _;

use crate::StageError;
use crate::held::dlq::Dead;

pub use consume::consume;
pub use input::Input;
pub use observe::{STAGE_DURATION, STAGE_DURATION_HELP, STAGE_MESSAGES, observe_stage};
pub use publish::{Held, Output, Publish, outputs as publish_outputs};

/// The workers a process can run, each on its own stream: a closed set, so a span's name
/// and a metric's `stage` label are known at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `MAIL` → verify … prepare → `OUTBOX` (see [`crate::process`]).
    Process,
    /// `OUTBOX` → signed POST (see [`crate::deliver`]).
    Deliver,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Process => "process",
            Kind::Deliver => "deliver",
        }
    }
}

/// What became of one input.
#[derive(Debug)]
pub enum Outcome {
    /// Finished: every output is published (PubAcks awaited), then the input is acknowledged.
    Done(Vec<Output>),
    /// Not now: the input is handed back and redelivered after the delay (nak).
    Retry(Duration),
    /// Held back by a tenant's policy: the input goes to `QUARANTINE`, then is acknowledged.
    Hold(Held),
    /// Given up: the input is copied to `DLQ`, then terminated.
    Dead(Dead),
}

/// How the runner settled an input, told to [`Stage::settled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Acknowledged (done or held).
    Acked,
    /// Dead-lettered and terminated.
    Terminated,
    /// Handed back for later (a retry, or writing its outputs failed).
    Handed,
    /// Terminated without a dead letter: the input can never be handled.
    Refused,
}

/// A stage as the runner runs it: one input in, one [`Outcome`] out.
pub trait Stage: Send + Sync + 'static {
    fn kind(&self) -> Kind;

    /// Handles one input. `Err` is infrastructure trouble (retried when
    /// [`StageError::is_retryable`]) or an input that can never succeed (terminated).
    fn handle(&self, input: &Input) -> impl Future<Output = Result<Outcome, StageError>> + Send;

    /// Called after the input was settled, for bookkeeping that must follow the ack.
    fn settled(&self, _input: &Input, _how: Settled) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Where a stage reads from and how.
pub struct Consumer {
    pub stream: &'static str,
    pub config: pull::Config,
    /// Messages handled at once by this process.
    pub concurrency: usize,
    /// The nak delay after a retryable error or a failed write of the outputs.
    pub error_delay: Duration,
}

/// Runs `stage` on `consumer` until `shutdown` resolves; in-flight messages finish first.
pub async fn run<S: Stage>(
    js: &jetstream::Context,
    stage: Arc<S>,
    consumer: Consumer,
    shutdown: impl Future<Output = ()>,
) {
    let progress_every = consumer.config.ack_wait / 3;
    let error_delay = consumer.error_delay;
    let js2 = js.clone();
    consume(
        js,
        consumer.stream,
        consumer.config,
        consumer.concurrency,
        shutdown,
        move |msg| {
            let (js, stage) = (js2.clone(), stage.clone());
            async move {
                let input = Input::new(msg);
                let kind = stage.kind();
                let span = observe::span(kind, &input);
                let started = std::time::Instant::now();
                let how = async {
                    let result =
                        progress::while_working(&input, progress_every, stage.handle(&input)).await;
                    let how = settle::settle(&js, &input, result, error_delay).await;
                    input.publish_records(&js).await;
                    stage.settled(&input, how.1).await;
                    how
                }
                .instrument(span)
                .await;
                observe::finished(kind, how.0, started.elapsed());
            }
        },
    )
    .await;
}

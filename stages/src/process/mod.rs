//! The process worker: consumes `MAIL` and runs its registered stages fused, in one
//! process: verify → parse → scan (antivirus) → store → route → transform (tenant plugins)
//! → prepare. A stage may hold the mail in `QUARANTINE` (the tenant's authentication or
//! infected-attachment policy) or ask for a retry (DNS could not decide); otherwise prepare
//! hands the runner one `OUTBOX` message per endpoint (`Nats-Msg-Id` = delivery id), which
//! acknowledges the mail only after every output was acknowledged.
//!
//! - `mail.rs`: [`Mail`], one mail as it goes through the stages, and [`Flow`].
//! - `chain.rs`: [`StageName`] (the closed list of stages), [`MailStage`], [`Chain`].
//! - `verify.rs`: the verify stage (wraps [`crate::verify::Verifier`]).
//! - The other stages live with their code: `parse/stage.rs`, `antivirus/stage.rs`,
//!   `store/stage.rs`, `route/`, `transform/step.rs`, `prepare/stage.rs`.
//!
//! Stages always run fused: see docs/decisions.md ("The process stages run fused") for why
//! there is no `worker --stages` with a hop per stage.

mod chain;
pub mod mail;
mod verify;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use postwire_core::live::LiveConfig;
use postwire_core::{Config, bus};

pub use chain::{Chain, Deps, Registered, StageName};
pub use mail::{Ctx, Flow, Mail, MailStage};
pub use verify::VerifyStage;

use crate::StageError;
use crate::runner::{self, Input, Kind, Outcome, Publish};
use crate::store::BlobStore;

/// Parallel messages per process worker.
const CONCURRENCY: usize = 16;
/// With the first attempt made here (`delivery.inline_attempt_ms`), a mail also waits for its
/// receiver's answer: more in flight keep the CPU busy meanwhile.
const CONCURRENCY_INLINE: usize = 48;

/// Runs the process worker, with object storage as `[storage]` configures it (the
/// filesystem backend's URL key from `storage.signing_key_env`).
pub async fn run(
    js: jetstream::Context,
    cfg: Arc<Config>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StageError> {
    let key = std::env::var(&cfg.storage.signing_key_env)
        .ok()
        .map(String::into_bytes);
    let blobs = BlobStore::from_config(&cfg.storage, key)?;
    run_with(js, cfg, blobs.map(Arc::new), shutdown).await
}

/// Runs the process worker with the given object store (`None`: nothing stored).
pub async fn run_with(
    js: jetstream::Context,
    cfg: Arc<Config>,
    blobs: Option<Arc<BlobStore>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StageError> {
    run_live(js, LiveConfig::fixed(cfg), blobs, shutdown).await
}

/// [`run_with`] following the live configuration: each mail is routed and transformed with
/// the tenant configuration current when its processing starts.
pub async fn run_live(
    js: jetstream::Context,
    live: Arc<LiveConfig>,
    blobs: Option<Arc<BlobStore>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StageError> {
    let cfg = live.get().cfg.clone();
    let deps = Deps {
        cfg: &cfg,
        blobs: blobs.clone(),
    };
    let chain = Chain::build(&StageName::ALL, deps)?;
    // Raw-mail retention; stopped with the consumer below.
    let sweeper = match &blobs {
        Some(b) if cfg.storage.raw_retention_days > 0 => {
            Some(tokio::spawn(crate::store::sweep::run_periodically(
                b.clone(),
                cfg.storage.raw_retention_days,
                Duration::from_secs(cfg.storage.sweep_interval_secs),
                std::future::pending(),
            )))
        }
        _ => None,
    };
    let inline = crate::deliver::inline::Inline::new(js.clone(), live.clone(), &cfg)?;
    let mut consumer = consumer();
    if inline.is_some() {
        consumer.concurrency = CONCURRENCY_INLINE;
    }
    let worker = Process {
        js: js.clone(),
        live,
        blobs,
        chain,
        inline,
    };
    runner::run(&js, Arc::new(worker), consumer, shutdown).await;
    if let Some(s) = sweeper {
        s.abort();
    }
    Ok(())
}

/// The durable consumer of `MAIL`.
pub fn consumer() -> runner::Consumer {
    runner::Consumer {
        stream: bus::STREAM_MAIL,
        config: pull::Config {
            durable_name: Some(bus::CONSUMER_PROCESS.into()),
            ack_wait: Duration::from_secs(60),
            max_ack_pending: 1_000,
            ..Default::default()
        },
        concurrency: CONCURRENCY,
        error_delay: Duration::from_secs(2),
    }
}

/// The process worker as the runner runs it.
pub struct Process {
    pub js: jetstream::Context,
    pub live: Arc<LiveConfig>,
    pub blobs: Option<Arc<BlobStore>>,
    pub chain: Chain,
    /// The first attempt of each delivery, made here (`delivery.inline_attempt_ms`).
    pub inline: Option<crate::deliver::inline::Inline>,
}

impl runner::Stage for Process {
    fn kind(&self) -> Kind {
        Kind::Process
    }

    async fn handle(&self, input: &Input) -> Result<Outcome, StageError> {
        let snap = self.live.get();
        let ctx = Ctx {
            js: &self.js,
            cfg: &snap.cfg,
            router: &snap.router,
            input,
        };
        let mut mail = Mail::read(input, self.blobs.as_deref()).await?;
        let mut outcome = self.chain.run(&ctx, &mut mail).await?;
        let mut attempts = Vec::new();
        if let (Some(inline), Outcome::Done(outputs)) = (&self.inline, &mut outcome) {
            (*outputs, attempts) = inline.first_attempts(std::mem::take(outputs)).await;
        }
        if matches!(outcome, Outcome::Done(_) | Outcome::Hold(_)) {
            // For the dashboard's counts and search: one record per processed mail (its time
            // is the record's), with the mail's summary when it got that far and the first
            // attempts made here.
            let body = crate::deliver::audit::received_body(mail.summary.as_ref(), &attempts);
            input.record(Publish::new(
                bus::subject_audit_mail(&mail.tenant, "received", &mail.mail_id),
                format!("{}:received:{}", mail.mail_id, input.stream_sequence()),
                bytes::Bytes::from(body),
            ));
        }
        Ok(outcome)
    }
}

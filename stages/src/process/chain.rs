//! The fused chain: the stages a process worker runs on each mail, in order, registered
//! through the closed enum [`StageName`] (no global registry: adding a stage is adding a
//! variant, and the compiler finds every place that must know it). Each stage runs in its own
//! span (a child of the worker's) and is timed in `postwire_stage_duration_seconds{stage}`.

use std::sync::Arc;

use postwire_core::Config;
use tracing::Instrument as _;

use super::mail::{Ctx, Flow, Mail, MailStage};
use crate::StageError;
use crate::antivirus::Antivirus;
use crate::runner::{Outcome, observe_stage};
use crate::store::BlobStore;

use super::verify::VerifyStage;
use crate::antivirus::stage::ScanStage;
use crate::parse::stage::ParseStage;
use crate::prepare::stage::PrepareStage;
use crate::route::RouteStage;
use crate::spam::Rspamd;
use crate::spam::stage::SpamStage;
use crate::store::stage::StoreStage;
use crate::transform::step::TransformStage;

/// The stages, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageName {
    /// SPF, DKIM, DMARC, ARC, iprev; the tenant's authentication policy (may hold the mail).
    Verify,
    /// rspamd's score (may hold the mail).
    Spam,
    /// MIME → the payload's `message`, sanitised.
    Parse,
    /// Attachments through clamd (may hold the mail).
    Scan,
    /// Attachments and the raw mail to object storage, expiring URLs.
    Store,
    /// Recipients → one event per matched route.
    Route,
    /// The tenant's plugin chain over each event.
    Transform,
    /// Deliveries, audit records and dead letters as outputs.
    Prepare,
}

impl StageName {
    /// Every stage, in order: what a process worker runs by default, fused.
    pub const ALL: [StageName; 8] = [
        StageName::Verify,
        StageName::Spam,
        StageName::Parse,
        StageName::Scan,
        StageName::Store,
        StageName::Route,
        StageName::Transform,
        StageName::Prepare,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StageName::Verify => "verify",
            StageName::Spam => "spam",
            StageName::Parse => "parse",
            StageName::Scan => "scan",
            StageName::Store => "store",
            StageName::Route => "route",
            StageName::Transform => "transform",
            StageName::Prepare => "prepare",
        }
    }
}

/// A registered stage with what it needs to run.
pub enum Registered {
    /// Boxed: the resolver makes it much larger than the others.
    Verify(Box<VerifyStage>),
    Spam(SpamStage),
    Parse(ParseStage),
    Scan(ScanStage),
    Store(StoreStage),
    Route(RouteStage),
    Transform(TransformStage),
    Prepare(PrepareStage),
}

impl Registered {
    pub fn name(&self) -> StageName {
        match self {
            Registered::Verify(_) => StageName::Verify,
            Registered::Spam(_) => StageName::Spam,
            Registered::Parse(_) => StageName::Parse,
            Registered::Scan(_) => StageName::Scan,
            Registered::Store(_) => StageName::Store,
            Registered::Route(_) => StageName::Route,
            Registered::Transform(_) => StageName::Transform,
            Registered::Prepare(_) => StageName::Prepare,
        }
    }

    /// Runs the stage in its own span (names are literals: one per variant).
    async fn run(&self, ctx: &Ctx<'_>, mail: &mut Mail) -> Result<Flow, StageError> {
        macro_rules! run {
            ($stage:expr, $name:literal) => {{
                let span = tracing::info_span!(
                    $name,
                    mail_id = mail.mail_id.as_str(),
                    tenant = mail.tenant.as_str(),
                    stage = $name
                );
                $stage.run(ctx, mail).instrument(span).await
            }};
        }
        match self {
            Registered::Verify(s) => run!(s, "verify"),
            Registered::Spam(s) => run!(s, "spam"),
            Registered::Parse(s) => run!(s, "parse"),
            Registered::Scan(s) => run!(s, "scan"),
            Registered::Store(s) => run!(s, "store"),
            Registered::Route(s) => run!(s, "route"),
            Registered::Transform(s) => run!(s, "transform"),
            Registered::Prepare(s) => run!(s, "prepare"),
        }
    }
}

/// What the stages are built from.
pub struct Deps<'a> {
    pub cfg: &'a Config,
    pub blobs: Option<Arc<BlobStore>>,
}

/// The stages of one process worker, in order.
pub struct Chain(Vec<Registered>);

impl Chain {
    /// Builds `names` (in [`StageName::ALL`] order); a stage the configuration leaves off
    /// (verification disabled, no rspamd, no clamd, no storage) is not registered.
    pub fn build(names: &[StageName], deps: Deps<'_>) -> Result<Chain, StageError> {
        let cfg = deps.cfg;
        let antivirus = match names.contains(&StageName::Scan) {
            true => Antivirus::from_config(&cfg.antivirus),
            false => None,
        };
        let blobs = deps.blobs.filter(|_| names.contains(&StageName::Store));
        // Parse keeps the attachment contents only when a later stage needs them.
        let bodies = antivirus.is_some() || blobs.is_some();
        let mut antivirus = antivirus;
        let mut stages = Vec::new();
        for name in StageName::ALL.into_iter().filter(|n| names.contains(n)) {
            let stage = match name {
                StageName::Verify => {
                    VerifyStage::from_config(cfg)?.map(|v| Registered::Verify(Box::new(v)))
                }
                StageName::Spam => {
                    Rspamd::from_config(&cfg.spam).map(|r| Registered::Spam(SpamStage::new(r)))
                }
                StageName::Parse => Some(Registered::Parse(ParseStage { bodies })),
                StageName::Scan => antivirus
                    .take()
                    .map(|av| Registered::Scan(ScanStage::new(av))),
                StageName::Store => blobs.clone().map(|b| Registered::Store(StoreStage::new(b))),
                StageName::Route => Some(Registered::Route(RouteStage)),
                StageName::Transform => Some(Registered::Transform(TransformStage::start(cfg)?)),
                StageName::Prepare => Some(Registered::Prepare(PrepareStage)),
            };
            stages.extend(stage);
        }
        Ok(Chain(stages))
    }

    /// The registered stages, in order.
    pub fn names(&self) -> Vec<StageName> {
        self.0.iter().map(Registered::name).collect()
    }

    /// Runs the stages over one mail until one stops it.
    pub async fn run(&self, ctx: &Ctx<'_>, mail: &mut Mail) -> Result<Outcome, StageError> {
        for stage in &self.0 {
            let started = std::time::Instant::now();
            let flow = stage.run(ctx, mail).await;
            observe_stage(stage.name().as_str(), started.elapsed());
            if let Flow::Stop(outcome) = flow? {
                return Ok(outcome);
            }
        }
        Ok(Outcome::Done(Vec::new()))
    }
}

//! The verify stage of the process worker: wraps [`crate::verify::Verifier`] (the
//! verification library, shared with the SMTP-time checks) as a stage. Verdicts already
//! decided at SMTP time travel in a header and are not computed again; DNS that could not
//! decide is retried a few times; the tenant's policy may hold the mail in quarantine.

use std::time::Duration;

use postwire_core::event::Auth;
use postwire_core::{Config, bus};

use super::mail::{Ctx, Flow, Mail, MailStage};
use crate::StageError;
use crate::runner::Outcome;
use crate::verify::{self, Action, Verifier};

pub struct VerifyStage {
    verifier: Verifier,
}

impl VerifyStage {
    /// The stage, when `[verify] enabled`.
    pub fn from_config(cfg: &Config) -> Result<Option<VerifyStage>, StageError> {
        if !cfg.verify.enabled {
            return Ok(None);
        }
        let verifier = Verifier::new(&cfg.verify, &cfg.smtp.hostname)
            .map_err(|e| StageError::Permanent(e.to_string()))?;
        Ok(Some(VerifyStage { verifier }))
    }
}

impl MailStage for VerifyStage {
    async fn run(&self, ctx: &Ctx<'_>, mail: &mut Mail) -> Result<Flow, StageError> {
        let carried = ctx
            .input
            .header(bus::HEADER_AUTH)
            .and_then(|h| Auth::from_header(h).ok());
        let auth = match carried {
            Some(auth) => auth,
            None => self.verifier.verify(&mail.raw, &mail.envelope).await,
        };
        let cfg = &ctx.cfg.verify;
        if auth.undecided() && ctx.input.delivered() <= i64::from(cfg.max_dns_retries) {
            tracing::warn!("DNS could not decide the verdicts of a mail; retrying later.");
            return Ok(Flow::Stop(Outcome::Retry(Duration::from_millis(
                cfg.dns_retry_delay_ms,
            ))));
        }
        let action = verify::decide(ctx.cfg.auth_policy(&mail.tenant), &auth);
        let flow = if action != Action::Deliver && !mail.released {
            let reason = verify::policy::reason(&auth);
            mail.quarantine(ctx.input, Some(&auth), reason)
        } else {
            Flow::Next
        };
        mail.auth = Some(auth);
        Ok(flow)
    }
}

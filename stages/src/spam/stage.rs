//! Spam scoring as a stage of the process worker: a verdict made at SMTP time travels in
//! `Postwire-Spam` and is not asked again; otherwise rspamd scores the mail here. rspamd
//! failing is a retry after `spam.retry_delay_ms`, never a pass. The tenant's
//! `spam.quarantine_above` holds the mail (a released mail is delivered whatever its score).

use postwire_core::bus;
use postwire_core::event::Spam;

use super::Rspamd;
use crate::StageError;
use crate::process::mail::{Ctx, Flow, Mail, MailStage};
use crate::runner::Outcome;

pub struct SpamStage {
    rspamd: Rspamd,
}

impl SpamStage {
    pub fn new(rspamd: Rspamd) -> SpamStage {
        SpamStage { rspamd }
    }
}

impl MailStage for SpamStage {
    async fn run(&self, ctx: &Ctx<'_>, mail: &mut Mail) -> Result<Flow, StageError> {
        let carried = ctx
            .input
            .header(bus::HEADER_SPAM)
            .and_then(|h| Spam::from_header(h).ok());
        let spam = match carried {
            Some(s) => s,
            None => match self
                .rspamd
                .check(&mail.raw, &mail.envelope, &mail.mail_id, "worker")
                .await
            {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "rspamd could not score a mail; it will be processed again later.");
                    return Ok(Flow::Stop(Outcome::Retry(self.rspamd.retry_delay)));
                }
            },
        };
        let limit = ctx
            .cfg
            .tenants
            .get(&mail.tenant)
            .and_then(|t| t.spam.quarantine_above);
        let flow = match limit {
            Some(q) if spam.score >= q && !mail.released => {
                let reason = format!("spam: rspamd scored {} (quarantine_above {q})", spam.score);
                mail.quarantine(ctx.input, mail.auth.as_ref(), reason)
            }
            _ => Flow::Next,
        };
        mail.spam = Some(spam);
        Ok(flow)
    }
}

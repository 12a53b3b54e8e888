//! The antivirus as a stage of the process worker: every attachment scanned, its verdict in
//! the payload; an infected attachment holds the whole mail in quarantine when the tenant
//! says so (a released mail is delivered, its infected attachments dropped).

use postwire_core::antivirus_config::InfectedPolicy;

use super::Antivirus;
use crate::StageError;
use crate::process::mail::{Ctx, Flow, Mail, MailStage};

pub struct ScanStage {
    antivirus: Antivirus,
}

impl ScanStage {
    pub fn new(antivirus: Antivirus) -> ScanStage {
        ScanStage { antivirus }
    }
}

impl MailStage for ScanStage {
    async fn run(&self, ctx: &Ctx<'_>, mail: &mut Mail) -> Result<Flow, StageError> {
        let Some(parsed) = mail.parsed.as_mut() else {
            return Ok(Flow::Next);
        };
        let found = self
            .antivirus
            .scan(&mut parsed.message, &parsed.bodies)
            .await?;
        let policy = ctx
            .cfg
            .tenants
            .get(&mail.tenant)
            .map(|t| t.infected_attachments)
            .unwrap_or_default();
        if !found.is_empty() && policy == InfectedPolicy::Quarantine && !mail.released {
            let reason = format!("infected attachment: {}", found.join(", "));
            return Ok(mail.quarantine(ctx.input, mail.auth.as_ref(), reason));
        }
        Ok(Flow::Next)
    }
}

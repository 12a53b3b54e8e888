//! Transform as a stage of the process worker: the plugin host (started when the live
//! configuration first has plugins, see [`super::PluginSlot`]) runs each tenant's chain over
//! the route events ([`super::stage::apply`]). A host that cannot start retries the mail.

use std::time::Duration;

use postwire_core::Config;

use super::PluginSlot;
use crate::StageError;
use crate::process::mail::{Ctx, Flow, Mail, MailStage};
use crate::runner::Outcome;

/// How long a mail waits when the plugin host cannot start.
const HOST_RETRY: Duration = Duration::from_secs(10);

pub struct TransformStage {
    plugins: PluginSlot,
}

impl TransformStage {
    /// Starts the host and compiles the plugins of `cfg` now rather than with the first mail.
    pub fn start(cfg: &Config) -> Result<TransformStage, StageError> {
        let plugins = PluginSlot::default();
        plugins.get(cfg)?;
        Ok(TransformStage { plugins })
    }
}

impl MailStage for TransformStage {
    async fn run(&self, ctx: &Ctx<'_>, mail: &mut Mail) -> Result<Flow, StageError> {
        let host = match self.plugins.get(ctx.cfg) {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "The plugin host cannot start; retrying the mail later.");
                return Ok(Flow::Stop(Outcome::Retry(HOST_RETRY)));
            }
        };
        if host.is_some() {
            super::uploads::fetch_missing(ctx.js, ctx.cfg, &mail.tenant).await;
        }
        mail.summary = Some(crate::prepare::summary::MailSummary::of(
            &mail.envelope,
            mail.raw.len() as u64,
            &mail.events,
        ));
        let events = std::mem::take(&mut mail.events);
        mail.transformed =
            super::stage::apply(host.as_ref(), ctx.cfg, &mail.tenant, &mail.mail_id, events)
                .await?;
        Ok(Flow::Next)
    }
}

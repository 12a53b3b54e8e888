//! The route stage: the recipients, resolved by the tenant's routes of the configuration
//! snapshot, → one event per matched route (built by [`crate::prepare::route_events`]), and
//! the recipients no route takes any more (they go to the dead-letter stream in prepare).

use crate::StageError;
use crate::prepare::{self, MailInput};
use crate::process::mail::{Ctx, Flow, Mail, MailStage};

pub struct RouteStage;

impl MailStage for RouteStage {
    async fn run(&self, ctx: &Ctx<'_>, mail: &mut Mail) -> Result<Flow, StageError> {
        let crate::parse::Parsed {
            message, limits, ..
        } = mail
            .parsed
            .take()
            .ok_or_else(|| StageError::Permanent("route runs after parse".into()))?;
        let (events, unrouted) = prepare::route_events(
            ctx.router,
            MailInput {
                mail_id: &mail.mail_id,
                tenant: &mail.tenant,
                envelope: &mail.envelope,
                raw: &mail.raw,
                message,
                limits,
                auth: mail.auth.clone(),
                spam: mail.spam.clone(),
                raw_url: mail.raw_url.clone(),
            },
        );
        mail.events = events;
        mail.unrouted = unrouted;
        Ok(Flow::Next)
    }
}

//! Prepare as a stage of the process worker: the transformed deliveries become `OUTBOX`
//! messages (`Nats-Msg-Id` = delivery id) and `PAYLOADS` copies (kept for a resend), the transform's audit records `AUDIT` messages,
//! and what cannot be delivered (a fail-closed plugin's error, recipients no route takes)
//! raw dead letters. The runner publishes them all before it acknowledges the mail.

use postwire_core::bus;

use crate::StageError;
use crate::held::dlq::{Dead, RawReason};
use crate::held::payloads;
use crate::process::mail::{Ctx, Flow, Mail, MailStage};
use crate::runner::{Outcome, Output, Publish};

pub struct PrepareStage;

impl MailStage for PrepareStage {
    async fn run(&self, ctx: &Ctx<'_>, mail: &mut Mail) -> Result<Flow, StageError> {
        let t = std::mem::take(&mut mail.transformed);
        let mail_id = mail.mail_id.as_str();
        let mut out = Vec::with_capacity(t.deliveries.len() + t.audits.len() + 1);
        for d in &t.deliveries {
            let p = Publish::new(
                bus::subject_outbox(&d.tenant, &d.route),
                d.id.clone(),
                d.body.clone(),
            )
            .header(bus::HEADER_DELIVERY_ID, &d.id)
            .header(bus::HEADER_MAIL_ID, mail_id)
            .header(bus::HEADER_TENANT, &d.tenant)
            .header(bus::HEADER_ROUTE, &d.route)
            .header(bus::HEADER_ENDPOINT, &d.endpoint);
            out.push(Output::Publish(p));
            // Kept for a resend, as long as the tenant says.
            let days = ctx
                .cfg
                .tenants
                .get(&d.tenant)
                .map_or(0, |t| t.payload_retention_days);
            if let Some(p) = payloads::keep(
                days,
                &d.tenant,
                &d.id,
                mail_id,
                &d.route,
                &d.endpoint,
                d.body.clone().into(),
            ) {
                out.push(Output::Publish(p));
            }
        }
        for a in &t.audits {
            let p = Publish::new(
                bus::subject_audit_mail(&mail.tenant, a.kind, mail_id),
                format!("{mail_id}:{}:{}", a.kind, a.route),
                serde_json::to_vec(a).unwrap_or_default(),
            )
            .header(bus::HEADER_MAIL_ID, mail_id);
            out.push(Output::Publish(p));
        }
        // The MAIL sequence in the dead letters' ids: a redelivered MAIL message writes its
        // dead letter once, a replayed copy (a new sequence) that fails again writes a new one.
        let raw_dead = |reason, route: Option<String>, error: String, output: String| {
            Output::Dead(Dead::RawMail {
                headers: ctx.input.headers(),
                payload: ctx.input.payload().clone(),
                tenant: mail.tenant.clone(),
                mail_id: mail.mail_id.clone(),
                reason,
                route,
                error,
                output,
                mail_seq: ctx.input.stream_sequence(),
            })
        };
        for a in t.dead {
            // fail-closed: keep the raw mail, with the plugin's error, where an operator looks.
            out.push(raw_dead(
                RawReason::Plugin,
                Some(a.route),
                a.reason,
                a.output,
            ));
        }
        if !mail.unrouted.is_empty() {
            // Never drop accepted mail silently: keep it, raw, where an operator will look.
            tracing::warn!(
                count = mail.unrouted.len(),
                "Recipients no longer match any route; keeping the mail in the DLQ."
            );
            let error = "no route matches these recipients".to_string();
            out.push(raw_dead(RawReason::Unrouted, None, error, String::new()));
        }
        tracing::info!(deliveries = t.deliveries.len(), "Processed a mail.");
        Ok(Flow::Stop(Outcome::Done(out)))
    }
}

//! Prepare: route the recipients and build one outbox delivery per endpoint. The body bytes
//! are fixed here, once; each attempt only signs them again.

use std::collections::BTreeMap;

use postwire_core::Config;
use postwire_core::envelope::Envelope;
use postwire_core::event::{Auth, EmailEvent, Limits, Message, RawInfo, SCHEMA};
use postwire_core::ids::{delivery_id, sha256_hex};
use postwire_core::routing::Router;

/// One HTTP delivery to make: `outbox.<tenant>.<route>` with `Nats-Msg-Id = id`.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub tenant: String,
    pub route: String,
    pub endpoint: String,
    pub body: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Prepared {
    pub deliveries: Vec<Delivery>,
    /// Recipients no route takes any more (the config changed after ingest accepted them).
    pub unrouted: Vec<String>,
}

pub struct MailInput<'a> {
    pub mail_id: &'a str,
    pub tenant: &'a str,
    pub envelope: &'a Envelope,
    pub raw: &'a [u8],
    pub message: Message,
    pub limits: Limits,
    /// Verdicts of the verify stage (None when verification is off).
    pub auth: Option<Auth>,
    /// Where the raw message was stored, if it was.
    pub raw_url: Option<crate::store::SignedUrl>,
}

pub fn prepare(
    cfg: &Config,
    router: &Router,
    input: MailInput<'_>,
) -> Result<Prepared, serde_json::Error> {
    let mut routes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut out = Prepared::default();
    for rcpt in &input.envelope.rcpt_to {
        match router.resolve(rcpt) {
            Ok(dest) if dest.tenant == input.tenant => {
                routes.entry(dest.route).or_default().push(rcpt.clone())
            }
            _ => out.unrouted.push(rcpt.clone()),
        }
    }
    let tenant_cfg = cfg.tenants.get(input.tenant);
    let raw_info = RawInfo {
        size: input.raw.len() as u64,
        sha256: sha256_hex(input.raw),
        url: input.raw_url.as_ref().map(|u| u.url.clone()),
        url_expires_at: input.raw_url.as_ref().map(|u| u.expires_at.clone()),
    };
    for (route, rcpts) in routes {
        let endpoints = tenant_cfg
            .and_then(|t| t.routes.iter().find(|r| r.name == route))
            .map(|r| r.endpoints.clone())
            .unwrap_or_default();
        let mut envelope = input.envelope.clone();
        envelope.rcpt_to = rcpts;
        for endpoint in endpoints {
            let id = delivery_id(input.mail_id, &route, &endpoint);
            let event = EmailEvent {
                schema: SCHEMA.into(),
                id: id.clone(),
                mail_id: input.mail_id.into(),
                tenant: input.tenant.into(),
                route: route.clone(),
                received_at: envelope.received_at.clone(),
                envelope: envelope.clone(),
                message: input.message.clone(),
                auth: input.auth.clone(),
                raw: Some(raw_info.clone()),
                limits: input.limits.clone(),
            };
            out.deliveries.push(Delivery {
                id,
                tenant: input.tenant.into(),
                route: route.clone(),
                endpoint,
                body: serde_json::to_vec(&event)?,
            });
        }
    }
    Ok(out)
}

//! Prepare: route the recipients and build one outbox delivery per endpoint. The body bytes
//! are fixed here, once; each attempt only signs them again.
//!
//! Files: this one (routing, event assembly, deliveries), [`preview`] (the event of a raw
//! message without a bus, for `postwire parse` and the golden fixtures), [`summary`] (what
//! the dashboard shows of a mail). The stage ([`stage`]) also keeps each body for a resend
//! (`crate::held::payloads`).

pub mod preview;

pub mod stage;
pub mod summary;

use std::collections::BTreeMap;

use postwire_core::Config;
use postwire_core::envelope::Envelope;
use postwire_core::event::{Auth, EmailEvent, Limits, Message, RawInfo, SCHEMA, Spam};
use postwire_core::ids::{delivery_id, sha256_hex};
use postwire_core::routing::{Facts, Router};

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
    /// rspamd's verdict (None when `[spam]` is off).
    pub spam: Option<Spam>,
    /// Where the raw message was stored, if it was.
    pub raw_url: Option<crate::store::SignedUrl>,
}

pub fn prepare(
    cfg: &Config,
    router: &Router,
    input: MailInput<'_>,
) -> Result<Prepared, serde_json::Error> {
    let tenant = input.tenant.to_string();
    let mail_id = input.mail_id.to_string();
    let (events, unrouted) = route_events(router, input);
    let mut out = Prepared {
        unrouted,
        ..Default::default()
    };
    for e in events {
        let body = serde_json::to_value(&e.event)?;
        out.deliveries
            .extend(deliveries_for(cfg, &tenant, &mail_id, &e.route, &body)?);
    }
    Ok(out)
}

/// The event of one route the recipients matched, before plugins ran. Its `id` is empty: the
/// delivery id is per endpoint and filled in by [`deliveries_for`].
#[derive(Debug, Clone)]
pub struct RouteEvent {
    pub route: String,
    pub event: EmailEvent,
}

/// Routes the recipients: one event per matched route (a recipient may match several, see
/// [`Router::routes_for`]), and the recipients no route takes (its conditions included).
pub fn route_events(router: &Router, input: MailInput<'_>) -> (Vec<RouteEvent>, Vec<String>) {
    let mut routes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut unrouted = Vec::new();
    let facts = Facts {
        headers: &input.message.headers,
        auth: input.auth.as_ref(),
    };
    for rcpt in &input.envelope.rcpt_to {
        let matched = router.routes_for(input.tenant, rcpt, &facts);
        if matched.is_empty() {
            unrouted.push(rcpt.clone());
        }
        for route in matched {
            routes.entry(route).or_default().push(rcpt.clone());
        }
    }
    let raw = raw_info(&input);
    let events = routes
        .into_iter()
        .map(|(route, rcpts)| RouteEvent {
            event: assemble(&input, &raw, &route, rcpts),
            route,
        })
        .collect();
    (events, unrouted)
}

/// Size and digest of the raw message, and where it was stored.
pub fn raw_info(input: &MailInput<'_>) -> RawInfo {
    RawInfo {
        size: input.raw.len() as u64,
        sha256: sha256_hex(input.raw),
        url: input.raw_url.as_ref().map(|u| u.url.clone()),
        url_expires_at: input.raw_url.as_ref().map(|u| u.expires_at.clone()),
    }
}

/// The event of one route: the envelope narrowed to the recipients this route took. Its `id`
/// is empty (the delivery id is per endpoint). The worker builds every event with this, and
/// so does [`preview::event`].
pub fn assemble(
    input: &MailInput<'_>,
    raw: &RawInfo,
    route: &str,
    rcpt_to: Vec<String>,
) -> EmailEvent {
    let mut envelope = input.envelope.clone();
    envelope.rcpt_to = rcpt_to;
    EmailEvent {
        schema: SCHEMA.into(),
        id: String::new(),
        mail_id: input.mail_id.into(),
        tenant: input.tenant.into(),
        route: route.into(),
        received_at: envelope.received_at.clone(),
        envelope,
        message: input.message.clone(),
        auth: input.auth.clone(),
        spam: input.spam.clone(),
        raw: Some(raw.clone()),
        limits: input.limits.clone(),
    }
}

/// One delivery per endpoint of `route`, with `body` (the event, or what plugins made of
/// it). When the body is an object with an `id` field, that field becomes the delivery id.
pub fn deliveries_for(
    cfg: &Config,
    tenant: &str,
    mail_id: &str,
    route: &str,
    body: &serde_json::Value,
) -> Result<Vec<Delivery>, serde_json::Error> {
    let endpoints = cfg
        .tenants
        .get(tenant)
        .and_then(|t| t.routes.iter().find(|r| r.name == route))
        .map(|r| r.endpoints.clone())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(endpoints.len());
    for endpoint in endpoints {
        let id = delivery_id(mail_id, route, &endpoint);
        let mut body = body.clone();
        if let Some(slot) = body.as_object_mut().and_then(|o| o.get_mut("id")) {
            *slot = serde_json::Value::String(id.clone());
        }
        out.push(Delivery {
            id,
            tenant: tenant.into(),
            route: route.into(),
            endpoint,
            body: serde_json::to_vec(&body)?,
        });
    }
    Ok(out)
}

//! The event a raw message becomes, built without a bus: `postwire parse` prints it, and the
//! golden fixtures and the corpus sweep check it. It goes through the code the process worker
//! runs (parse, then [`super::assemble`]); only what the worker reads from the MAIL message
//! headers and from routing (ids, tenant, route, envelope) is given here instead.

use postwire_core::envelope::Envelope;
use postwire_core::event::EmailEvent;

use super::MailInput;

/// What the worker would know besides the raw bytes.
#[derive(Debug, Clone, Default)]
pub struct Preview {
    /// The delivery id (per endpoint in the worker; the `webhook-id`).
    pub id: String,
    pub mail_id: String,
    pub tenant: String,
    pub route: String,
    /// As ingest recorded it; its `rcpt_to` are the recipients the route took, and its
    /// `received_at` is the event's too.
    pub envelope: Envelope,
}

/// The event of `raw` for `p`, without verification, storage or plugins (as a worker with
/// verification off and no `[storage]` builds it).
pub fn event(raw: &[u8], p: &Preview) -> EmailEvent {
    let (message, limits) = crate::parse::parse(raw);
    let input = MailInput {
        mail_id: &p.mail_id,
        tenant: &p.tenant,
        envelope: &p.envelope,
        raw,
        message,
        limits,
        auth: None,
        spam: None,
        raw_url: None,
    };
    let raw_info = super::raw_info(&input);
    let mut event = super::assemble(&input, &raw_info, &p.route, p.envelope.rcpt_to.clone());
    event.id = p.id.clone();
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use postwire_core::routing::Router;

    #[test]
    fn the_preview_is_what_the_worker_routes() {
        let cfg = postwire_core::Config::from_toml(
            r#"
[tenants.acme]
domains = ["acme.test"]
[[tenants.acme.routes]]
name = "support"
recipients = ["support@acme.test"]
endpoints = ["e"]
[tenants.acme.endpoints.e]
url = "https://example.com/"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"#,
        )
        .expect("config");
        let router: Router = cfg.router();
        let raw = b"From: Ann <ann@example.com>\r\nSubject: hi\r\n\r\nhello\r\n";
        let envelope = Envelope {
            mail_from: "ann@example.com".into(),
            rcpt_to: vec!["support@acme.test".into(), "nobody@acme.test".into()],
            received_at: "2026-01-01T00:00:00Z".into(),
            ..Default::default()
        };
        let (message, limits) = crate::parse::parse(raw);
        let (events, unrouted) = super::super::route_events(
            &router,
            MailInput {
                mail_id: "m1",
                tenant: "acme",
                envelope: &envelope,
                raw,
                message,
                limits,
                auth: None,
                spam: None,
                raw_url: None,
            },
        );
        assert_eq!(unrouted, ["nobody@acme.test"]);
        let p = Preview {
            id: String::new(),
            mail_id: "m1".into(),
            tenant: "acme".into(),
            route: "support".into(),
            envelope: Envelope {
                rcpt_to: vec!["support@acme.test".into()],
                ..envelope
            },
        };
        assert_eq!(
            serde_json::to_value(event(raw, &p)).expect("json"),
            serde_json::to_value(&events[0].event).expect("json")
        );
    }
}

//! A deterministic payload for a raw message, as the process worker would build it but with
//! fixed ids and times, for golden fixtures and the corpus sweep.

use postwire_core::envelope::Envelope;
use postwire_core::event::{EmailEvent, RawInfo, SCHEMA};
use postwire_core::ids::sha256_hex;

pub const FIXED_TIME: &str = "2026-01-01T00:00:00Z";

pub fn fixture_event(raw: &[u8]) -> serde_json::Value {
    let (message, limits) = postwire_stages::parse::parse(raw);
    let event = EmailEvent {
        schema: SCHEMA.into(),
        id: "msg_fixture".into(),
        mail_id: "fixture".into(),
        tenant: "fixture".into(),
        route: "fixture".into(),
        received_at: FIXED_TIME.into(),
        envelope: Envelope {
            mail_from: "sender@example.com".into(),
            rcpt_to: vec!["support@acme.test".into()],
            helo: "client.example".into(),
            client_ip: "192.0.2.1".into(),
            received_at: FIXED_TIME.into(),
            ..Default::default()
        },
        message,
        auth: None,
        raw: Some(RawInfo {
            size: raw.len() as u64,
            sha256: sha256_hex(raw),
            url: None,
            url_expires_at: None,
        }),
        limits,
    };
    serde_json::to_value(&event).expect("an event serialises")
}

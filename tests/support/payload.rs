//! A deterministic payload for a raw message, built by the worker's own code
//! ([`postwire_stages::prepare::preview`]) with fixed ids and times, for golden fixtures and
//! the corpus sweep.

use postwire_core::envelope::Envelope;
use postwire_stages::prepare::preview::{self, Preview};

pub const FIXED_TIME: &str = "2026-01-01T00:00:00Z";

pub fn fixture_event(raw: &[u8]) -> serde_json::Value {
    let p = Preview {
        id: "msg_fixture".into(),
        mail_id: "fixture".into(),
        tenant: "fixture".into(),
        route: "fixture".into(),
        envelope: Envelope {
            mail_from: "sender@example.com".into(),
            rcpt_to: vec!["support@acme.test".into()],
            helo: "client.example".into(),
            client_ip: "192.0.2.1".into(),
            received_at: FIXED_TIME.into(),
            ..Default::default()
        },
    };
    serde_json::to_value(preview::event(raw, &p)).expect("an event serialises")
}

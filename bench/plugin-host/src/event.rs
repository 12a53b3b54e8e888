//! The event a plugin is benchmarked on: `plugins/event.json` (`--event`), or the event the
//! process worker builds from a raw message (`--eml`, e.g. the bench's 2 KB mail) through its
//! own parse and assemble code ([`postwire_stages::prepare::preview`]), with the verdicts of
//! a verified mail added, as the worker has them when `[verify]` is on.

use std::path::Path;

use anyhow::Context;
use postwire_core::envelope::Envelope;
use postwire_core::event::EmailEvent;
use postwire_stages::prepare::preview::{self, Preview};
use serde_json::json;

/// The mail id every benchmarked call is tagged with.
pub const MAIL_ID: &str = "0190b5a4-7a1c-7000-8000-000000000001";

/// The event of `--eml FILE` (a raw RFC 5322 message) or of `--event FILE` (JSON).
pub fn load(eml: Option<&Path>, event: &Path) -> anyhow::Result<EmailEvent> {
    let Some(eml) = eml else {
        let text = std::fs::read_to_string(event)
            .with_context(|| format!("reading {}", event.display()))?;
        return serde_json::from_str(&text).with_context(|| format!("{}", event.display()));
    };
    let raw = std::fs::read(eml).with_context(|| format!("reading {}", eml.display()))?;
    let p = Preview {
        id: String::new(),
        mail_id: MAIL_ID.into(),
        tenant: "acme".into(),
        route: "support".into(),
        envelope: Envelope {
            mail_from: "bench@sender.test".into(),
            rcpt_to: vec!["1support@acme.test".into()],
            helo: "client.sender.test".into(),
            client_ip: "127.0.0.1".into(),
            received_at: "2026-12-07T21:00:00Z".into(),
            ..Default::default()
        },
    };
    let mut event = serde_json::to_value(preview::event(&raw, &p))?;
    event["auth"] = verified();
    event["raw"]["url"] = json!(format!(
        "http://127.0.0.1:9000/raw/acme/{MAIL_ID}.eml?expires=1765141200&sig=0123456789abcdef0123456789abcdef"
    ));
    Ok(serde_json::from_value(event)?)
}

/// The verdicts of a mail that passed SPF, DKIM and DMARC (the bench's mails do).
fn verified() -> serde_json::Value {
    json!({
        "spf": {"result": "pass", "domain": "sender.test"},
        "dkim": [{"result": "pass", "domain": "sender.test", "selector": "bench"}],
        "dmarc": {"result": "pass", "policy": "reject", "aligned": true, "domain": "sender.test",
                  "spf_aligned": true, "dkim_aligned": true},
        "authentication_results": "mx.acme.test; dkim=pass header.i=@sender.test header.s=bench \
            header.b=Eo2jsH6m; dmarc=pass header.from=sender.test policy.dmarc=reject; spf=pass \
            (mx.acme.test: domain of bench@sender.test designates 127.0.0.1 as permitted sender) \
            smtp.mailfrom=bench@sender.test; iprev=pass policy.iprev=127.0.0.1",
        "spf_helo": {"result": "pass", "domain": "client.sender.test"},
        "iprev": {"result": "pass", "ptr": ["client.sender.test"]}
    })
}

//! The summary of a processed mail: envelope sender, recipients, From, subject, size,
//! attachment count, authentication verdicts and routes. It is the body of the mail's
//! `audit.<tenant>.received.<mail_id>` record, so the admin API can show which mail a
//! delivery belongs to and find one by address or subject: the AUDIT stream (bounded by its
//! max age) is the index, no second database.

use postwire_core::envelope::Envelope;
use postwire_core::event::{Auth, Mailbox, Message, Verdict};
use serde::{Deserialize, Serialize};

use super::RouteEvent;

/// What the dashboard and `GET /api/v1/deliveries` show of a mail.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MailSummary {
    /// The envelope sender (`MAIL FROM`; empty for `<>`).
    pub mail_from: String,
    /// Every accepted recipient of the tenant.
    pub rcpt_to: Vec<String>,
    /// The `From:` header, as `Name <address>` (or the address alone).
    #[serde(default)]
    pub from: Vec<String>,
    #[serde(default)]
    pub subject: Option<String>,
    /// The raw message's size in bytes.
    pub size: u64,
    /// Attachments (inline parts included).
    #[serde(default)]
    pub attachments: usize,
    /// `spf=pass dkim=pass dmarc=pass` (empty when verification is off).
    #[serde(default)]
    pub auth: String,
    /// The routes the recipients matched.
    #[serde(default)]
    pub routes: Vec<String>,
    /// When ingest accepted it (RFC 3339).
    #[serde(default)]
    pub received_at: String,
}

impl MailSummary {
    /// The summary of a mail from its envelope, raw size and route events (the message is
    /// the same in every event; with no event there is no parsed message to show).
    pub fn of(envelope: &Envelope, size: u64, events: &[RouteEvent]) -> MailSummary {
        let first = events.first().map(|e| &e.event);
        let message = first.map(|e| &e.message);
        MailSummary {
            mail_from: envelope.mail_from.clone(),
            rcpt_to: envelope.rcpt_to.clone(),
            from: message
                .map(|m| m.from.iter().map(mailbox).collect())
                .unwrap_or_default(),
            subject: message.and_then(|m| m.subject.clone()),
            size,
            attachments: message.map(count_attachments).unwrap_or(0),
            auth: first
                .and_then(|e| e.auth.as_ref())
                .map(auth_line)
                .unwrap_or_default(),
            routes: events.iter().map(|e| e.route.clone()).collect(),
            received_at: envelope.received_at.clone(),
        }
    }

    /// Whether `needle` (lower case) is in one of its addresses.
    pub fn has_address(&self, needle: &str) -> bool {
        std::iter::once(&self.mail_from)
            .chain(&self.rcpt_to)
            .chain(&self.from)
            .any(|a| a.to_lowercase().contains(needle))
    }

    /// Whether `needle` (lower case) is in the subject.
    pub fn has_subject(&self, needle: &str) -> bool {
        self.subject
            .as_deref()
            .is_some_and(|s| s.to_lowercase().contains(needle))
    }
}

fn mailbox(m: &Mailbox) -> String {
    match (m.name.as_deref(), m.address.as_deref()) {
        (Some(n), Some(a)) if !n.is_empty() => format!("{n} <{a}>"),
        (_, Some(a)) => a.to_string(),
        (Some(n), None) => n.to_string(),
        (None, None) => m.group.clone().unwrap_or_default(),
    }
}

fn count_attachments(m: &Message) -> usize {
    m.attachments.len()
}

fn verdict(v: Verdict) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `spf=… dkim=… dmarc=…`; DKIM is `pass` when one signature passes, else the first result.
pub fn auth_line(a: &Auth) -> String {
    let dkim = if a.dkim.iter().any(|d| d.result == Verdict::Pass) {
        "pass".to_string()
    } else {
        a.dkim
            .first()
            .map(|d| verdict(d.result))
            .unwrap_or_else(|| "none".into())
    };
    format!(
        "spf={} dkim={dkim} dmarc={}",
        verdict(a.spf.result),
        verdict(a.dmarc.result)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_without_events_has_the_envelope_only() {
        let env = Envelope {
            mail_from: "a@example.com".into(),
            rcpt_to: vec!["support@acme.test".into()],
            received_at: "2026-12-07T10:00:00Z".into(),
            ..Default::default()
        };
        let s = MailSummary::of(&env, 42, &[]);
        assert_eq!(s.mail_from, "a@example.com");
        assert_eq!(s.size, 42);
        assert_eq!(s.subject, None);
        assert!(s.has_address("acme.test"));
        assert!(!s.has_subject("x"));
    }

    #[test]
    fn mailboxes_read_as_name_and_address() {
        let m = Mailbox {
            name: Some("Ann".into()),
            address: Some("ann@example.com".into()),
            group: None,
        };
        assert_eq!(mailbox(&m), "Ann <ann@example.com>");
    }
}

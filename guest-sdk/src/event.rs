//! The event, schema `postwire.email.v1` (docs/payload.md). Fields this version of the SDK
//! does not know are kept in `extra` and written back unchanged, so a plugin built today
//! passes tomorrow's fields through.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub schema: String,
    /// The delivery id; filled in by the host per endpoint after the plugins ran.
    #[serde(default)]
    pub id: String,
    pub mail_id: String,
    pub tenant: String,
    /// The route the recipients matched.
    pub route: String,
    pub received_at: String,
    pub envelope: Envelope,
    pub message: Message,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Envelope {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Message {
    pub message_id: Option<String>,
    pub subject: Option<String>,
    #[serde(default)]
    pub from: Vec<Mailbox>,
    #[serde(default)]
    pub to: Vec<Mailbox>,
    #[serde(default)]
    pub cc: Vec<Mailbox>,
    pub text: Option<String>,
    pub html: Option<String>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Mailbox {
    /// `Name <address>`, or whichever of the two is present.
    pub fn display(&self) -> String {
        match (&self.name, &self.address) {
            (Some(n), Some(a)) if !n.is_empty() => format!("{n} <{a}>"),
            (_, Some(a)) => a.clone(),
            (Some(n), None) => n.clone(),
            (None, None) => String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: String,
    pub filename: Option<String>,
    pub content_type: String,
    pub size: u64,
    /// The antivirus verdict, when the host scans attachments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan: Option<Scan>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What the host's antivirus (ClamAV) said about an attachment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scan {
    /// `clean`, `infected` or `unscanned`.
    pub status: String,
    /// The signature that matched (`infected` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Why it was not scanned (`unscanned` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Attachment {
    /// True when the host's antivirus found something in this attachment.
    pub fn is_infected(&self) -> bool {
        self.scan.as_ref().is_some_and(|s| s.status == "infected")
    }
}

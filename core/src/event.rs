//! The webhook payload, schema `postwire.email.v1`. Field by field documentation lives in
//! `docs/payload.md`; the JSON Schema in `docs/schema/postwire.email.v1.json` is validated
//! against real output in the tests.

use serde::{Deserialize, Serialize};

use crate::envelope::Envelope;

pub const SCHEMA: &str = "postwire.email.v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailEvent {
    pub schema: String,
    /// The delivery id: the same on every retry and replay (`webhook-id`).
    pub id: String,
    pub mail_id: String,
    pub tenant: String,
    pub route: String,
    pub received_at: String,
    pub envelope: Envelope,
    pub message: Message,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawInfo>,
    pub limits: Limits,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Message {
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    #[serde(default)]
    pub references: Vec<String>,
    /// RFC 3339, from the Date header; null when absent or unparseable.
    pub date: Option<String>,
    pub subject: Option<String>,
    #[serde(default)]
    pub from: Vec<Mailbox>,
    #[serde(default)]
    pub sender: Vec<Mailbox>,
    #[serde(default)]
    pub to: Vec<Mailbox>,
    #[serde(default)]
    pub cc: Vec<Mailbox>,
    #[serde(default)]
    pub reply_to: Vec<Mailbox>,
    /// Every header in order, names as written, values unfolded and decoded.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    pub text: Option<String>,
    pub html: Option<String>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: Option<String>,
    /// Name of the RFC 5322 group the mailbox was listed in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Stable within the mail: `att_<n>` in MIME order.
    pub id: String,
    pub filename: Option<String>,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    /// `attachment` or `inline`.
    pub disposition: String,
    pub content_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_expires_at: Option<String>,
    /// Base64 content under the `inline` attachment policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_base64: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawInfo {
    pub size: u64,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_expires_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Limits {
    pub truncated: bool,
    #[serde(default)]
    pub notes: Vec<String>,
}

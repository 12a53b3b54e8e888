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
    /// Authentication verdicts; absent when verification is switched off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// rspamd's verdict; absent when `[spam]` is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spam: Option<Spam>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawInfo>,
    pub limits: Limits,
}

/// What rspamd said about the mail (`/checkv2`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spam {
    pub score: f64,
    pub required_score: f64,
    /// rspamd's action: `no action`, `greylist`, `add header`, `rewrite subject`,
    /// `soft reject`, `reject`.
    pub action: String,
    /// The symbols that fired, highest score first.
    #[serde(default)]
    pub symbols: Vec<SpamSymbol>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpamSymbol {
    pub name: String,
    pub score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Spam {
    /// The verdict as it travels with a mail on the bus (`Postwire-Spam`), when it was
    /// decided at SMTP time.
    pub fn to_header(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_header(value: &str) -> Result<Spam, serde_json::Error> {
        serde_json::from_str(value)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Message {
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    #[serde(default)]
    pub references: Vec<String>,
    /// The conversation: first of `references`, else `in_reply_to`, else `message_id`,
    /// normalised (no angle brackets, lower-case domain).
    #[serde(default)]
    pub thread_id: Option<String>,
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
    /// The reply itself: `text` without quoted history and signature.
    #[serde(default)]
    pub stripped_text: Option<String>,
    /// The reply in HTML: `html` without quoted history and signature (sanitised).
    #[serde(default)]
    pub stripped_html: Option<String>,
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
    /// For `message/rfc822` parts: the enclosed message, parsed (within the depth limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Box<Message>>,
    /// Base64 content under the `inline` attachment policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_base64: Option<String>,
    /// The antivirus verdict; absent when `[antivirus]` is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan: Option<Scan>,
}

/// What ClamAV said about one attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scan {
    pub status: ScanStatus,
    /// The signature that matched (`infected` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Why it was not scanned (`unscanned` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanStatus {
    Clean,
    /// Under the `drop` policy the attachment has no `url` and no `content_base64`.
    Infected,
    /// Larger than `antivirus.max_scan_bytes`.
    Unscanned,
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
    /// Payload paths that were cut or dropped by a limit (`message.headers`, …).
    #[serde(default)]
    pub fields: Vec<String>,
}

impl Limits {
    /// Records that a limit cut `field`, with a sentence saying how.
    pub fn cut(&mut self, field: &str, note: impl Into<String>) {
        self.truncated = true;
        if !self.fields.iter().any(|f| f == field) {
            self.fields.push(field.to_string());
        }
        self.notes.push(note.into());
    }
}

/// One authentication verdict (RFC 8601 result names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    /// Could not decide (DNS trouble); never a failure.
    TempError,
    PermError,
}

impl Verdict {
    /// The RFC 8601 name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::SoftFail => "softfail",
            Verdict::Neutral => "neutral",
            Verdict::None => "none",
            Verdict::TempError => "temperror",
            Verdict::PermError => "permerror",
        }
    }
}

/// The domain owner's DMARC policy (`p=`, or `sp=` for subdomains).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmarcPolicy {
    None,
    Quarantine,
    Reject,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auth {
    /// SPF for the MAIL FROM identity (the HELO identity when MAIL FROM is `<>`).
    pub spf: SpfVerdict,
    /// One entry per DKIM-Signature header, in header order.
    #[serde(default)]
    pub dkim: Vec<DkimVerdict>,
    pub dmarc: DmarcVerdict,
    /// The `Authentication-Results` header value postwire would add.
    pub authentication_results: String,
    /// SPF for the HELO identity.
    pub spf_helo: SpfVerdict,
    /// Reverse DNS of the client address (RFC 8601 `iprev`).
    pub iprev: IprevVerdict,
    /// ARC chain validation; absent when the message carries no ARC sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arc: Option<ArcVerdict>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpfVerdict {
    pub result: Verdict,
    pub domain: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimVerdict {
    pub result: Verdict,
    pub domain: Option<String>,
    pub selector: Option<String>,
    /// Why the signature did not pass, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmarcVerdict {
    pub result: Verdict,
    /// The policy that applies to the From domain; null without a DMARC record.
    pub policy: Option<DmarcPolicy>,
    /// DMARC passed through an aligned SPF or DKIM pass.
    pub aligned: bool,
    /// The RFC 5322 From domain.
    pub domain: String,
    pub spf_aligned: bool,
    pub dkim_aligned: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IprevVerdict {
    pub result: Verdict,
    #[serde(default)]
    pub ptr: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArcVerdict {
    pub result: Verdict,
    /// Number of ARC sets (`i=` instances) found.
    pub sets: usize,
}

impl Auth {
    /// The verdicts as they travel with a mail on the bus (`Postwire-Auth`): made once, at
    /// SMTP time or by the worker, and never recomputed. serde_json escapes control
    /// characters, so the value never holds CR or LF.
    pub fn to_header(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads [`Auth::to_header`]'s value back.
    pub fn from_header(value: &str) -> Result<Auth, serde_json::Error> {
        serde_json::from_str(value)
    }

    /// True when some verdict could not be decided because of DNS trouble.
    pub fn undecided(&self) -> bool {
        let t = Verdict::TempError;
        self.spf.result == t
            || self.spf_helo.result == t
            || self.dmarc.result == t
            || self.dkim.iter().any(|d| d.result == t)
            || self.arc.as_ref().is_some_and(|a| a.result == t)
    }
}

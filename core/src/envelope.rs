//! The SMTP envelope of one accepted message, as ingest saw it. It travels with the raw
//! bytes in the `Postwire-Envelope` NATS header (compact JSON, one line).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Envelope {
    /// Reverse path; empty for the null sender `<>`.
    pub mail_from: String,
    /// Accepted recipients of this tenant.
    pub rcpt_to: Vec<String>,
    /// The name the client gave in EHLO/HELO.
    pub helo: String,
    pub client_ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    /// `BODY=` parameter: `7BIT` or `8BITMIME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default)]
    pub smtputf8: bool,
    /// RFC 3339 time at which ingest got the PubAck.
    pub received_at: String,
    /// Mail that came through Amazon SES: its message id and verdicts (spf, dkim, dmarc,
    /// spam, virus), as SES reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ses: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    pub version: String,
    pub cipher: String,
}

impl Envelope {
    pub fn to_header(&self) -> String {
        // serde_json escapes control characters, so the value never holds CR or LF.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_header(value: &str) -> Result<Envelope, serde_json::Error> {
        serde_json::from_str(value)
    }
}

/// The current time as RFC 3339 (UTC, second precision plus fraction).
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_has_no_line_breaks() {
        let e = Envelope {
            mail_from: "a\r\nb@x".into(),
            rcpt_to: vec!["r@y".into()],
            helo: "h".into(),
            client_ip: "127.0.0.1".into(),
            received_at: now_rfc3339(),
            ..Default::default()
        };
        let h = e.to_header();
        assert!(!h.contains('\r') && !h.contains('\n'));
        assert_eq!(Envelope::from_header(&h).unwrap(), e);
    }
}

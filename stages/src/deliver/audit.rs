//! The audit trail of delivery attempts: the deliver worker writes one record per attempt on
//! `audit.<tenant>.attempt.<mail_id>` (noted by `settle.rs`, published by the runner); the
//! process worker's first attempts travel in the mail's `received` record
//! (`audit.<tenant>.received.<mail_id>`, its `attempts`), one write per mail. Every reader
//! takes both through [`attempts_in`]; `postwire deliveries show <mail_id>` reads them back.

use async_nats::jetstream;
use postwire_core::bus;
use serde::{Deserialize, Serialize};

use super::{DeliverError, scan};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AttemptRecord {
    pub delivery_id: String,
    pub mail_id: String,
    pub route: String,
    pub endpoint: String,
    pub attempt: u32,
    /// `delivered`, `failed` (will retry or gave up), `refused` (permanent) or `skipped`.
    pub result: String,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
    pub at: String,
}

/// The attempts a stored audit record holds: an `attempt` record is one; a `received` record
/// carries the process worker's first attempts of its mail (none when it made none).
pub fn attempts_in(subject: &str, payload: &[u8]) -> Vec<AttemptRecord> {
    #[derive(Deserialize)]
    struct Carried {
        #[serde(default)]
        attempts: Vec<AttemptRecord>,
    }
    match subject.split('.').nth(2) {
        Some("attempt") => serde_json::from_slice(payload).ok().into_iter().collect(),
        Some("received") => serde_json::from_slice::<Carried>(payload)
            .map(|c| c.attempts)
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The subject filter of the audit records that may hold attempts: of `tenant` and
/// `mail_id`, any of either when `None` ([`attempts_in`] picks the kinds that do).
pub fn filter(tenant: Option<&str>, mail_id: Option<&str>) -> String {
    format!(
        "audit.{}.*.{}",
        tenant.unwrap_or("*"),
        mail_id.unwrap_or("*")
    )
}

/// The body of a mail's `received` record: its summary (when it got that far) and the first
/// attempts the process worker made.
pub fn received_body<S: Serialize>(summary: Option<&S>, attempts: &[AttemptRecord]) -> Vec<u8> {
    let mut v = summary
        .and_then(|s| serde_json::to_value(s).ok())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    if !attempts.is_empty() {
        v["attempts"] = serde_json::to_value(attempts).unwrap_or_default();
    }
    if v.as_object().is_some_and(|o| o.is_empty()) {
        return Vec::new();
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Every attempt of one mail, in the order they were made.
pub async fn attempts(
    js: &jetstream::Context,
    mail_id: &str,
) -> Result<Vec<AttemptRecord>, DeliverError> {
    let stored = scan::read(js, bus::STREAM_AUDIT, &filter(None, Some(mail_id)), None).await?;
    let mut all: Vec<AttemptRecord> = stored
        .iter()
        .flat_map(|s| attempts_in(&s.subject, &s.payload))
        .collect();
    all.sort_by_key(|r| made(&r.at, r.attempt));
    Ok(all)
}

/// The order attempts were made in: by their time, then their number. Not by stream order
/// (a retry's record can be stored before the `received` record carrying attempt 1), nor by
/// number alone (a replayed delivery counts from 1 again).
pub fn made(at: &str, attempt: u32) -> (Option<time::OffsetDateTime>, u32) {
    let t = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339);
    (t.ok(), attempt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(attempt: u32, at: &str, result: &str) -> AttemptRecord {
        AttemptRecord {
            delivery_id: "d".into(),
            mail_id: "m".into(),
            route: "r".into(),
            endpoint: "e".into(),
            attempt,
            result: result.into(),
            status: None,
            error: None,
            duration_ms: 0,
            at: at.into(),
        }
    }

    /// Attempts are ordered as made: a replay's attempt 1 comes after the original's attempt
    /// 3, and a fraction-less time is not misplaced by comparing text.
    #[test]
    fn attempts_are_ordered_by_time_then_number() {
        let mut all = [
            rec(1, "2026-12-08T10:00:05Z", "delivered"),
            rec(3, "2026-12-08T10:00:01.9Z", "failed"),
            rec(1, "2026-12-08T10:00:00.5Z", "failed"),
            rec(2, "2026-12-08T10:00:00.5Z", "failed"),
        ];
        all.sort_by_key(|r| made(&r.at, r.attempt));
        let seen: Vec<_> = all.iter().map(|r| (r.attempt, r.at.as_str())).collect();
        assert_eq!(
            seen,
            [
                (1, "2026-12-08T10:00:00.5Z"),
                (2, "2026-12-08T10:00:00.5Z"),
                (3, "2026-12-08T10:00:01.9Z"),
                (1, "2026-12-08T10:00:05Z"),
            ]
        );
    }

    /// A `received` record's attempts, an attempt record, and nothing from other kinds.
    #[test]
    fn attempts_in_reads_both_kinds() {
        let one = rec(1, "2026-12-08T10:00:00Z", "delivered");
        let body = received_body(Some(&serde_json::json!({"subject": "s"})), &[one.clone()]);
        assert_eq!(attempts_in("audit.acme.received.m", &body), [one.clone()]);
        assert!(attempts_in("audit.acme.received.m", b"{\"subject\":\"s\"}").is_empty());
        let alone = serde_json::to_vec(&one).expect("json");
        assert_eq!(attempts_in("audit.acme.attempt.m", &alone), [one]);
        assert!(attempts_in("audit.acme.drop.m", &alone).is_empty());
        assert!(received_body::<serde_json::Value>(None, &[]).is_empty());
    }
}

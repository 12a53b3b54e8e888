//! The audit trail of delivery attempts: one record per attempt on
//! `audit.<tenant>.attempt.<mail_id>`, read back by `postwire deliveries show <mail_id>`.

use async_nats::{HeaderMap, jetstream};
use postwire_core::bus;
use serde::{Deserialize, Serialize};

use super::scan;

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

/// Appends a record. Best effort: a lost audit record never blocks a delivery.
pub async fn record(js: &jetstream::Context, tenant: &str, r: &AttemptRecord) {
    let mut headers = HeaderMap::new();
    headers.insert(bus::HEADER_DELIVERY_ID, r.delivery_id.as_str());
    let body = match serde_json::to_vec(r) {
        Ok(b) => b,
        Err(_) => return,
    };
    let subject = bus::subject_audit_mail(tenant, "attempt", &r.mail_id);
    if let Err(e) = js.publish_with_headers(subject, headers, body.into()).await {
        tracing::warn!(error = %e, "Could not append an audit record.");
    }
}

/// Every attempt record of one mail, oldest first.
pub async fn attempts(
    js: &jetstream::Context,
    mail_id: &str,
) -> Result<Vec<AttemptRecord>, String> {
    let stored = scan::read(
        js,
        bus::STREAM_AUDIT,
        &format!("audit.*.attempt.{mail_id}"),
        None,
    )
    .await?;
    Ok(stored
        .iter()
        .filter_map(|s| serde_json::from_slice(&s.payload).ok())
        .collect())
}

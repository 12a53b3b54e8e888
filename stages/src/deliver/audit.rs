//! The audit trail of delivery attempts: one record per attempt on
//! `audit.<tenant>.attempt.<mail_id>` (noted by `settle.rs`, published by the runner), read
//! back by `postwire deliveries show <mail_id>`.

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

/// Every attempt record of one mail, oldest first.
pub async fn attempts(
    js: &jetstream::Context,
    mail_id: &str,
) -> Result<Vec<AttemptRecord>, DeliverError> {
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

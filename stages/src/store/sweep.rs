//! Raw-mail retention: deletes raw messages (`<tenant>/<sha256>.eml`) last modified before
//! a cutoff, and uploads ingest left behind in `_incoming/` (a crash mid-DATA) after a day.
//! Attachments are never swept. Each process worker runs it every
//! `storage.sweep_interval_secs` when `storage.raw_retention_days` is not 0; deletes are
//! idempotent, so several workers sweeping at once do no harm.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use object_store::ObjectStoreExt as _;

use super::{BlobStore, spool::INCOMING, temporary};
use crate::StageError;

/// Age after which a leftover `_incoming/` upload is deleted.
pub const INCOMING_MAX_AGE_SECS: i64 = 86_400;

/// What one sweep deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub raw: u64,
    pub incoming: u64,
}

impl BlobStore {
    /// Deletes raw messages older than `raw_before` (unix seconds; `None`: keep them) and
    /// `_incoming/` leftovers older than a day.
    pub async fn sweep(&self, raw_before: Option<i64>) -> Result<Swept, StageError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let incoming_before = now - INCOMING_MAX_AGE_SECS;
        let mut swept = Swept::default();
        let mut list = self.store.list(None);
        while let Some(meta) = list.next().await {
            let meta = meta.map_err(temporary)?;
            let key = meta.location.as_ref();
            let modified = meta.last_modified.timestamp();
            let incoming = key.starts_with(&format!("{INCOMING}/"));
            let expired = if incoming {
                modified < incoming_before
            } else {
                key.ends_with(".eml") && raw_before.is_some_and(|b| modified < b)
            };
            if !expired {
                continue;
            }
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(temporary(e)),
            }
            if incoming {
                swept.incoming += 1;
            } else {
                swept.raw += 1;
            }
        }
        Ok(swept)
    }
}

/// Sweeps now and then every `interval` until `shutdown`, keeping raw mail `retention_days`.
pub async fn run_periodically(
    store: Arc<BlobStore>,
    retention_days: u64,
    interval: Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        let keep = i64::try_from(retention_days.saturating_mul(86_400)).unwrap_or(i64::MAX);
        let before = (retention_days > 0).then(|| {
            time::OffsetDateTime::now_utc()
                .unix_timestamp()
                .saturating_sub(keep)
        });
        match store.sweep(before).await {
            Ok(s) if s.raw + s.incoming > 0 => {
                postwire_core::metrics::add(
                    "postwire_storage_swept_objects_total",
                    "Objects deleted by the retention sweep, by kind (raw, incoming).",
                    &[("kind", "raw")],
                    s.raw,
                );
                postwire_core::metrics::add(
                    "postwire_storage_swept_objects_total",
                    "Objects deleted by the retention sweep, by kind (raw, incoming).",
                    &[("kind", "incoming")],
                    s.incoming,
                );
                tracing::info!(
                    raw = s.raw,
                    incoming = s.incoming,
                    "The storage sweep deleted expired objects."
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "The storage sweep failed; it runs again later."),
        }
    }
}

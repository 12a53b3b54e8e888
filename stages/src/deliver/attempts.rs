//! Attempts per OUTBOX message, counted in the `postwire_attempts` KV bucket (key
//! `<delivery id>.<outbox seq>`), not by JetStream's delivery count: a delivery handed back
//! because its endpoint was busy is not an attempt (see docs/decisions.md).

use async_nats::jetstream::{self, kv};
use postwire_core::bus;

pub struct Attempts {
    js: jetstream::Context,
    kv: tokio::sync::OnceCell<kv::Store>,
}

/// The key of one OUTBOX message's counter.
pub fn key(delivery_id: &str, outbox_seq: u64) -> String {
    format!("{delivery_id}.{outbox_seq}")
}

impl Attempts {
    pub fn new(js: jetstream::Context) -> Attempts {
        Attempts {
            js,
            kv: tokio::sync::OnceCell::new(),
        }
    }

    /// The bucket, looked up once (a lookup is a JetStream API request).
    async fn bucket(&self) -> Option<&kv::Store> {
        self.kv
            .get_or_try_init(|| self.js.get_key_value(bus::KV_ATTEMPTS))
            .await
            .ok()
    }

    /// Attempts already made for this OUTBOX message (`delivered`: JetStream's count, the
    /// fallback when the bucket cannot be read).
    pub async fn previous(&self, key: &str, delivered: u32) -> u32 {
        if delivered <= 1 {
            return 0;
        }
        match self.bucket().await {
            Some(kv) => match kv.get(key).await {
                Ok(Some(v)) => std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                Ok(None) => 0,
                Err(_) => delivered - 1,
            },
            None => delivered - 1,
        }
    }

    /// Remembers that `attempt` attempts were made (before the message is handed back).
    pub async fn remember(&self, key: &str, attempt: u32) {
        if let Some(kv) = self.bucket().await {
            let _ = kv.put(key, attempt.to_string().into()).await;
        }
    }

    /// Forgets the count once the message is settled for good.
    pub async fn forget(&self, key: &str) {
        if let Some(kv) = self.bucket().await {
            let _ = kv.purge(key).await;
        }
    }
}

//! Replay detection: remembers what a verifier accepted (a nonce, or a webhook id with its
//! timestamp) until it could no longer pass the timestamp check anyway.

use std::collections::HashMap;
use std::sync::Mutex;

/// An in-memory set of seen replay keys with expiry. One per receiver process; for several
/// receiver processes, use a shared store with the same contract.
#[derive(Debug, Default)]
pub struct ReplayCache {
    seen: Mutex<HashMap<String, i64>>,
}

impl ReplayCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers `key` until `expires_at` (unix seconds). Returns false when `key` was already
    /// remembered and has not expired: the request is a replay.
    pub fn check_and_remember(&self, key: &str, expires_at: i64, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > 1024 {
            seen.retain(|_, exp| *exp > now);
        }
        match seen.get(key) {
            Some(exp) if *exp > now => false,
            _ => {
                seen.insert(key.to_owned(), expires_at);
                true
            }
        }
    }

    pub fn len(&self) -> usize {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_sighting_is_a_replay_until_expiry() {
        let c = ReplayCache::new();
        assert!(c.check_and_remember("n1", 100, 0));
        assert!(!c.check_and_remember("n1", 100, 50));
        assert!(c.check_and_remember("n2", 100, 50));
        assert!(
            c.check_and_remember("n1", 300, 100),
            "expired entries are forgotten"
        );
    }
}

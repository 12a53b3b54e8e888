//! Identifiers: `mail_id` (UUIDv7, time-sortable, assigned once by ingest) and `delivery_id`
//! (derived from mail id, route and endpoint, so it is the same on every retry and replay).

use sha2::{Digest, Sha256};

/// A fresh, time-sortable mail id.
pub fn new_mail_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The delivery id (the Standard Webhooks `webhook-id`): stable for one mail, route and
/// endpoint, whatever the number of attempts or replays.
pub fn delivery_id(mail_id: &str, route: &str, endpoint: &str) -> String {
    let mut h = Sha256::new();
    for part in [mail_id, route, endpoint] {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    format!("msg_{}", &hex(&h.finalize())[..32])
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Lowercase hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_id_is_stable_and_distinct() {
        let a = delivery_id("m1", "support", "main");
        assert_eq!(a, delivery_id("m1", "support", "main"));
        assert_ne!(a, delivery_id("m1", "support", "backup"));
        assert_ne!(a, delivery_id("m2", "support", "main"));
        assert!(a.starts_with("msg_") && a.len() == 36);
    }

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn mail_ids_sort_by_time() {
        let a = new_mail_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_mail_id();
        assert!(a < b);
    }
}

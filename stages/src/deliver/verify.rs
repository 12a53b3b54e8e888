//! How a receiver checks what deliver sends: Standard Webhooks `v1` (HMAC-SHA256 over
//! `id.timestamp.body`, <https://www.standardwebhooks.com/>) against a list of secrets. Used by
//! the end-to-end tests; a thin wrapper over `postwire_sign::standard_webhooks::verify`, which
//! also knows `v1a`. The sink uses [`Receiver`]: the path of `postwire verify`, with replay
//! detection. Signing is in [`super::sign`].

use postwire_sign::keyring::KeyRing;
use postwire_sign::keys::Secret;
use postwire_sign::standard_webhooks as sw;

pub use postwire_sign::standard_webhooks::{
    HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, sign_v1,
};

/// Why a signed request is refused by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("timestamp outside the tolerance window")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

/// Verifies a Standard Webhooks `v1` request against any of `keys`, in constant time,
/// accepting timestamps within `tolerance_secs` of `now`. A wrapper over
/// `postwire_sign::standard_webhooks::verify`, which also knows `v1a`.
pub fn verify(
    keys: &[Vec<u8>],
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let mut ring = KeyRing::new();
    for key in keys {
        ring.add_secret(None, Secret::new(key.clone()));
    }
    use postwire_sign::VerifyError as E;
    match sw::verify(&ring, id, timestamp, signatures, body, now, tolerance_secs) {
        Ok(_) => Ok(()),
        Err(E::MissingHeader(h)) if h == HEADER_ID => Err(VerifyError::Missing(HEADER_ID)),
        Err(E::MissingHeader(h)) if h == HEADER_TIMESTAMP => {
            Err(VerifyError::Missing(HEADER_TIMESTAMP))
        }
        Err(E::MissingHeader(_)) => Err(VerifyError::Missing(HEADER_SIGNATURE)),
        Err(E::Stale | E::FromFuture | E::Malformed(_)) => Err(VerifyError::Stale),
        Err(_) => Err(VerifyError::Mismatch),
    }
}

pub use postwire_sign::capture::Captured;

/// What a receiver of postwire's deliveries runs (the sink): the verification path of
/// `postwire verify` — `postwire_sign::Verifier`, every scheme it knows, conflicting repeated
/// headers refused — with its replay cache, against the secrets given with each request (they
/// may change between requests).
#[derive(Debug)]
pub struct Receiver {
    verifier: postwire_sign::Verifier,
}

impl Receiver {
    /// Timestamps within `tolerance_secs` of now are accepted; a request seen before within
    /// that window is refused as a replay.
    pub fn new(tolerance_secs: i64) -> Receiver {
        let mut verifier = postwire_sign::Verifier::new(KeyRing::new());
        verifier.tolerance_secs = tolerance_secs;
        Receiver { verifier }
    }

    pub fn verify(
        &self,
        secrets: &[Vec<u8>],
        req: &Captured,
        now: i64,
    ) -> Result<postwire_sign::Verified, postwire_sign::VerifyError> {
        let mut ring = KeyRing::new();
        for key in secrets {
            ring.add_secret(None, Secret::new(key.clone()));
        }
        self.verifier.verify_with(req, &ring, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks reference test suite.
    #[test]
    fn matches_reference_vector() {
        let key =
            postwire_core::config::decode_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign_v1(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn verify_accepts_good_and_refuses_tampered() {
        let key = vec![7u8; 32];
        let sig = sign_v1(&key, "msg_1", 1000, b"body");
        let ok = verify(
            std::slice::from_ref(&key),
            Some("msg_1"),
            Some("1000"),
            Some(&sig),
            b"body",
            1010,
            300,
        );
        assert_eq!(ok, Ok(()));
        let bad = verify(
            std::slice::from_ref(&key),
            Some("msg_1"),
            Some("1000"),
            Some(&sig),
            b"bodY",
            1010,
            300,
        );
        assert_eq!(bad, Err(VerifyError::Mismatch));
        let stale = verify(
            std::slice::from_ref(&key),
            Some("msg_1"),
            Some("1000"),
            Some(&sig),
            b"body",
            5000,
            300,
        );
        assert_eq!(stale, Err(VerifyError::Stale));
        let rotated = format!("v1,AAAA {sig}");
        assert_eq!(
            verify(
                &[vec![1; 32], key],
                Some("msg_1"),
                Some("1000"),
                Some(&rotated),
                b"body",
                1000,
                300
            ),
            Ok(())
        );
    }
}

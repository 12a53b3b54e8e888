//! Standard Webhooks signing (`v1`, HMAC-SHA256 over `id.timestamp.body`).
//! See <https://www.standardwebhooks.com/>. Computed at each attempt, so the timestamp is
//! fresh even when a retry comes hours later.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
pub fn sign_v1(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac(key, id, timestamp, body))
    )
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(id.as_bytes());
    m.update(b".");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

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
/// accepting timestamps within `tolerance_secs` of `now`.
pub fn verify(
    keys: &[Vec<u8>],
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let id = id.ok_or(VerifyError::Missing(HEADER_ID))?;
    let ts: i64 = timestamp
        .ok_or(VerifyError::Missing(HEADER_TIMESTAMP))?
        .trim()
        .parse()
        .map_err(|_| VerifyError::Stale)?;
    let signatures = signatures.ok_or(VerifyError::Missing(HEADER_SIGNATURE))?;
    if (now - ts).abs() > tolerance_secs {
        return Err(VerifyError::Stale);
    }
    for sig in signatures.split_whitespace() {
        let Some(b64) = sig.strip_prefix("v1,") else {
            continue;
        };
        let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(b64) else {
            continue;
        };
        for key in keys {
            let Ok(mut m) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
                continue;
            };
            m.update(format!("{id}.{ts}.").as_bytes());
            m.update(body);
            if m.verify_slice(&expected).is_ok() {
                return Ok(());
            }
        }
    }
    Err(VerifyError::Mismatch)
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

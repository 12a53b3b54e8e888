//! Standard Webhooks (<https://www.standardwebhooks.com/>): `webhook-id`, `webhook-timestamp`
//! and `webhook-signature` carrying space-separated `v1,<base64 HMAC-SHA256>` (secret
//! `whsec_…`) and `v1a,<base64 Ed25519>` (keys `whsk_…`/`whpk_…`) signatures over
//! `{id}.{timestamp}.{body}`. Several signatures in one header let a receiver rotate keys.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::crypto;
use crate::error::VerifyError;
use crate::keyring::KeyRing;

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
pub fn sign_v1(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let mac = crypto::hmac_sha256(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!("v1,{}", B64.encode(mac))
}

/// `v1a,<base64 Ed25519(key, "{id}.{timestamp}.{body}")>`.
pub fn sign_v1a(key: &ed25519_dalek::SigningKey, id: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1a,{}",
        B64.encode(crypto::ed25519_sign(
            key,
            &signed_content(id, timestamp, body)
        ))
    )
}

fn signed_content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut msg = format!("{id}.{timestamp}.").into_bytes();
    msg.extend_from_slice(body);
    msg
}

/// Checks `timestamp` (unix seconds) against `now` with `tolerance_secs` either way.
pub(crate) fn check_time(timestamp: i64, now: i64, tolerance_secs: i64) -> Result<(), VerifyError> {
    if now.saturating_sub(timestamp) > tolerance_secs {
        Err(VerifyError::Stale)
    } else if timestamp.saturating_sub(now) > tolerance_secs {
        Err(VerifyError::FromFuture)
    } else {
        Ok(())
    }
}

/// The verified facts of a Standard Webhooks request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub id: String,
    pub timestamp: i64,
}

/// Verifies the three headers and `body` against the secrets (`v1`) and Ed25519 public keys
/// (`v1a`) in `keys`. One matching signature is enough; unknown versions are skipped.
pub fn verify(
    keys: &KeyRing,
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<Verified, VerifyError> {
    let id = id.ok_or_else(|| VerifyError::MissingHeader(HEADER_ID.into()))?;
    let timestamp = timestamp.ok_or_else(|| VerifyError::MissingHeader(HEADER_TIMESTAMP.into()))?;
    let signatures =
        signatures.ok_or_else(|| VerifyError::MissingHeader(HEADER_SIGNATURE.into()))?;
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::Malformed(HEADER_TIMESTAMP.into()))?;
    check_time(ts, now, tolerance_secs)?;
    let ts_text = ts.to_string();
    let content = signed_content(id, ts, body);
    for sig in signatures.split_whitespace() {
        let Some((version, b64)) = sig.split_once(',') else {
            continue;
        };
        let Ok(bytes) = B64.decode(b64) else {
            continue;
        };
        let ok = match version {
            "v1" => keys.secrets().any(|s| {
                crypto::hmac_sha256_verify(
                    s.as_bytes(),
                    &[id.as_bytes(), b".", ts_text.as_bytes(), b".", body],
                    &bytes,
                )
            }),
            "v1a" => keys
                .ed25519_keys()
                .any(|k| crypto::ed25519_verify(k, &content, &bytes)),
            _ => false,
        };
        if ok {
            return Ok(Verified {
                id: id.to_owned(),
                timestamp: ts,
            });
        }
    }
    Err(VerifyError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{PrivateKey, PublicKey, Secret};

    /// The example from the Standard Webhooks reference test suite.
    #[test]
    fn v1_matches_reference_vector() {
        let key = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign_v1(
            key.as_bytes(),
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn v1a_and_v1_in_one_header() {
        let PrivateKey::Ed25519(sk) =
            PrivateKey::from_whsk("whsk_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap()
        else {
            unreachable!()
        };
        let secret = Secret::new(vec![9; 32]);
        let header = format!(
            "{} {}",
            sign_v1(secret.as_bytes(), "m", 100, b"b"),
            sign_v1a(&sk, "m", 100, b"b")
        );
        let mut only_ed = KeyRing::new();
        only_ed.add_public(None, PublicKey::Ed25519(sk.verifying_key()));
        let ok = verify(
            &only_ed,
            Some("m"),
            Some("100"),
            Some(&header),
            b"b",
            100,
            300,
        );
        assert_eq!(ok.map(|v| v.timestamp), Ok(100));
        let mut only_secret = KeyRing::new();
        only_secret.add_secret(None, secret);
        assert!(
            verify(
                &only_secret,
                Some("m"),
                Some("100"),
                Some(&header),
                b"b",
                100,
                300
            )
            .is_ok()
        );
        assert_eq!(
            verify(
                &only_secret,
                Some("m"),
                Some("100"),
                Some(&header),
                b"B",
                100,
                300
            ),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(
                &only_secret,
                Some("m"),
                Some("100"),
                Some(&header),
                b"b",
                1000,
                300
            ),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(
                &only_secret,
                Some("m"),
                Some("100"),
                Some(&header),
                b"b",
                -1000,
                300
            ),
            Err(VerifyError::FromFuture)
        );
    }
}

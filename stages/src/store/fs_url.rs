//! Signed, expiring URLs for the filesystem backend: `<base>/blobs/<key>?expires=<unix>&sig=<hex>`
//! with `sig = HMAC-SHA256(secret, "GET\n/blobs/<key>\n<expires>")`. Postwire's blob server
//! answers 403 to an expired or tampered URL, like a presigned S3 URL.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

fn mac(secret: &[u8], key: &str, expires: i64) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(format!("GET\n/blobs/{key}\n{expires}").as_bytes());
    m
}

pub fn sign(base: &str, secret: &[u8], key: &str, expires: i64) -> String {
    let sig = postwire_core::ids::hex(&mac(secret, key, expires).finalize().into_bytes());
    format!("{base}/blobs/{key}?expires={expires}&sig={sig}")
}

/// Why a blob URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the URL has expired")]
    Expired,
    #[error("the URL signature does not match")]
    BadSignature,
}

pub fn verify(
    secret: &[u8],
    key: &str,
    expires: i64,
    sig_hex: &str,
    now: i64,
) -> Result<(), UrlError> {
    let sig: Vec<u8> = (0..sig_hex.len() / 2)
        .filter_map(|i| {
            sig_hex
                .get(2 * i..2 * i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    if sig.len() != 32 || mac(secret, key, expires).verify_slice(&sig).is_err() {
        return Err(UrlError::BadSignature);
    }
    if now > expires {
        return Err(UrlError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_expiry_and_tampering() {
        let url = sign("http://h", b"k", "acme/abc", 1000);
        let sig = url.rsplit("sig=").next().unwrap();
        assert_eq!(verify(b"k", "acme/abc", 1000, sig, 999), Ok(()));
        assert_eq!(
            verify(b"k", "acme/abc", 1000, sig, 1001),
            Err(UrlError::Expired)
        );
        assert_eq!(
            verify(b"k", "acme/abd", 1000, sig, 999),
            Err(UrlError::BadSignature)
        );
        assert_eq!(
            verify(b"k", "acme/abc", 2000, sig, 999),
            Err(UrlError::BadSignature)
        );
        assert_eq!(
            verify(b"other", "acme/abc", 1000, sig, 999),
            Err(UrlError::BadSignature)
        );
    }
}

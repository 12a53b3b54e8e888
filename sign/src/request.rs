//! The parts of an outgoing webhook request that signatures cover, and the body digest that is
//! computed once per delivery (RFC 9530 `Content-Digest`, RFC 3230 `Digest`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest as _, Sha256};

/// SHA-256 of a delivery's body, fixed when the delivery is prepared and reused by every
/// attempt. Serialises as its `Content-Digest` header value (`sha-256=:…:`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ContentDigest {
    sha256: [u8; 32],
}

impl ContentDigest {
    /// Hashes `body`.
    pub fn of(body: &[u8]) -> Self {
        Self {
            sha256: Sha256::digest(body).into(),
        }
    }

    /// The raw SHA-256 bytes.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// The RFC 9530 `Content-Digest` value: `sha-256=:<base64>:`.
    pub fn header_value(&self) -> String {
        format!("sha-256=:{}:", B64.encode(self.sha256))
    }

    /// The RFC 3230 `Digest` value used by draft-cavage receivers: `SHA-256=<base64>`.
    pub fn legacy_header_value(&self) -> String {
        format!("SHA-256={}", B64.encode(self.sha256))
    }

    /// Parses a `Content-Digest` value, keeping its `sha-256` member. `None` when the value is
    /// malformed or has no `sha-256` member.
    pub fn parse_header(value: &str) -> Option<Self> {
        let dict: sfv::Dictionary = sfv::Parser::new(value).parse().ok()?;
        let sfv::ListEntry::Item(item) = dict.get("sha-256")? else {
            return None;
        };
        let bytes = item.bare_item.as_byte_sequence()?;
        Some(Self {
            sha256: bytes.try_into().ok()?,
        })
    }

    /// Checks a received `Content-Digest` against `body`: every `sha-256`/`sha-512` member
    /// must match, and at least one must be present. `None` when the value is malformed or has
    /// neither member; `Some(false)` on a mismatch.
    pub fn check_header(value: &str, body: &[u8]) -> Option<bool> {
        let dict: sfv::Dictionary = sfv::Parser::new(value).parse().ok()?;
        let mut checked = false;
        for (alg, entry) in &dict {
            let sfv::ListEntry::Item(item) = entry else {
                return None;
            };
            let expected: Vec<u8> = match alg.as_str() {
                "sha-256" => Sha256::digest(body).to_vec(),
                "sha-512" => sha2::Sha512::digest(body).to_vec(),
                _ => continue,
            };
            if item.bare_item.as_byte_sequence()? != expected.as_slice() {
                return Some(false);
            }
            checked = true;
        }
        checked.then_some(true)
    }

    /// Parses an RFC 3230 `Digest` value (`SHA-256=<base64>`, members separated by commas).
    pub fn parse_legacy_header(value: &str) -> Option<Self> {
        value.split(',').find_map(|member| {
            let (alg, b64) = member.trim().split_once('=')?;
            if !alg.eq_ignore_ascii_case("sha-256") {
                return None;
            }
            let bytes = B64.decode(b64.trim()).ok()?;
            Some(Self {
                sha256: bytes.try_into().ok()?,
            })
        })
    }
}

impl std::fmt::Debug for ContentDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.header_value())
    }
}

impl serde::Serialize for ContentDigest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.header_value())
    }
}

impl<'de> serde::Deserialize<'de> for ContentDigest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse_header(&text)
            .ok_or_else(|| serde::de::Error::custom("not a sha-256 Content-Digest value"))
    }
}

/// What a signature covers in one outgoing request. Borrowed from the delivery; the body and
/// digest are the same on every attempt.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// Upper-case HTTP method, normally `POST`.
    pub method: &'a str,
    /// The absolute target URL, exactly as it is requested.
    pub url: &'a str,
    /// The `Content-Type` the request carries.
    pub content_type: &'a str,
    /// The delivery id, sent as `webhook-id` (stable across retries).
    pub webhook_id: &'a str,
    /// The exact body bytes.
    pub body: &'a [u8],
    /// `ContentDigest::of(body)`, computed once per delivery.
    pub content_digest: &'a ContentDigest,
}

/// The `Host` header value an HTTP client sends for `url`: host, plus the port when it is not
/// the scheme's default.
pub(crate) fn host_of(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// `path?query` of `url`, the HTTP/1.1 origin-form request target.
pub(crate) fn request_target(url: &url::Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9530 appendix example: `{"hello": "world"}` with sha-256.
    #[test]
    fn content_digest_matches_rfc_9530_example() {
        let d = ContentDigest::of(b"{\"hello\": \"world\"}");
        assert_eq!(
            d.header_value(),
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
        );
        assert_eq!(
            ContentDigest::parse_header(&d.header_value()),
            Some(d.clone())
        );
        assert_eq!(
            ContentDigest::parse_legacy_header(&d.legacy_header_value()),
            Some(d)
        );
    }

    #[test]
    fn check_header_accepts_sha_512_and_refuses_mismatch() {
        use base64::Engine as _;
        let body = b"{}";
        let sha512 = B64.encode(sha2::Sha512::digest(body));
        assert_eq!(
            ContentDigest::check_header(&format!("sha-512=:{sha512}:"), body),
            Some(true)
        );
        let both = format!(
            "{}, sha-512=:{sha512}:",
            ContentDigest::of(body).header_value()
        );
        assert_eq!(ContentDigest::check_header(&both, body), Some(true));
        assert_eq!(ContentDigest::check_header(&both, b"[]"), Some(false));
        assert_eq!(ContentDigest::check_header("md5=:AAAA:", body), None);
    }

    #[test]
    fn serde_round_trip() {
        let d = ContentDigest::of(b"x");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<ContentDigest>(&json).unwrap(), d);
    }
}

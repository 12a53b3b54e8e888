//! Key material: Ed25519 and RSA key pairs (PEM files), HMAC secrets, and the DKIM-style TXT
//! record that publishes a public key at `<selector>._postwire.<domain>` (the `keyid`).
//!
//! Private keys and secrets never appear in `Debug` output.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};

use crate::error::KeyError;

/// The label between the selector and the domain in a key's DNS name.
pub const DNS_LABEL: &str = "_postwire";

/// The `keyid` (and DNS name) of `selector` under `domain`: `<selector>._postwire.<domain>`.
pub fn keyid(selector: &str, domain: &str) -> String {
    format!("{selector}.{DNS_LABEL}.{}", domain.trim_end_matches('.'))
}

/// The type of an asymmetric key, as in a DKIM record's `k=` tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    Ed25519,
    Rsa,
}

impl KeyType {
    /// The `k=` tag value.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ed25519",
            KeyType::Rsa => "rsa",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for KeyType {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ed25519" => Ok(KeyType::Ed25519),
            "rsa" => Ok(KeyType::Rsa),
            other => Err(KeyError::UnknownType(other.to_owned())),
        }
    }
}

/// A private signing key.
// Ed25519 keys are the common case and small enough; RSA keys are boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum PrivateKey {
    Ed25519(ed25519_dalek::SigningKey),
    Rsa(Box<rsa::PrivateKey>),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, <redacted>)", self.key_type())
    }
}

impl PrivateKey {
    /// A fresh key from the operating system's random source (RSA: 3072 bits, exponent 65537).
    pub fn generate(key_type: KeyType) -> Result<Self, KeyError> {
        use rsa::Generate as _;
        Ok(match key_type {
            KeyType::Ed25519 => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| KeyError::Generate(e.to_string()))?;
                PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
            }
            KeyType::Rsa => PrivateKey::Rsa(Box::new(
                rsa::PrivateKey::try_generate().map_err(|e| KeyError::Generate(e.to_string()))?,
            )),
        })
    }

    /// A fresh RSA key of `bits` bits (2048 to 8192, exponent 65537).
    pub fn generate_rsa(bits: usize) -> Result<Self, KeyError> {
        if !(2048..=8192).contains(&bits) {
            return Err(KeyError::Generate(format!(
                "RSA keys have 2048 to 8192 bits, not {bits}"
            )));
        }
        let mut rng = crate::crypto::OsRng;
        rsa::PrivateKey::new(&mut rng, bits)
            .map(|k| PrivateKey::Rsa(Box::new(k)))
            .map_err(|e| KeyError::Generate(e.to_string()))
    }

    /// Parses a PKCS#8 PEM (`PRIVATE KEY`) Ed25519 or RSA key, or a PKCS#1 `RSA PRIVATE KEY`.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Ok(PrivateKey::Ed25519(k));
        }
        if let Ok(k) = rsa::PrivateKey::from_pkcs8_pem(pem) {
            return Ok(PrivateKey::Rsa(Box::new(k)));
        }
        rsa::PrivateKey::from_pkcs1_pem(pem)
            .map(|k| PrivateKey::Rsa(Box::new(k)))
            .map_err(|_| KeyError::Pem)
    }

    /// Parses a Standard Webhooks `whsk_<base64>` Ed25519 secret key (the 32-byte seed, or the
    /// 64-byte seed-and-public-key form).
    pub fn from_whsk(text: &str) -> Result<Self, KeyError> {
        let b64 = text.trim().strip_prefix("whsk_").unwrap_or(text.trim());
        let bytes = B64.decode(b64).map_err(|_| KeyError::Base64("whsk_ key"))?;
        let seed: [u8; 32] = bytes
            .get(..32)
            .and_then(|s| s.try_into().ok())
            .filter(|_| bytes.len() == 32 || bytes.len() == 64)
            .ok_or(KeyError::Length("whsk_ key"))?;
        Ok(PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(
            &seed,
        )))
    }

    /// Parses either PEM or `whsk_` text.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        if text.trim_start().starts_with("whsk_") {
            Self::from_whsk(text)
        } else {
            Self::from_pem(text)
        }
    }

    /// PKCS#8 PEM text. Handle with care: it is the secret.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        let pem = match self {
            // PKCS#8 v1 (seed only): what OpenSSL and Python's cryptography read.
            PrivateKey::Ed25519(k) => ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: k.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_pem(LineEnding::LF),
            PrivateKey::Rsa(k) => k.to_pkcs8_pem(LineEnding::LF),
        }
        .map_err(|e| KeyError::Encode(e.to_string()))?;
        Ok(pem.to_string())
    }

    pub fn key_type(&self) -> KeyType {
        match self {
            PrivateKey::Ed25519(_) => KeyType::Ed25519,
            PrivateKey::Rsa(_) => KeyType::Rsa,
        }
    }

    pub fn public_key(&self) -> PublicKey {
        match self {
            PrivateKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
            PrivateKey::Rsa(k) => PublicKey::Rsa(Box::new(k.to_public_key())),
        }
    }
}

/// A public verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    Rsa(Box<rsa::PublicKey>),
}

impl PublicKey {
    pub fn key_type(&self) -> KeyType {
        match self {
            PublicKey::Ed25519(_) => KeyType::Ed25519,
            PublicKey::Rsa(_) => KeyType::Rsa,
        }
    }

    /// Parses an SPKI PEM (`PUBLIC KEY`), or a `whpk_<base64>` Ed25519 public key.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if let Some(b64) = text.strip_prefix("whpk_") {
            let bytes = B64.decode(b64).map_err(|_| KeyError::Base64("whpk_ key"))?;
            return Self::from_raw(KeyType::Ed25519, &bytes);
        }
        if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(text) {
            return Ok(PublicKey::Ed25519(k));
        }
        rsa::PublicKey::from_public_key_pem(text)
            .map(|k| PublicKey::Rsa(Box::new(k)))
            .map_err(|_| KeyError::Pem)
    }

    /// SPKI PEM text.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        match self {
            PublicKey::Ed25519(k) => k.to_public_key_pem(LineEnding::LF),
            PublicKey::Rsa(k) => k.to_public_key_pem(LineEnding::LF),
        }
        .map_err(|e| KeyError::Encode(e.to_string()))
    }

    /// Standard Webhooks form of an Ed25519 public key: `whpk_<base64 of the 32 bytes>`.
    pub fn to_whpk(&self) -> Option<String> {
        match self {
            PublicKey::Ed25519(k) => Some(format!("whpk_{}", B64.encode(k.as_bytes()))),
            PublicKey::Rsa(_) => None,
        }
    }

    /// The bytes a DKIM record's `p=` carries: the raw 32-byte key for Ed25519 (RFC 8463), the
    /// DER SubjectPublicKeyInfo for RSA (RFC 6376).
    pub fn to_raw(&self) -> Result<Vec<u8>, KeyError> {
        match self {
            PublicKey::Ed25519(k) => Ok(k.as_bytes().to_vec()),
            PublicKey::Rsa(k) => k
                .to_public_key_der()
                .map(|d| d.as_bytes().to_vec())
                .map_err(|e| KeyError::Encode(e.to_string())),
        }
    }

    /// The inverse of [`PublicKey::to_raw`], with the type taken from the record's `k=`.
    pub fn from_raw(key_type: KeyType, bytes: &[u8]) -> Result<Self, KeyError> {
        match key_type {
            KeyType::Ed25519 => {
                let raw: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| KeyError::Length("ed25519 key"))?;
                ed25519_dalek::VerifyingKey::from_bytes(&raw)
                    .map(PublicKey::Ed25519)
                    .map_err(|_| KeyError::Record("not an Ed25519 point".into()))
            }
            KeyType::Rsa => rsa::PublicKey::from_public_key_der(bytes)
                .map(|k| PublicKey::Rsa(Box::new(k)))
                .map_err(|_| KeyError::Record("not an RSA SubjectPublicKeyInfo".into())),
        }
    }

    /// The TXT record text: `v=DKIM1; k=<type>; p=<base64>`.
    pub fn dkim_txt(&self) -> Result<String, KeyError> {
        Ok(format!(
            "v=DKIM1; k={}; p={}",
            self.key_type(),
            B64.encode(self.to_raw()?)
        ))
    }

    /// Parses a DKIM-style key record. The key type comes from `k=` (DKIM's default `rsa` when
    /// absent), never from a request. An empty `p=` is a revoked key.
    pub fn from_dkim_txt(txt: &str) -> Result<Self, KeyError> {
        let mut version = None;
        let mut key_type = None;
        let mut p = None;
        for tag in txt.split(';') {
            let Some((name, value)) = tag.split_once('=') else {
                if tag.trim().is_empty() {
                    continue;
                }
                return Err(KeyError::Record(format!("tag without '=': {tag:?}")));
            };
            let value: String = value.chars().filter(|c| !c.is_whitespace()).collect();
            match name.trim() {
                "v" => version = Some(value),
                "k" => key_type = Some(value),
                "p" => p = Some(value),
                _ => {}
            }
        }
        if version.as_deref().is_some_and(|v| v != "DKIM1") {
            return Err(KeyError::Record("v= is not DKIM1".into()));
        }
        let key_type: KeyType = key_type.as_deref().unwrap_or("rsa").parse()?;
        let p = p.ok_or_else(|| KeyError::Record("no p= tag".into()))?;
        if p.is_empty() {
            return Err(KeyError::Revoked);
        }
        let bytes = B64.decode(p).map_err(|_| KeyError::Base64("p= tag"))?;
        Self::from_raw(key_type, &bytes)
    }
}

/// The zone-file line publishing `key` as `selector` under `domain`, for `postwire keys
/// dns-record`. TXT strings are split at 255 bytes, as DNS requires.
pub fn dns_record(selector: &str, domain: &str, key: &PublicKey) -> Result<String, KeyError> {
    Ok(zone_line(&keyid(selector, domain), &key.dkim_txt()?))
}

/// `<name>. TXT "…" "…"`: the record text split into strings of at most 255 bytes (a
/// resolver joins them again).
pub fn zone_line(name: &str, txt: &str) -> String {
    let chunks: Vec<String> = txt
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    format!("{name}. TXT {}", chunks.join(" "))
}

/// A shared secret for HMAC (Standard Webhooks `v1`, RFC 9421 `hmac-sha256`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }

    /// Parses `whsec_<base64>` (the prefix is optional).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let b64 = text.strip_prefix("whsec_").unwrap_or(text);
        B64.decode(b64)
            .map(Secret)
            .map_err(|_| KeyError::Base64("whsec_ secret"))
    }

    /// A fresh 32-byte secret.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = vec![0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| KeyError::Generate(e.to_string()))?;
        Ok(Secret(bytes))
    }

    pub fn to_whsec(&self) -> String {
        format!("whsec_{}", B64.encode(&self.0))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_pem_and_dkim_round_trip() {
        let key = PrivateKey::generate(KeyType::Ed25519).unwrap();
        let again = PrivateKey::from_pem(&key.to_pem().unwrap()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let txt = key.public_key().dkim_txt().unwrap();
        assert!(txt.starts_with("v=DKIM1; k=ed25519; p="), "{txt}");
        assert_eq!(PublicKey::from_dkim_txt(&txt).unwrap(), key.public_key());
        let pem = key.public_key().to_pem().unwrap();
        assert_eq!(PublicKey::parse(&pem).unwrap(), key.public_key());
        let whpk = key.public_key().to_whpk().unwrap();
        assert_eq!(PublicKey::parse(&whpk).unwrap(), key.public_key());
    }

    #[test]
    fn record_type_comes_from_k_tag() {
        let key = PrivateKey::generate(KeyType::Ed25519).unwrap();
        let raw = B64.encode(key.public_key().to_raw().unwrap());
        // The same bytes announced as RSA do not become an Ed25519 key.
        assert!(PublicKey::from_dkim_txt(&format!("v=DKIM1; k=rsa; p={raw}")).is_err());
        assert!(matches!(
            PublicKey::from_dkim_txt("v=DKIM1; k=ed25519; p="),
            Err(KeyError::Revoked)
        ));
    }

    #[test]
    fn dns_record_line_names_the_keyid() {
        let key = PrivateKey::generate(KeyType::Ed25519).unwrap();
        let line = dns_record("s1", "example.com", &key.public_key()).unwrap();
        assert!(
            line.starts_with("s1._postwire.example.com. TXT \"v=DKIM1; k=ed25519; p="),
            "{line}"
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let s = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        let k = PrivateKey::generate(KeyType::Ed25519).unwrap();
        assert_eq!(format!("{k:?}"), "PrivateKey(ed25519, <redacted>)");
    }
}

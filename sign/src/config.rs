//! Per-endpoint signing configuration: a list of schemes, each with where its key comes from.
//!
//! ```toml
//! [[tenants.acme.endpoints.hook.signing]]
//! scheme = "standard-webhooks"
//! secret_env = "ACME_HOOK_SECRET"          # whsec_… → v1; or key_file/key_env (Ed25519) → v1a
//!
//! [[tenants.acme.endpoints.hook.signing]]
//! scheme = "rfc9421"
//! alg = "ed25519"                          # ed25519 | rsa-pss-sha512 | hmac-sha256
//! keyring = "/etc/postwire/keys/acme"      # every active selector signs (rotation)
//! # or: key_file = "…pem" + keyid = "s1._postwire.acme.example"; hmac: secret/secret_env + keyid
//! tag = "postwire"                         # default
//! expires_secs = 300                       # default
//!
//! [[tenants.acme.endpoints.hook.signing]]
//! scheme = "cavage"                        # rsa-sha256, for SMTPeter-style receivers
//! key_file = "/etc/postwire/keys/rsa.pem"
//! keyid = "r1._postwire.acme.example"
//! account_id = "1234"                      # optional; header name: account_header
//! # profile = "smtpeter"                   # SMTPeter's header list, x-copernica-id, 2048-bit key
//!
//! [[tenants.acme.endpoints.hook.signing]]
//! scheme = "bearer"                        # or "basic" with username + password/password_env
//! token_env = "ACME_HOOK_TOKEN"
//! ```
//!
//! Exactly one key source per entry. `*_env` variables hold the key text itself (PEM, `whsk_…`,
//! `whsec_…`). Unknown keys are errors.

use std::path::{Path, PathBuf};

use crate::error::KeyError;
use crate::keydir::KeyDir;
use crate::keys::PrivateKey;

/// One signing scheme of an endpoint. Deserialises from a table with a `scheme` tag.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(tag = "scheme", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SigningConfig {
    /// Standard Webhooks `v1` (secret) or `v1a` (Ed25519 key).
    StandardWebhooks {
        #[serde(default)]
        secret: Option<String>,
        #[serde(default)]
        secret_env: Option<String>,
        #[serde(default)]
        key_file: Option<PathBuf>,
        #[serde(default)]
        key_env: Option<String>,
        #[serde(default)]
        keyring: Option<PathBuf>,
    },
    /// RFC 9421 HTTP Message Signatures.
    Rfc9421 {
        alg: crate::rfc9421::Algorithm,
        #[serde(default)]
        keyid: Option<String>,
        #[serde(default)]
        key_file: Option<PathBuf>,
        #[serde(default)]
        key_env: Option<String>,
        #[serde(default)]
        secret: Option<String>,
        #[serde(default)]
        secret_env: Option<String>,
        #[serde(default)]
        keyring: Option<PathBuf>,
        /// Signature label (default `sig<n>`, or the selector for keyring keys).
        #[serde(default)]
        label: Option<String>,
        #[serde(default = "default_tag")]
        tag: Option<String>,
        #[serde(default = "default_expires")]
        expires_secs: Option<i64>,
    },
    /// Legacy draft-cavage `rsa-sha256`.
    Cavage {
        #[serde(default)]
        keyid: Option<String>,
        #[serde(default)]
        key_file: Option<PathBuf>,
        #[serde(default)]
        key_env: Option<String>,
        #[serde(default)]
        keyring: Option<PathBuf>,
        #[serde(default)]
        account_id: Option<String>,
        /// Default: `x-account-id`, or `x-copernica-id` with the `smtpeter` profile.
        #[serde(default)]
        account_header: Option<String>,
        /// `postwire` (default) or `smtpeter` (SMTPeter's header list; needs `account_id`).
        #[serde(default)]
        profile: crate::cavage::Profile,
    },
    /// `Authorization: Bearer`.
    Bearer {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        token_env: Option<String>,
    },
    /// `Authorization: Basic`.
    Basic {
        username: String,
        #[serde(default)]
        password: Option<String>,
        #[serde(default)]
        password_env: Option<String>,
    },
}

fn default_tag() -> Option<String> {
    Some("postwire".into())
}

fn default_expires() -> Option<i64> {
    Some(300)
}

/// A signing configuration that cannot be turned into a [`crate::Signer`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("signing[{index}] ({scheme}): {message}")]
    Invalid {
        index: usize,
        scheme: &'static str,
        message: String,
    },
    #[error("signing[{index}] ({scheme}): {source}")]
    Key {
        index: usize,
        scheme: &'static str,
        source: KeyError,
    },
}

impl SigningConfig {
    /// The name used in the `scheme` tag.
    pub fn scheme(&self) -> &'static str {
        match self {
            SigningConfig::StandardWebhooks { .. } => "standard-webhooks",
            SigningConfig::Rfc9421 { .. } => "rfc9421",
            SigningConfig::Cavage { .. } => "cavage",
            SigningConfig::Bearer { .. } => "bearer",
            SigningConfig::Basic { .. } => "basic",
        }
    }

    /// How many key sources the entry names; exactly one is valid.
    pub fn key_sources(&self) -> usize {
        let set: &[bool] = match self {
            SigningConfig::StandardWebhooks {
                secret,
                secret_env,
                key_file,
                key_env,
                keyring,
            } => &[
                secret.is_some(),
                secret_env.is_some(),
                key_file.is_some(),
                key_env.is_some(),
                keyring.is_some(),
            ],
            SigningConfig::Rfc9421 {
                key_file,
                key_env,
                secret,
                secret_env,
                keyring,
                ..
            } => &[
                key_file.is_some(),
                key_env.is_some(),
                secret.is_some(),
                secret_env.is_some(),
                keyring.is_some(),
            ],
            SigningConfig::Cavage {
                key_file,
                key_env,
                keyring,
                ..
            } => &[key_file.is_some(), key_env.is_some(), keyring.is_some()],
            SigningConfig::Bearer { token, token_env } => &[token.is_some(), token_env.is_some()],
            SigningConfig::Basic {
                password,
                password_env,
                ..
            } => &[password.is_some(), password_env.is_some()],
        };
        set.iter().filter(|b| **b).count()
    }

    /// The plain Standard Webhooks `v1` entry for an endpoint that only has a `whsec_` secret.
    pub fn standard_webhooks_secret(secret: &str) -> Self {
        SigningConfig::StandardWebhooks {
            secret: Some(secret.to_owned()),
            secret_env: None,
            key_file: None,
            key_env: None,
            keyring: None,
        }
    }
}

/// Reads key text from exactly one of the given sources.
pub(crate) fn key_text(
    file: &Option<std::path::PathBuf>,
    env: &Option<String>,
    inline: &Option<String>,
) -> Result<Option<String>, KeyError> {
    if let Some(path) = file {
        return std::fs::read_to_string(path)
            .map(Some)
            .map_err(|source| KeyError::Io {
                path: path.clone(),
                source,
            });
    }
    if let Some(var) = env {
        return std::env::var(var)
            .map(Some)
            .map_err(|_| KeyError::Env(var.clone()));
    }
    Ok(inline.clone())
}

/// ((key, keyid, selector), retire_at) for every key in a key directory.
pub(crate) type DirKey = ((PrivateKey, String, String), Option<i64>);

pub(crate) fn keydir_keys(dir: &Path) -> Result<Vec<DirKey>, KeyError> {
    let kd = KeyDir::load(dir)?;
    kd.keys
        .iter()
        .map(|e| {
            Ok((
                (kd.load_key(e)?, kd.keyid(e), e.selector.clone()),
                e.retire_at,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Endpoint {
        signing: Vec<SigningConfig>,
    }

    #[test]
    fn parses_the_documented_shape_and_refuses_unknown_keys() {
        let e: Endpoint = serde_json::from_value(serde_json::json!({"signing": [
            {"scheme": "standard-webhooks", "secret": "whsec_AAAA"},
            {"scheme": "rfc9421", "alg": "ed25519", "key_file": "k.pem", "keyid": "s1._postwire.example.com"},
            {"scheme": "cavage", "key_file": "r.pem", "keyid": "r1", "account_id": "42"},
            {"scheme": "bearer", "token": "t"},
            {"scheme": "basic", "username": "u", "password": "p"}
        ]}))
        .unwrap();
        assert_eq!(e.signing.len(), 5);
        match &e.signing[1] {
            SigningConfig::Rfc9421 {
                tag, expires_secs, ..
            } => {
                assert_eq!(tag.as_deref(), Some("postwire"));
                assert_eq!(*expires_secs, Some(300));
            }
            other => panic!("{other:?}"),
        }
        let bad = serde_json::from_value::<Endpoint>(serde_json::json!({"signing": [
            {"scheme": "bearer", "token": "t", "tokne": "typo"}
        ]}));
        assert!(bad.is_err());
        let bad = serde_json::from_value::<Endpoint>(serde_json::json!({"signing": [
            {"scheme": "rfc9421", "alg": "rsa-sha1", "key_file": "k"}
        ]}));
        assert!(bad.is_err());
    }
}

//! The keys a verifier trusts, by `keyid`: public keys (configured, or fetched from DNS) and
//! shared secrets (configured only: a secret never comes from DNS).

use crate::keys::{KeyType, PublicKey, Secret};

/// A key a verifier may check a signature with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyKey {
    Public(PublicKey),
    Secret(Secret),
}

impl VerifyKey {
    /// What this key is, as named in error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            VerifyKey::Public(k) => k.key_type().as_str(),
            VerifyKey::Secret(_) => "shared secret",
        }
    }
}

/// Trusted keys. Entries without a keyid serve schemes that carry none (Standard Webhooks).
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    entries: Vec<(Option<String>, VerifyKey)>,
}

impl KeyRing {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_public(&mut self, keyid: Option<String>, key: PublicKey) -> &mut Self {
        self.entries.push((keyid, VerifyKey::Public(key)));
        self
    }

    pub fn add_secret(&mut self, keyid: Option<String>, secret: Secret) -> &mut Self {
        self.entries.push((keyid, VerifyKey::Secret(secret)));
        self
    }

    /// Adds every entry of `other`.
    pub fn extend(&mut self, other: &KeyRing) {
        self.entries.extend(other.entries.iter().cloned());
    }

    /// The key registered under `keyid` (the first, if several).
    pub fn get(&self, keyid: &str) -> Option<&VerifyKey> {
        self.entries
            .iter()
            .find(|(id, _)| id.as_deref() == Some(keyid))
            .map(|(_, k)| k)
    }

    pub fn contains(&self, keyid: &str) -> bool {
        self.get(keyid).is_some()
    }

    /// Every shared secret, for Standard Webhooks `v1`.
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.entries.iter().filter_map(|(_, k)| match k {
            VerifyKey::Secret(s) => Some(s),
            VerifyKey::Public(_) => None,
        })
    }

    /// Every Ed25519 public key, for Standard Webhooks `v1a`.
    pub fn ed25519_keys(&self) -> impl Iterator<Item = &ed25519_dalek::VerifyingKey> {
        self.entries.iter().filter_map(|(_, k)| match k {
            VerifyKey::Public(PublicKey::Ed25519(p)) => Some(p),
            _ => None,
        })
    }

    /// Public keys of another type that were offered to a scheme that cannot use them.
    pub fn has_public_of_type(&self, key_type: KeyType) -> bool {
        self.entries
            .iter()
            .any(|(_, k)| matches!(k, VerifyKey::Public(p) if p.key_type() == key_type))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

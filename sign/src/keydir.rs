//! A key directory for rotation: `keyring.json` lists selectors of one domain, each with its
//! private key in `<selector>.pem` beside it. `postwire keys rotate` adds a selector and gives
//! the active ones a `retire_at`: until then the old key still signs and its DNS record stays
//! published (the overlap); after it, only the new key signs.
//!
//! ```json
//! {"domain": "acme.example", "keys": [
//!   {"selector": "pw1763900000", "type": "ed25519", "created": 1763900000, "retire_at": 1764504800},
//!   {"selector": "pw1764504000", "type": "ed25519", "created": 1764504000}
//! ]}
//! ```

use std::path::{Path, PathBuf};

use crate::error::KeyError;
use crate::keys::{KeyType, PrivateKey, keyid};

pub const MANIFEST: &str = "keyring.json";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    pub selector: String,
    #[serde(rename = "type")]
    pub key_type: KeyType,
    pub created: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retire_at: Option<i64>,
}

impl KeyEntry {
    /// Signs and stays published at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        self.retire_at.is_none_or(|t| now < t)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyDir {
    pub domain: String,
    pub keys: Vec<KeyEntry>,
    #[serde(skip)]
    pub path: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

impl KeyDir {
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        let file = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&file).map_err(io(&file))?;
        let mut kd: KeyDir = serde_json::from_str(&text)
            .map_err(|e| KeyError::Record(format!("{}: {e}", file.display())))?;
        kd.path = dir.to_owned();
        Ok(kd)
    }

    /// A new, empty key directory for `domain` (written by [`KeyDir::save`]).
    pub fn create(dir: &Path, domain: &str) -> Self {
        KeyDir {
            domain: domain.trim_end_matches('.').to_owned(),
            keys: Vec::new(),
            path: dir.to_owned(),
        }
    }

    pub fn save(&self) -> Result<(), KeyError> {
        std::fs::create_dir_all(&self.path).map_err(io(&self.path))?;
        let file = self.path.join(MANIFEST);
        let text =
            serde_json::to_string_pretty(self).map_err(|e| KeyError::Encode(e.to_string()))?;
        std::fs::write(&file, text + "\n").map_err(io(&file))
    }

    pub fn key_path(&self, selector: &str) -> PathBuf {
        self.path.join(format!("{selector}.pem"))
    }

    pub fn keyid(&self, entry: &KeyEntry) -> String {
        keyid(&entry.selector, &self.domain)
    }

    pub fn load_key(&self, entry: &KeyEntry) -> Result<PrivateKey, KeyError> {
        let path = self.key_path(&entry.selector);
        let key = PrivateKey::from_pem(&std::fs::read_to_string(&path).map_err(io(&path))?)?;
        if key.key_type() != entry.key_type {
            return Err(KeyError::Record(format!(
                "{} is not a {} key",
                path.display(),
                entry.key_type
            )));
        }
        Ok(key)
    }

    /// Generates a key, writes `<selector>.pem` (mode 0600) and adds it to the manifest; every
    /// key active at `now` is kept for `overlap_secs` more. Call [`KeyDir::save`] afterwards.
    pub fn rotate(
        &mut self,
        selector: &str,
        key_type: KeyType,
        now: i64,
        overlap_secs: i64,
    ) -> Result<&KeyEntry, KeyError> {
        if self.keys.iter().any(|k| k.selector == selector) {
            return Err(KeyError::Record(format!(
                "selector {selector} exists already"
            )));
        }
        if sfv::KeyRef::from_str(selector).is_err() || selector.contains('.') {
            return Err(KeyError::Record(format!(
                "selector {selector:?} must be lower-case letters, digits, '-' or '_', starting with a letter"
            )));
        }
        let key = PrivateKey::generate(key_type)?;
        std::fs::create_dir_all(&self.path).map_err(io(&self.path))?;
        write_private(&self.key_path(selector), &key.to_pem()?)?;
        for k in self.keys.iter_mut().filter(|k| k.is_active(now)) {
            k.retire_at = Some(
                k.retire_at
                    .map_or(now + overlap_secs, |t| t.min(now + overlap_secs)),
            );
        }
        self.keys.push(KeyEntry {
            selector: selector.to_owned(),
            key_type,
            created: now,
            retire_at: None,
        });
        Ok(self
            .keys
            .last()
            .unwrap_or_else(|| unreachable!("just pushed")))
    }

    /// The JWKS document (`/.well-known/postwire-keys.json`) of the keys active at `now`.
    pub fn jwks(&self, now: i64) -> Result<serde_json::Value, KeyError> {
        let keys = self
            .active(now)
            .map(|e| Ok((self.keyid(e), self.load_key(e)?.public_key())))
            .collect::<Result<Vec<_>, KeyError>>()?;
        Ok(crate::jwks::jwks(
            keys.iter().map(|(id, k)| (id.as_str(), k)),
        ))
    }

    pub fn active(&self, now: i64) -> impl Iterator<Item = &KeyEntry> {
        self.keys.iter().filter(move |k| k.is_active(now))
    }
}

/// Writes a private key file readable by its owner only.
pub fn write_private(path: &Path, pem: &str) -> Result<(), KeyError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(pem.as_bytes()).map_err(io(path))
}

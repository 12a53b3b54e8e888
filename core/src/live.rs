//! Live tenant configuration. The tenants of the config file seed the JetStream KV bucket
//! `postwire_tenants` (one key per tenant); every node reads the bucket at start, watches it,
//! and applies each change without a restart: a worker takes a [`Snapshot`] per message.
//!
//! Seeding rule: a tenant missing from the bucket is written from the file; a tenant the file
//! wrote earlier (`source = "file"`) is overwritten when the file changed; a tenant changed
//! through the admin API (`source = "api"`) is kept, with a warning that the file's version
//! is ignored. A change that does not validate (written behind the API's back) is logged and
//! not applied: the node keeps its last good configuration.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};
use crate::routing::Router;
use crate::tenant_config::TenantConfig;
use crate::{bus, envelope};

/// Why the live configuration could not be read or seeded.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("the config bucket {bucket}: {source}")]
    Open {
        bucket: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("reading the config bucket: {0}")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("writing the config bucket: {0}")]
    Write(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("encoding a tenant: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("the config bucket kept listing without tenants it was seeded with: {0}")]
    Incomplete(String),
}

impl LiveError {
    /// NATS trouble may pass; a tenant that does not encode will not.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, LiveError::Encode(_))
    }

    fn read(e: impl std::error::Error + Send + Sync + 'static) -> LiveError {
        LiveError::Read(Box::new(e))
    }

    fn write(e: impl std::error::Error + Send + Sync + 'static) -> LiveError {
        LiveError::Write(Box::new(e))
    }
}

/// Who wrote a tenant's configuration last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    File,
    Api,
}

/// A tenant's entry in the bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredTenant {
    pub config: TenantConfig,
    pub source: Source,
    pub updated_by: String,
    pub updated_at: String,
}

impl StoredTenant {
    pub fn new(config: TenantConfig, source: Source, by: &str) -> Self {
        Self {
            config,
            source,
            updated_by: by.to_string(),
            updated_at: envelope::now_rfc3339(),
        }
    }
}

/// One consistent view of the configuration, with what is derived from it.
pub struct Snapshot {
    pub cfg: Arc<Config>,
    pub router: Arc<Router>,
    /// Increases with every applied change (0: as loaded).
    pub version: u64,
}

/// The current configuration of this node.
pub struct LiveConfig {
    current: RwLock<Arc<Snapshot>>,
    changed: tokio::sync::watch::Sender<u64>,
    /// The last bucket revision this node has seen (applied, or refused as invalid).
    seen: tokio::sync::watch::Sender<u64>,
}

impl LiveConfig {
    /// A configuration that never changes (no bucket; tests, `live_config = false`).
    pub fn fixed(cfg: Arc<Config>) -> Arc<Self> {
        let router = Arc::new(cfg.router());
        Arc::new(Self {
            current: RwLock::new(Arc::new(Snapshot {
                cfg,
                router,
                version: 0,
            })),
            changed: tokio::sync::watch::channel(0).0,
            seen: tokio::sync::watch::channel(0).0,
        })
    }

    /// Waits (at most `timeout`) until this node has seen bucket revision `revision`, so a
    /// change written through this node is read back by it. False when the time ran out.
    pub async fn wait_seen(&self, revision: u64, timeout: std::time::Duration) -> bool {
        let mut rx = self.seen.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|seen| *seen >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The configuration now. Cheap: a lock and a reference count.
    pub fn get(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Resolves each time a change was applied (the new version).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn install(&self, cfg: Config) {
        let router = Arc::new(cfg.router());
        let mut cur = self.current.write().unwrap_or_else(|e| e.into_inner());
        let version = cur.version + 1;
        *cur = Arc::new(Snapshot {
            cfg: Arc::new(cfg),
            router,
            version,
        });
        drop(cur);
        self.changed.send_replace(version);
    }
}

/// The file's configuration with `tenants` instead of its own, validated.
pub fn compose(
    base: &Config,
    tenants: BTreeMap<String, TenantConfig>,
) -> Result<Config, ConfigError> {
    let mut cfg = base.clone();
    cfg.tenants = tenants;
    cfg.validate()?;
    Ok(cfg)
}

/// Reads every tenant in the bucket; returns them and the bucket's last sequence.
///
/// Each entry is read from the stream's leader (`STREAM.MSG.GET`), not with the KV's direct
/// get: JetStream lets any replica answer a direct get, and a replica that is behind (a server
/// back from a crash, a follower that has not applied the latest write) answers "not found"
/// or an old value. A node that started from such a read lacked the tenant for good.
pub async fn read_all(kv: &kv::Store) -> Result<(BTreeMap<String, StoredTenant>, u64), LiveError> {
    let last = kv
        .status()
        .await
        .map_err(LiveError::read)?
        .info
        .state
        .last_sequence;
    let mut keys = kv.keys().await.map_err(LiveError::read)?;
    let mut out = BTreeMap::new();
    while let Some(key) = keys.next().await {
        let key = key.map_err(LiveError::read)?;
        if let Some(v) = leader_get(kv, &key).await? {
            match serde_json::from_slice::<StoredTenant>(&v) {
                Ok(t) => {
                    out.insert(key, t);
                }
                Err(e) => {
                    tracing::error!(tenant = %key, error = %e, "A tenant entry in the config bucket is not valid JSON; ignored.")
                }
            }
        }
    }
    Ok((out, last))
}

/// The latest value of `key` as the stream's leader holds it; `None` when deleted or absent.
async fn leader_get(kv: &kv::Store, key: &str) -> Result<Option<bytes::Bytes>, LiveError> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    let subject = format!("{}{key}", kv.prefix);
    match kv.stream.get_last_raw_message_by_subject(&subject).await {
        Ok(m) => {
            let removed = m
                .headers
                .get("KV-Operation")
                .is_some_and(|op| matches!(op.as_str(), "DEL" | "PURGE"));
            Ok((!removed).then_some(m.payload))
        }
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(LiveError::read(e)),
    }
}

/// The bucket's tenants, read until the listing holds every tenant of the file: `seed` has
/// just made sure each is there, so a listing without one was cut short (a JetStream leader
/// election during a node failure), and a node must not start routing with tenants missing.
async fn read_complete(
    kv: &kv::Store,
    base: &Config,
) -> Result<(BTreeMap<String, StoredTenant>, u64), LiveError> {
    let mut tries = 0;
    loop {
        let (stored, last) = read_all(kv).await?;
        let missing = missing_file_tenants(base, &stored);
        if missing.is_empty() {
            return Ok((stored, last));
        }
        tries += 1;
        if tries >= 10 {
            return Err(LiveError::Incomplete(missing.join(", ")));
        }
        tracing::warn!(missing = %missing.join(", "), "The config bucket's listing lacks tenants it was just seeded with; reading it again.");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The config file's tenants that a listing of the bucket lacks.
fn missing_file_tenants(base: &Config, stored: &BTreeMap<String, StoredTenant>) -> Vec<String> {
    base.tenants
        .keys()
        .filter(|name| !stored.contains_key(*name))
        .cloned()
        .collect()
}

/// Writes the file's tenants into the bucket (see the module documentation for the rule).
async fn seed(kv: &kv::Store, base: &Config) -> Result<(), LiveError> {
    for (name, t) in &base.tenants {
        let entry = kv.entry(name).await.map_err(LiveError::read)?;
        let stored = StoredTenant::new(t.clone(), Source::File, "config file");
        let body: bytes::Bytes = serde_json::to_vec(&stored)
            .map_err(LiveError::Encode)?
            .into();
        let result = match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                match serde_json::from_slice::<StoredTenant>(&e.value) {
                    Ok(old) if old.source == Source::Api => {
                        if old.config != *t {
                            tracing::warn!(tenant = %name, by = %old.updated_by, at = %old.updated_at,
                                "This tenant was changed through the admin API; the config file's version is not applied.");
                        }
                        continue;
                    }
                    Ok(old) if old.config == *t => continue,
                    _ => kv
                        .update(name, body, e.revision)
                        .await
                        .map(|_| ())
                        .map_err(LiveError::write),
                }
            }
            // Absent, deleted or purged: the file brings it (back).
            Some(e) => kv
                .update(name, body, e.revision)
                .await
                .map(|_| ())
                .map_err(LiveError::write),
            None => kv
                .create(name, body)
                .await
                .map(|_| ())
                .map_err(LiveError::write),
        };
        if let Err(e) = result {
            // Another node seeding at the same time wins; what it wrote is the same file.
            tracing::debug!(tenant = %name, error = %e, "Seeding a tenant raced another node.");
        }
    }
    Ok(())
}

/// Seeds the bucket from `base`, loads it and keeps this node's configuration in step with
/// it until the process ends.
pub async fn start(
    js: &jetstream::Context,
    base: Arc<Config>,
) -> Result<Arc<LiveConfig>, LiveError> {
    let kv = js
        .get_key_value(bus::KV_TENANTS)
        .await
        .map_err(|e| LiveError::Open {
            bucket: bus::KV_TENANTS,
            source: Box::new(e),
        })?;
    seed(&kv, &base).await?;
    let (stored, last) = read_complete(&kv, &base).await?;
    let tenants = stored.into_iter().map(|(k, v)| (k, v.config)).collect();
    let live = match compose(&base, tenants) {
        Ok(cfg) => LiveConfig::fixed(Arc::new(cfg)),
        Err(e) => {
            tracing::error!(error = %e, "The tenants in the config bucket do not validate; using the config file's until they are fixed.");
            LiveConfig::fixed(base.clone())
        }
    };
    live.seen.send_replace(last);
    tokio::spawn(watch(kv, base, live.clone(), last));
    Ok(live)
}

/// Applies every change after `from` (a bucket sequence); re-opens the watch when it ends.
async fn watch(kv: kv::Store, base: Arc<Config>, live: Arc<LiveConfig>, mut from: u64) {
    let mut tenants: BTreeMap<String, TenantConfig> = live.get().cfg.tenants.clone();
    loop {
        let mut updates = match kv.watch_all_from_revision(from + 1).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot watch the config bucket; retrying.");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        while let Some(entry) = updates.next().await {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "The config bucket watch failed; re-opening it.");
                    break;
                }
            };
            from = entry.revision;
            let mut next = tenants.clone();
            match entry.operation {
                kv::Operation::Put => match serde_json::from_slice::<StoredTenant>(&entry.value) {
                    Ok(t) => {
                        next.insert(entry.key.clone(), t.config);
                    }
                    Err(e) => {
                        tracing::error!(tenant = %entry.key, error = %e, "A tenant change is not valid JSON; not applied.");
                        live.seen.send_replace(entry.revision);
                        continue;
                    }
                },
                kv::Operation::Delete | kv::Operation::Purge => {
                    next.remove(&entry.key);
                }
            }
            match compose(&base, next.clone()) {
                Ok(cfg) => {
                    tenants = next;
                    live.install(cfg);
                    tracing::info!(tenant = %entry.key, revision = entry.revision, "Applied a tenant configuration change.");
                }
                Err(e) => {
                    tracing::error!(tenant = %entry.key, error = %e, "A tenant change does not validate; keeping the previous configuration.");
                }
            }
            live.seen.send_replace(entry.revision);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_without_a_seeded_file_tenant_is_incomplete() {
        let base = Config::from_toml(
            "[tenants.acme]\ndomains = [\"acme.test\"]\n\n[tenants.beta]\ndomains = [\"beta.test\"]\n",
        )
        .expect("config");
        let mut stored = BTreeMap::new();
        assert_eq!(missing_file_tenants(&base, &stored), ["acme", "beta"]);
        let acme = base.tenants["acme"].clone();
        stored.insert(
            "acme".into(),
            StoredTenant::new(acme, Source::File, "config file"),
        );
        assert_eq!(missing_file_tenants(&base, &stored), ["beta"]);
        let beta = base.tenants["beta"].clone();
        stored.insert("beta".into(), StoredTenant::new(beta, Source::Api, "admin"));
        assert!(missing_file_tenants(&base, &stored).is_empty());
    }
}

//! Plugins uploaded through the admin API live in the JetStream object store
//! `postwire_plugins`; a node fetches a version into `plugin_host.upload_dir` the first time
//! a tenant's chain needs it.

use postwire_core::{Config, bus};

/// Why an uploaded plugin could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The object store did not answer or does not hold the object.
    #[error("JetStream object store: {0}")]
    Bus(String),
    #[error("the stored object does not match its hash")]
    Corrupt,
    #[error("writing the plugin file: {0}")]
    Io(#[from] std::io::Error),
}

impl UploadError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, UploadError::Bus(_) | UploadError::Io(_))
    }
}

fn bus(e: impl std::fmt::Display) -> UploadError {
    UploadError::Bus(e.to_string())
}

/// Fetches every uploaded plugin of `tenant`'s chain missing on this node. A version that
/// cannot be fetched is logged; loading it then fails and the tenant's failure mode applies.
pub async fn fetch_missing(js: &async_nats::jetstream::Context, cfg: &Config, tenant: &str) {
    let Some(t) = cfg.tenants.get(tenant) else {
        return;
    };
    for p in &t.plugins {
        if p.path.is_file() {
            continue;
        }
        let Some(object) = cfg.plugin_host.uploaded_object(&p.path) else {
            continue;
        };
        if let Err(e) = fetch(js, &object, &p.path).await {
            tracing::error!(tenant, object, error = %e, "An uploaded plugin cannot be fetched.");
        }
    }
}

async fn fetch(
    js: &async_nats::jetstream::Context,
    object: &str,
    path: &std::path::Path,
) -> Result<(), UploadError> {
    use tokio::io::AsyncReadExt as _;
    let store = js.get_object_store(bus::OBJ_PLUGINS).await.map_err(bus)?;
    let mut obj = store.get(object).await.map_err(bus)?;
    let mut bytes = Vec::new();
    obj.read_to_end(&mut bytes).await.map_err(bus)?;
    // The name carries the content hash: a corrupt copy is never used.
    let want = object
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .trim_end_matches(".wasm");
    if postwire_core::ids::sha256_hex(&bytes) != want {
        return Err(UploadError::Corrupt);
    }
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let tmp = path.with_extension("part");
    tokio::fs::write(&tmp, &bytes).await?;
    tokio::fs::rename(&tmp, path).await?;
    tracing::info!(object, "Fetched an uploaded plugin.");
    Ok(())
}

//! The process worker's plugin host, started on demand: a worker whose tenants have no
//! plugins reserves nothing, and the first configuration (file or live) with plugins starts it.

use std::sync::Arc;

use postwire_core::Config;

use super::{TransformSettings, Transformer};

/// The plugin host, started when the configuration first has a tenant with plugins (the
/// engine reserves address space up front, so a worker without plugins has none).
#[derive(Default)]
pub struct PluginSlot(std::sync::OnceLock<Result<Arc<Transformer>, HostError>>);

/// The plugin host cannot start (the engine cannot reserve its memory, …). Kept once it
/// happened; a mail that needs the host is retried later.
#[derive(Debug, Clone, thiserror::Error)]
#[error("starting the plugin host: {0}")]
pub struct HostError(String);

impl HostError {
    pub fn is_retryable(&self) -> bool {
        true
    }
}

impl PluginSlot {
    /// The host, started now if `cfg` has plugins and it is not running yet.
    pub fn get(&self, cfg: &Config) -> Result<Option<Arc<Transformer>>, HostError> {
        if let Some(host) = self.0.get() {
            return host.clone().map(Some);
        }
        if cfg.tenants.values().all(|t| t.plugins.is_empty()) {
            return Ok(None);
        }
        self.0
            .get_or_init(|| match plugin_host(cfg) {
                Ok(Some(h)) => Ok(h),
                Ok(None) => Err(HostError("no plugins".into())),
                Err(e) => Err(e),
            })
            .clone()
            .map(Some)
    }
}

/// The plugin host, when a tenant has plugins (the engine reserves address space up front).
fn plugin_host(cfg: &Config) -> Result<Option<Arc<Transformer>>, HostError> {
    if cfg.tenants.values().all(|t| t.plugins.is_empty()) {
        return Ok(None);
    }
    let settings = TransformSettings::from_config(&cfg.plugin_host);
    let host = Arc::new(Transformer::new(settings).map_err(|e| HostError(e.to_string()))?);
    // Compile (or load from the cache) every plugin now, in the background, rather than with
    // the first mail; a mail that comes first loads its plugins itself.
    let paths: Vec<_> = cfg
        .tenants
        .values()
        .flat_map(|t| t.plugins.iter().map(|p| p.path.clone()))
        .collect();
    let preload = host.clone();
    tokio::task::spawn_blocking(move || {
        for path in paths {
            if let Err(e) = preload.load(&path) {
                tracing::error!(error = %e, "A plugin cannot be loaded; its tenant's failure mode applies until it is fixed.");
            }
        }
    });
    Ok(Some(host))
}

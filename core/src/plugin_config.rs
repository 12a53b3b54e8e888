//! Plugin settings: the host's limits and cache (`[plugin_host]`) and one plugin of a
//! tenant's chain.

use serde::{Deserialize, Serialize};

/// The default `plugin_host.deadline_ms`.
pub const DEFAULT_DEADLINE_MS: u64 = 2_000;
/// The default `plugin_host.fuel`.
pub const DEFAULT_FUEL: u64 = 500_000_000;

/// Limits and the compiled-component cache of the WebAssembly plugin host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginHostConfig {
    /// Wall-clock limit of one plugin call (epoch deadline), 1 to 60000: the backstop for
    /// time spent outside the plugin's own instructions; `fuel` bounds those.
    pub deadline_ms: u64,
    /// WebAssembly instructions (roughly) one plugin call may execute: a CPU bound that
    /// does not depend on the machine's load. 0: no fuel limit (the deadline alone).
    pub fuel: u64,
    /// Linear memory one plugin instance may grow to, 1 MiB to 4 GiB.
    pub memory_limit_bytes: usize,
    /// Where precompiled plugins are kept (Python and JavaScript plugins take seconds to
    /// compile, milliseconds to load from here). Empty: compile at every start.
    pub cache_dir: String,
    /// Where plugins uploaded through the admin API are kept on each node
    /// (`<upload_dir>/<tenant>/<name>/<sha256>.wasm`, fetched from the JetStream object store
    /// `postwire_plugins` when missing).
    pub upload_dir: String,
}

impl PluginHostConfig {
    /// The local file of an uploaded plugin version.
    pub fn uploaded_path(&self, tenant: &str, name: &str, sha256: &str) -> std::path::PathBuf {
        std::path::Path::new(&self.upload_dir)
            .join(tenant)
            .join(name)
            .join(format!("{sha256}.wasm"))
    }

    /// The object name (`<tenant>/<name>/<sha256>.wasm`) of a path under `upload_dir`.
    pub fn uploaded_object(&self, path: &std::path::Path) -> Option<String> {
        let rest = path.strip_prefix(&self.upload_dir).ok()?;
        let parts: Vec<&str> = rest.iter().filter_map(|p| p.to_str()).collect();
        match parts.as_slice() {
            [t, n, f] if f.ends_with(".wasm") => Some(format!("{t}/{n}/{f}")),
            _ => None,
        }
    }
}

impl Default for PluginHostConfig {
    fn default() -> Self {
        Self {
            deadline_ms: DEFAULT_DEADLINE_MS,
            fuel: DEFAULT_FUEL,
            memory_limit_bytes: 128 << 20,
            cache_dir: "data/plugin-cache".into(),
            upload_dir: "data/plugins".into(),
        }
    }
}

/// One plugin of a tenant's chain.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The component (`.wasm`); relative paths are relative to the config file. Replacing
    /// the file takes effect with the next message.
    #[schema(value_type = String)]
    pub path: std::path::PathBuf,
    /// Given to the plugin as JSON (host function `config`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
}

/// What happens to a mail when a plugin traps, times out, runs out of memory or fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PluginFailure {
    /// Deliver the event untransformed and write an audit record.
    FailOpen,
    /// Deliver nothing; keep the mail in the DLQ (`dlq.<tenant>._plugin`) with the error.
    #[default]
    FailClosed,
}

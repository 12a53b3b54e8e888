//! Loading the configuration and connecting to JetStream.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use postwire_core::live::LiveConfig;
use postwire_core::{Config, bus};

use crate::NodeError;

/// How long a role waits for JetStream at start before giving up with a clear error.
/// Generous: on a fresh cluster, stream creation waits for leader elections.
pub const START_DEADLINE: Duration = Duration::from_secs(60);

/// Loads and validates the configuration file.
pub fn load(path: &Path) -> Result<Arc<Config>, NodeError> {
    Config::load(path).map(Arc::new).map_err(NodeError::config)
}

/// Connects and makes sure the streams exist, waiting for JetStream up to `deadline`.
pub async fn jetstream(
    cfg: &Config,
    name: &str,
    deadline: Duration,
) -> Result<async_nats::jetstream::Context, NodeError> {
    let client = bus::connect(&cfg.nats, name).await.map_err(|e| {
        NodeError::Unavailable(format!("cannot connect to NATS at {}: {e}", cfg.nats.url))
    })?;
    let js = bus::jetstream(client, &cfg.nats);
    bus::ensure_streams(&js, &cfg.nats, deadline)
        .await
        .map_err(|e| {
            NodeError::Unavailable(format!(
                "JetStream at {} is not usable ({e}). Is nats-server running with -js? `make run` starts one.",
                cfg.nats.url
            ))
        })?;
    Ok(js)
}

/// Connects for a short command: no waiting for a server that is not there, no stream
/// creation.
pub async fn jetstream_now(cfg: &Config) -> Result<async_nats::jetstream::Context, NodeError> {
    let client = async_nats::ConnectOptions::new()
        .name("postwire-cli")
        .connection_timeout(Duration::from_secs(5))
        .connect(cfg.nats.servers())
        .await
        .map_err(|e| {
            NodeError::Unavailable(format!("cannot connect to NATS at {}: {e}", cfg.nats.url))
        })?;
    Ok(bus::jetstream(client, &cfg.nats))
}

/// This node's tenant configuration: the config bucket (seeded from the file, watched) when
/// `admin.live_config` is on, else the file's.
pub async fn live_config(
    cfg: &Arc<Config>,
    js: &async_nats::jetstream::Context,
) -> Result<Arc<LiveConfig>, NodeError> {
    if !cfg.admin.live_config {
        return Ok(LiveConfig::fixed(cfg.clone()));
    }
    postwire_core::live::start(js, cfg.clone())
        .await
        .map_err(|e| NodeError::Unavailable(format!("live configuration: {e}")))
}

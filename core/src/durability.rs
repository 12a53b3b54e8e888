//! Accepted means on disk. A JetStream PubAck only says the server has the message; whether
//! it is on disk depends on the server's `sync_interval` (a timer, two minutes by default).
//! postwire answers 250 after the PubAck, so it needs servers that fsync every write before
//! acknowledging it (`sync_interval: always`). This module reads that setting from the
//! servers' monitoring endpoint (`/varz`, `jetstream.config.sync_always`) and refuses a
//! server that would acknowledge unsynced writes, unless `nats.allow_unsynced` says so.
//!
//! [`crate::doctor`] prints the same facts for the whole deployment.

use std::time::Duration;

use serde::Deserialize;

use crate::config::NatsConfig;

/// How long the start-up check keeps trying to reach a monitoring endpoint (the server may
/// have opened its client port a moment before its monitoring port).
const START_WAIT: Duration = Duration::from_secs(10);

/// Why postwire cannot promise that an accepted mail is on disk.
#[derive(Debug, thiserror::Error)]
pub enum DurabilityError {
    #[error("no monitoring URL to read the JetStream settings from: set nats.monitor_url")]
    NoMonitorUrl,
    #[error(
        "cannot read the JetStream settings of nats-server at {url}/varz ({reason}); is its \
         monitoring port open (`http: 8222` in its config, or -m 8222) and nats.monitor_url right?"
    )]
    Unreadable { url: String, reason: String },
    #[error("nats-server at {url} does not run JetStream (start it with -js)")]
    NoJetStream { url: String },
    #[error(
        "nats-server {server} ({url}) acknowledges writes before they are on disk: it syncs \
         them every {} s (sync_interval), so a power cut can lose mail already answered 250",
        interval.as_secs()
    )]
    Unsynced {
        url: String,
        server: String,
        interval: Duration,
    },
}

impl DurabilityError {
    /// The problem and what to do about it: the message `ingest` and `dev` exit with.
    pub fn explain(&self) -> String {
        format!("{self}. {}", self.advice())
    }

    /// What to do about it, for the message at start.
    pub fn advice(&self) -> &'static str {
        match self {
            DurabilityError::Unsynced { .. } => {
                "Set `sync_interval: always` in the jetstream block of nats-server's config \
                 (docs/operations.md, \"Durability\"), or set nats.allow_unsynced = true to \
                 accept that risk."
            }
            _ => {
                "postwire checks that JetStream syncs every write before it answers 250; set \
                 nats.allow_unsynced = true to start without that check."
            }
        }
    }
}

/// What one server says about how it stores JetStream data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSync {
    pub monitor_url: String,
    pub server_name: String,
    pub version: String,
    /// `sync_interval: always`: every write is fsynced before it is acknowledged.
    pub sync_always: bool,
    /// The timer of the background sync (used when `sync_always` is false).
    pub sync_interval: Duration,
    pub store_dir: String,
    /// JetStream's file storage limit (`max_file_store`; by default 75% of the disk space
    /// free when the server started) and what is used of it.
    pub max_storage_bytes: u64,
    pub used_storage_bytes: u64,
    /// The cluster's name, when the server is in one.
    pub cluster: Option<String>,
}

impl ServerSync {
    /// `Err(Unsynced)` when the server acknowledges writes it has not synced.
    pub fn require_synced(&self) -> Result<(), DurabilityError> {
        if self.sync_always {
            Ok(())
        } else {
            Err(DurabilityError::Unsynced {
                url: self.monitor_url.clone(),
                server: self.server_name.clone(),
                interval: self.sync_interval,
            })
        }
    }
}

#[derive(Deserialize)]
struct Varz {
    #[serde(default)]
    server_name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    jetstream: Option<VarzJetStream>,
    #[serde(default)]
    cluster: Option<VarzCluster>,
}

#[derive(Deserialize)]
struct VarzJetStream {
    config: Option<VarzJsConfig>,
    #[serde(default)]
    stats: Option<VarzJsStats>,
}

#[derive(Deserialize)]
struct VarzJsConfig {
    /// Absent when false (the server omits it).
    #[serde(default)]
    sync_always: bool,
    /// Nanoseconds.
    #[serde(default)]
    sync_interval: u64,
    #[serde(default)]
    store_dir: String,
    #[serde(default)]
    max_storage: i64,
}

#[derive(Deserialize)]
struct VarzJsStats {
    #[serde(default)]
    storage: u64,
}

#[derive(Deserialize)]
struct VarzCluster {
    #[serde(default)]
    name: Option<String>,
}

/// Parses a `/varz` answer.
pub fn parse_varz(monitor_url: &str, body: &[u8]) -> Result<ServerSync, DurabilityError> {
    let v: Varz = serde_json::from_slice(body).map_err(|e| DurabilityError::Unreadable {
        url: monitor_url.to_string(),
        reason: format!("not a /varz answer: {e}"),
    })?;
    let Some(cfg) = v.jetstream.as_ref().and_then(|j| j.config.as_ref()) else {
        return Err(DurabilityError::NoJetStream {
            url: monitor_url.to_string(),
        });
    };
    let used = v
        .jetstream
        .as_ref()
        .and_then(|j| j.stats.as_ref())
        .map_or(0, |s| s.storage);
    Ok(ServerSync {
        monitor_url: monitor_url.to_string(),
        server_name: v.server_name,
        version: v.version,
        sync_always: cfg.sync_always,
        sync_interval: Duration::from_nanos(cfg.sync_interval),
        store_dir: cfg.store_dir.clone(),
        max_storage_bytes: u64::try_from(cfg.max_storage).unwrap_or(0),
        used_storage_bytes: used,
        cluster: v.cluster.and_then(|c| c.name).filter(|n| !n.is_empty()),
    })
}

/// An HTTP client for the monitoring endpoints (short timeouts: they answer at once). The
/// NATS servers are reached directly, never through a proxy from `HTTP_PROXY`.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

/// GETs `<monitor_url><path>` and returns the body.
pub async fn get(
    http: &reqwest::Client,
    monitor_url: &str,
    path: &str,
) -> Result<bytes::Bytes, DurabilityError> {
    let unreadable = |reason: String| DurabilityError::Unreadable {
        url: monitor_url.to_string(),
        reason,
    };
    let resp = http
        .get(format!("{monitor_url}{path}"))
        .send()
        .await
        .map_err(|e| unreadable(error_chain(&e)))?;
    if !resp.status().is_success() {
        return Err(unreadable(format!("HTTP {}", resp.status())));
    }
    resp.bytes().await.map_err(|e| unreadable(error_chain(&e)))
}

/// Reads one server's settings from `/varz`.
pub async fn read_server(
    http: &reqwest::Client,
    monitor_url: &str,
) -> Result<ServerSync, DurabilityError> {
    let body = get(http, monitor_url, "/varz").await?;
    parse_varz(monitor_url, &body)
}

/// The start-up check of `ingest` and `dev`: every server that can be read must sync every
/// write, and at least one must be readable. With `nats.allow_unsynced` it only warns.
pub async fn ensure_synced(cfg: &NatsConfig) -> Result<(), DurabilityError> {
    ensure_synced_within(cfg, START_WAIT).await
}

async fn ensure_synced_within(cfg: &NatsConfig, wait: Duration) -> Result<(), DurabilityError> {
    let result = check(cfg, wait).await;
    match (&result, cfg.allow_unsynced) {
        (Ok(n), _) => {
            tracing::info!(
                servers = n,
                "JetStream syncs every write to disk before it acknowledges it."
            );
            Ok(())
        }
        (Err(e), true) => {
            tracing::warn!(error = %e, "nats.allow_unsynced is set: starting although a power cut may lose accepted mail.");
            Ok(())
        }
        (Err(_), false) => result.map(|_| ()),
    }
}

/// Reads every monitoring URL (retrying unreachable ones until `wait` has passed); the
/// number of servers that sync every write, or the first problem.
async fn check(cfg: &NatsConfig, wait: Duration) -> Result<usize, DurabilityError> {
    let urls = cfg.monitor_urls();
    if urls.is_empty() {
        return Err(DurabilityError::NoMonitorUrl);
    }
    let http = http_client();
    let until = tokio::time::Instant::now() + wait;
    let mut synced = 0;
    let mut unreadable = None;
    for url in &urls {
        let server = loop {
            match read_server(&http, url).await {
                Err(DurabilityError::Unreadable { .. }) if tokio::time::Instant::now() < until => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => break other,
            }
        };
        match server {
            Ok(s) => {
                s.require_synced()?;
                synced += 1;
            }
            Err(e @ DurabilityError::Unreadable { .. }) => {
                tracing::warn!(error = %e, "A NATS server's JetStream settings could not be read.");
                unreadable.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    match unreadable {
        Some(e) if synced == 0 => Err(e),
        _ => Ok(synced),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from nats-server 2.15 (`-js`, and `sync_interval: always`), trimmed.
    const DEFAULT: &str = r#"{"server_name":"n1","version":"2.15.1","jetstream":{"config":{"max_memory":1,"max_storage":63632080896,"store_dir":"/tmp/b/jetstream","sync_interval":120000000000,"strict":true},"stats":{"storage":4096}}}"#;
    const ALWAYS: &str = r#"{"server_name":"n2","version":"2.15.1","cluster":{"name":"pw"},"jetstream":{"config":{"max_storage":100,"store_dir":"/d","sync_interval":120000000000,"sync_always":true},"stats":{"storage":0}}}"#;

    #[test]
    fn default_server_is_unsynced() {
        let s = parse_varz("http://h:8222", DEFAULT.as_bytes()).unwrap();
        assert!(!s.sync_always);
        assert_eq!(s.sync_interval, Duration::from_secs(120));
        assert_eq!(s.used_storage_bytes, 4096);
        let err = s.require_synced().unwrap_err();
        assert!(
            err.to_string().contains("every 120 s") && err.to_string().contains("n1"),
            "{err}"
        );
        assert!(err.advice().contains("sync_interval: always"));
    }

    #[test]
    fn sync_always_server_passes() {
        let s = parse_varz("http://h:8222", ALWAYS.as_bytes()).unwrap();
        assert!(s.sync_always);
        assert_eq!(s.cluster.as_deref(), Some("pw"));
        s.require_synced().unwrap();
    }

    #[test]
    fn server_without_jetstream_is_named() {
        let err = parse_varz("http://h:8222", br#"{"server_name":"x"}"#).unwrap_err();
        assert!(matches!(err, DurabilityError::NoJetStream { .. }), "{err}");
    }

    #[tokio::test]
    async fn unreachable_endpoint_is_refused_unless_allowed() {
        // A port nothing listens on (bound, then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cfg = NatsConfig {
            monitor_url: format!("http://127.0.0.1:{port}"),
            ..Default::default()
        };
        let err = ensure_synced_within(&cfg, Duration::ZERO)
            .await
            .unwrap_err();
        assert!(matches!(err, DurabilityError::Unreadable { .. }), "{err}");
        cfg.allow_unsynced = true;
        ensure_synced_within(&cfg, Duration::ZERO).await.unwrap();
    }
}

//! `postwire doctor`: is an accepted mail on disk, everywhere? It reads each NATS server's
//! sync policy and storage room from its monitoring endpoint, the JetStream meta group's
//! members (to name servers it could not check), and the storage type, replicas and
//! persistence mode of every postwire stream, and says whether the whole deployment keeps
//! the promise behind `250`. Problems are data in the [`Report`]; the binary prints it and
//! exits 1 when [`Report::durable`] is false.

use std::fmt;
use std::time::Duration;

use async_nats::jetstream::stream::{PersistenceMode, StorageType};
use serde::Deserialize;

use crate::bus;
use crate::config::Config;
use crate::durability::{self, DurabilityError, ServerSync};
use crate::storage_config::Backend;

/// Every stream postwire creates (the KV buckets are streams `KV_<bucket>`), and what it
/// holds.
pub const STREAMS: &[(&str, &str)] = &[
    (bus::STREAM_MAIL, "mail accepted by ingest, until processed"),
    (bus::STREAM_OUTBOX, "deliveries, until delivered"),
    (bus::STREAM_DLQ, "deliveries that gave up"),
    (bus::STREAM_QUARANTINE, "mail held back by a policy"),
    (bus::STREAM_AUDIT, "audit records (history, not mail)"),
    (bus::STREAM_PAYLOADS, "delivered payloads kept for a resend"),
    (
        "KV_postwire_endpoints",
        "endpoint state (disabled after 410)",
    ),
    (
        "KV_postwire_attempts",
        "attempt counts of retried deliveries",
    ),
    ("KV_postwire_tenants", "live tenant configuration"),
];

/// Streams allowed to skip the per-write fsync (see [`bus::audit_persist_mode`]).
fn may_be_async(stream: &str) -> bool {
    stream == bus::STREAM_AUDIT || stream == bus::STREAM_PAYLOADS
}

pub struct Report {
    pub config_replicas: usize,
    pub servers: Vec<Result<ServerSync, DurabilityError>>,
    /// Members of the JetStream meta group that no monitoring URL answered for.
    pub unchecked_peers: Vec<String>,
    pub cluster: Option<(String, Vec<String>)>,
    /// `Err` when NATS could not be reached at all.
    pub streams: Result<Vec<StreamReport>, String>,
    pub object_store: String,
}

pub struct StreamReport {
    pub name: &'static str,
    pub holds: &'static str,
    /// `None`: not created yet.
    pub found: Option<StreamFacts>,
}

pub struct StreamFacts {
    pub memory: bool,
    pub replicas: usize,
    pub async_persist: bool,
    /// Replicas the stream's group reports offline or behind.
    pub degraded: Vec<String>,
}

impl StreamReport {
    /// Why this stream does not keep accepted data on disk, if it does not.
    pub fn problem(&self, config_replicas: usize) -> Option<String> {
        let f = self.found.as_ref()?;
        if f.memory {
            return Some("memory storage: lost on any restart".into());
        }
        if f.async_persist && !may_be_async(self.name) {
            return Some("persist_mode async: acknowledged before it is synced".into());
        }
        if f.replicas < config_replicas {
            return Some(format!(
                "R{} but nats.stream_replicas is {config_replicas}",
                f.replicas
            ));
        }
        None
    }
}

impl Report {
    /// Every server that could be seen syncs every write, at least one was seen, no peer of
    /// the meta group is unaccounted for, and every stream keeps its data on disk.
    pub fn durable(&self) -> bool {
        let servers_ok = !self.servers.is_empty()
            && self
                .servers
                .iter()
                .all(|s| s.as_ref().is_ok_and(|s| s.sync_always));
        let streams_ok = self
            .streams
            .as_ref()
            .is_ok_and(|v| v.iter().all(|s| s.problem(self.config_replicas).is_none()));
        servers_ok && self.unchecked_peers.is_empty() && streams_ok
    }
}

#[derive(Deserialize, Default)]
struct Jsz {
    #[serde(default)]
    meta_cluster: Option<MetaCluster>,
}

#[derive(Deserialize, Default)]
struct MetaCluster {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    leader: Option<String>,
    #[serde(default)]
    replicas: Vec<MetaPeer>,
}

#[derive(Deserialize)]
struct MetaPeer {
    name: String,
}

/// Builds the report for a configuration (no stream is created or changed).
pub async fn report(cfg: &Config) -> Report {
    let http = durability::http_client();
    let mut servers = Vec::new();
    let mut cluster: Option<(String, Vec<String>)> = None;
    for url in cfg.nats.monitor_urls() {
        let server = durability::read_server(&http, &url).await;
        if server.as_ref().is_ok_and(|s| s.cluster.is_some()) && cluster.is_none() {
            cluster = meta_group(&http, &url).await;
        }
        servers.push(server);
    }
    let seen: Vec<&str> = servers
        .iter()
        .filter_map(|s| s.as_ref().ok().map(|s| s.server_name.as_str()))
        .collect();
    let unchecked_peers = cluster.as_ref().map_or_else(Vec::new, |(_, peers)| {
        peers
            .iter()
            .filter(|p| !seen.contains(&p.as_str()))
            .cloned()
            .collect()
    });
    Report {
        config_replicas: cfg.nats.stream_replicas,
        servers,
        unchecked_peers,
        cluster,
        streams: streams(cfg).await,
        object_store: match cfg.storage.backend {
            Backend::None => "none (raw mail travels inside the MAIL stream)".into(),
            Backend::Fs => format!(
                "fs {}: each object and its directories are fsynced before the PubAck",
                cfg.storage.path
            ),
            Backend::S3 => "s3: durable once the service answered the PUT".into(),
        },
    }
}

async fn meta_group(http: &reqwest::Client, url: &str) -> Option<(String, Vec<String>)> {
    let body = durability::get(http, url, "/jsz").await.ok()?;
    let meta = serde_json::from_slice::<Jsz>(&body).ok()?.meta_cluster?;
    let mut peers: Vec<String> = meta.replicas.into_iter().map(|p| p.name).collect();
    peers.extend(meta.leader);
    peers.sort();
    peers.dedup();
    Some((meta.name.unwrap_or_default(), peers))
}

async fn streams(cfg: &Config) -> Result<Vec<StreamReport>, String> {
    let client = async_nats::ConnectOptions::new()
        .name("postwire-doctor")
        .connection_timeout(Duration::from_secs(3))
        .connect(cfg.nats.servers())
        .await
        .map_err(|e| format!("cannot connect to NATS at {}: {e}", cfg.nats.url))?;
    let js = bus::jetstream(client, &cfg.nats);
    let mut out = Vec::new();
    for &(name, holds) in STREAMS {
        let found = match js.get_stream(name).await {
            Ok(mut s) => {
                let info = s.info().await.map_err(|e| format!("stream {name}: {e}"))?;
                let degraded = info.cluster.as_ref().map_or_else(Vec::new, |c| {
                    c.replicas
                        .iter()
                        .filter(|p| p.offline || !p.current)
                        .map(|p| p.name.clone())
                        .collect()
                });
                Some(StreamFacts {
                    memory: info.config.storage == StorageType::Memory,
                    replicas: info.config.num_replicas,
                    async_persist: info.config.persist_mode == Some(PersistenceMode::Async),
                    degraded,
                })
            }
            Err(e) if is_not_found(&e) => None,
            Err(e) => return Err(format!("stream {name}: {e}")),
        };
        out.push(StreamReport { name, holds, found });
    }
    Ok(out)
}

fn is_not_found(e: &async_nats::jetstream::context::GetStreamError) -> bool {
    use async_nats::jetstream::ErrorCode;
    use async_nats::jetstream::context::GetStreamErrorKind;
    matches!(e.kind(), GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

fn mib(b: u64) -> String {
    let mib = b as f64 / (1024.0 * 1024.0);
    if mib >= 1024.0 {
        format!("{:.1} GiB", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "NATS servers: is a PubAck on disk?")?;
        for s in &self.servers {
            match s {
                Ok(s) if s.sync_always => writeln!(
                    f,
                    "  ok    {} ({}, nats-server {}): sync_interval always; JetStream storage {} used of {}",
                    s.server_name,
                    s.monitor_url,
                    s.version,
                    mib(s.used_storage_bytes),
                    mib(s.max_storage_bytes)
                )?,
                Ok(s) => writeln!(
                    f,
                    "  FAIL  {} ({}): syncs every {} s; a power cut loses what it acknowledged since; JetStream storage {} used of {}",
                    s.server_name,
                    s.monitor_url,
                    s.sync_interval.as_secs(),
                    mib(s.used_storage_bytes),
                    mib(s.max_storage_bytes)
                )?,
                Err(e) => writeln!(f, "  FAIL  {e}")?,
            }
        }
        if self.servers.is_empty() {
            writeln!(f, "  FAIL  {}", DurabilityError::NoMonitorUrl)?;
        }
        if let Some((name, peers)) = &self.cluster {
            writeln!(
                f,
                "  cluster {name}: {} server(s) in the JetStream meta group ({})",
                peers.len(),
                peers.join(", ")
            )?;
        }
        if !self.unchecked_peers.is_empty() {
            writeln!(
                f,
                "  FAIL  not checked (add their monitoring URLs to nats.monitor_url): {}",
                self.unchecked_peers.join(", ")
            )?;
        }
        writeln!(f, "Streams: storage, replicas, persistence")?;
        match &self.streams {
            Err(e) => writeln!(f, "  FAIL  {e}")?,
            Ok(list) => {
                for s in list {
                    let Some(x) = &s.found else {
                        writeln!(f, "  -     {:<22} not created yet ({})", s.name, s.holds)?;
                        continue;
                    };
                    let facts = format!(
                        "{} R{} {}",
                        if x.memory { "memory" } else { "file" },
                        x.replicas,
                        if x.async_persist { "async" } else { "synced" }
                    );
                    let (mark, note) = match s.problem(self.config_replicas) {
                        Some(p) => ("FAIL", p),
                        None if x.async_persist => {
                            ("ok", "not fsynced per write, on purpose".into())
                        }
                        None => ("ok", String::new()),
                    };
                    write!(f, "  {mark:<5} {:<22} {facts:<16} {}", s.name, s.holds)?;
                    if !note.is_empty() {
                        write!(f, "; {note}")?;
                    }
                    if !x.degraded.is_empty() {
                        write!(f, "; replicas offline or behind: {}", x.degraded.join(", "))?;
                    }
                    writeln!(f)?;
                }
            }
        }
        writeln!(f, "Object storage: {}", self.object_store)?;
        if self.durable() {
            write!(f, "Durable: a mail answered 250 is on disk.")
        } else {
            write!(
                f,
                "NOT durable: a power cut can lose mail answered 250 (see FAIL above, and docs/operations.md, \"Durability\")."
            )
        }
    }
}

//! [`start`]: one node, running the [`Roles`] its [`Options`] ask for, until its
//! [`Shutdown`]; [`Running::wait`] waits for every part to finish its work in flight.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use postwire_core::Config;
use postwire_core::live::LiveConfig;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{NodeError, Shutdown, connect, ingest, listeners};

/// The roles a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles {
    /// SMTP (and SES) intake.
    pub ingest: bool,
    /// The process worker (`MAIL` → `OUTBOX`).
    pub process: bool,
    /// The deliver worker (`OUTBOX` → webhooks).
    pub deliver: bool,
    /// The admin API and dashboard (needed in `admin`; in `dev` when a token is set).
    pub admin: bool,
}

impl Roles {
    pub const INGEST: Roles = Roles {
        ingest: true,
        process: false,
        deliver: false,
        admin: false,
    };
    pub const WORKER: Roles = Roles {
        ingest: false,
        process: true,
        deliver: false,
        admin: false,
    };
    pub const DELIVER: Roles = Roles {
        ingest: false,
        process: false,
        deliver: true,
        admin: false,
    };
    pub const ADMIN: Roles = Roles {
        ingest: false,
        process: false,
        deliver: false,
        admin: true,
    };
    /// Ingest, process and deliver in one process.
    pub const PIPELINE: Roles = Roles {
        ingest: true,
        process: true,
        deliver: true,
        admin: false,
    };
}

/// How to start a node.
pub struct Options {
    /// The NATS connection name (`postwire-<role>`).
    pub name: String,
    pub roles: Roles,
    /// Already-bound SMTP listeners (tests bind port 0); `None` binds `smtp.listen` and
    /// `smtp.also_listen`.
    pub smtp: Option<Vec<TcpListener>>,
    /// `postwire dev`: make up a URL signing key for the filesystem backend when none is
    /// set, serve stored objects, and start the admin API only when a token is set.
    pub dev: bool,
    /// The local webhook sink of `postwire dev`.
    pub sink: Option<TcpListener>,
    /// The filesystem backend's URL signing key, instead of the variable named by
    /// `storage.signing_key_env` (embedders and tests).
    pub blob_key: Option<Vec<u8>>,
    /// How long to wait for JetStream at start.
    pub start_deadline: Duration,
}

impl Options {
    pub fn new(name: &str, roles: Roles) -> Options {
        Options {
            name: name.to_string(),
            roles,
            smtp: None,
            dev: false,
            sink: None,
            blob_key: None,
            start_deadline: connect::START_DEADLINE,
        }
    }
}

/// A started node.
pub struct Running {
    /// Where SMTP listens (empty without the ingest role).
    pub smtp: Vec<SocketAddr>,
    /// Where the admin API listens, when it runs.
    pub admin: Option<SocketAddr>,
    pub js: jetstream::Context,
    pub live: Arc<LiveConfig>,
    tasks: Vec<(&'static str, JoinHandle<Result<(), NodeError>>)>,
}

impl Running {
    /// Waits for every part to stop (after the shutdown). A part that fails ends the wait
    /// at once with its error, so the process exits and its supervisor restarts it rather
    /// than leaving a node that accepts mail nobody processes.
    pub async fn wait(self) -> Result<(), NodeError> {
        let mut parts: futures::stream::FuturesUnordered<_> = self
            .tasks
            .into_iter()
            .map(|(name, task)| async move {
                match task.await {
                    Ok(r) => r,
                    Err(e) => Err(NodeError::Stopped(format!("{name} crashed: {e}"))),
                }
            })
            .collect();
        while let Some(r) = futures::StreamExt::next(&mut parts).await {
            if let Err(e) = r {
                tracing::error!(error = %e, "A part of the node stopped with an error.");
                return Err(e);
            }
        }
        Ok(())
    }
}

fn stopped(name: &'static str) -> impl Fn(postwire_stages::StageError) -> NodeError {
    move |e| NodeError::Stopped(format!("{name} worker stopped: {e}"))
}

/// Refuses a role process (`postwire worker`, …) on the filesystem storage backend: its
/// URLs are served only by `postwire dev`, so a split deployment would hand receivers URLs
/// that nothing answers. `ingest` alone only stores (claim check) and is allowed.
pub fn check_split_storage(cfg: &Config, roles: Roles) -> Result<(), NodeError> {
    if roles.process && cfg.storage.backend == postwire_core::storage_config::Backend::Fs {
        return Err(NodeError::Config(
            "storage.backend = \"fs\" works only with `postwire dev`, which serves its URLs; \
             the separate roles would hand receivers attachment and raw-mail URLs nothing \
             serves. Use backend = \"s3\" (MinIO, Ceph, R2, AWS; see deploy/postwire.toml) \
             or backend = \"none\""
                .into(),
        ));
    }
    Ok(())
}

/// Starts the roles of `opts` on `cfg` (validated); they run until `stop`.
pub async fn start(cfg: Arc<Config>, opts: Options, stop: Shutdown) -> Result<Running, NodeError> {
    let roles = opts.roles;
    let js = connect::jetstream(&cfg, &opts.name, opts.start_deadline).await?;
    if roles.ingest {
        // A 250 waits for the PubAck: refuse a server that acknowledges unsynced writes.
        postwire_core::durability::ensure_synced(&cfg.nats)
            .await
            .map_err(|e| NodeError::Config(e.explain()))?;
    }
    let mut tasks: Vec<(&'static str, JoinHandle<Result<(), NodeError>>)> = Vec::new();
    // Every role but a lone admin API serves metrics.
    let admin_only = roles.admin && !roles.ingest && !roles.process && !roles.deliver;
    if !admin_only && let Some(t) = listeners::metrics(&cfg, &js, &stop).await? {
        tasks.push(("metrics", t));
    }
    let smtp = match (roles.ingest, opts.smtp) {
        (false, _) => Vec::new(),
        (true, Some(l)) => l,
        (true, None) => ingest::bind_smtp(&cfg).await?,
    };
    let smtp_addrs = smtp.iter().filter_map(|l| l.local_addr().ok()).collect();
    let live = connect::live_config(&cfg, &js).await?;
    if let Some(listener) = opts.sink {
        tasks.push(("sink", listeners::sink(&live, listener, &stop)));
    }
    let mut admin = None;
    if roles.admin || (opts.dev && cfg.admin.token().is_some()) {
        let (addr, t) = listeners::admin(&cfg, &js, &live, &stop).await?;
        admin = Some(addr);
        tasks.push(("admin", t));
    }
    let needs_blobs = roles.ingest || roles.process;
    // Ingest only stores: it never signs a URL, so any key will do for the fs backend.
    let random_key = opts.dev || !roles.process;
    let blobs = match needs_blobs {
        true => {
            let key = listeners::BlobKey {
                given: opts.blob_key,
                random: random_key,
            };
            listeners::blobs(&cfg, &stop, key, opts.dev, &mut tasks).await?
        }
        false => None,
    };
    if roles.ingest {
        tracing::info!(listen = %cfg.smtp.listen, "SMTP ingest is listening.");
        let t = ingest::spawn(&cfg, js.clone(), smtp, blobs.clone(), live.clone(), &stop).await?;
        tasks.push(("ingest", t));
    }
    if roles.process {
        tracing::info!("Process worker is running.");
        let run = postwire_stages::process::run_live(
            js.clone(),
            live.clone(),
            blobs,
            stop.clone().wait(),
        );
        tasks.push((
            "process",
            tokio::spawn(async move { run.await.map_err(stopped("process")) }),
        ));
    }
    if roles.deliver {
        tracing::info!("Deliver worker is running.");
        let run = postwire_stages::deliver::run_live(js.clone(), live.clone(), stop.clone().wait());
        tasks.push((
            "deliver",
            tokio::spawn(async move { run.await.map_err(stopped("deliver")) }),
        ));
    }
    Ok(Running {
        smtp: smtp_addrs,
        admin,
        js,
        live,
        tasks,
    })
}

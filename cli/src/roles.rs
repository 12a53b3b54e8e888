//! The long-running roles: `dev` (all in one), `ingest`, `worker`, `deliver`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use postwire_core::live::LiveConfig;
use postwire_core::{Config, bus};
use postwire_ingest::{IngestDeps, JetStreamPublisher};
use tokio::net::TcpListener;

use crate::shutdown::Shutdown;
use crate::tools::Failure;

/// How long a role waits for JetStream at start before giving up with a clear error.
/// Generous: on a fresh cluster, stream creation waits for leader elections.
const NATS_START_DEADLINE: Duration = Duration::from_secs(60);

pub fn load(path: &Path) -> Result<Arc<Config>, Failure> {
    Config::load(path)
        .map(Arc::new)
        .map_err(|e| Failure::Usage(e.to_string()))
}

async fn jetstream(cfg: &Config, name: &str) -> Result<async_nats::jetstream::Context, Failure> {
    connect_jetstream(cfg, name, NATS_START_DEADLINE).await
}

/// Connects and makes sure the streams exist, waiting for JetStream up to `deadline`.
pub async fn connect_jetstream(
    cfg: &Config,
    name: &str,
    deadline: Duration,
) -> Result<async_nats::jetstream::Context, Failure> {
    let client = bus::connect(&cfg.nats, name)
        .await
        .map_err(|e| Failure::Failed(format!("cannot connect to NATS at {}: {e}", cfg.nats.url)))?;
    let js = bus::jetstream(client, &cfg.nats);
    bus::ensure_streams(&js, &cfg.nats, deadline).await.map_err(|e| {
        Failure::Failed(format!(
            "JetStream at {} is not usable ({e}). Is nats-server running with -js? `make run` starts one.",
            cfg.nats.url
        ))
    })?;
    Ok(js)
}

/// The object store, and for the filesystem backend its blob server (`dev` makes up a URL
/// signing key when none is set).
async fn start_blobs(
    cfg: &Config,
    stop: &Shutdown,
    dev: bool,
    serve: bool,
) -> Result<Option<std::sync::Arc<postwire_stages::store::BlobStore>>, Failure> {
    use postwire_core::storage_config::Backend;
    let s = &cfg.storage;
    let key = crate::blobs::signing_key(&s.signing_key_env, dev).map_err(Failure::Usage)?;
    if s.backend == Backend::Fs && key.is_none() {
        return Err(Failure::Usage(format!(
            "the fs storage backend needs a URL signing key in ${}",
            s.signing_key_env
        )));
    }
    let store = postwire_stages::store::BlobStore::from_config(s, key.clone())
        .map_err(|e| Failure::Usage(format!("storage: {e}")))?
        .map(std::sync::Arc::new);
    if let (true, Some(store), Backend::Fs, Some(key)) = (serve, &store, s.backend, key) {
        let listener = TcpListener::bind(&s.listen).await.map_err(|e| {
            Failure::Failed(format!(
                "cannot listen for the blob server on {}: {e}",
                s.listen
            ))
        })?;
        tracing::info!(listen = %s.listen, "Serving stored objects on /blobs (signed URLs).");
        tokio::spawn(crate::blobs::serve(
            listener,
            store.clone(),
            key,
            stop.clone().wait(),
        ));
    }
    Ok(store)
}

/// Serves `/metrics` when `metrics.listen` is set.
async fn spawn_metrics(
    cfg: &Config,
    js: &async_nats::jetstream::Context,
    stop: &Shutdown,
) -> Result<Option<tokio::task::JoinHandle<()>>, Failure> {
    let Some(addr) = &cfg.metrics.listen else {
        return Ok(None);
    };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::Failed(format!("cannot listen for metrics on {addr}: {e}")))?;
    tracing::info!(listen = %addr, "Serving Prometheus metrics on /metrics.");
    Ok(Some(tokio::spawn(crate::metrics_http::serve(
        listener,
        js.clone(),
        stop.clone().wait(),
    ))))
}

async fn bind_smtp(cfg: &Config) -> Result<Vec<TcpListener>, Failure> {
    let mut out = Vec::new();
    for addr in std::iter::once(&cfg.smtp.listen).chain(&cfg.smtp.also_listen) {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| Failure::Failed(format!("cannot listen for SMTP on {addr}: {e}")))?;
        out.push(l);
    }
    Ok(out)
}

/// This node's tenant configuration: the config bucket (seeded from the file, watched) when
/// `admin.live_config` is on, else the file's.
pub async fn live_config(
    cfg: &Arc<Config>,
    js: &async_nats::jetstream::Context,
) -> Result<Arc<LiveConfig>, Failure> {
    if !cfg.admin.live_config {
        return Ok(LiveConfig::fixed(cfg.clone()));
    }
    postwire_core::live::start(js, cfg.clone())
        .await
        .map_err(|e| Failure::Failed(format!("live configuration: {e}")))
}

/// Starts the admin listener (API, dashboard, JWKS) when a token is configured.
async fn spawn_admin(
    cfg: &Arc<Config>,
    js: &async_nats::jetstream::Context,
    live: &Arc<LiveConfig>,
    stop: &Shutdown,
) -> Result<Option<tokio::task::JoinHandle<()>>, Failure> {
    let grants = cfg.admin.grants();
    if cfg.admin.token().is_none() {
        return Ok(None);
    }
    let listener = TcpListener::bind(&cfg.admin.listen).await.map_err(|e| {
        Failure::Failed(format!(
            "cannot listen for the admin API on {}: {e}",
            cfg.admin.listen
        ))
    })?;
    let api = crate::api::Api {
        js: js.clone(),
        grants: Arc::new(grants),
        base: cfg.clone(),
        live: live.clone(),
        writable: cfg.admin.live_config,
        keyrings: Arc::new(crate::api::keyrings(cfg)),
        plugin_host: Arc::default(),
    };
    tracing::info!(listen = %cfg.admin.listen, "The admin API and dashboard are listening.");
    Ok(Some(tokio::spawn(crate::api::serve(
        listener,
        api,
        stop.clone().wait(),
    ))))
}

/// Lets ingest store large messages through the stages' object store (claim check), whole
/// or streamed during DATA.
struct Claim(std::sync::Arc<postwire_stages::store::BlobStore>);

type BoxFuture<'a, T> = postwire_ingest::spool::BoxFuture<'a, T>;

impl postwire_ingest::ClaimCheck for Claim {
    fn put<'a>(
        &'a self,
        tenant: &'a str,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            self.0
                .put_raw(tenant, bytes)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn begin(&self) -> BoxFuture<'_, Result<Box<dyn postwire_ingest::Upload>, String>> {
        Box::pin(async move {
            let u = self.0.begin_upload().await.map_err(|e| e.to_string())?;
            Ok(Box::new(Upload(u)) as Box<dyn postwire_ingest::Upload>)
        })
    }

    fn adopt<'a>(
        &'a self,
        temp: &'a str,
        tenant: &'a str,
        sha256: &'a str,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            self.0
                .adopt(temp, tenant, sha256)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn discard<'a>(&'a self, temp: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.0.discard(temp))
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<u8>, String>> {
        Box::pin(async move {
            self.0
                .get(key)
                .await
                .map(|b| b.to_vec())
                .map_err(|e| e.to_string())
        })
    }
}

struct Upload(postwire_stages::store::spool::RawUpload);

impl postwire_ingest::Upload for Upload {
    fn write<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.0.write(bytes).await.map_err(|e| e.to_string()) })
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, Result<String, String>> {
        Box::pin(async move { self.0.finish().await.map_err(|e| e.to_string()) })
    }

    fn abort(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(self.0.abort())
    }
}

async fn ingest_task(
    cfg: &Arc<Config>,
    js: async_nats::jetstream::Context,
    listeners: Vec<TcpListener>,
    blobs: Option<std::sync::Arc<postwire_stages::store::BlobStore>>,
    live: Arc<LiveConfig>,
    stop: Shutdown,
) -> Result<tokio::task::JoinHandle<()>, Failure> {
    let tls = postwire_ingest::tls::from_config(&cfg.smtp)
        .map_err(|e| Failure::Usage(format!("smtp TLS: {e}")))?;
    let mut publisher = JetStreamPublisher::new(js.clone(), cfg.smtp.hostname.clone());
    // With a claim check, large messages do not go through NATS: SIZE need not stay below
    // its max_payload.
    let limit = cfg.storage.inline_limit_bytes;
    let claim: Option<Arc<dyn postwire_ingest::ClaimCheck>> =
        blobs.map(|b| Arc::new(Claim(b)) as Arc<dyn postwire_ingest::ClaimCheck>);
    let max_payload = match &claim {
        Some(c) => {
            publisher = publisher.with_claim_check(c.clone(), limit);
            None
        }
        None => Some(js.client().server_info().max_payload as u64),
    };
    let mut deps = IngestDeps::new(cfg, publisher, tls, max_payload).with_live(live);
    if let Some(c) = claim {
        deps = deps.with_spool(c, limit);
    }
    if let Some(v) = crate::inline::MailAuthInline::for_config(cfg).map_err(Failure::Failed)? {
        deps = deps.with_verifier(v);
    }
    if let Some(addr) = &cfg.ses.listen {
        let intake = postwire_ingest::ses::SesIntake::new(
            &cfg.ses,
            deps.router.clone(),
            deps.publisher.clone(),
        )
        .map_err(|e| Failure::Usage(format!("ses: {e}")))?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| Failure::Failed(format!("cannot listen for SES on {addr}: {e}")))?;
        tracing::info!(listen = %addr, "Receiving SES notifications on POST /ses.");
        tokio::spawn(crate::ses_http::serve(
            listener,
            intake,
            stop.clone().wait(),
        ));
    }
    Ok(tokio::spawn(postwire_ingest::run(
        listeners,
        deps,
        stop.wait(),
    )))
}

fn stage_result(
    name: &str,
    r: Result<Result<(), postwire_stages::StageError>, tokio::task::JoinError>,
) -> Result<(), Failure> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Failure::Failed(format!("{name} worker stopped: {e}"))),
        Err(e) => Err(Failure::Failed(format!("{name} worker crashed: {e}"))),
    }
}

pub async fn dev(path: &Path, sink_listen: Option<String>) -> Result<(), Failure> {
    let cfg = load(path)?;
    let stop = Shutdown::on_signals();
    let js = jetstream(&cfg, "postwire-dev").await?;
    postwire_core::durability::ensure_synced(&cfg.nats)
        .await
        .map_err(|e| Failure::Usage(e.explain()))?;
    let _metrics = spawn_metrics(&cfg, &js, &stop).await?;
    let smtp = bind_smtp(&cfg).await?;
    let sink = match &sink_listen {
        Some(addr) => {
            let keys = cfg
                .tenants
                .values()
                .flat_map(|t| t.endpoints.values())
                .filter_map(|e| e.secret_key().ok())
                .collect::<Vec<_>>();
            let listener = TcpListener::bind(addr).await.map_err(|e| {
                Failure::Failed(format!("cannot listen for the sink on {addr}: {e}"))
            })?;
            Some(tokio::spawn(crate::sink::serve(
                listener,
                keys,
                stop.clone().wait(),
            )))
        }
        None => None,
    };
    let live = live_config(&cfg, &js).await?;
    let admin = spawn_admin(&cfg, &js, &live, &stop).await?;
    let blobs = start_blobs(&cfg, &stop, true, true).await?;
    let ingest = ingest_task(
        &cfg,
        js.clone(),
        smtp,
        blobs.clone(),
        live.clone(),
        stop.clone(),
    )
    .await?;
    let process = tokio::spawn(postwire_stages::process::run_live(
        js.clone(),
        live.clone(),
        blobs,
        stop.clone().wait(),
    ));
    let deliver = tokio::spawn(postwire_stages::deliver::run_live(
        js.clone(),
        live.clone(),
        stop.clone().wait(),
    ));
    eprintln!("postwire dev is running.");
    eprintln!(
        "  SMTP      {}  (tenants: {})",
        cfg.smtp.listen,
        cfg.tenants.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    if let Some(addr) = &sink_listen {
        eprintln!("  sink      http://{addr}/  (verifies signatures, prints deliveries)");
    }
    if admin.is_some() {
        eprintln!(
            "  admin     http://{}/ui  (dashboard; API /api/v1, token from ${})",
            cfg.admin.listen, cfg.admin.token_env
        );
    }
    eprintln!("  NATS      {}", cfg.nats.url);
    eprintln!(
        "Send a mail:  swaks --server {} --to <an address a route takes> --from you@example.com",
        cfg.smtp.listen
    );
    eprintln!("Ctrl-C stops.");
    let _ = ingest.await;
    let p = process.await;
    let d = deliver.await;
    for task in [sink, admin].into_iter().flatten() {
        let _ = task.await;
    }
    stage_result("process", p)?;
    stage_result("deliver", d)?;
    eprintln!("postwire dev stopped.");
    Ok(())
}

pub async fn ingest(path: &Path) -> Result<(), Failure> {
    let cfg = load(path)?;
    let stop = Shutdown::on_signals();
    let js = jetstream(&cfg, "postwire-ingest").await?;
    postwire_core::durability::ensure_synced(&cfg.nats)
        .await
        .map_err(|e| Failure::Usage(e.explain()))?;
    let _metrics = spawn_metrics(&cfg, &js, &stop).await?;
    let smtp = bind_smtp(&cfg).await?;
    tracing::info!(listen = %cfg.smtp.listen, "SMTP ingest is listening.");
    let blobs = start_blobs(&cfg, &stop, true, false).await?;
    let live = live_config(&cfg, &js).await?;
    ingest_task(&cfg, js, smtp, blobs, live, stop)
        .await?
        .await
        .map_err(|e| Failure::Failed(format!("ingest crashed: {e}")))
}

pub async fn worker(path: &Path) -> Result<(), Failure> {
    let cfg = load(path)?;
    let stop = Shutdown::on_signals();
    let js = jetstream(&cfg, "postwire-worker").await?;
    let _metrics = spawn_metrics(&cfg, &js, &stop).await?;
    let live = live_config(&cfg, &js).await?;
    let key = std::env::var(&cfg.storage.signing_key_env)
        .ok()
        .map(String::into_bytes);
    let blobs = postwire_stages::store::BlobStore::from_config(&cfg.storage, key)
        .map_err(|e| Failure::Usage(format!("storage: {e}")))?
        .map(Arc::new);
    tracing::info!("Process worker is running.");
    stage_result(
        "process",
        tokio::spawn(postwire_stages::process::run_live(
            js,
            live,
            blobs,
            stop.wait(),
        ))
        .await,
    )
}

pub async fn deliver(path: &Path) -> Result<(), Failure> {
    let cfg = load(path)?;
    let stop = Shutdown::on_signals();
    let js = jetstream(&cfg, "postwire-deliver").await?;
    let _metrics = spawn_metrics(&cfg, &js, &stop).await?;
    let live = live_config(&cfg, &js).await?;
    tracing::info!("Deliver worker is running.");
    stage_result(
        "deliver",
        tokio::spawn(postwire_stages::deliver::run_live(js, live, stop.wait())).await,
    )
}

pub async fn admin(path: &Path) -> Result<(), Failure> {
    let cfg = load(path)?;
    if cfg.admin.token().is_none() {
        return Err(Failure::Usage(format!(
            "set {} to a bearer token of at least 16 characters",
            cfg.admin.token_env
        )));
    }
    let stop = Shutdown::on_signals();
    let js = jetstream(&cfg, "postwire-admin").await?;
    let live = live_config(&cfg, &js).await?;
    if let Some(task) = spawn_admin(&cfg, &js, &live, &stop).await? {
        let _ = task.await;
    }
    Ok(())
}

//! The long-running roles: `dev` (all in one), `ingest`, `worker`, `deliver`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use postwire_core::{Config, bus};
use postwire_ingest::{IngestDeps, JetStreamPublisher};
use tokio::net::TcpListener;

use crate::shutdown::Shutdown;
use crate::tools::Failure;

/// How long a role waits for JetStream at start before giving up with a clear error.
const NATS_START_DEADLINE: Duration = Duration::from_secs(15);

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

async fn bind_smtp(cfg: &Config) -> Result<TcpListener, Failure> {
    TcpListener::bind(&cfg.smtp.listen).await.map_err(|e| {
        Failure::Failed(format!(
            "cannot listen for SMTP on {}: {e}",
            cfg.smtp.listen
        ))
    })
}

fn ingest_task(
    cfg: &Arc<Config>,
    js: async_nats::jetstream::Context,
    listener: TcpListener,
    stop: Shutdown,
) -> Result<tokio::task::JoinHandle<()>, Failure> {
    let mut deps = IngestDeps::new(
        &cfg.smtp,
        cfg.router(),
        JetStreamPublisher::new(js, cfg.smtp.hostname.clone()),
    );
    if let Some(v) = crate::inline::MailAuthInline::for_config(cfg).map_err(Failure::Failed)? {
        deps = deps.with_verifier(v);
    }
    Ok(tokio::spawn(postwire_ingest::run(
        listener,
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
    let ingest = ingest_task(&cfg, js.clone(), smtp, stop.clone())?;
    let process = tokio::spawn(postwire_stages::process::run(
        js.clone(),
        cfg.clone(),
        stop.clone().wait(),
    ));
    let deliver = tokio::spawn(postwire_stages::deliver::run(
        js.clone(),
        cfg.clone(),
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
    eprintln!("  NATS      {}", cfg.nats.url);
    eprintln!(
        "Send a mail:  swaks --server {} --to support@acme.test --from you@example.com",
        cfg.smtp.listen
    );
    eprintln!("Ctrl-C stops.");
    let _ = ingest.await;
    let p = process.await;
    let d = deliver.await;
    if let Some(s) = sink {
        let _ = s.await;
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
    let smtp = bind_smtp(&cfg).await?;
    tracing::info!(listen = %cfg.smtp.listen, "SMTP ingest is listening.");
    ingest_task(&cfg, js, smtp, stop)?
        .await
        .map_err(|e| Failure::Failed(format!("ingest crashed: {e}")))
}

pub async fn worker(path: &Path) -> Result<(), Failure> {
    let cfg = load(path)?;
    let stop = Shutdown::on_signals();
    let js = jetstream(&cfg, "postwire-worker").await?;
    tracing::info!("Process worker is running.");
    stage_result(
        "process",
        tokio::spawn(postwire_stages::process::run(js, cfg, stop.wait())).await,
    )
}

pub async fn deliver(path: &Path) -> Result<(), Failure> {
    let cfg = load(path)?;
    let stop = Shutdown::on_signals();
    let js = jetstream(&cfg, "postwire-deliver").await?;
    tracing::info!("Deliver worker is running.");
    stage_result(
        "deliver",
        tokio::spawn(postwire_stages::deliver::run(js, cfg, stop.wait())).await,
    )
}

//! The long-running commands: `dev`, `ingest`, `worker`, `deliver`, `admin`, `sink`. Each
//! loads the configuration and starts a node with its roles (postwire-node). And `doctor`.

use std::path::Path;

use postwire_node::{Options, Roles, Shutdown, connect};
use tokio::net::TcpListener;

use crate::tools::Failure;

/// Runs `roles` on the configuration at `path` until Ctrl-C or SIGTERM.
pub async fn role(path: &Path, name: &str, roles: Roles) -> Result<(), Failure> {
    let cfg = connect::load(path)?;
    postwire_node::check_split_storage(&cfg, roles)?;
    let running =
        postwire_node::start(cfg, Options::new(name, roles), Shutdown::on_signals()).await?;
    Ok(running.wait().await?)
}

pub async fn dev(path: &Path, sink_listen: Option<String>) -> Result<(), Failure> {
    let cfg = connect::load(path)?;
    let mut opts = Options::new("postwire-dev", Roles::PIPELINE);
    opts.dev = true;
    if let Some(addr) = &sink_listen {
        opts.sink =
            Some(TcpListener::bind(addr).await.map_err(|e| {
                Failure::Failed(format!("cannot listen for the sink on {addr}: {e}"))
            })?);
    }
    let running = postwire_node::start(cfg.clone(), opts, Shutdown::on_signals()).await?;
    eprintln!("postwire dev is running.");
    eprintln!(
        "  SMTP      {}  (tenants: {})",
        cfg.smtp.listen,
        cfg.tenants.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    if let Some(addr) = &sink_listen {
        eprintln!("  sink      http://{addr}/  (verifies signatures, prints deliveries)");
    }
    if let Some(addr) = running.admin {
        eprintln!(
            "  admin     http://{addr}/ui  (dashboard; API /api/v1, token from ${})",
            cfg.admin.token_env
        );
    }
    eprintln!("  NATS      {}", cfg.nats.url);
    eprintln!(
        "Send a mail:  swaks --server {} --to <an address a route takes> --from you@example.com",
        cfg.smtp.listen
    );
    eprintln!("Ctrl-C stops.");
    running.wait().await?;
    eprintln!("postwire dev stopped.");
    Ok(())
}

/// `postwire doctor`: prints the durability of the deployment (postwire_core::doctor);
/// exit 1 when it is not durable.
pub async fn doctor(path: &Path) -> Result<(), Failure> {
    let cfg = connect::load(path)?;
    let report = postwire_core::doctor::report(&cfg).await;
    println!("{report}");
    match report.durable() {
        true => Ok(()),
        false => Err(Failure::Failed("not durable".into())),
    }
}

/// `postwire sink`: verifies and prints deliveries signed with one of `secrets`.
pub async fn sink(listen: &str, secrets: &[String]) -> Result<(), Failure> {
    let keys = secrets
        .iter()
        .map(|s| {
            postwire_core::config::decode_whsec(s.trim())
                .map_err(|e| Failure::Usage(format!("--secret: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| Failure::Failed(format!("cannot listen on {listen}: {e}")))?;
    eprintln!(
        "postwire sink listening on http://{listen}/ ({} secret(s))",
        keys.len()
    );
    let keys = postwire_node::sink::Keys::Fixed(keys);
    postwire_node::sink::serve(listener, keys, Shutdown::on_signals().wait()).await;
    Ok(())
}

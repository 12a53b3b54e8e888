//! The ingest role: SMTP listeners, the publisher (with the claim check when `[storage]` is
//! set), SMTP-time verification, and the SES endpoint. Every tenant setting they use (domains,
//! routes, `require_tls`, `auth.policy`) comes from the live configuration.

use std::sync::Arc;

use postwire_core::Config;
use postwire_core::live::LiveConfig;
use postwire_ingest::{ClaimCheck, IngestDeps, JetStreamPublisher};
use postwire_stages::store::BlobStore;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::claim::Claim;
use crate::{NodeError, Shutdown};

/// Binds `smtp.listen` and every `smtp.also_listen`.
pub async fn bind_smtp(cfg: &Config) -> Result<Vec<TcpListener>, NodeError> {
    let mut out = Vec::new();
    for addr in std::iter::once(&cfg.smtp.listen).chain(&cfg.smtp.also_listen) {
        let l = TcpListener::bind(addr).await.map_err(|e| {
            NodeError::Unavailable(format!("cannot listen for SMTP on {addr}: {e}"))
        })?;
        out.push(l);
    }
    Ok(out)
}

/// Starts SMTP ingest on `listeners` (and the SES endpoint when `ses.listen` is set).
pub async fn spawn(
    cfg: &Arc<Config>,
    js: async_nats::jetstream::Context,
    listeners: Vec<TcpListener>,
    blobs: Option<Arc<BlobStore>>,
    live: Arc<LiveConfig>,
    stop: &Shutdown,
) -> Result<JoinHandle<Result<(), NodeError>>, NodeError> {
    let tls = postwire_ingest::tls::from_config(&cfg.smtp)
        .map_err(|e| NodeError::Config(format!("smtp TLS: {e}")))?;
    let mut publisher = JetStreamPublisher::new(js.clone(), cfg.smtp.hostname.clone());
    // With a claim check, large messages do not go through NATS: SIZE need not stay below
    // its max_payload.
    let limit = cfg.storage.inline_limit_bytes;
    let claim: Option<Arc<dyn ClaimCheck>> =
        blobs.map(|b| Arc::new(Claim(b)) as Arc<dyn ClaimCheck>);
    let max_payload = match &claim {
        Some(c) => {
            publisher = publisher.with_claim_check(c.clone(), limit);
            None
        }
        None => Some(js.client().server_info().max_payload as u64),
    };
    let mut deps = IngestDeps::new(cfg, publisher, tls, max_payload).with_live(live.clone());
    if let Some(c) = claim {
        deps = deps.with_spool(c, limit);
    }
    if let Some(v) = crate::inline::Inline::for_config(cfg, live.clone())? {
        deps = deps.with_verifier(v);
    }
    if let Some(addr) = &cfg.ses.listen {
        let intake =
            postwire_ingest::ses::SesIntake::new(&cfg.ses, live.clone(), deps.publisher.clone())
                .map_err(|e| NodeError::Config(format!("ses: {e}")))?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| NodeError::Unavailable(format!("cannot listen for SES on {addr}: {e}")))?;
        tracing::info!(listen = %addr, "Receiving SES notifications on POST /ses.");
        tokio::spawn(crate::ses_http::serve(
            listener,
            intake,
            stop.clone().wait(),
        ));
    }
    let run = postwire_ingest::run(listeners, deps, stop.clone().wait());
    Ok(tokio::spawn(async move {
        run.await;
        Ok(())
    }))
}

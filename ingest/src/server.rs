//! The SMTP listener: accepts connections up to a cap, runs one [`Session`] per connection
//! over any `AsyncRead + AsyncWrite`, applies timeouts, and drains sessions on shutdown.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use postwire_core::config::SmtpConfig;
use postwire_core::routing::Router;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::publish::Publisher;
use crate::smtp::{Reply, Session, SessionLimits, Step};
use crate::verify::{InlineVerdict, InlineVerifier};

/// Everything a session needs, shared by all connections.
pub struct IngestDeps<P> {
    pub limits: Arc<SessionLimits>,
    pub router: Arc<Router>,
    pub publisher: Arc<P>,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    pub max_sessions: usize,
    /// Inline authentication checks (tenants on `reject`); none: accept without checking.
    pub verifier: Option<Arc<dyn InlineVerifier>>,
}

impl<P> IngestDeps<P> {
    /// Adds inline verification.
    pub fn with_verifier(mut self, verifier: Arc<dyn InlineVerifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    pub fn new(cfg: &SmtpConfig, router: Router, publisher: P) -> Self {
        IngestDeps {
            limits: Arc::new(SessionLimits::from(cfg)),
            router: Arc::new(router),
            publisher: Arc::new(publisher),
            command_timeout: Duration::from_secs(cfg.command_timeout_secs),
            data_timeout: Duration::from_secs(cfg.data_timeout_secs),
            max_sessions: cfg.max_sessions,
            verifier: None,
        }
    }
}

/// How long sessions may take to finish after shutdown was asked.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Serves SMTP on `listener` until `shutdown` resolves, then stops accepting, lets sessions
/// finish their transaction (idle ones get 421) and returns when all are done or after the
/// drain deadline.
pub async fn run<P: Publisher>(
    listener: TcpListener,
    deps: IngestDeps<P>,
    shutdown: impl Future<Output = ()>,
) {
    let deps = Arc::new(deps);
    let sessions = Arc::new(Semaphore::new(deps.max_sessions));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "Accepting an SMTP connection failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let deps = deps.clone();
        let mut stop = stop_rx.clone();
        match sessions.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    serve(stream, peer.ip(), &deps, &mut stop).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tracing::warn!("Refusing an SMTP connection: too many sessions.");
                tokio::spawn(async move {
                    let mut stream = stream;
                    let reply = Reply::new(
                        421,
                        "4.7.0",
                        format!(
                            "{} Too many connections, try again later",
                            deps.limits.hostname
                        ),
                    );
                    let _ = stream.write_all(reply.to_wire().as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        }
    }
    let _ = stop_tx.send(true);
    let all = u32::try_from(deps.max_sessions).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN_DEADLINE, sessions.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("SMTP sessions still open after the drain deadline; closing them.");
    }
}

/// Runs one session to its end over any byte stream.
pub async fn serve<S, P>(
    mut stream: S,
    client_ip: IpAddr,
    deps: &IngestDeps<P>,
    stop: &mut watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    P: Publisher,
{
    let mut session = Session::new(deps.limits.clone(), deps.router.clone(), client_ip);
    let mut out = session.greeting().to_wire();
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        // Run every complete command already buffered (PIPELINING), batching replies.
        while let Some(step) = session.advance(&mut buf) {
            match step {
                Step::Reply(r) => out.push_str(&r.to_wire()),
                Step::Close(r) => {
                    out.push_str(&r.to_wire());
                    let _ = stream.write_all(out.as_bytes()).await;
                    let _ = stream.shutdown().await;
                    return;
                }
                Step::Deliver(mut tx) => {
                    if !out.is_empty() && stream.write_all(out.as_bytes()).await.is_err() {
                        return;
                    }
                    out.clear();
                    if let Some(v) = &deps.verifier {
                        match v.verify(&tx).await {
                            InlineVerdict::Accept { auth } => tx.auth = auth,
                            InlineVerdict::Reject(why) => {
                                tracing::info!(reason = %why, "Rejected a message under a tenant's authentication policy.");
                                out.push_str(&session.refuse(false, &why).to_wire());
                                continue;
                            }
                            InlineVerdict::Defer => {
                                tracing::info!(
                                    "Deferred a message: DNS could not decide its authentication."
                                );
                                out.push_str(&session.refuse(true, "").to_wire());
                                continue;
                            }
                        }
                    }
                    let rcpts = tx.rcpts.len();
                    let size = tx.body.len();
                    let outcome = deps.publisher.publish(tx).await;
                    match &outcome {
                        Ok(ids) => {
                            tracing::info!(mail_ids = ?ids, rcpts, size, "Accepted a message.")
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "Deferred a message with a 4xx reply.")
                        }
                    }
                    out.push_str(&session.finish(outcome).to_wire());
                }
            }
        }
        if !out.is_empty() {
            if stream.write_all(out.as_bytes()).await.is_err() {
                return;
            }
            out.clear();
        }
        if session.is_closed() {
            return;
        }
        let in_data = session.in_data();
        let timeout = if in_data {
            deps.data_timeout
        } else {
            deps.command_timeout
        };
        let read = tokio::select! {
            r = tokio::time::timeout(timeout, stream.read_buf(&mut buf)) => r,
            _ = stopped(stop), if !in_data => {
                let r = Reply::new(421, "4.3.2", format!("{} Service shutting down, try again later", deps.limits.hostname));
                let _ = stream.write_all(r.to_wire().as_bytes()).await;
                return;
            }
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => {}
            Err(_) => {
                let r = Reply::new(
                    421,
                    "4.4.2",
                    format!("{} Timeout, closing connection", deps.limits.hostname),
                );
                let _ = stream.write_all(r.to_wire().as_bytes()).await;
                let _ = stream.shutdown().await;
                return;
            }
        }
    }
}

/// Resolves once shutdown was asked.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        // The sender is gone: the listener ended without asking, keep serving.
        std::future::pending::<()>().await;
    }
}

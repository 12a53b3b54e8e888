//! The SMTP listeners: accept connections up to the caps (total and per client address),
//! read a PROXY header when configured, hold the greeting to catch early talkers, run one
//! [`crate::smtp::Session`] per connection over any `AsyncRead + AsyncWrite`, upgrade to TLS on STARTTLS,
//! apply timeouts, and drain on shutdown.
//!
//! - `drive.rs`: one session over one stream (timeouts, pipelining, STARTTLS, shutdown).
//! - `deliver.rs`: the end of DATA (upload, inline verification, publish, the reply).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::deps::IngestDeps;
use crate::proxy::{self, ProxyError};
use crate::publish::Publisher;
use crate::smtp::Reply;

mod deliver;
mod drive;

/// Shutdown phases seen by sessions: `Drain` stops idle sessions; `Abort` (after the grace
/// period) stops the rest with 421.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Run,
    Drain,
    Abort,
}

/// Serves SMTP on `listeners` until `shutdown` resolves, then stops accepting, lets sessions
/// finish their transaction within the grace period (idle ones get 421 at once), answers
/// 421 to those still open after it, and returns.
pub async fn run<P: Publisher>(
    listeners: Vec<TcpListener>,
    deps: IngestDeps<P>,
    shutdown: impl Future<Output = ()>,
) {
    let deps = Arc::new(deps);
    let sessions = Arc::new(Semaphore::new(deps.max_sessions));
    let (phase_tx, phase_rx) = watch::channel(Phase::Run);
    let (conn_tx, mut conn_rx) = mpsc::channel::<(TcpStream, SocketAddr)>(64);
    let acceptors: Vec<_> = listeners
        .into_iter()
        .map(|l| {
            let tx = conn_tx.clone();
            tokio::spawn(async move {
                loop {
                    match l.accept().await {
                        Ok(c) => {
                            if tx.send(c).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "Accepting an SMTP connection failed.");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            })
        })
        .collect();
    drop(conn_tx);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            c = conn_rx.recv() => match c { Some(c) => c, None => break },
        };
        let _ = stream.set_nodelay(true);
        let deps = deps.clone();
        let phase = phase_rx.clone();
        match sessions.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    connection(stream, peer, &deps, phase).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tracing::warn!("Refusing an SMTP connection: too many sessions.");
                tokio::spawn(async move {
                    refuse(
                        stream,
                        Reply::new(
                            421,
                            "4.7.0",
                            format!(
                                "{} Too many connections, try again later",
                                deps.limits.hostname
                            ),
                        ),
                    )
                    .await;
                });
            }
        }
    }
    for a in acceptors {
        a.abort();
    }
    let _ = phase_tx.send(Phase::Drain);
    let all = u32::try_from(deps.max_sessions).unwrap_or(u32::MAX);
    if tokio::time::timeout(deps.shutdown_grace, sessions.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("SMTP sessions still open after the grace period; answering 421.");
        let _ = phase_tx.send(Phase::Abort);
        let _ = tokio::time::timeout(Duration::from_secs(5), sessions.acquire_many(all)).await;
    }
}

async fn refuse(mut stream: TcpStream, reply: Reply) {
    let _ = stream.write_all(reply.to_wire().as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// One TCP connection: PROXY header, per-client limit, greeting delay, then the session.
async fn connection<P: Publisher>(
    mut stream: TcpStream,
    peer: SocketAddr,
    deps: &IngestDeps<P>,
    mut phase: watch::Receiver<Phase>,
) {
    let mut buf = BytesMut::with_capacity(4096);
    let mut client_ip = peer.ip();
    if deps.proxy_protocol {
        match read_proxy_header(&mut stream, &mut buf).await {
            Ok(Some(addr)) => client_ip = addr.ip(),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "Closing a connection without a valid PROXY header.");
                return;
            }
        }
    }
    let Some(_slot) = deps.clients.connect(client_ip) else {
        tracing::warn!("Refusing an SMTP connection: too many from one client address.");
        refuse(
            stream,
            Reply::new(
                421,
                "4.7.0",
                format!(
                    "{} Too many connections from your address",
                    deps.limits.hostname
                ),
            ),
        )
        .await;
        return;
    };
    if !deps.greeting_delay.is_zero() && buf.is_empty() {
        let mut probe = [0u8; 1];
        if let Ok(Ok(n)) = tokio::time::timeout(deps.greeting_delay, stream.peek(&mut probe)).await
            && n > 0
        {
            tracing::warn!("Refusing an early talker (it spoke before the greeting).");
            refuse(
                stream,
                Reply::new(
                    554,
                    "5.5.1",
                    "Protocol error: you talked before the greeting",
                ),
            )
            .await;
            return;
        }
    }
    drive::serve(stream, client_ip, buf, deps, &mut phase).await;
}

async fn read_proxy_header(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
) -> Result<Option<SocketAddr>, ProxyError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match proxy::parse(buf)? {
            proxy::Parsed::Done { client, len } => {
                let _ = buf.split_to(len);
                return Ok(client);
            }
            proxy::Parsed::Incomplete => {
                let read = tokio::time::timeout_at(deadline, stream.read_buf(buf)).await;
                match read {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return Err(ProxyError::TIMEOUT),
                }
            }
        }
    }
}

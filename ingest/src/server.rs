//! The SMTP listeners: accept connections up to the caps (total and per client address),
//! read a PROXY header when configured, hold the greeting to catch early talkers, run one
//! [`Session`] per connection over any `AsyncRead + AsyncWrite`, upgrade to TLS on STARTTLS,
//! apply timeouts, and drain on shutdown.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use postwire_core::metrics;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::Instrument as _;

use crate::deps::IngestDeps;
use crate::proxy;
use crate::publish::Publisher;
use crate::smtp::{Reply, Session, SessionLimits, Step};
use crate::spool::{self, Streaming};
use crate::verify::InlineVerdict;

/// Shutdown phases seen by sessions: `Drain` stops idle sessions; `Abort` (after the grace
/// period) stops the rest with 421.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
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
    serve(stream, client_ip, buf, deps, &mut phase).await;
}

async fn read_proxy_header(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
) -> Result<Option<SocketAddr>, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match proxy::parse(buf).map_err(|e| e.to_string())? {
            proxy::Parsed::Done { client, len } => {
                let _ = buf.split_to(len);
                return Ok(client);
            }
            proxy::Parsed::Incomplete => {
                let read = tokio::time::timeout_at(deadline, stream.read_buf(buf)).await;
                match read {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return Err("no PROXY header in time".into()),
                }
            }
        }
    }
}

/// How a stretch of session over one stream ended.
enum Ended {
    Closed,
    StartTls,
}

/// Runs one session to its end over a plain stream, upgrading it on STARTTLS.
async fn serve<S, P>(
    mut stream: S,
    client_ip: IpAddr,
    buf: BytesMut,
    deps: &IngestDeps<P>,
    phase: &mut watch::Receiver<Phase>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    P: Publisher,
{
    let (limits, router) = match &deps.live {
        Some(live) => {
            let snap = live.get();
            let mut limits = (*deps.limits).clone();
            limits.require_tls = SessionLimits::require_tls_of(&snap.cfg);
            (Arc::new(limits), snap.router.clone())
        }
        None => (deps.limits.clone(), deps.router.clone()),
    };
    let mut session = Session::new(limits, router, deps.clients.clone(), client_ip);
    let mut buf = buf;
    let mut out = session.greeting().to_wire();
    let ended = drive_stretch(&mut stream, &mut session, (&mut buf, &mut out), deps, phase).await;
    if let Ended::Closed = ended {
        return;
    }
    let Some(acceptor) = deps.tls.clone() else {
        return;
    };
    // Anything the client pipelined after STARTTLS came in plaintext: never execute it.
    buf.clear();
    let tls = match tokio::time::timeout(deps.command_timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::info!(error = %e, "A TLS handshake failed.");
            return;
        }
        Err(_) => return,
    };
    session.tls_started(crate::tls::info(tls.get_ref().1));
    let mut tls = tls;
    out.clear();
    let _ = drive_stretch(&mut tls, &mut session, (&mut buf, &mut out), deps, phase).await;
}

/// [`drive`] over one stream; a connection lost or closed in the middle of DATA drops its
/// partial upload (DATA never spans STARTTLS, so nothing streams from one stretch to the next).
async fn drive_stretch<S, P>(
    stream: &mut S,
    session: &mut Session,
    (buf, out): (&mut BytesMut, &mut String),
    deps: &IngestDeps<P>,
    phase: &mut watch::Receiver<Phase>,
) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    P: Publisher,
{
    let mut streaming = None;
    let ended = drive(stream, session, (buf, out, &mut streaming), deps, phase).await;
    if let Some(s) = streaming.take() {
        s.abort().await;
    }
    ended
}

/// Runs the session over `stream` until it closes or asks for TLS.
async fn drive<S, P>(
    stream: &mut S,
    session: &mut Session,
    (buf, out, streaming): (&mut BytesMut, &mut String, &mut Option<Streaming>),
    deps: &IngestDeps<P>,
    phase: &mut watch::Receiver<Phase>,
) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    P: Publisher,
{
    let host = &deps.limits.hostname;
    loop {
        // Run every complete command already buffered (PIPELINING), batching replies.
        while let Some(step) = session.advance(buf) {
            if !matches!(step, Step::Deliver(_))
                && let Some(s) = streaming.take()
            {
                // The DATA ended without a transaction to deliver (552 over-size).
                s.abort().await;
            }
            match step {
                Step::Reply(r) => {
                    if !r.is_positive() {
                        metrics::inc(
                            "postwire_smtp_refusals_total",
                            "SMTP commands refused, by reply code.",
                            &[("code", &r.code.to_string())],
                        );
                    }
                    out.push_str(&r.to_wire())
                }
                Step::Close(r) => {
                    out.push_str(&r.to_wire());
                    let _ = stream.write_all(out.as_bytes()).await;
                    let _ = stream.shutdown().await;
                    return Ended::Closed;
                }
                Step::StartTls(r) => {
                    out.push_str(&r.to_wire());
                    if stream.write_all(out.as_bytes()).await.is_err()
                        || stream.flush().await.is_err()
                    {
                        return Ended::Closed;
                    }
                    return Ended::StartTls;
                }
                Step::Deliver(mut tx) => {
                    if !out.is_empty() && stream.write_all(out.as_bytes()).await.is_err() {
                        return Ended::Closed;
                    }
                    out.clear();
                    if let Some(s) = streaming.take()
                        && !spool::finish(s, &mut tx).await
                    {
                        let reply = session.finish(Err(crate::PublishFailure::Unavailable));
                        metrics::inc(
                            "postwire_smtp_messages_total",
                            "Messages at the end of DATA, by result and reply code.",
                            &[("result", "deferred"), ("code", &reply.code.to_string())],
                        );
                        out.push_str(&reply.to_wire());
                        continue;
                    }
                    if let Some(v) = &deps.verifier {
                        let verdict = match &tx.spooled {
                            Some(sp) if v.needs_body(&tx) => {
                                match spool::read_back(deps.spool.as_ref(), sp).await {
                                    Some(body) => {
                                        tx.body = body;
                                        let verdict = v.verify(&tx).await;
                                        tx.body = Vec::new();
                                        verdict
                                    }
                                    None => InlineVerdict::Defer,
                                }
                            }
                            _ => v.verify(&tx).await,
                        };
                        match verdict {
                            InlineVerdict::Accept { auth } => tx.auth = auth,
                            InlineVerdict::Reject(why) => {
                                tracing::info!(reason = %why, "Rejected a message under a tenant's authentication policy.");
                                out.push_str(&session.refuse(false, &why).to_wire());
                                spool::discard(deps.spool.as_ref(), &tx).await;
                                continue;
                            }
                            InlineVerdict::Defer => {
                                tracing::info!(
                                    "Deferred a message: DNS could not decide its authentication."
                                );
                                out.push_str(&session.refuse(true, "").to_wire());
                                spool::discard(deps.spool.as_ref(), &tx).await;
                                continue;
                            }
                        }
                    }
                    let size = tx.spooled.as_ref().map_or(tx.body.len() as u64, |s| s.size);
                    let rcpts = tx.rcpts.len();
                    let span = tracing::info_span!(
                        "smtp.transaction",
                        rcpts,
                        size,
                        smtp.reply_code = tracing::field::Empty
                    );
                    let outcome = deps.publisher.publish(*tx).instrument(span.clone()).await;
                    match &outcome {
                        Ok(ids) => {
                            tracing::info!(mail_ids = ?ids, rcpts, size, "Accepted a message.")
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "Deferred a message with a 4xx reply.")
                        }
                    }
                    let reply = session.finish(outcome);
                    span.record("smtp.reply_code", reply.code);
                    let result = if reply.is_positive() {
                        "accepted"
                    } else {
                        "deferred"
                    };
                    metrics::inc(
                        "postwire_smtp_messages_total",
                        "Messages at the end of DATA, by result and reply code.",
                        &[("result", result), ("code", &reply.code.to_string())],
                    );
                    out.push_str(&reply.to_wire());
                }
            }
        }
        if !out.is_empty() {
            if stream.write_all(out.as_bytes()).await.is_err() {
                return Ended::Closed;
            }
            out.clear();
        }
        if session.is_closed() {
            return Ended::Closed;
        }
        spool::spill(session, streaming, deps.spool.as_ref()).await;
        let in_data = session.in_data();
        let timeout = if in_data {
            deps.data_timeout
        } else {
            deps.command_timeout
        };
        let stop_at = if in_data { Phase::Abort } else { Phase::Drain };
        let read = tokio::select! {
            r = tokio::time::timeout(timeout, stream.read_buf(buf)) => r,
            _ = reached(phase, stop_at) => {
                let r = Reply::new(421, "4.3.2", format!("{host} Service shutting down, try again later"));
                let _ = stream.write_all(r.to_wire().as_bytes()).await;
                let _ = stream.shutdown().await;
                return Ended::Closed;
            }
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => return Ended::Closed,
            Ok(Ok(_)) => {}
            Err(_) => {
                let r = Reply::new(421, "4.4.2", format!("{host} Timeout, closing connection"));
                let _ = stream.write_all(r.to_wire().as_bytes()).await;
                let _ = stream.shutdown().await;
                return Ended::Closed;
            }
        }
    }
}

/// Resolves once shutdown reached `at`.
async fn reached(phase: &mut watch::Receiver<Phase>, at: Phase) {
    if phase.wait_for(|p| *p >= at).await.is_err() {
        std::future::pending::<()>().await;
    }
}

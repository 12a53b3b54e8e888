//! One session over one stream: read within the deadline of the whole command line or the
//! whole DATA phase (not a per-read timeout, which a client trickling one byte at a time
//! would never reach), run every buffered command (PIPELINING), batch the replies, spill
//! large DATA to storage, hand a finished transaction to [`super::deliver`], upgrade on
//! STARTTLS, and stop on shutdown. Writes are bounded too (a client that never reads).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use postwire_core::metrics;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::Phase;
use crate::deps::IngestDeps;
use crate::publish::Publisher;
use crate::smtp::{Reply, Session, SessionLimits, Step};
use crate::spool::{self, Streaming};

/// How a stretch of session over one stream ended.
enum Ended {
    Closed,
    StartTls,
}

/// Runs one session to its end over a plain stream, upgrading it on STARTTLS.
pub(super) async fn serve<S, P>(
    mut stream: S,
    client_ip: IpAddr,
    buf: BytesMut,
    deps: &IngestDeps<P>,
    phase: &mut watch::Receiver<Phase>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    P: Publisher,
{
    // Domains, routes and `require_tls` as they are now: a change through the admin API
    // counts from the next connection.
    let snap = deps.live.get();
    let mut limits = (*deps.limits).clone();
    limits.require_tls = SessionLimits::require_tls_of(&snap.cfg);
    let (limits, router) = (Arc::new(limits), snap.router.clone());
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
    let write_limit = deps.command_timeout;
    // The deadline of what is being read, and whether it is the DATA phase's.
    let mut deadline: Option<(Instant, bool)> = None;
    loop {
        // Run every complete command already buffered (PIPELINING), batching replies.
        while let Some(step) = session.advance(buf) {
            // A command (or a DATA phase) is complete: the next one gets its own deadline.
            deadline = None;
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
                    close(stream, out.as_bytes(), write_limit).await;
                    return Ended::Closed;
                }
                Step::StartTls(r) => {
                    out.push_str(&r.to_wire());
                    if !write(stream, out.as_bytes(), write_limit).await {
                        return Ended::Closed;
                    }
                    return Ended::StartTls;
                }
                Step::Deliver(tx) => {
                    if !out.is_empty() && !write(stream, out.as_bytes(), write_limit).await {
                        return Ended::Closed;
                    }
                    out.clear();
                    let reply = super::deliver::end_of_data(*tx, streaming.take(), deps).await;
                    out.push_str(&reply.to_wire());
                }
            }
        }
        if !out.is_empty() {
            if !write(stream, out.as_bytes(), write_limit).await {
                return Ended::Closed;
            }
            out.clear();
        }
        if session.is_closed() {
            return Ended::Closed;
        }
        spool::spill(session, streaming, deps.spool.as_ref()).await;
        let in_data = session.in_data();
        let at = match deadline {
            Some((at, data)) if data == in_data => at,
            _ => {
                let limit = if in_data {
                    deps.data_timeout
                } else {
                    deps.command_timeout
                };
                let at = Instant::now() + limit;
                deadline = Some((at, in_data));
                at
            }
        };
        let stop_at = if in_data { Phase::Abort } else { Phase::Drain };
        let read = tokio::select! {
            r = tokio::time::timeout_at(at, stream.read_buf(buf)) => r,
            _ = reached(phase, stop_at) => {
                let r = Reply::new(421, "4.3.2", format!("{host} Service shutting down, try again later"));
                close(stream, r.to_wire().as_bytes(), write_limit).await;
                return Ended::Closed;
            }
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => return Ended::Closed,
            Ok(Ok(n)) => {
                // DATA at the minimum rate or faster never reaches its deadline.
                if in_data
                    && deps.data_min_rate > 0
                    && let Some((at, _)) = deadline.as_mut()
                {
                    *at += Duration::from_secs_f64(n as f64 / deps.data_min_rate as f64);
                }
            }
            Err(_) => {
                let what = if in_data { "DATA" } else { "command" };
                tracing::info!(what, "Closing a session that sent too slowly.");
                metrics::inc(
                    "postwire_smtp_timeouts_total",
                    "SMTP sessions closed at a command or DATA deadline.",
                    &[("phase", what)],
                );
                let r = Reply::new(421, "4.4.2", format!("{host} Timeout, closing connection"));
                close(stream, r.to_wire().as_bytes(), write_limit).await;
                return Ended::Closed;
            }
        }
    }
}

/// Writes and flushes `bytes` within `limit`; false when the client is gone or does not read.
async fn write<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8], limit: Duration) -> bool {
    let sent = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    matches!(tokio::time::timeout(limit, sent).await, Ok(Ok(())))
}

/// Writes a last reply (within `limit`) and closes.
async fn close<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8], limit: Duration) {
    if write(stream, bytes, limit).await {
        let _ = tokio::time::timeout(limit, stream.shutdown()).await;
    }
}

/// Resolves once shutdown reached `at`.
async fn reached(phase: &mut watch::Receiver<Phase>, at: Phase) {
    if phase.wait_for(|p| *p >= at).await.is_err() {
        std::future::pending::<()>().await;
    }
}

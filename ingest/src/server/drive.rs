//! One session over one stream: read with the command or DATA timeout, run every buffered
//! command (PIPELINING), batch the replies, spill large DATA to storage, hand a finished
//! transaction to [`super::deliver`], upgrade on STARTTLS, and stop on shutdown.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::BytesMut;
use postwire_core::metrics;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

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
                Step::Deliver(tx) => {
                    if !out.is_empty() && stream.write_all(out.as_bytes()).await.is_err() {
                        return Ended::Closed;
                    }
                    out.clear();
                    let reply = super::deliver::end_of_data(*tx, streaming.take(), deps).await;
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

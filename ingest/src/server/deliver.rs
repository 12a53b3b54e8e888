//! The end of DATA: complete the upload of a streamed message, verify inline when a
//! recipient's tenant is on `reject` now, make the transaction durable, and answer —
//! 250 only after the PubAck; 451/452 when storage or the bus failed; 550/451 when inline
//! authentication refused or could not decide.

use postwire_core::metrics;
use tracing::Instrument as _;

use crate::deps::IngestDeps;
use crate::publish::Publisher;
use crate::smtp::transaction::{finished, refused};
use crate::smtp::{PublishFailure, Reply, Transaction};
use crate::spool::{self, Streaming};
use crate::verify::InlineVerdict;

/// Makes `tx` durable (or refuses it) and returns the reply to the end of DATA.
pub(super) async fn end_of_data<P: Publisher>(
    mut tx: Transaction,
    streaming: Option<Streaming>,
    deps: &IngestDeps<P>,
) -> Reply {
    if let Some(s) = streaming
        && !spool::finish(s, &mut tx).await
    {
        return counted(finished(&Err(PublishFailure::Unavailable)));
    }
    match inline_verdict(&tx, deps).await {
        None => {}
        Some(InlineVerdict::Accept { auth, spam }) => {
            tx.auth = auth;
            tx.spam = spam;
        }
        Some(InlineVerdict::Reject(why)) => {
            tracing::info!(reason = %why, "Rejected a message under a tenant's authentication policy.");
            spool::discard(deps.spool.as_ref(), &tx).await;
            return refused(false, &why);
        }
        Some(InlineVerdict::Defer) => {
            tracing::info!("Deferred a message: DNS could not decide its authentication.");
            spool::discard(deps.spool.as_ref(), &tx).await;
            return refused(true, "");
        }
        Some(InlineVerdict::Retry(why)) => {
            tracing::warn!(reason = %why, "Deferred a message: a check at SMTP time could not decide.");
            spool::discard(deps.spool.as_ref(), &tx).await;
            return Reply::new(451, "4.7.1", why);
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
    let outcome = deps.publisher.publish(tx).instrument(span.clone()).await;
    match &outcome {
        Ok(ids) => tracing::info!(mail_ids = ?ids, rcpts, size, "Accepted a message."),
        Err(e) => tracing::warn!(error = %e, "Deferred a message with a 4xx reply."),
    }
    let reply = finished(&outcome);
    span.record("smtp.reply_code", reply.code);
    counted(reply)
}

/// The verdict of inline verification, or `None` when it does not apply to `tx` (no
/// verifier, or no recipient's tenant is on `reject` now). A streamed message is read back
/// from storage for it; failing that, the client retries (451).
async fn inline_verdict<P>(tx: &Transaction, deps: &IngestDeps<P>) -> Option<InlineVerdict> {
    let v = deps.verifier.as_ref()?;
    if !v.applies(tx) {
        return None;
    }
    let Some(sp) = &tx.spooled else {
        return Some(v.verify(tx).await);
    };
    let Some(body) = spool::read_back(deps.spool.as_ref(), sp).await else {
        return Some(InlineVerdict::Defer);
    };
    let whole = Transaction { body, ..tx.clone() };
    Some(v.verify(&whole).await)
}

/// Counts a message answered at the end of DATA.
fn counted(reply: Reply) -> Reply {
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
    reply
}

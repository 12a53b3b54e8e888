//! The one output publisher. A stage describes its outputs; this writes them: every publish
//! with its `Nats-Msg-Id` (so a redelivered input never duplicates an output) and the trace
//! context of the stage's span, then waits for every PubAck. Dead letters go through
//! [`dlq::write`], held mail through [`quarantine::hold`]: one writer each.

use async_nats::HeaderMap;
use async_nats::jetstream;
use bytes::Bytes;
use postwire_core::bus;
use postwire_core::event::Auth;

use crate::StageError;
use crate::held::dlq::{self, Dead};
use crate::held::quarantine;

/// A message to publish. `msg_id` must be deterministic (`<mail_id>:<stage>`, a delivery id):
/// it is how JetStream drops the copy a redelivered input publishes again.
#[derive(Debug, Clone)]
pub struct Publish {
    pub subject: String,
    pub msg_id: String,
    pub headers: HeaderMap,
    pub payload: Bytes,
}

impl Publish {
    pub fn new(subject: String, msg_id: String, payload: impl Into<Bytes>) -> Publish {
        Publish {
            subject,
            msg_id,
            headers: HeaderMap::new(),
            payload: payload.into(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: &str) -> Publish {
        self.headers.insert(name, value);
        self
    }

    pub(crate) fn headers_with_id(&self) -> HeaderMap {
        let mut h = self.headers.clone();
        h.insert(bus::HEADER_MSG_ID, self.msg_id.as_str());
        h
    }
}

/// One output of a stage.
#[derive(Debug)]
pub enum Output {
    /// A message for the next stream (`OUTBOX`, an `AUDIT` record that must not be lost).
    Publish(Publish),
    /// A dead letter written alongside the other outputs (raw mail no route takes, a
    /// fail-closed plugin's error): the input is still acknowledged.
    Dead(Dead),
}

/// A mail held in quarantine by a tenant's policy (`headers` and `payload` as on `MAIL`).
#[derive(Debug)]
pub struct Held {
    pub headers: HeaderMap,
    pub payload: Bytes,
    pub tenant: String,
    pub mail_id: String,
    pub auth: Option<Auth>,
    pub reason: String,
}

/// Publishes every output and waits for all PubAcks; then writes the dead letters. The
/// runner calls it before it acknowledges an input; public for the stage contract test
/// (tests/it/contract.rs), which replays an ack lost after the outputs were written.
pub async fn outputs(js: &jetstream::Context, outputs: Vec<Output>) -> Result<(), StageError> {
    let span = tracing::Span::current();
    let mut acks = Vec::with_capacity(outputs.len());
    let mut dead = Vec::new();
    for o in outputs {
        match o {
            Output::Publish(p) => {
                let mut h = p.headers_with_id();
                postwire_core::telemetry::inject(&span, &mut h);
                let ack = js
                    .publish_with_headers(p.subject.clone(), h, p.payload)
                    .await
                    .map_err(|e| {
                        StageError::Temporary(format!("publishing to {}: {e}", p.subject))
                    })?;
                acks.push(ack);
            }
            Output::Dead(d) => dead.push(d),
        }
    }
    for ack in acks {
        ack.await
            .map_err(|e| StageError::Temporary(format!("waiting for the PubAck: {e}")))?;
    }
    for d in dead {
        dlq::write(js, d).await?;
    }
    Ok(())
}

/// Holds a mail in `QUARANTINE` (waits for the PubAck).
pub(crate) async fn hold(js: &jetstream::Context, h: &Held) -> Result<(), StageError> {
    quarantine::hold(
        js,
        &h.headers,
        h.payload.clone(),
        &h.tenant,
        &h.mail_id,
        h.auth.as_ref(),
        &h.reason,
    )
    .await?;
    Ok(())
}

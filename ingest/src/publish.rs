//! Making an accepted transaction durable: one `mail.raw.<tenant>` message per tenant among
//! the recipients, each with its own `mail_id`, `Nats-Msg-Id` and envelope header, and a
//! `Received:` trace header prepended. Success means JetStream acknowledged every publish.
//!
//! The `Nats-Msg-Id` is derived from what the client sent (tenant, envelope, content), not
//! from the fresh `mail_id`: when a client retries after a 4xx whose publish did reach the
//! stream after all (a PubAck lost in a reconnect), JetStream drops the copy instead of
//! storing the mail twice. See docs/decisions.md.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind};
use postwire_core::bus;
use postwire_core::envelope::{Envelope, now_rfc3339};

use crate::smtp::Transaction;

/// Why a transaction could not be made durable; both are temporary for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PublishFailure {
    /// The bus is down or slow: 451 4.3.0.
    #[error("the message bus did not acknowledge the message")]
    Unavailable,
    /// The MAIL stream is full: 452 4.3.1.
    #[error("the MAIL stream is full")]
    Full,
}

/// Makes transactions durable. Returns the mail ids on success.
pub trait Publisher: Send + Sync + 'static {
    fn publish(
        &self,
        tx: Transaction,
    ) -> impl Future<Output = Result<Vec<String>, PublishFailure>> + Send;
}

/// Object storage for the claim check: messages above the inline limit are stored there and
/// the MAIL message carries only their key (`Postwire-Raw-Key`).
pub trait ClaimCheck: Send + Sync + 'static {
    /// Stores `bytes` for `tenant`; returns the key. By value: the message can be large,
    /// and the store keeps the buffer rather than a copy of it.
    fn put<'a>(
        &'a self,
        tenant: &'a str,
        bytes: Vec<u8>,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;
}

pub struct JetStreamPublisher {
    js: jetstream::Context,
    hostname: String,
    claim: Option<(Arc<dyn ClaimCheck>, usize)>,
}

impl JetStreamPublisher {
    pub fn new(js: jetstream::Context, hostname: String) -> Self {
        Self {
            js,
            hostname,
            claim: None,
        }
    }

    /// Messages above `inline_limit` bytes go to `store`, by reference.
    pub fn with_claim_check(mut self, store: Arc<dyn ClaimCheck>, inline_limit: usize) -> Self {
        self.claim = Some((store, inline_limit));
        self
    }

    pub fn has_claim_check(&self) -> bool {
        self.claim.is_some()
    }
}

/// The `Received:` trace header (RFC 5321 §4.4) ingest prepends.
pub fn received_header(tx: &Transaction, hostname: &str, mail_id: &str, date: &str) -> String {
    // RFC 3848 / RFC 6531 "with" protocol types.
    let with = match (tx.params.smtputf8, tx.tls.is_some()) {
        (true, true) => "UTF8SMTPS",
        (true, false) => "UTF8SMTP",
        (false, true) => "ESMTPS",
        (false, false) => "ESMTP",
    };
    let helo: String = tx
        .helo
        .chars()
        .filter(|c| !c.is_control())
        .take(255)
        .collect();
    format!(
        "Received: from {helo} ([{}])\r\n\tby {hostname} (postwire) with {with} id {mail_id};\r\n\t{date}\r\n",
        tx.client_ip
    )
}

/// Idempotency key of one tenant's copy of a transaction: the same when a client retries
/// the same message.
fn content_id(tenant: &str, env: &Envelope, body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [tenant, env.mail_from.as_str()]
        .into_iter()
        .chain(env.rcpt_to.iter().map(String::as_str))
    {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(body);
    format!("in:{}", postwire_core::ids::hex(&h.finalize()))
}

fn classify(err: &jetstream::context::PublishError) -> PublishFailure {
    // JetStream answers "maximum messages/bytes exceeded" when a Discard=New stream is full.
    let text = format!("{err:?}").to_ascii_lowercase();
    if err.kind() == PublishErrorKind::Other
        && text.contains("maximum")
        && text.contains("exceeded")
    {
        PublishFailure::Full
    } else {
        PublishFailure::Unavailable
    }
}

impl Publisher for JetStreamPublisher {
    async fn publish(&self, tx: Transaction) -> Result<Vec<String>, PublishFailure> {
        let mut by_tenant: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (addr, dest) in &tx.rcpts {
            by_tenant
                .entry(dest.tenant.as_str())
                .or_default()
                .push(addr.clone());
        }
        let rfc2822_date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        if self.js.client().connection_state() != async_nats::connection::State::Connected {
            // Do not queue a publish in the client while disconnected: it could reach the
            // stream after we answered 451, and the client's retry would store it twice.
            tracing::warn!("NATS is not connected; deferring the message.");
            return Err(PublishFailure::Unavailable);
        }
        let mut acks = Vec::new();
        let mut ids = Vec::new();
        for (tenant, rcpts) in by_tenant {
            let mail_id = postwire_core::ids::new_mail_id();
            let envelope = Envelope {
                mail_from: tx.mail_from.clone(),
                rcpt_to: rcpts,
                helo: tx.helo.clone(),
                client_ip: tx.client_ip.to_string(),
                tls: tx.tls.clone(),
                body: tx.params.body.clone(),
                smtputf8: tx.params.smtputf8,
                received_at: now_rfc3339(),
                ses: tx.ses.clone(),
            };
            let received = received_header(&tx, &self.hostname, &mail_id, &rfc2822_date);
            let mut raw = Vec::with_capacity(received.len() + tx.body.len());
            raw.extend_from_slice(received.as_bytes());
            raw.extend_from_slice(&tx.body);
            let mut headers = HeaderMap::new();
            headers.insert(
                bus::HEADER_MSG_ID,
                content_id(tenant, &envelope, &tx.body).as_str(),
            );
            headers.insert(bus::HEADER_MAIL_ID, mail_id.as_str());
            headers.insert(bus::HEADER_TENANT, tenant);
            headers.insert(bus::HEADER_ENVELOPE, envelope.to_header().as_str());
            if let Some(auth) = &tx.auth {
                headers.insert(bus::HEADER_AUTH, auth.as_str());
            }
            // One trace per mail starts here, inside the SMTP transaction's span.
            let span = tracing::info_span!(
                "ingest.publish",
                mail_id = mail_id.as_str(),
                tenant,
                stage = "ingest"
            );
            postwire_core::telemetry::inject(&span, &mut headers);
            let raw = match &self.claim {
                Some((store, limit)) if raw.len() > *limit => {
                    let size = raw.len();
                    let key = store.put(tenant, raw).await.map_err(|e| {
                        tracing::warn!(error = %e, "Storing a large message (claim check) failed; answering 4xx.");
                        PublishFailure::Unavailable
                    })?;
                    headers.insert(bus::HEADER_RAW_KEY, key.as_str());
                    headers.insert(bus::HEADER_RAW_SIZE, size.to_string().as_str());
                    Vec::new()
                }
                _ => raw,
            };
            let ack = self
                .js
                .publish_with_headers(bus::subject_mail_raw(tenant), headers, raw.into())
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "Publishing a message to JetStream failed; answering 4xx.");
                    classify(&e)
                })?;
            acks.push(ack);
            ids.push(mail_id);
        }
        for ack in acks {
            let ack = ack.await.map_err(|e| {
                tracing::warn!(error = %e, "JetStream did not acknowledge a message; answering 4xx.");
                classify(&e)
            })?;
            if ack.duplicate {
                tracing::info!(
                    seq = ack.sequence,
                    "The client re-sent a message already stored; not storing it twice."
                );
            }
        }
        Ok(ids)
    }
}

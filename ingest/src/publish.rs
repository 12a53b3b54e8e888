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
use std::sync::Arc;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind};
use postwire_core::bus;
use postwire_core::envelope::{Envelope, now_rfc3339};

pub use crate::smtp::PublishFailure;
use crate::smtp::Transaction;
use crate::smtp::received::Trace;
pub use crate::spool::ClaimCheck;

/// Makes transactions durable. Returns the mail ids on success.
pub trait Publisher: Send + Sync + 'static {
    fn publish(
        &self,
        tx: Transaction,
    ) -> impl Future<Output = Result<Vec<String>, PublishFailure>> + Send;
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
    Trace::of(tx).received(hostname, mail_id, date)
}

/// Now, as a `Received:` line writes it.
pub fn rfc2822_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default()
}

/// Idempotency key of one tenant's copy of a transaction: the same when a client retries
/// the same message. `body_sha256` is the hash of the content as the client sent it.
fn content_id(tenant: &str, env: &Envelope, body_sha256: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [tenant, env.mail_from.as_str()]
        .into_iter()
        .chain(env.rcpt_to.iter().map(String::as_str))
    {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(body_sha256.as_bytes());
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
        let result = self.publish_tenants(&tx).await;
        // The streamed message now has its content-addressed key(s), or the client retries.
        if let (Some(sp), Some((store, _))) = (&tx.spooled, &self.claim) {
            store.discard(&sp.temp_key).await;
        }
        result
    }
}

impl JetStreamPublisher {
    async fn publish_tenants(&self, tx: &Transaction) -> Result<Vec<String>, PublishFailure> {
        let mut by_tenant: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (addr, dest) in &tx.rcpts {
            by_tenant
                .entry(dest.tenant.as_str())
                .or_default()
                .push(addr.clone());
        }
        let rfc2822_date = rfc2822_now();
        let body_sha256 = match &tx.spooled {
            Some(sp) => sp.body_sha256.clone(),
            None => postwire_core::ids::sha256_hex(&tx.body),
        };
        if self.js.client().connection_state() != async_nats::connection::State::Connected {
            // Do not queue a publish in the client while disconnected: it could reach the
            // stream after we answered 451, and the client's retry would store it twice.
            tracing::warn!("NATS is not connected; deferring the message.");
            return Err(PublishFailure::Unavailable);
        }
        let mut acks = Vec::new();
        let mut ids = Vec::new();
        for (i, (tenant, rcpts)) in by_tenant.into_iter().enumerate() {
            // A streamed message's Received: line names the first tenant's mail id.
            let mail_id = match &tx.spooled {
                Some(sp) if i == 0 => sp.mail_id.clone(),
                _ => postwire_core::ids::new_mail_id(),
            };
            let envelope = tx.envelope(rcpts, now_rfc3339());
            let mut headers = HeaderMap::new();
            headers.insert(
                bus::HEADER_MSG_ID,
                content_id(tenant, &envelope, &body_sha256).as_str(),
            );
            headers.insert(bus::HEADER_MAIL_ID, mail_id.as_str());
            headers.insert(bus::HEADER_TENANT, tenant);
            headers.insert(bus::HEADER_ENVELOPE, envelope.to_header().as_str());
            if let Some(auth) = &tx.auth {
                headers.insert(bus::HEADER_AUTH, auth.to_header().as_str());
            }
            if let Some(spam) = &tx.spam {
                headers.insert(bus::HEADER_SPAM, spam.to_header().as_str());
            }
            // One trace per mail starts here, inside the SMTP transaction's span.
            let span = tracing::info_span!(
                "ingest.publish",
                mail_id = mail_id.as_str(),
                tenant,
                stage = "ingest"
            );
            postwire_core::telemetry::inject(&span, &mut headers);
            let raw = match (&tx.spooled, &self.claim) {
                (Some(sp), Some((store, _))) => {
                    let key = store.adopt(&sp.temp_key, tenant, &sp.sha256).await.map_err(|e| {
                        tracing::warn!(error = %e, "Naming a streamed message in storage failed; answering 4xx.");
                        PublishFailure::Unavailable
                    })?;
                    headers.insert(bus::HEADER_RAW_KEY, key.as_str());
                    headers.insert(bus::HEADER_RAW_SIZE, sp.size.to_string().as_str());
                    Vec::new()
                }
                (Some(_), None) => {
                    tracing::error!("A streamed message reached a publisher without storage.");
                    return Err(PublishFailure::Unavailable);
                }
                (None, claim) => {
                    self.inline_or_stored(tx, claim, tenant, &mail_id, &rfc2822_date, &mut headers)
                        .await?
                }
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

impl JetStreamPublisher {
    /// A message that arrived whole: in the MAIL message, or stored when above the limit.
    async fn inline_or_stored(
        &self,
        tx: &Transaction,
        claim: &Option<(Arc<dyn ClaimCheck>, usize)>,
        tenant: &str,
        mail_id: &str,
        date: &str,
        headers: &mut HeaderMap,
    ) -> Result<Vec<u8>, PublishFailure> {
        let received = received_header(tx, &self.hostname, mail_id, date);
        let mut raw = Vec::with_capacity(received.len() + tx.body.len());
        raw.extend_from_slice(received.as_bytes());
        raw.extend_from_slice(&tx.body);
        match claim {
            Some((store, limit)) if raw.len() > *limit => {
                let key = store.put(tenant, &raw).await.map_err(|e| {
                    tracing::warn!(error = %e, "Storing a large message (claim check) failed; answering 4xx.");
                    PublishFailure::Unavailable
                })?;
                headers.insert(bus::HEADER_RAW_KEY, key.as_str());
                headers.insert(bus::HEADER_RAW_SIZE, raw.len().to_string().as_str());
                Ok(Vec::new())
            }
            _ => Ok(raw),
        }
    }
}

//! One mail on its way through the fused stages: what the `MAIL` message says (mail id,
//! tenant, envelope, the raw bytes, fetched from object storage when claim-checked) and what
//! each stage adds (verdicts, the parsed message, the stored raw URL, the route events, the
//! transformed deliveries). Also [`Flow`], what a stage tells the chain.

use std::future::Future;

use async_nats::jetstream;
use bytes::Bytes;
use postwire_core::envelope::Envelope;
use postwire_core::event::{Auth, Spam};
use postwire_core::routing::Router;
use postwire_core::{Config, bus};

use crate::StageError;
use crate::parse::Parsed;
use crate::prepare::RouteEvent;
use crate::runner::{Held, Input, Outcome, Publish};
use crate::store::{BlobStore, SignedUrl};
use crate::transform::stage::Transformed;

/// What every stage of one mail may read: the bus, the configuration snapshot taken when the
/// mail's processing started, and the consumed message.
pub struct Ctx<'a> {
    pub js: &'a jetstream::Context,
    pub cfg: &'a Config,
    pub router: &'a Router,
    pub input: &'a Input,
}

/// What a stage tells the chain (moved once per stage: its size does not matter).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Flow {
    /// On to the next stage.
    Next,
    /// The mail is finished here (held, retried later, or its outputs are ready).
    Stop(Outcome),
}

pub struct Mail {
    pub mail_id: String,
    pub tenant: String,
    pub envelope: Envelope,
    /// The raw RFC 5322 bytes, read once; every stage borrows them (parse shares the buffer
    /// with the attachment bodies that are raw bytes as they are).
    pub raw: Bytes,
    /// Where ingest stored the raw bytes (claim check), so the store stage does not store
    /// them a second time.
    pub raw_key: Option<String>,
    /// Released from quarantine: delivered whatever its verdicts.
    pub released: bool,
    /// Verdicts of the verify stage (None when verification is off).
    pub auth: Option<Auth>,
    /// rspamd's verdict (None when `[spam]` is off).
    pub spam: Option<Spam>,
    /// The parse stage's output, until the route stage takes the message.
    pub parsed: Option<Parsed>,
    /// Where the store stage put the raw message.
    pub raw_url: Option<SignedUrl>,
    /// One event per route the recipients match (route stage).
    pub events: Vec<RouteEvent>,
    /// Recipients no route takes any more (route stage).
    pub unrouted: Vec<String>,
    /// Deliveries, audit records and dead letters (transform stage).
    pub transformed: Transformed,
    /// What the dashboard shows of it (taken before the transform stage consumes the
    /// events); the body of its `received` audit record.
    pub summary: Option<crate::prepare::summary::MailSummary>,
}

impl Mail {
    /// Reads a `MAIL` message. Its postwire headers missing is permanent (a foreign
    /// publisher); a claim-checked body that cannot be fetched yet is temporary.
    pub async fn read(input: &Input, blobs: Option<&BlobStore>) -> Result<Mail, StageError> {
        let permanent = |what: &str| StageError::Permanent(format!("missing or bad {what} header"));
        let mail_id = input
            .mail_id()
            .ok_or_else(|| permanent(bus::HEADER_MAIL_ID))?;
        let tenant = input
            .tenant()
            .ok_or_else(|| permanent(bus::HEADER_TENANT))?;
        let envelope = input
            .header(bus::HEADER_ENVELOPE)
            .and_then(|h| Envelope::from_header(h).ok())
            .ok_or_else(|| permanent(bus::HEADER_ENVELOPE))?;
        // Claim check: a large message is in object storage, the MAIL message only names it.
        let raw_key = input.header(bus::HEADER_RAW_KEY).map(str::to_string);
        let raw = match raw_key.as_deref() {
            Some(key) => {
                let store = blobs.ok_or_else(|| {
                    StageError::Temporary("a claim-checked message needs [storage]".into())
                })?;
                store
                    .get(key)
                    .await
                    .map_err(|e| StageError::Temporary(format!("reading {key}: {e}")))?
            }
            None => input.payload().clone(),
        };
        Ok(Mail {
            mail_id: mail_id.to_string(),
            tenant: tenant.to_string(),
            envelope,
            raw,
            raw_key,
            released: input.header(bus::HEADER_RELEASED).is_some(),
            auth: None,
            spam: None,
            parsed: None,
            raw_url: None,
            events: Vec::new(),
            unrouted: Vec::new(),
            transformed: Transformed::default(),
            summary: None,
        })
    }

    /// Holds this mail back in `quarantine.<tenant>`, raw, with its verdicts and the reason
    /// (the tenant's authentication policy, or an infected attachment), and notes the audit
    /// record of it.
    pub fn quarantine(&self, input: &Input, auth: Option<&Auth>, reason: String) -> Flow {
        tracing::info!(reason = %reason, "Quarantined a mail under the tenant's policy.");
        let record = serde_json::json!({
            "mail_id": self.mail_id, "action": "quarantine", "reason": reason, "auth": auth,
            "at": postwire_core::envelope::now_rfc3339(),
        });
        input.record(
            Publish::new(
                bus::subject_audit(&self.tenant, "quarantine"),
                format!("{}:audit-quarantine", self.mail_id),
                record.to_string(),
            )
            .header(bus::HEADER_MAIL_ID, &self.mail_id),
        );
        Flow::Stop(Outcome::Hold(Held {
            headers: input.headers(),
            payload: input.payload().clone(),
            tenant: self.tenant.clone(),
            mail_id: self.mail_id.clone(),
            auth: auth.cloned(),
            reason,
        }))
    }
}

/// One stage of the process worker: reads what earlier stages left in the [`Mail`], adds
/// its part, and says whether the mail goes on.
pub trait MailStage: Send + Sync {
    fn run(
        &self,
        ctx: &Ctx<'_>,
        mail: &mut Mail,
    ) -> impl Future<Output = Result<Flow, StageError>> + Send;
}

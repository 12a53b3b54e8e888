//! The bus contract: stream and subject names, header names, and helpers to connect and to
//! create the streams. Every publish in postwire carries `Nats-Msg-Id`.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::config::NatsConfig;

pub const STREAM_MAIL: &str = "MAIL";
pub const STREAM_OUTBOX: &str = "OUTBOX";
pub const STREAM_DLQ: &str = "DLQ";
pub const STREAM_AUDIT: &str = "AUDIT";
pub const STREAM_QUARANTINE: &str = "QUARANTINE";
/// Prepared delivery bodies kept for a resend, each with a per-message TTL.
pub const STREAM_PAYLOADS: &str = "PAYLOADS";

/// Durable consumer of the process worker on MAIL.
pub const CONSUMER_PROCESS: &str = "process";
/// Durable consumer of the deliver worker on OUTBOX.
pub const CONSUMER_DELIVER: &str = "deliver";

pub const HEADER_MSG_ID: &str = "Nats-Msg-Id";
pub const HEADER_ENVELOPE: &str = "Postwire-Envelope";
pub const HEADER_MAIL_ID: &str = "Postwire-Mail-Id";
pub const HEADER_TENANT: &str = "Postwire-Tenant";
pub const HEADER_ROUTE: &str = "Postwire-Route";
pub const HEADER_ENDPOINT: &str = "Postwire-Endpoint";
pub const HEADER_DELIVERY_ID: &str = "Postwire-Delivery-Id";
pub const HEADER_ATTEMPTS: &str = "Postwire-Attempts";
/// On an `OUTBOX` message: attempts the process worker made before writing it
/// (`delivery.inline_attempt_ms`); the deliver worker counts on from there.
pub const HEADER_ATTEMPTED: &str = "Postwire-Attempted";
/// On an `OUTBOX` message: the receiver refused the process worker's attempt for good (its
/// HTTP status, 0 when no request was made); the deliver worker settles the delivery as it
/// would its own refused attempt (the dead-letter stream; a 410 disables the endpoint)
/// without posting again. The error is in `Postwire-Last-Error`.
pub const HEADER_REFUSED: &str = "Postwire-Refused";
/// On an `OUTBOX` message: the receiver answered the process worker's attempt with a
/// `Retry-After` of this many milliseconds; the deliver worker's next attempt honours it as
/// it would after its own attempt.
pub const HEADER_RETRY_AFTER_MS: &str = "Postwire-Retry-After-Ms";
pub const HEADER_LAST_STATUS: &str = "Postwire-Last-Status";
pub const HEADER_LAST_ERROR: &str = "Postwire-Last-Error";
/// Authentication verdicts (`Auth` as compact JSON) computed by ingest for `reject` tenants,
/// or kept with a quarantined mail.
pub const HEADER_AUTH: &str = "Postwire-Auth";
/// rspamd's verdict (`Spam` as compact JSON), when ingest scored the mail at SMTP time.
pub const HEADER_SPAM: &str = "Postwire-Spam";
/// Set on a mail released from quarantine: deliver it whatever its verdicts.
pub const HEADER_RELEASED: &str = "Postwire-Released";
/// Why a mail was quarantined.
pub const HEADER_QUARANTINE_REASON: &str = "Postwire-Quarantine-Reason";
/// Claim check: the raw message is in object storage under this key (the payload is empty).
pub const HEADER_RAW_KEY: &str = "Postwire-Raw-Key";
pub const HEADER_RAW_SIZE: &str = "Postwire-Raw-Size";
/// What a dead letter holds: `delivery`, or raw mail that could not be processed
/// (`unrouted`, `plugin`). Older dead letters lack it and are told by their route.
pub const HEADER_DEAD_KIND: &str = "Postwire-Dead-Kind";
/// JetStream's per-message TTL (`168h`), on `PAYLOADS` messages.
pub const HEADER_TTL: &str = "Nats-TTL";
/// What a failed plugin wrote to stdout/stderr (bounded; newlines escaped as `\n`).
pub const HEADER_PLUGIN_OUTPUT: &str = "Postwire-Plugin-Output";

/// KV bucket of endpoint state shared by every worker (`<tenant>.<endpoint>` → JSON).
pub const KV_ENDPOINTS: &str = "postwire_endpoints";
/// KV bucket of attempts made per delivery (`<delivery id>.<outbox seq>` → count), so a
/// deferral never counts as an attempt.
pub const KV_ATTEMPTS: &str = "postwire_attempts";

/// Plugins uploaded through the admin API, `<tenant>/<name>/<sha256>.wasm`.
pub const OBJ_PLUGINS: &str = "postwire_plugins";

/// Live tenant configuration: key = tenant name, value = [`crate::live::StoredTenant`] JSON.
pub const KV_TENANTS: &str = "postwire_tenants";

/// `mail.raw.<tenant>`: raw RFC 5322 bytes from ingest.
pub fn subject_mail_raw(tenant: &str) -> String {
    format!("mail.raw.{tenant}")
}

/// `outbox.<tenant>.<route>`: one message per endpoint delivery.
pub fn subject_outbox(tenant: &str, route: &str) -> String {
    format!("outbox.{tenant}.{route}")
}

/// `dlq.<tenant>.<route>`: deliveries that gave up.
pub fn subject_dlq(tenant: &str, route: &str) -> String {
    format!("dlq.{tenant}.{route}")
}

/// `payload.<tenant>.<delivery id>`: a delivery's body kept for a resend.
pub fn subject_payload(tenant: &str, delivery_id: &str) -> String {
    format!("payload.{tenant}.{delivery_id}")
}

/// `quarantine.<tenant>`: raw mail held back by the tenant's authentication policy.
pub fn subject_quarantine(tenant: &str) -> String {
    format!("quarantine.{tenant}")
}

/// `audit.<tenant>.<kind>`: attempts, verdicts, drops.
pub fn subject_audit(tenant: &str, kind: &str) -> String {
    format!("audit.{tenant}.{kind}")
}

/// `audit.<tenant>.<kind>.<mail_id>`: audit records of one mail, so they can be read back
/// with one filter.
pub fn subject_audit_mail(tenant: &str, kind: &str, mail_id: &str) -> String {
    format!("audit.{tenant}.{kind}.{mail_id}")
}

/// `postwire.alerts.<tenant>`: alert events (core NATS, not stored).
pub fn subject_alerts(tenant: &str) -> String {
    format!("postwire.alerts.{tenant}")
}

/// Connects to NATS. The client keeps reconnecting forever in the background, so a process
/// started before the server (or across a server restart) recovers on its own.
pub async fn connect(
    cfg: &NatsConfig,
    name: &str,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .max_reconnects(None)
        .connect(cfg.servers())
        .await
}

/// A JetStream context whose publishes give up after the configured PubAck timeout.
pub fn jetstream(client: async_nats::Client, cfg: &NatsConfig) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(Duration::from_millis(cfg.publish_timeout_ms))
        .build(client)
}

/// The stream definitions postwire relies on. Discard policy is `New` everywhere: a full
/// stream refuses new messages (SMTP answers 452) instead of silently dropping old ones.
pub fn stream_configs(cfg: &NatsConfig) -> Vec<stream::Config> {
    let base = |name: &str, subjects: &str| stream::Config {
        name: name.to_string(),
        subjects: vec![subjects.to_string()],
        num_replicas: cfg.stream_replicas,
        discard: stream::DiscardPolicy::New,
        duplicate_window: Duration::from_secs(cfg.duplicate_window_secs),
        storage: stream::StorageType::File,
        ..Default::default()
    };
    vec![
        stream::Config {
            retention: stream::RetentionPolicy::WorkQueue,
            max_bytes: cfg.mail_max_bytes,
            max_age: Duration::from_secs(cfg.mail_max_age_secs),
            description: Some("Raw mail accepted by ingest, until processed".into()),
            ..base(STREAM_MAIL, "mail.>")
        },
        stream::Config {
            retention: stream::RetentionPolicy::WorkQueue,
            description: Some("Prepared deliveries, one per endpoint, until delivered".into()),
            ..base(STREAM_OUTBOX, "outbox.>")
        },
        stream::Config {
            max_age: Duration::from_secs(cfg.dlq_max_age_secs),
            description: Some("Deliveries that gave up, replayable".into()),
            ..base(STREAM_DLQ, "dlq.>")
        },
        stream::Config {
            max_age: Duration::from_secs(cfg.dlq_max_age_secs),
            description: Some(
                "Mail held back by a tenant's authentication policy, releasable".into(),
            ),
            ..base(STREAM_QUARANTINE, "quarantine.>")
        },
        stream::Config {
            max_age: Duration::from_secs(cfg.dlq_max_age_secs),
            description: Some("Delivery attempts and other audit records".into()),
            persist_mode: audit_persist_mode(cfg),
            ..base(STREAM_AUDIT, "audit.>")
        },
        stream::Config {
            // Each message carries its tenant's retention as a TTL (`payload_retention_days`),
            // capped by the DLQ's age (a resend needs the audit records too).
            max_age: Duration::from_secs(cfg.dlq_max_age_secs),
            allow_message_ttl: true,
            description: Some("Delivery bodies kept for a resend (per-message TTL)".into()),
            // History, like AUDIT: the mail itself is safe in OUTBOX when these are written.
            persist_mode: audit_persist_mode(cfg),
            ..base(STREAM_PAYLOADS, "payload.>")
        },
    ]
}

/// Why the streams and buckets could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("stream {name}: {source}")]
    Stream {
        name: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("KV bucket {bucket}: {source}")]
    Bucket {
        bucket: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl BusError {
    /// NATS did not answer in time or refused for now: trying again later may work.
    pub fn is_retryable(&self) -> bool {
        true
    }
}

/// How AUDIT is written. Audit records are written after the mail they describe is safe
/// (they are history, not mail): on a single server they need not wait for an fsync, so
/// AUDIT opts out of `sync_interval: always` (`persist_mode: async`, R1 only). Replicated
/// streams have the other replicas instead and keep the default. See docs/operations.md.
pub fn audit_persist_mode(cfg: &NatsConfig) -> Option<stream::PersistenceMode> {
    (cfg.stream_replicas == 1).then_some(stream::PersistenceMode::Async)
}

/// A stream's persistence mode cannot change once created: an existing stream keeps its own
/// (a deployment upgraded from an earlier postwire keeps a synced AUDIT).
async fn keep_persist_mode(js: &jetstream::Context, sc: &mut stream::Config) {
    if let Ok(mut existing) = js.get_stream(&sc.name).await
        && let Ok(info) = existing.info().await
        && info.config.persist_mode.unwrap_or_default() != sc.persist_mode.unwrap_or_default()
    {
        tracing::info!(stream = %sc.name, "The stream keeps the persistence mode it was created with.");
        sc.persist_mode = info.config.persist_mode;
    }
}

/// Creates or updates every stream, retrying until NATS answers or `deadline` passes.
pub async fn ensure_streams(
    js: &jetstream::Context,
    cfg: &NatsConfig,
    deadline: Duration,
) -> Result<(), BusError> {
    let until = tokio::time::Instant::now() + deadline;
    for mut sc in stream_configs(cfg) {
        keep_persist_mode(js, &mut sc).await;
        loop {
            match js.create_or_update_stream(sc.clone()).await {
                Ok(_) => break,
                Err(e) if tokio::time::Instant::now() < until => {
                    tracing::warn!(stream = %sc.name, error = %e, "JetStream is not ready; retrying");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => {
                    return Err(BusError::Stream {
                        name: sc.name.clone(),
                        source: Box::new(e),
                    });
                }
            }
        }
    }
    for (bucket, max_age, history) in [
        (KV_ENDPOINTS, Duration::ZERO, 1),
        (KV_ATTEMPTS, Duration::from_secs(cfg.dlq_max_age_secs), 1),
        // Earlier revisions of a tenant's config stay readable (what changed, and undo).
        (KV_TENANTS, Duration::ZERO, 16),
    ] {
        let kv = async_nats::jetstream::kv::Config {
            bucket: bucket.to_string(),
            history,
            max_age,
            num_replicas: cfg.stream_replicas,
            ..Default::default()
        };
        loop {
            match js.create_or_update_key_value(kv.clone()).await {
                Ok(_) => break,
                Err(e) if tokio::time::Instant::now() < until => {
                    tracing::warn!(bucket, error = %e, "JetStream is not ready; retrying");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => {
                    return Err(BusError::Bucket {
                        bucket,
                        source: Box::new(e),
                    });
                }
            }
        }
    }
    Ok(())
}

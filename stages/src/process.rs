//! The process worker: consumes `MAIL`, runs verify → parse → store → transform (tenant
//! plugins) → prepare (or holds the mail in `QUARANTINE` when the tenant's authentication
//! policy says so), publishes one `OUTBOX`
//! message per endpoint (with `Nats-Msg-Id` = delivery id, so redelivery never duplicates),
//! and acknowledges its input only after every output was acknowledged.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer::pull};
use postwire_core::envelope::Envelope;
use postwire_core::routing::Router;
use postwire_core::{Config, bus};

use tracing::Instrument as _;

use crate::StageError;
use crate::prepare::{self, MailInput};
use crate::store::BlobStore;
use crate::transform::{self, Transformer};
use crate::verify::{self, Action, Verifier};

/// Parallel messages per process worker.
const CONCURRENCY: usize = 16;

/// Runs the process worker, with object storage as `[storage]` configures it (the
/// filesystem backend's URL key from `storage.signing_key_env`).
pub async fn run(
    js: jetstream::Context,
    cfg: Arc<Config>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StageError> {
    let key = std::env::var(&cfg.storage.signing_key_env)
        .ok()
        .map(String::into_bytes);
    let blobs = BlobStore::from_config(&cfg.storage, key).map_err(StageError::Permanent)?;
    run_with(js, cfg, blobs.map(Arc::new), shutdown).await
}

/// Runs the process worker with the given object store (`None`: nothing stored).
pub async fn run_with(
    js: jetstream::Context,
    cfg: Arc<Config>,
    blobs: Option<Arc<BlobStore>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StageError> {
    let consumer = pull::Config {
        durable_name: Some(bus::CONSUMER_PROCESS.into()),
        ack_wait: Duration::from_secs(60),
        max_ack_pending: 1_000,
        ..Default::default()
    };
    let router = Arc::new(cfg.router());
    let verifier = match cfg.verify.enabled {
        true => Some(Arc::new(
            Verifier::new(&cfg.verify, &cfg.smtp.hostname).map_err(StageError::Permanent)?,
        )),
        false => None,
    };
    let plugins = plugin_host(&cfg)?;
    let js2 = js.clone();
    crate::runner::consume(&js, bus::STREAM_MAIL, consumer, CONCURRENCY, shutdown, move |msg| {
        let (js, cfg, router, blobs, verifier, plugins) = (
            js2.clone(),
            cfg.clone(),
            router.clone(),
            blobs.clone(),
            verifier.clone(),
            plugins.clone(),
        );
        async move {
            let span = tracing::info_span!(
                "process",
                mail_id = header(&msg, bus::HEADER_MAIL_ID).unwrap_or_default(),
                tenant = header(&msg, bus::HEADER_TENANT).unwrap_or_default(),
                stage = "process",
            );
            postwire_core::telemetry::continue_from(&span, msg.headers.as_ref());
            let started = std::time::Instant::now();
            let stages = Stages { blobs: blobs.as_deref(), verifier: verifier.as_deref(), plugins: plugins.as_ref() };
            let result = process(&js, &cfg, &router, stages, &msg)
                .instrument(span)
                .await;
            postwire_core::metrics::observe(
                "postwire_stage_duration_seconds",
                "Time a stage took for one message.",
                &[("stage", "process")],
                started.elapsed(),
            );
            match result {
                Ok(Outcome::Retry(delay)) => {
                    tracing::warn!("DNS could not decide the verdicts of a mail; retrying later.");
                    let _ = msg.ack_with(AckKind::Nak(Some(delay))).await;
                }
                Ok(Outcome::Done) => {
                    if let Err(e) = msg.ack().await {
                        tracing::warn!(error = %e, "Acknowledging a processed mail failed; it will be processed again (idempotently).");
                    }
                }
                Err(e) if e.is_retryable() => {
                    tracing::warn!(error = %e, "Processing a mail failed; retrying later.");
                    let _ = msg.ack_with(AckKind::Nak(Some(Duration::from_secs(2)))).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, subject = %msg.subject, "A MAIL message can never be processed; terminating it.");
                    let _ = msg.ack_with(AckKind::Term).await;
                }
            }
        }
    })
    .await;
    Ok(())
}

/// The plugin host, when a tenant has plugins (the engine reserves address space up front).
fn plugin_host(cfg: &Config) -> Result<Option<Arc<Transformer>>, StageError> {
    if cfg.tenants.values().all(|t| t.plugins.is_empty()) {
        return Ok(None);
    }
    let ph = &cfg.plugin_host;
    let settings = transform::TransformSettings {
        deadline: Duration::from_millis(ph.deadline_ms),
        memory_limit_bytes: ph.memory_limit_bytes,
        cache_dir: (!ph.cache_dir.is_empty()).then(|| ph.cache_dir.clone().into()),
    };
    let host = Arc::new(
        Transformer::new(settings)
            .map_err(|e| StageError::Permanent(format!("starting the plugin host: {e}")))?,
    );
    // Compile (or load from the cache) every plugin now, in the background, rather than with
    // the first mail; a mail that comes first loads its plugins itself.
    let paths: Vec<_> = cfg
        .tenants
        .values()
        .flat_map(|t| t.plugins.iter().map(|p| p.path.clone()))
        .collect();
    let preload = host.clone();
    tokio::task::spawn_blocking(move || {
        for path in paths {
            if let Err(e) = preload.load(&path) {
                tracing::error!(error = %e, "A plugin cannot be loaded; its tenant's failure mode applies until it is fixed.");
            }
        }
    });
    Ok(Some(host))
}

/// A NATS header value: one line, bounded.
fn header_value(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(500)
        .collect()
}

fn header<'a>(msg: &'a jetstream::Message, name: &str) -> Option<&'a str> {
    msg.headers.as_ref()?.get(name).map(|v| v.as_str())
}

/// What became of a mail that raised no error.
enum Outcome {
    Done,
    /// DNS could not decide the verdicts: try again after this delay.
    Retry(Duration),
}

/// The optional stages of one worker.
#[derive(Clone, Copy)]
struct Stages<'a> {
    blobs: Option<&'a BlobStore>,
    verifier: Option<&'a Verifier>,
    plugins: Option<&'a Arc<Transformer>>,
}

async fn process(
    js: &jetstream::Context,
    cfg: &Config,
    router: &Router,
    stages: Stages<'_>,
    msg: &jetstream::Message,
) -> Result<Outcome, StageError> {
    let Stages {
        blobs,
        verifier,
        plugins,
    } = stages;
    let permanent = |what: &str| StageError::Permanent(format!("missing or bad {what} header"));
    let mail_id = header(msg, bus::HEADER_MAIL_ID).ok_or_else(|| permanent(bus::HEADER_MAIL_ID))?;
    let tenant = header(msg, bus::HEADER_TENANT).ok_or_else(|| permanent(bus::HEADER_TENANT))?;
    let envelope = header(msg, bus::HEADER_ENVELOPE)
        .and_then(|h| Envelope::from_header(h).ok())
        .ok_or_else(|| permanent(bus::HEADER_ENVELOPE))?;
    // Claim check: a large message is in object storage, the MAIL message only names it.
    let raw_bytes: bytes::Bytes = match header(msg, bus::HEADER_RAW_KEY) {
        Some(key) => {
            let store = blobs.ok_or_else(|| {
                StageError::Temporary("a claim-checked message needs [storage]".into())
            })?;
            store
                .get(key)
                .await
                .map_err(|e| StageError::Temporary(format!("reading {key}: {e}")))?
        }
        None => msg.payload.clone(),
    };
    let raw: &[u8] = &raw_bytes;
    let auth = match verifier {
        None => None,
        Some(v) => match header(msg, bus::HEADER_AUTH).and_then(|h| serde_json::from_str(h).ok()) {
            Some(auth) => Some(auth),
            None => Some(verify_with_progress(v, msg, raw, &envelope).await),
        },
    };
    if let Some(auth) = &auth {
        let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
        if auth.undecided() && delivered <= i64::from(cfg.verify.max_dns_retries) {
            return Ok(Outcome::Retry(Duration::from_millis(
                cfg.verify.dns_retry_delay_ms,
            )));
        }
        let released = header(msg, bus::HEADER_RELEASED).is_some();
        let action = verify::decide(cfg.auth_policy(tenant), auth);
        if action != Action::Deliver && !released {
            quarantine(js, msg, mail_id, tenant, auth).await?;
            return Ok(Outcome::Done);
        }
    }

    let (mut message, limits) = crate::parse::parse(raw);
    let raw_url = match blobs {
        Some(b) => {
            let policy = cfg
                .tenants
                .get(tenant)
                .map(|t| t.attachments)
                .unwrap_or_default();
            let url = b.apply(tenant, policy, &raw_bytes, &mut message).await?;
            // Inline images now have URLs: the HTML points at them instead of `cid:`.
            crate::parse::sanitize::rewrite_cids(&mut message);
            Some(url)
        }
        None => None,
    };
    let (events, unrouted) = prepare::route_events(
        router,
        MailInput {
            mail_id,
            tenant,
            envelope: &envelope,
            raw,
            message,
            limits,
            auth,
            raw_url,
        },
    );
    let transformed = transform::stage::apply(plugins, cfg, tenant, mail_id, events).await?;
    let prepared = prepare::Prepared {
        deliveries: transformed.deliveries,
        unrouted,
    };

    let mut acks = Vec::with_capacity(prepared.deliveries.len() + 1);
    for d in &prepared.deliveries {
        let mut h = HeaderMap::new();
        h.insert(bus::HEADER_MSG_ID, d.id.as_str());
        h.insert(bus::HEADER_DELIVERY_ID, d.id.as_str());
        h.insert(bus::HEADER_MAIL_ID, mail_id);
        h.insert(bus::HEADER_TENANT, d.tenant.as_str());
        h.insert(bus::HEADER_ROUTE, d.route.as_str());
        h.insert(bus::HEADER_ENDPOINT, d.endpoint.as_str());
        postwire_core::telemetry::inject(&tracing::Span::current(), &mut h);
        let ack = js
            .publish_with_headers(
                bus::subject_outbox(&d.tenant, &d.route),
                h,
                d.body.clone().into(),
            )
            .await
            .map_err(|e| StageError::Temporary(format!("publishing to OUTBOX: {e}")))?;
        acks.push(ack);
    }
    for a in &transformed.audits {
        let mut h = HeaderMap::new();
        h.insert(
            bus::HEADER_MSG_ID,
            format!("{mail_id}:{}:{}", a.kind, a.route).as_str(),
        );
        h.insert(bus::HEADER_MAIL_ID, mail_id);
        let body = serde_json::to_vec(a).unwrap_or_default();
        let ack = js
            .publish_with_headers(
                bus::subject_audit_mail(tenant, a.kind, mail_id),
                h,
                body.into(),
            )
            .await
            .map_err(|e| StageError::Temporary(format!("publishing to AUDIT: {e}")))?;
        acks.push(ack);
    }
    for a in &transformed.dead {
        // fail-closed: keep the raw mail, with the plugin's error, where an operator looks.
        let mut h = msg.headers.clone().unwrap_or_default();
        h.insert(
            bus::HEADER_MSG_ID,
            format!("{mail_id}:plugin:{}", a.route).as_str(),
        );
        h.insert(bus::HEADER_ROUTE, a.route.as_str());
        h.insert(bus::HEADER_LAST_ERROR, header_value(&a.reason).as_str());
        let ack = js
            .publish_with_headers(bus::subject_dlq(tenant, "_plugin"), h, msg.payload.clone())
            .await
            .map_err(|e| StageError::Temporary(format!("publishing to DLQ: {e}")))?;
        acks.push(ack);
    }
    if !prepared.unrouted.is_empty() {
        // Never drop accepted mail silently: keep it, raw, where an operator will look.
        tracing::warn!(
            count = prepared.unrouted.len(),
            "Recipients no longer match any route; keeping the mail in the DLQ."
        );
        let mut h = msg.headers.clone().unwrap_or_default();
        h.insert(bus::HEADER_MSG_ID, format!("{mail_id}:unrouted").as_str());
        h.insert(bus::HEADER_LAST_ERROR, "no route matches these recipients");
        let ack = js
            .publish_with_headers(
                bus::subject_dlq(tenant, "_unrouted"),
                h,
                msg.payload.clone(),
            )
            .await
            .map_err(|e| StageError::Temporary(format!("publishing to DLQ: {e}")))?;
        acks.push(ack);
    }
    for ack in acks {
        ack.await
            .map_err(|e| StageError::Temporary(format!("waiting for the PubAck: {e}")))?;
    }
    tracing::info!(deliveries = prepared.deliveries.len(), "Processed a mail.");
    Ok(Outcome::Done)
}

/// Verifies, telling JetStream every 15 s that the mail is still being worked on (slow DNS
/// must not make it redeliver the mail to another worker meanwhile).
async fn verify_with_progress(
    v: &Verifier,
    msg: &jetstream::Message,
    raw: &[u8],
    envelope: &Envelope,
) -> postwire_core::event::Auth {
    let verify = v.verify(raw, envelope);
    tokio::pin!(verify);
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    tick.tick().await;
    loop {
        tokio::select! {
            auth = &mut verify => return auth,
            _ = tick.tick() => {
                let _ = msg.ack_with(AckKind::Progress).await;
            }
        }
    }
}

/// Holds a mail back in `quarantine.<tenant>`, raw, with its verdicts and the reason.
async fn quarantine(
    js: &jetstream::Context,
    msg: &jetstream::Message,
    mail_id: &str,
    tenant: &str,
    auth: &postwire_core::event::Auth,
) -> Result<(), StageError> {
    let reason = verify::policy::reason(auth);
    tracing::info!(reason = %reason, "Quarantined a mail under the tenant's authentication policy.");
    let mut h = msg.headers.clone().unwrap_or_default();
    h.insert(bus::HEADER_MSG_ID, format!("{mail_id}:quarantine").as_str());
    let auth_json = serde_json::to_string(auth)
        .map_err(|e| StageError::Permanent(format!("serialising the verdicts: {e}")))?;
    h.insert(bus::HEADER_AUTH, auth_json.as_str());
    h.insert(bus::HEADER_QUARANTINE_REASON, reason.as_str());
    js.publish_with_headers(bus::subject_quarantine(tenant), h, msg.payload.clone())
        .await
        .map_err(|e| StageError::Temporary(format!("publishing to QUARANTINE: {e}")))?
        .await
        .map_err(|e| StageError::Temporary(format!("waiting for the PubAck: {e}")))?;
    // Best effort, like the delivery attempts: the quarantine itself is already durable.
    let record = serde_json::json!({
        "mail_id": mail_id, "action": "quarantine", "reason": reason, "auth": auth,
        "at": postwire_core::envelope::now_rfc3339(),
    });
    let mut h = HeaderMap::new();
    h.insert(
        bus::HEADER_MSG_ID,
        format!("{mail_id}:audit-quarantine").as_str(),
    );
    h.insert(bus::HEADER_MAIL_ID, mail_id);
    if let Err(e) = js
        .publish_with_headers(
            bus::subject_audit(tenant, "quarantine"),
            h,
            record.to_string().into(),
        )
        .await
    {
        tracing::warn!(error = %e, "Could not append an audit record.");
    }
    Ok(())
}

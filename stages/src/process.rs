//! The process worker: consumes `MAIL`, runs verify → parse → antivirus → store → transform
//! (tenant plugins) → prepare (or holds the mail in `QUARANTINE` when the tenant's
//! authentication or infected-attachment policy says so), publishes one `OUTBOX`
//! message per endpoint (with `Nats-Msg-Id` = delivery id, so redelivery never duplicates),
//! and acknowledges its input only after every output was acknowledged.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer::pull};
use postwire_core::antivirus_config::InfectedPolicy;
use postwire_core::envelope::Envelope;
use postwire_core::live::LiveConfig;
use postwire_core::routing::Router;
use postwire_core::{Config, bus};

use tracing::Instrument as _;

use crate::StageError;
use crate::antivirus::Antivirus;
use crate::held::dlq::{self, Dead, RawReason};
use crate::held::quarantine;
use crate::prepare::{self, MailInput};
use crate::store::BlobStore;
use crate::transform::{self, Transformer};
use crate::verify::{self, Action, Verifier};
use postwire_core::event::Auth;

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
    run_live(js, LiveConfig::fixed(cfg), blobs, shutdown).await
}

/// [`run_with`] following the live configuration: each mail is routed and transformed with
/// the tenant configuration current when its processing starts.
pub async fn run_live(
    js: jetstream::Context,
    live: Arc<LiveConfig>,
    blobs: Option<Arc<BlobStore>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StageError> {
    let cfg = live.get().cfg.clone();
    let consumer = pull::Config {
        durable_name: Some(bus::CONSUMER_PROCESS.into()),
        ack_wait: Duration::from_secs(60),
        max_ack_pending: 1_000,
        ..Default::default()
    };
    let verifier = match cfg.verify.enabled {
        true => Some(Arc::new(
            Verifier::new(&cfg.verify, &cfg.smtp.hostname).map_err(StageError::Permanent)?,
        )),
        false => None,
    };
    let plugins = Arc::new(transform::PluginSlot::default());
    // Start the host and compile the plugins now rather than with the first mail.
    plugins.get(&cfg).map_err(StageError::Permanent)?;
    let antivirus = Antivirus::from_config(&cfg.antivirus).map(Arc::new);
    // Raw-mail retention; stopped with the consumer below.
    let sweeper = match &blobs {
        Some(b) if cfg.storage.raw_retention_days > 0 => {
            Some(tokio::spawn(crate::store::sweep::run_periodically(
                b.clone(),
                cfg.storage.raw_retention_days,
                Duration::from_secs(cfg.storage.sweep_interval_secs),
                std::future::pending(),
            )))
        }
        _ => None,
    };
    let js2 = js.clone();
    crate::runner::consume(&js, bus::STREAM_MAIL, consumer, CONCURRENCY, shutdown, move |msg| {
        let (js, snap, blobs, verifier, plugins, antivirus) = (
            js2.clone(),
            live.get(),
            blobs.clone(),
            verifier.clone(),
            plugins.clone(),
            antivirus.clone(),
        );
        async move {
            let (cfg, router) = (&snap.cfg, &snap.router);
            let plugins = match plugins.get(cfg) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "The plugin host cannot start; retrying the mail later.");
                    let _ = msg.ack_with(AckKind::Nak(Some(Duration::from_secs(10)))).await;
                    return;
                }
            };
            let span = tracing::info_span!(
                "process",
                mail_id = header(&msg, bus::HEADER_MAIL_ID).unwrap_or_default(),
                tenant = header(&msg, bus::HEADER_TENANT).unwrap_or_default(),
                stage = "process",
            );
            postwire_core::telemetry::continue_from(&span, msg.headers.as_ref());
            let started = std::time::Instant::now();
            let stages = Stages { blobs: blobs.as_deref(), verifier: verifier.as_deref(), plugins: plugins.as_ref(), antivirus: antivirus.as_deref() };
            let result = process(&js, cfg, router, stages, &msg)
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
                    // For the dashboard's counts: one empty record per processed mail (its
                    // time is the record's). Not waited for: a lost one only skews a chart.
                    if let (Some(tenant), Some(mail_id)) = (
                        header(&msg, bus::HEADER_TENANT),
                        header(&msg, bus::HEADER_MAIL_ID),
                    ) {
                        let subject = bus::subject_audit_mail(tenant, "received", mail_id);
                        let _ = js.publish(subject, bytes::Bytes::new()).await;
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
    if let Some(s) = sweeper {
        s.abort();
    }
    Ok(())
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
    antivirus: Option<&'a Antivirus>,
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
        antivirus,
    } = stages;
    let permanent = |what: &str| StageError::Permanent(format!("missing or bad {what} header"));
    let mail_id = header(msg, bus::HEADER_MAIL_ID).ok_or_else(|| permanent(bus::HEADER_MAIL_ID))?;
    let tenant = header(msg, bus::HEADER_TENANT).ok_or_else(|| permanent(bus::HEADER_TENANT))?;
    let envelope = header(msg, bus::HEADER_ENVELOPE)
        .and_then(|h| Envelope::from_header(h).ok())
        .ok_or_else(|| permanent(bus::HEADER_ENVELOPE))?;
    // Claim check: a large message is in object storage, the MAIL message only names it.
    let fetched;
    let raw: &[u8] = match header(msg, bus::HEADER_RAW_KEY) {
        Some(key) => {
            let store = blobs.ok_or_else(|| {
                StageError::Temporary("a claim-checked message needs [storage]".into())
            })?;
            fetched = store
                .get(key)
                .await
                .map_err(|e| StageError::Temporary(format!("reading {key}: {e}")))?;
            &fetched
        }
        None => &msg.payload,
    };
    let auth = match verifier {
        None => None,
        Some(v) => match header(msg, bus::HEADER_AUTH).and_then(|h| Auth::from_header(h).ok()) {
            Some(auth) => Some(auth),
            None => Some(with_progress(msg, v.verify(raw, &envelope)).await),
        },
    };
    let released = header(msg, bus::HEADER_RELEASED).is_some();
    if let Some(auth) = &auth {
        let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
        if auth.undecided() && delivered <= i64::from(cfg.verify.max_dns_retries) {
            return Ok(Outcome::Retry(Duration::from_millis(
                cfg.verify.dns_retry_delay_ms,
            )));
        }
        let action = verify::decide(cfg.auth_policy(tenant), auth);
        if action != Action::Deliver && !released {
            let reason = verify::policy::reason(auth);
            quarantine(js, msg, mail_id, tenant, Some(auth), &reason).await?;
            return Ok(Outcome::Done);
        }
    }

    // Parse once; the attachment contents go on to the antivirus and the store stage.
    let crate::parse::Parsed {
        mut message,
        limits,
        bodies,
    } = if blobs.is_some() || antivirus.is_some() {
        crate::parse::parse_with_bodies(raw)
    } else {
        let (message, limits) = crate::parse::parse(raw);
        crate::parse::Parsed {
            message,
            limits,
            bodies: Vec::new(),
        }
    };
    let tenant_cfg = cfg.tenants.get(tenant);
    if let Some(av) = antivirus {
        let found = with_progress(msg, av.scan(&mut message, &bodies)).await?;
        let policy = tenant_cfg
            .map(|t| t.infected_attachments)
            .unwrap_or_default();
        // A released mail is delivered, its infected attachments dropped.
        if !found.is_empty() && policy == InfectedPolicy::Quarantine && !released {
            let reason = format!("infected attachment: {}", found.join(", "));
            quarantine(js, msg, mail_id, tenant, auth.as_ref(), &reason).await?;
            return Ok(Outcome::Done);
        }
    }
    let raw_url = match blobs {
        Some(b) => {
            let policy = tenant_cfg.map(|t| t.attachments).unwrap_or_default();
            let url = b.apply(tenant, policy, raw, &mut message, &bodies).await?;
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
    if plugins.is_some() {
        transform::uploads::fetch_missing(js, cfg, tenant).await;
    }
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
    for ack in acks {
        ack.await
            .map_err(|e| StageError::Temporary(format!("waiting for the PubAck: {e}")))?;
    }
    // The MAIL sequence in the dead letters' ids: a redelivered MAIL message writes its dead
    // letter once, a replayed copy (a new sequence) that fails again writes a new one.
    let mail_seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
    let held = msg.headers.clone().unwrap_or_default();
    for a in &transformed.dead {
        // fail-closed: keep the raw mail, with the plugin's error, where an operator looks.
        dlq::write(
            js,
            Dead::RawMail {
                headers: &held,
                payload: msg.payload.clone(),
                tenant,
                mail_id,
                reason: RawReason::Plugin,
                route: Some(&a.route),
                error: &a.reason,
                mail_seq,
            },
        )
        .await?;
    }
    if !prepared.unrouted.is_empty() {
        // Never drop accepted mail silently: keep it, raw, where an operator will look.
        tracing::warn!(
            count = prepared.unrouted.len(),
            "Recipients no longer match any route; keeping the mail in the DLQ."
        );
        dlq::write(
            js,
            Dead::RawMail {
                headers: &held,
                payload: msg.payload.clone(),
                tenant,
                mail_id,
                reason: RawReason::Unrouted,
                route: None,
                error: "no route matches these recipients",
                mail_seq,
            },
        )
        .await?;
    }
    tracing::info!(deliveries = prepared.deliveries.len(), "Processed a mail.");
    Ok(Outcome::Done)
}

/// Runs `work` (verification, a virus scan), telling JetStream every 15 s that the mail is
/// still being worked on (slow DNS or a slow scanner must not make it redeliver the mail to
/// another worker meanwhile).
async fn with_progress<T>(msg: &jetstream::Message, work: impl Future<Output = T>) -> T {
    tokio::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    tick.tick().await;
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => {
                let _ = msg.ack_with(AckKind::Progress).await;
            }
        }
    }
}

/// Holds a mail back in `quarantine.<tenant>`, raw, with its verdicts and the reason (the
/// tenant's authentication policy, or an infected attachment).
async fn quarantine(
    js: &jetstream::Context,
    msg: &jetstream::Message,
    mail_id: &str,
    tenant: &str,
    auth: Option<&Auth>,
    reason: &str,
) -> Result<(), StageError> {
    tracing::info!(reason = %reason, "Quarantined a mail under the tenant's policy.");
    let held = msg.headers.clone().unwrap_or_default();
    quarantine::hold(
        js,
        &held,
        msg.payload.clone(),
        tenant,
        mail_id,
        auth,
        reason,
    )
    .await?;
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

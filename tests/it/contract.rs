//! The contract every stage passes (STYLE 12), against a real nats-server and the real
//! runner: the stage emits its metrics (`postwire_stage_messages_total` by outcome,
//! `postwire_stage_duration_seconds`, for a fused worker per stage), and a redelivered input
//! is idempotent: when a worker wrote its outputs and then lost its ack, the redelivery
//! writes the same `Nats-Msg-Id`s, so the output streams hold one copy.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use postwire_core::envelope::Envelope;
use postwire_core::live::LiveConfig;
use postwire_core::storage_config::Backend;
use postwire_core::{Config, bus};
use postwire_e2e::nats::NatsServer;
use postwire_e2e::pipeline;
use postwire_e2e::receiver::Receiver;
use postwire_stages::StageError;
use postwire_stages::deliver::Deliver;
use postwire_stages::process::{Chain, Deps, Process, StageName};
use postwire_stages::runner::{self, Input, Kind, Outcome, Settled, Stage};
use postwire_stages::store::BlobStore;

/// Runs `inner` as it is, except that the first time it finishes an input its outputs are
/// written and then its ack is lost (the input is handed back and redelivered).
struct LostAck<S> {
    inner: S,
    js: jetstream::Context,
}

impl<S: Stage> Stage for LostAck<S> {
    fn kind(&self) -> Kind {
        self.inner.kind()
    }

    async fn handle(&self, input: &Input) -> Result<Outcome, StageError> {
        let outcome = self.inner.handle(input).await?;
        if input.delivered() > 1 {
            return Ok(outcome);
        }
        if let Outcome::Done(outputs) = outcome {
            runner::publish_outputs(&self.js, outputs).await?;
        }
        Ok(Outcome::Retry(Duration::ZERO))
    }

    async fn settled(&self, input: &Input, how: Settled) {
        self.inner.settled(input, how).await
    }
}

async fn bus(nats: &NatsServer, hook: &str) -> (Arc<Config>, jetstream::Context) {
    let cfg = pipeline::config(&nats.url(), hook);
    cfg.validate().expect("valid");
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let js = jetstream::new(client);
    bus::ensure_streams(&js, &cfg.nats, Duration::from_secs(10))
        .await
        .expect("streams");
    (Arc::new(cfg), js)
}

/// Runs `stage` on `consumer` until its input stream is empty (every input acknowledged).
async fn run_until_drained<S: Stage>(
    js: &jetstream::Context,
    stage: S,
    consumer: runner::Consumer,
) {
    let stream = consumer.stream;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let js2 = js.clone();
    let task = tokio::spawn(async move {
        let stage = LostAck {
            inner: stage,
            js: js2.clone(),
        };
        runner::run(&js2, Arc::new(stage), consumer, async {
            let _ = stopped.await;
        })
        .await
    });
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut s = js.get_stream(stream).await.expect("stream");
        if s.info().await.expect("info").state.messages == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "{stream} was not drained"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    task.await.expect("runner stopped");
}

/// The `Nats-Msg-Id`s of the messages `stream` holds on subjects starting with `prefix`.
async fn msg_ids(js: &jetstream::Context, stream: &str, prefix: &str) -> Vec<String> {
    let mut s = js.get_stream(stream).await.expect("stream");
    let state = s.info().await.expect("info").state.clone();
    let mut ids = Vec::new();
    if state.messages == 0 {
        return ids;
    }
    for seq in state.first_sequence..=state.last_sequence {
        let Ok(m) = s.get_raw_message(seq).await else {
            continue;
        };
        if m.subject.starts_with(prefix) {
            let id = m
                .headers
                .get(bus::HEADER_MSG_ID)
                .map(|v| v.as_str().to_string());
            ids.push(id.unwrap_or_default());
        }
    }
    ids
}

fn assert_metrics(stage: &str, outcomes: &[&str]) {
    let text = postwire_core::metrics::render(&[]);
    for outcome in outcomes {
        let want =
            format!("postwire_stage_messages_total{{stage=\"{stage}\",outcome=\"{outcome}\"}}");
        assert!(text.contains(&want), "{want} missing in\n{text}");
    }
    let want = format!("postwire_stage_duration_seconds_count{{stage=\"{stage}\"}}");
    assert!(text.contains(&want), "{want} missing in\n{text}");
}

#[tokio::test]
async fn process_redelivered_writes_each_output_once() {
    let nats = NatsServer::start();
    let (cfg, js) = bus(&nats, "http://127.0.0.1:9/hook").await;
    let envelope = Envelope {
        mail_from: "a@example.com".into(),
        rcpt_to: vec!["support@acme.test".into(), "sales@acme.test".into()],
        helo: "client.test".into(),
        client_ip: "127.0.0.1".into(),
        received_at: "2026-12-07T10:00:00Z".into(),
        ..Default::default()
    };
    let mut h = HeaderMap::new();
    h.insert(bus::HEADER_MAIL_ID, "0193a000-0000-7000-8000-000000000001");
    h.insert(bus::HEADER_TENANT, "acme");
    h.insert(bus::HEADER_ENVELOPE, envelope.to_header().as_str());
    let raw = "From: a@example.com\r\nTo: support@acme.test\r\nSubject: contract\r\n\r\nhi\r\n";
    js.publish_with_headers(bus::subject_mail_raw("acme"), h, raw.into())
        .await
        .expect("publish")
        .await
        .expect("puback");

    let dir = tempfile::tempdir().expect("dir");
    let mut storage = cfg.storage.clone();
    storage.backend = Backend::Fs;
    storage.path = dir.path().display().to_string();
    let blobs = BlobStore::from_config(&storage, Some(b"key".to_vec()))
        .expect("store")
        .map(Arc::new);
    let deps = Deps {
        cfg: &cfg,
        blobs: blobs.clone(),
    };
    let chain = Chain::build(&StageName::ALL, deps).expect("chain");
    let names: Vec<_> = chain.names().iter().map(|n| n.as_str()).collect();
    assert_eq!(
        names,
        ["parse", "store", "route", "transform", "prepare"],
        "verify, spam and scan are off"
    );
    let process = Process {
        js: js.clone(),
        live: LiveConfig::fixed(cfg.clone()),
        blobs,
        chain,
        inline: None,
    };
    run_until_drained(&js, process, postwire_stages::process::consumer()).await;

    let outbox = msg_ids(&js, bus::STREAM_OUTBOX, "outbox.").await;
    assert_eq!(outbox.len(), 2, "one delivery per route, once: {outbox:?}");
    assert_ne!(outbox[0], outbox[1]);
    let received = msg_ids(&js, bus::STREAM_AUDIT, "audit.acme.received.").await;
    assert_eq!(received.len(), 1, "one received record: {received:?}");
    assert_metrics("process", &["retry", "done"]);
    for stage in names {
        assert_metrics_stage(stage);
    }
}

fn assert_metrics_stage(stage: &str) {
    let text = postwire_core::metrics::render(&[]);
    let want = format!("postwire_stage_duration_seconds_count{{stage=\"{stage}\"}}");
    assert!(text.contains(&want), "{want} missing");
}

#[tokio::test]
async fn deliver_redelivered_posts_the_same_webhook_id() {
    let nats = NatsServer::start();
    let receiver = Receiver::start().await;
    receiver.always(204);
    let (cfg, js) = bus(&nats, &receiver.url).await;
    let mut h = HeaderMap::new();
    h.insert(bus::HEADER_DELIVERY_ID, "dlv_contract");
    h.insert(bus::HEADER_MAIL_ID, "0193a000-0000-7000-8000-000000000002");
    h.insert(bus::HEADER_TENANT, "acme");
    h.insert(bus::HEADER_ROUTE, "support");
    h.insert(bus::HEADER_ENDPOINT, "hook");
    h.insert(bus::HEADER_MSG_ID, "dlv_contract");
    js.publish_with_headers(
        bus::subject_outbox("acme", "support"),
        h,
        r#"{"id":"dlv_contract"}"#.into(),
    )
    .await
    .expect("publish")
    .await
    .expect("puback");

    let (deliver, consumer) =
        Deliver::new(js.clone(), LiveConfig::fixed(cfg.clone()), &cfg).expect("deliver");
    run_until_drained(&js, deliver, consumer).await;

    let got = receiver.received();
    assert_eq!(got.len(), 2, "delivered, ack lost, delivered again");
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(got[0].body, got[1].body);
    let attempts = msg_ids(&js, bus::STREAM_AUDIT, "audit.acme.attempt.").await;
    assert_eq!(attempts.len(), 1, "one record of attempt 1: {attempts:?}");
    assert_metrics("deliver", &["retry", "done"]);
}

//! Retries with backoff and the same webhook-id; the dead-letter stream after the last one.
//! Each test ends on the pipeline's state (the consumer, the attempt records, the DLQ) once it
//! is provably idle, never on a pause.

use std::time::Duration;

use postwire_core::bus;
use postwire_e2e::config::TestConfig;
use postwire_e2e::idle;
use postwire_e2e::nats::NatsServer;
use postwire_e2e::pipeline::{Pipeline, config};
use postwire_e2e::receiver::Receiver;
use postwire_e2e::smtp::Client;
use postwire_stages::deliver::audit;

async fn send(p: &Pipeline) {
    let (mut c, _) = Client::connect(p.smtp).await;
    let r = c
        .send_mail(
            "ann@example.com",
            &["support@acme.test"],
            "Subject: retry me\r\n\r\nbody\r\n",
        )
        .await;
    assert_eq!(r.code, 250, "{r:?}");
}

/// (attempt, result, status) of every attempt record of one mail, oldest first.
async fn attempts(p: &Pipeline, mail_id: &str) -> Vec<(u32, String, Option<u16>)> {
    audit::attempts(&p.js, mail_id)
        .await
        .expect("attempt records")
        .into_iter()
        .map(|a| (a.attempt, a.result, a.status))
        .collect()
}

/// The mail id of a dead-lettered delivery (its payload is the event).
fn mail_id(m: &async_nats::jetstream::message::StreamMessage) -> String {
    let event: serde_json::Value = serde_json::from_slice(&m.payload).expect("an event");
    event["mail_id"].as_str().expect("a mail id").to_string()
}

#[tokio::test]
async fn fails_twice_then_delivers_with_the_same_id() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    rx.script(&[500, 503]);
    let p = Pipeline::start(config(&nats.url(), &rx.url)).await;
    send(&p).await;
    let idle = idle::wait_idle(&p.js, Duration::from_secs(15)).await;
    // One delivery, handed out three times by JetStream, the last one acknowledged.
    idle::assert_deliveries(&idle.deliver, 1, 3);
    let got = rx.received();
    assert_eq!(
        got.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 503, 204],
        "no attempt after the success"
    );
    let ids: Vec<_> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert!(
        ids[0].is_some() && ids.iter().all(|i| *i == ids[0]),
        "same webhook-id on every attempt: {ids:?}"
    );
    assert_eq!(got[0].body, got[2].body, "the body is fixed per delivery");
    let mail = got[0].json()["mail_id"]
        .as_str()
        .expect("mail id")
        .to_string();
    assert_eq!(
        attempts(&p, &mail).await,
        [
            (1, "failed".into(), Some(500)),
            (2, "failed".into(), Some(503)),
            (3, "delivered".into(), Some(204)),
        ]
    );
    idle::assert_stream_len(&p.js, bus::STREAM_DLQ, 0).await;
    p.shutdown().await;
}

#[tokio::test]
async fn always_failing_endpoint_lands_in_the_dlq() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    rx.always(500);
    let cfg = TestConfig::new(&nats.url())
        .hook(&rx.url)
        .set("delivery", "alert_after_failures", "2")
        .config();
    let p = Pipeline::start(cfg).await;
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let mut alerts = client
        .subscribe(bus::subject_alerts("acme"))
        .await
        .expect("subscribe");
    send(&p).await;
    let max = p.cfg.delivery.max_attempts();
    let idle = idle::wait_idle(&p.js, Duration::from_secs(20)).await;
    // Every attempt was handed out by JetStream, the last one terminated: no attempt after
    // giving up.
    idle::assert_deliveries(&idle.deliver, 1, u64::from(max));
    assert_eq!(rx.count(), max as usize, "one request per attempt");
    let dlq = p.stream_messages(bus::STREAM_DLQ).await;
    assert_eq!(dlq.len(), 1, "one dead letter");
    let h = |n: &str| dlq[0].headers.get(n).map(|v| v.as_str().to_string());
    assert_eq!(
        h(bus::HEADER_ATTEMPTS).as_deref(),
        Some(max.to_string().as_str())
    );
    assert_eq!(h(bus::HEADER_LAST_STATUS).as_deref(), Some("500"));
    assert_eq!(h(bus::HEADER_LAST_ERROR).as_deref(), Some("HTTP 500"));
    assert_eq!(dlq[0].subject.as_str(), "dlq.acme.support");
    let payload: serde_json::Value =
        serde_json::from_slice(&dlq[0].payload).expect("payload is the event");
    assert_eq!(payload["message"]["subject"], "retry me");
    assert_eq!(
        h(bus::HEADER_DELIVERY_ID).as_deref(),
        payload["id"].as_str()
    );
    let want: Vec<_> = (1..=max)
        .map(|n| (n, "failed".to_string(), Some(500)))
        .collect();
    assert_eq!(attempts(&p, &mail_id(&dlq[0])).await, want);
    let alert = tokio::time::timeout(
        Duration::from_secs(5),
        futures::StreamExt::next(&mut alerts),
    )
    .await
    .expect("an alert after 2 consecutive failures")
    .expect("alert");
    let alert: serde_json::Value = serde_json::from_slice(&alert.payload).expect("json");
    assert_eq!(
        (alert["kind"].as_str(), alert["failures"].as_u64()),
        (Some("consecutive_failures"), Some(2))
    );
    p.shutdown().await;
}

#[tokio::test]
async fn permanent_refusal_goes_to_the_dlq_at_once() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    rx.always(422);
    let p = Pipeline::start(config(&nats.url(), &rx.url)).await;
    send(&p).await;
    let idle = idle::wait_idle(&p.js, Duration::from_secs(15)).await;
    idle::assert_deliveries(&idle.deliver, 1, 1);
    let dlq = p.stream_messages(bus::STREAM_DLQ).await;
    assert_eq!(dlq.len(), 1);
    assert_eq!(
        dlq[0]
            .headers
            .get(bus::HEADER_LAST_STATUS)
            .map(|v| v.as_str()),
        Some("422")
    );
    assert_eq!(rx.count(), 1, "a 4xx is not retried");
    assert_eq!(
        attempts(&p, &mail_id(&dlq[0])).await,
        [(1, "refused".into(), Some(422))]
    );
    p.shutdown().await;
}

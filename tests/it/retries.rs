//! Retries with backoff and the same webhook-id; the dead-letter stream after the last one.

use std::time::Duration;

use postwire_core::bus;
use postwire_e2e::eventually;
use postwire_e2e::nats::NatsServer;
use postwire_e2e::pipeline::{Pipeline, config};
use postwire_e2e::receiver::Receiver;
use postwire_e2e::smtp::Client;

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

#[tokio::test]
async fn fails_twice_then_delivers_with_the_same_id() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    rx.script(&[500, 503]);
    let p = Pipeline::start(config(&nats.url(), &rx.url)).await;
    send(&p).await;
    assert!(
        eventually(Duration::from_secs(15), || rx.count() >= 3).await,
        "three attempts"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = rx.received();
    assert_eq!(got.len(), 3, "no attempt after the success");
    assert_eq!(
        got.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 503, 204]
    );
    let ids: Vec<_> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert!(
        ids[0].is_some() && ids.iter().all(|i| *i == ids[0]),
        "same webhook-id on every attempt: {ids:?}"
    );
    assert_eq!(got[0].body, got[2].body, "the body is fixed per delivery");
    assert!(p.stream_messages(bus::STREAM_DLQ).await.is_empty());
    p.shutdown().await;
}

#[tokio::test]
async fn always_failing_endpoint_lands_in_the_dlq() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    rx.always(500);
    let mut cfg = config(&nats.url(), &rx.url);
    cfg.delivery.alert_after_failures = 2;
    let p = Pipeline::start(cfg).await;
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let mut alerts = client
        .subscribe(bus::subject_alerts("acme"))
        .await
        .expect("subscribe");
    send(&p).await;
    let max = p.cfg.delivery.max_attempts() as usize;
    assert!(eventually(Duration::from_secs(20), || rx.count() >= max).await);
    let mut dlq = Vec::new();
    for _ in 0..100 {
        dlq = p.stream_messages(bus::STREAM_DLQ).await;
        if !dlq.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.count(), max, "no attempt after giving up");
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
    let mut dlq = Vec::new();
    for _ in 0..100 {
        dlq = p.stream_messages(bus::STREAM_DLQ).await;
        if !dlq.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dlq.len(), 1);
    assert_eq!(
        dlq[0]
            .headers
            .get(bus::HEADER_LAST_STATUS)
            .map(|v| v.as_str()),
        Some("422")
    );
    assert_eq!(rx.count(), 1, "a 4xx is not retried");
    p.shutdown().await;
}

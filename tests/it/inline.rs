//! The process worker's first attempt (`delivery.inline_attempt_ms`, issue 17): a delivery
//! that succeeds never touches OUTBOX; one that fails goes to OUTBOX marked with the attempt
//! made, the deliver worker counts on from attempt 2, and the endpoint is left to the deliver
//! worker for a while.

use std::time::Duration;

use postwire_core::bus;
use postwire_e2e::config::TestConfig;
use postwire_e2e::eventually;
use postwire_e2e::idle;
use postwire_e2e::nats::NatsServer;
use postwire_e2e::pipeline::Pipeline;
use postwire_e2e::receiver::{Answer, Receiver};
use postwire_e2e::smtp::Client;
use postwire_stages::deliver::audit::{self, AttemptRecord};
use postwire_stages::deliver::state;

async fn send(p: &Pipeline, subject: &str) {
    let (mut c, _) = Client::connect(p.smtp).await;
    let r = c
        .send_mail(
            "ann@example.com",
            &["support@acme.test"],
            &format!("Subject: {subject}\r\n\r\nbody\r\n"),
        )
        .await;
    assert_eq!(r.code, 250, "{r:?}");
}

fn inline_config(nats: &NatsServer, hook: &str) -> postwire_core::Config {
    TestConfig::new(&nats.url())
        .hook(hook)
        .set("delivery", "inline_attempt_ms", "2000")
        .config()
}

/// The attempts recorded (attempt records, and the first attempts `received` records carry),
/// `n` of them once they are all written, in the order they were made.
async fn attempts(p: &Pipeline, n: usize) -> Vec<AttemptRecord> {
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut records: Vec<AttemptRecord> = p
            .stream_messages(bus::STREAM_AUDIT)
            .await
            .iter()
            .flat_map(|m| audit::attempts_in(&m.subject, &m.payload))
            .collect();
        records.sort_by_key(|r| audit::made(&r.at, r.attempt));
        if records.len() >= n || tokio::time::Instant::now() > until {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_first_attempt_that_succeeds_never_touches_outbox() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    let p = Pipeline::start(inline_config(&nats, &rx.url)).await;
    send(&p, "one").await;
    send(&p, "two").await;
    assert!(eventually(Duration::from_secs(10), || rx.count() == 2).await);
    idle::wait_idle(&p.js, Duration::from_secs(10)).await;
    idle::assert_stream_received(&p.js, bus::STREAM_OUTBOX, 0).await;
    let records = attempts(&p, 2).await;
    assert_eq!(records.len(), 2, "{records:?}");
    for r in &records {
        assert_eq!((r.attempt, r.result.as_str()), (1, "delivered"), "{r:?}");
    }
    // Signed and verified like any delivery (the receiver checks each signature).
    assert!(rx.received().iter().all(|r| r.status == 204));
    p.shutdown().await;
}

#[tokio::test]
async fn a_failed_first_attempt_goes_to_outbox_and_the_count_goes_on() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    rx.script(&[503]);
    let p = Pipeline::start(inline_config(&nats, &rx.url)).await;
    send(&p, "fails once").await;
    assert!(eventually(Duration::from_secs(10), || rx.count() == 2).await);
    idle::wait_idle(&p.js, Duration::from_secs(10)).await;
    idle::assert_stream_received(&p.js, bus::STREAM_OUTBOX, 1).await;
    let records = attempts(&p, 2).await;
    let seen: Vec<_> = records
        .iter()
        .map(|r| (r.attempt, r.result.as_str(), r.status))
        .collect();
    assert_eq!(
        seen,
        [(1, "failed", Some(503)), (2, "delivered", Some(204))],
        "the worker's attempt, then the deliver worker's"
    );
    // The endpoint failed: the next delivery goes to the deliver worker without an attempt
    // from the process worker.
    send(&p, "after the failure").await;
    assert!(eventually(Duration::from_secs(10), || rx.count() == 3).await);
    idle::wait_idle(&p.js, Duration::from_secs(10)).await;
    idle::assert_stream_received(&p.js, bus::STREAM_OUTBOX, 2).await;
    let records = attempts(&p, 3).await;
    assert_eq!(records.len(), 3, "{records:?}");
    assert_eq!(
        (records[2].attempt, records[2].result.as_str()),
        (1, "delivered")
    );
    p.shutdown().await;
}

/// A receiver that refuses the worker's attempt for good (410 Gone): the delivery is settled
/// by the deliver worker as its own refusal would be — dead-lettered, the endpoint disabled —
/// with no second request, and one attempt recorded, `refused`.
#[tokio::test]
async fn a_refused_first_attempt_is_settled_without_a_second_request() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    rx.script(&[410]);
    let p = Pipeline::start(inline_config(&nats, &rx.url)).await;
    send(&p, "gone").await;
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while state::get(&p.js, "acme", "hook")
        .await
        .ok()
        .flatten()
        .is_none()
    {
        assert!(
            tokio::time::Instant::now() < until,
            "the endpoint is disabled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    idle::wait_idle(&p.js, Duration::from_secs(15)).await;
    let dlq = p.stream_messages(bus::STREAM_DLQ).await;
    assert_eq!(dlq.len(), 1, "dead-lettered");
    let h = |n: &str| dlq[0].headers.get(n).map(|v| v.as_str().to_string());
    assert_eq!(h(bus::HEADER_LAST_STATUS).as_deref(), Some("410"));
    assert_eq!(h(bus::HEADER_ATTEMPTS).as_deref(), Some("1"));
    assert_eq!(rx.count(), 1, "no second request");
    let records = attempts(&p, 1).await;
    let seen: Vec<_> = records
        .iter()
        .map(|r| (r.attempt, r.result.as_str(), r.status))
        .collect();
    assert_eq!(seen, [(1, "refused", Some(410))]);
    p.shutdown().await;
}

/// An endpoint with a request rate is posted to by the deliver worker only: the rate is the
/// deliver worker's limiter's, and a first attempt from the process worker would add to it.
#[tokio::test]
async fn an_endpoint_with_a_rate_is_left_to_the_deliver_worker() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    let cfg = TestConfig::new(&nats.url())
        .hook(&rx.url)
        .set("delivery", "inline_attempt_ms", "2000")
        .set("delivery", "endpoint_rate_per_sec", "50.0")
        .config();
    let p = Pipeline::start(cfg).await;
    send(&p, "paced").await;
    assert!(eventually(Duration::from_secs(10), || rx.count() == 1).await);
    idle::wait_idle(&p.js, Duration::from_secs(10)).await;
    idle::assert_stream_received(&p.js, bus::STREAM_OUTBOX, 1).await;
    let records = attempts(&p, 1).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        (records[0].attempt, records[0].result.as_str()),
        (1, "delivered")
    );
    p.shutdown().await;
}

/// A `Retry-After` answered to the worker's attempt sets the deliver worker's next delay, as
/// after an attempt of its own (the test schedule's first delay is 100 ms).
#[tokio::test]
async fn a_retry_after_from_the_first_attempt_sets_the_next_delay() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    rx.script_answers(vec![Answer {
        status: 503,
        headers: vec![("retry-after", "2".into())],
    }]);
    let p = Pipeline::start(inline_config(&nats, &rx.url)).await;
    send(&p, "later").await;
    assert!(eventually(Duration::from_secs(10), || rx.count() == 2).await);
    let got = rx.received();
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(1900),
        "Retry-After 2 s: waited {gap:?}"
    );
    let records = attempts(&p, 2).await;
    assert_eq!((records[0].attempt, records[1].attempt), (1, 2));
    p.shutdown().await;
}

/// A mail delivered by the first attempt costs one audit write: its `received` record carries
/// the attempt, and no attempt record is written (issue 17: four JetStream operations per
/// mail). The API reads the attempt back from it.
#[tokio::test]
async fn the_received_record_carries_the_first_attempt() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    let p = Pipeline::start(inline_config(&nats, &rx.url)).await;
    send(&p, "one record").await;
    assert!(eventually(Duration::from_secs(10), || rx.count() == 1).await);
    idle::wait_idle(&p.js, Duration::from_secs(10)).await;
    let audit_msgs = p.stream_messages(bus::STREAM_AUDIT).await;
    let subjects: Vec<&str> = audit_msgs.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert!(
        subjects[0].starts_with("audit.acme.received."),
        "{subjects:?}"
    );
    let mail_id = subjects[0].rsplit('.').next().expect("a mail id");
    let read = audit::attempts(&p.js, mail_id).await.expect("attempts");
    assert_eq!(read.len(), 1, "{read:?}");
    assert_eq!((read[0].attempt, read[0].result.as_str()), (1, "delivered"));
    assert_eq!(read[0].mail_id, mail_id);
    p.shutdown().await;
}

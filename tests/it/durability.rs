//! 250 only after the PubAck: with NATS down the client is told to retry (451), and its
//! retry after the restart is delivered exactly once.

use std::time::Duration;

use postwire_core::bus;
use postwire_e2e::idle;
use postwire_e2e::nats::NatsServer;
use postwire_e2e::pipeline::{Pipeline, config};
use postwire_e2e::receiver::Receiver;
use postwire_e2e::smtp::Client;

const MAIL: &str = "From: ann@example.com\r\nSubject: durable\r\nMessage-ID: <durable-1@example.com>\r\n\r\nkeep me\r\n";

#[tokio::test]
async fn nats_down_gives_451_and_retry_is_delivered_once() {
    let mut nats = NatsServer::start();
    let rx = Receiver::start().await;
    let p = Pipeline::start(config(&nats.url(), &rx.url)).await;

    nats.stop();
    let (mut c, _) = Client::connect(p.smtp).await;
    let r = c
        .send_mail("ann@example.com", &["support@acme.test"], MAIL)
        .await;
    assert_eq!(r.code, 451, "{r:?}");
    assert!(r.text().starts_with("4.3.0"), "{r:?}");
    let _ = c.reply_to("QUIT").await;

    nats.restart();
    // The sending MTA retries later, as a 4xx tells it to.
    let mut accepted = None;
    for _ in 0..40 {
        let (mut c, _) = Client::connect(p.smtp).await;
        let r = c
            .send_mail("ann@example.com", &["support@acme.test"], MAIL)
            .await;
        let _ = c.reply_to("QUIT").await;
        if r.code == 250 {
            accepted = Some(r);
            break;
        }
        assert_eq!(r.code, 451, "only 451 while reconnecting: {r:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(accepted.is_some(), "accepted after the restart");
    let idle = idle::wait_idle(&p.js, Duration::from_secs(20)).await;
    // The refused attempt left nothing behind; the accepted one was processed once and became
    // one delivery, made by the process worker's first attempt (the default): not in OUTBOX.
    idle::assert_stream_received(&p.js, bus::STREAM_MAIL, 1).await;
    idle::assert_deliveries(&idle.process, 1, 1);
    idle::assert_stream_received(&p.js, bus::STREAM_OUTBOX, 0).await;
    assert_eq!(rx.count(), 1, "delivered exactly once");
    assert_eq!(rx.received()[0].json()["message"]["subject"], "durable");
    p.shutdown().await;
}

//! SMTP at the edge: per-client limits, PROXY protocol, early talkers, graceful shutdown.

use std::time::Duration;

use postwire_core::bus;
use postwire_e2e::nats::NatsServer;
use postwire_e2e::pipeline::{Pipeline, config};
use postwire_e2e::smtp::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn ingest(nats: &NatsServer, adjust: impl FnOnce(&mut postwire_core::Config)) -> Pipeline {
    let mut cfg = config(&nats.url(), "http://127.0.0.1:9/unused");
    adjust(&mut cfg);
    Pipeline::ingest_only(cfg).await
}

fn envelope(m: &async_nats::jetstream::message::StreamMessage) -> postwire_core::Envelope {
    postwire_core::Envelope::from_header(
        m.headers
            .get(bus::HEADER_ENVELOPE)
            .expect("envelope")
            .as_str(),
    )
    .expect("json")
}

#[tokio::test]
async fn per_client_limits_give_documented_replies() {
    let nats = NatsServer::start();
    let p = ingest(&nats, |c| {
        c.smtp.limits_exempt.clear();
        c.smtp.max_connections_per_ip = 2;
        c.smtp.max_messages_per_ip = 2;
        c.smtp.max_recipients_per_ip = 3;
    })
    .await;
    let (mut a, _) = Client::connect(p.smtp).await;
    let (_b, greeting) = Client::connect(p.smtp).await;
    assert_eq!(greeting.code, 220);
    let (mut c, third) = Client::connect(p.smtp).await;
    assert_eq!(
        (third.code, third.text().starts_with("4.7.0")),
        (421, true),
        "{third:?}"
    );
    assert!(c.reply().await.is_none());

    assert_eq!(a.cmd("EHLO client.test").await.code, 250);
    assert_eq!(a.cmd("MAIL FROM:<a@example.com>").await.code, 250);
    for _ in 0..3 {
        assert_eq!(a.cmd("RCPT TO:<support@acme.test>").await.code, 250);
    }
    let r = a.cmd("RCPT TO:<sales@acme.test>").await;
    assert_eq!(
        (r.code, r.text().starts_with("4.7.1")),
        (451, true),
        "{r:?}"
    );
    assert_eq!(a.cmd("RSET").await.code, 250);
    assert_eq!(a.cmd("MAIL FROM:<a@example.com>").await.code, 250);
    assert_eq!(a.cmd("RSET").await.code, 250);
    let r = a.cmd("MAIL FROM:<a@example.com>").await;
    assert_eq!(
        (r.code, r.text().starts_with("4.7.1")),
        (451, true),
        "{r:?}"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn proxy_header_is_honoured_only_when_enabled() {
    let nats = NatsServer::start();
    let on = ingest(&nats, |c| c.smtp.proxy_protocol = true).await;
    let mut s = tokio::net::TcpStream::connect(on.smtp)
        .await
        .expect("connect");
    s.write_all(b"PROXY TCP4 203.0.113.9 10.0.0.1 5555 25\r\n")
        .await
        .expect("write");
    let mut c = Client::from_stream(s).await;
    let r = c
        .send_mail(
            "a@example.com",
            &["support@acme.test"],
            "Subject: via lb\r\n\r\nx\r\n",
        )
        .await;
    assert_eq!(r.code, 250);
    let msgs = on.stream_messages(bus::STREAM_MAIL).await;
    assert_eq!(envelope(&msgs[0]).client_ip, "203.0.113.9");
    // Without the header the connection is closed before any greeting.
    let mut bare = tokio::net::TcpStream::connect(on.smtp)
        .await
        .expect("connect");
    bare.write_all(b"EHLO sneaky.test\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), bare.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(
        n,
        0,
        "no greeting: {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    on.shutdown().await;

    let nats2 = NatsServer::start();
    let off = ingest(&nats2, |_| {}).await;
    let (mut c, _) = Client::connect(off.smtp).await;
    let r = c.cmd("PROXY TCP4 203.0.113.9 10.0.0.1 5555 25").await;
    assert_eq!(
        r.code, 500,
        "a PROXY line is not a command when PROXY is off"
    );
    let r = c
        .send_mail(
            "a@example.com",
            &["support@acme.test"],
            "Subject: direct\r\n\r\nx\r\n",
        )
        .await;
    assert_eq!(r.code, 250);
    let msgs = off.stream_messages(bus::STREAM_MAIL).await;
    assert_eq!(envelope(&msgs[0]).client_ip, "127.0.0.1");
    off.shutdown().await;
}

#[tokio::test]
async fn early_talkers_are_refused() {
    let nats = NatsServer::start();
    let p = ingest(&nats, |c| c.smtp.greeting_delay_ms = 700).await;
    let mut rude = tokio::net::TcpStream::connect(p.smtp)
        .await
        .expect("connect");
    rude.write_all(b"EHLO spam.test\r\n").await.expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), rude.read_to_end(&mut buf))
        .await
        .expect("closed in time");
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("554 5.5.1"), "{text}");
    assert!(
        !text.contains("220"),
        "no greeting for an early talker: {text}"
    );
    let (_patient, greeting) = Client::connect(p.smtp).await;
    assert_eq!(greeting.code, 220, "a client that waits is greeted");
    p.shutdown().await;
}

#[tokio::test]
async fn shutdown_finishes_transactions_and_sends_idle_sessions_away() {
    let nats = NatsServer::start();
    let p = ingest(&nats, |c| c.smtp.shutdown_grace_secs = 10).await;
    let (mut busy, _) = Client::connect(p.smtp).await;
    assert_eq!(busy.cmd("EHLO client.test").await.code, 250);
    assert_eq!(busy.cmd("MAIL FROM:<a@example.com>").await.code, 250);
    assert_eq!(busy.cmd("RCPT TO:<support@acme.test>").await.code, 250);
    assert_eq!(busy.cmd("DATA").await.code, 354);
    busy.send(b"Subject: in flight\r\n\r\nfirst half\r\n").await;
    let (mut idle, _) = Client::connect(p.smtp).await;
    assert_eq!(idle.cmd("EHLO idle.test").await.code, 250);

    p.begin_shutdown();
    let bye = idle.reply().await.expect("421 for the idle session");
    assert_eq!(
        (bye.code, bye.text().starts_with("4.3.2")),
        (421, true),
        "{bye:?}"
    );
    // The listener closes once shutdown began: new connections are refused.
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(p.smtp).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < until,
            "new connections are still accepted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    busy.send(b"second half\r\n").await;
    let done = busy.cmd(".").await;
    assert_eq!(
        done.code, 250,
        "the transaction in flight completes: {done:?}"
    );
    let msgs = p.stream_messages(bus::STREAM_MAIL).await;
    assert_eq!(msgs.len(), 1);
    assert!(String::from_utf8_lossy(&msgs[0].payload).contains("second half"));
    let after = busy.reply_to("NOOP").await;
    assert!(
        after.as_ref().is_none_or(|r| r.code == 421),
        "then the session ends: {after:?}"
    );
    p.shutdown().await;
}

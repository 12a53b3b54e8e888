//! SMTP conversations against the real listener; what ingest published is read back from
//! the MAIL stream.

use std::time::Duration;

use postwire_core::bus;
use postwire_e2e::nats::NatsServer;
use postwire_e2e::pipeline::{Pipeline, config};
use postwire_e2e::smtp::Client;

async fn ingest(nats: &NatsServer, adjust: impl FnOnce(&mut postwire_core::Config)) -> Pipeline {
    let mut cfg = config(&nats.url(), "http://127.0.0.1:9/unused");
    adjust(&mut cfg);
    Pipeline::ingest_only(cfg).await
}

#[tokio::test]
async fn ehlo_advertises_extensions() {
    let nats = NatsServer::start();
    let p = ingest(&nats, |_| {}).await;
    let (mut c, greeting) = Client::connect(p.smtp).await;
    assert_eq!(greeting.code, 220);
    assert!(greeting.text().contains("mx.test"));
    let ehlo = c.cmd("EHLO client.test").await;
    assert_eq!(ehlo.code, 250);
    for ext in ["PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"] {
        assert!(
            ehlo.lines.iter().any(|l| l == ext),
            "{ext} missing from {:?}",
            ehlo.lines
        );
    }
    // SIZE stays below what NATS takes in one message (default max_payload 1 MiB, minus
    // 64 KiB for headers), although the config allows 10 MiB.
    assert!(
        ehlo.lines.iter().any(|l| l == "SIZE 983040"),
        "{:?}",
        ehlo.lines
    );
    assert_eq!(c.cmd("HELO client.test").await.code, 250);
    p.shutdown().await;
}

#[tokio::test]
async fn every_reply_code() {
    let nats = NatsServer::start();
    let p = ingest(&nats, |c| {
        c.smtp.max_recipients = 2;
        c.smtp.max_message_bytes = 1000;
        c.smtp.max_errors = 50;
    })
    .await;
    let (mut c, _) = Client::connect(p.smtp).await;
    let expect = |r: postwire_e2e::smtp::Reply, code: u16, enhanced: &str| {
        assert_eq!(r.code, code, "{r:?}");
        assert!(
            r.text().starts_with(enhanced),
            "{r:?} should carry {enhanced}"
        );
    };
    expect(c.cmd("MAIL FROM:<a@example.com>").await, 503, "5.5.1");
    expect(c.cmd("FROB").await, 500, "5.5.1");
    expect(c.cmd("EHLO client.test").await, 250, "");
    expect(c.cmd("RCPT TO:<support@acme.test>").await, 503, "5.5.1");
    expect(c.cmd("DATA").await, 503, "5.5.1");
    expect(
        c.cmd("MAIL FROM:<a@example.com> SIZE=5000").await,
        552,
        "5.3.4",
    );
    expect(
        c.cmd("MAIL FROM:<a@example.com> FOO=BAR").await,
        555,
        "5.5.4",
    );
    expect(c.cmd("MAIL FROM:a@example.com").await, 501, "5.1.7");
    expect(
        c.cmd("MAIL FROM:<a@example.com> SIZE=500 BODY=8BITMIME")
            .await,
        250,
        "2.1.0",
    );
    expect(c.cmd("MAIL FROM:<b@example.com>").await, 503, "5.5.1");
    expect(c.cmd("RCPT TO:<nobody@acme.test>").await, 550, "5.1.1");
    expect(
        c.cmd("RCPT TO:<someone@elsewhere.test>").await,
        550,
        "5.7.1",
    );
    expect(c.cmd("RCPT TO:<grüße@acme.test>").await, 553, "5.6.7");
    expect(c.cmd("RCPT TO:<support@acme.test>").await, 250, "2.1.5");
    expect(c.cmd("RCPT TO:<support+tag@acme.test>").await, 250, "2.1.5");
    expect(c.cmd("RCPT TO:<sales@acme.test>").await, 452, "4.5.3");
    expect(
        c.cmd(&format!("NOOP {}", "x".repeat(3000))).await,
        500,
        "5.5.2",
    );
    expect(c.cmd("NOOP").await, 250, "2.0.0");
    expect(c.cmd("VRFY support").await, 252, "2.5.0");
    expect(c.cmd("HELP").await, 214, "2.0.0");
    expect(c.cmd("STARTTLS").await, 502, "5.5.1");
    expect(c.cmd("RSET").await, 250, "2.0.0");
    expect(c.cmd("DATA").await, 503, "5.5.1");
    expect(c.cmd("MAIL FROM:<> ").await, 250, "2.1.0");
    expect(c.cmd("RCPT TO:<support@acme.test>").await, 250, "2.1.5");
    expect(c.cmd("DATA").await, 354, "");
    c.send(format!("Subject: big\r\n\r\n{}\r\n", "y".repeat(2000)).as_bytes())
        .await;
    expect(c.cmd(".").await, 552, "5.3.4");
    expect(c.cmd("QUIT").await, 221, "2.0.0");
    assert!(c.reply().await.is_none(), "the server closes after QUIT");
    assert!(
        p.stream_messages(bus::STREAM_MAIL).await.is_empty(),
        "nothing was accepted"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn pipelined_commands_get_replies_in_order() {
    let nats = NatsServer::start();
    let p = ingest(&nats, |_| {}).await;
    let (mut c, _) = Client::connect(p.smtp).await;
    c.send(b"EHLO client.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<support@acme.test>\r\nRCPT TO:<nobody@acme.test>\r\nRCPT TO:<sales@acme.test>\r\nDATA\r\n").await;
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(c.reply().await.expect("reply").code);
    }
    assert_eq!(got, [250, 250, 250, 550, 250, 354]);
    c.send(b"Subject: pipelined\r\n\r\nhello\r\n.\r\nQUIT\r\n")
        .await;
    assert_eq!(c.reply().await.expect("end of data").code, 250);
    assert_eq!(c.reply().await.expect("quit").code, 221);
    let msgs = p.stream_messages(bus::STREAM_MAIL).await;
    assert_eq!(msgs.len(), 1);
    let env = msgs[0]
        .headers
        .get(bus::HEADER_ENVELOPE)
        .expect("envelope")
        .as_str()
        .to_string();
    let env = postwire_core::Envelope::from_header(&env).expect("envelope json");
    assert_eq!(env.rcpt_to, ["support@acme.test", "sales@acme.test"]);
    assert_eq!(env.mail_from, "a@example.com");
    p.shutdown().await;
}

#[tokio::test]
async fn dot_stuffing_and_eight_bit_content_survive() {
    let nats = NatsServer::start();
    let p = ingest(&nats, |_| {}).await;
    let (mut c, _) = Client::connect(p.smtp).await;
    let content = "Subject: dots\r\n\r\n..starts with a dot\r\n...two\r\nGrüße, 日本語\r\n";
    let r = c
        .send_mail("a@example.com", &["support@acme.test"], content)
        .await;
    assert_eq!(r.code, 250, "{r:?}");
    assert!(r.text().starts_with("2.0.0"));
    let msgs = p.stream_messages(bus::STREAM_MAIL).await;
    assert_eq!(msgs.len(), 1);
    let raw = &msgs[0].payload;
    let text = std::str::from_utf8(raw).expect("utf-8 kept byte for byte");
    assert!(
        text.starts_with("Received: from client.test ([127.0.0.1])"),
        "{text}"
    );
    assert!(
        text.ends_with("Subject: dots\r\n\r\n.starts with a dot\r\n..two\r\nGrüße, 日本語\r\n"),
        "{text}"
    );
    assert_eq!(msgs[0].subject.as_str(), "mail.raw.acme");
    assert!(msgs[0].headers.get(bus::HEADER_MSG_ID).is_some());
    p.shutdown().await;
}

#[tokio::test]
async fn smuggled_end_of_data_is_content() {
    let nats = NatsServer::start();
    let p = ingest(&nats, |_| {}).await;
    let (mut c, _) = Client::connect(p.smtp).await;
    assert_eq!(c.cmd("EHLO client.test").await.code, 250);
    assert_eq!(c.cmd("MAIL FROM:<a@example.com>").await.code, 250);
    assert_eq!(c.cmd("RCPT TO:<support@acme.test>").await.code, 250);
    assert_eq!(c.cmd("DATA").await.code, 354);
    // <LF>.<CRLF> and <CRLF>.<LF> are not the end: the "second message" is content.
    c.send(b"Subject: outer\r\n\r\nbody\n.\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<sales@acme.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\nQUIT\r\n").await;
    c.send(b"still content\r\n.\r\n").await;
    let r = c.reply().await.expect("one reply for the whole data");
    assert_eq!(r.code, 250, "{r:?}");
    // No reply to any smuggled command is waiting: the next reply answers our NOOP.
    let noop = c.cmd("NOOP").await;
    assert_eq!((noop.code, noop.text()), (250, "2.0.0 OK".to_string()));
    let msgs = p.stream_messages(bus::STREAM_MAIL).await;
    assert_eq!(msgs.len(), 1, "exactly one message");
    let raw = String::from_utf8_lossy(&msgs[0].payload);
    assert!(
        raw.contains("Subject: smuggled") && raw.contains("still content"),
        "{raw}"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn idle_timeout_and_session_cap() {
    let nats = NatsServer::start();
    let p = ingest(&nats, |c| {
        c.smtp.command_timeout_secs = 1;
        c.smtp.max_sessions = 1;
    })
    .await;
    let (mut first, _) = Client::connect(p.smtp).await;
    let (mut second, greeting) = Client::connect(p.smtp).await;
    assert_eq!(greeting.code, 421, "{greeting:?}");
    assert!(greeting.text().starts_with("4.7.0"));
    assert!(
        second.reply().await.is_none(),
        "the refused connection is closed"
    );
    let timeout = first.reply().await.expect("421 on idle");
    assert_eq!(timeout.code, 421);
    assert!(timeout.text().starts_with("4.4.2"), "{timeout:?}");
    // The slot is free again once the timed-out session has ended: a new client is greeted
    // (until then it is told 421, as the second one was).
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_third, greeting) = Client::connect(p.smtp).await;
        if greeting.code == 220 {
            break;
        }
        assert_eq!(greeting.code, 421, "{greeting:?}");
        assert!(
            tokio::time::Instant::now() < until,
            "the slot was not freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_replies_and_server_keeps_serving() {
    let nats = NatsServer::start();
    let p = ingest(&nats, |c| c.smtp.max_message_bytes = 4096).await;
    // Garbage and an endless line, in one session.
    let (mut bad, _) = Client::connect(p.smtp).await;
    bad.send(b"\x00\xff\xfe garbage\r\n").await;
    assert_eq!(bad.reply().await.expect("reply").code, 500);
    bad.send(&vec![b'A'; 100_000]).await;
    bad.send(b"\r\n").await;
    let r = bad.reply().await.expect("reply");
    assert_eq!(
        (r.code, r.text().starts_with("5.5.2")),
        (500, true),
        "{r:?}"
    );
    // Empty DATA.
    assert_eq!(bad.cmd("EHLO x.test").await.code, 250);
    assert_eq!(bad.cmd("MAIL FROM:<a@example.com>").await.code, 250);
    assert_eq!(bad.cmd("RCPT TO:<support@acme.test>").await.code, 250);
    assert_eq!(bad.cmd("DATA").await.code, 354);
    let empty = bad.cmd(".").await;
    assert_eq!(empty.code, 554, "{empty:?}");
    // Over the size limit.
    let big = format!("Subject: big\r\n\r\n{}\r\n", "z".repeat(10_000));
    assert_eq!(bad.cmd("MAIL FROM:<a@example.com>").await.code, 250);
    assert_eq!(bad.cmd("RCPT TO:<support@acme.test>").await.code, 250);
    assert_eq!(bad.cmd("DATA").await.code, 354);
    bad.send(big.as_bytes()).await;
    assert_eq!(bad.cmd(".").await.code, 552);
    // Too many errors end the session.
    let mut last = 0;
    for _ in 0..12 {
        match bad.reply_to("FROB").await {
            Some(r) => last = r.code,
            None => break,
        }
    }
    assert_eq!(last, 421, "the session is closed after too many errors");
    // Meanwhile another session works.
    let (mut good, _) = Client::connect(p.smtp).await;
    assert_eq!(
        good.send_mail(
            "a@example.com",
            &["support@acme.test"],
            "Subject: fine\r\n\r\nok\r\n"
        )
        .await
        .code,
        250
    );
    assert_eq!(p.stream_messages(bus::STREAM_MAIL).await.len(), 1);
    p.shutdown().await;
}

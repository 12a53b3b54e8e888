//! Slow clients (issue #18): a client that trickles a command line or a DATA phase one byte at
//! a time, never idle long enough for a per-read timeout, is still cut at the deadline of the
//! whole command line or the whole DATA phase, so a handful of addresses cannot hold every
//! session slot.

use std::net::SocketAddr;
use std::time::Duration;

use postwire_e2e::nats::NatsServer;
use postwire_e2e::pipeline::{Pipeline, config};
use postwire_e2e::smtp::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TRICKLERS: usize = 20;

/// A connection that was greeted (it holds a session slot), and the greeting.
async fn greeted(addr: SocketAddr) -> (TcpStream, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).await.expect("greeting");
    assert!(
        buf[..n].starts_with(b"220 "),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    (s, buf[..n].to_vec())
}

/// On a greeted session, optionally gets into DATA, then sends one byte every 200 ms (more
/// often than the 2 s timeout) until the server closes. Returns everything the server wrote.
async fn trickle((mut s, greeting): (TcpStream, Vec<u8>), in_data: bool) -> String {
    let mut got = greeting;
    let mut buf = [0u8; 512];
    if in_data {
        s.write_all(b"EHLO slow.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<support@acme.test>\r\nDATA\r\n")
            .await
            .expect("write");
    }
    // At most 60 s of trickling: a server that never cuts fails the test below.
    for _ in 0..300 {
        if s.write_all(b"x").await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    // Whatever is left after the server closed.
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn trickling_sessions_are_cut_and_a_normal_client_gets_in() {
    let nats = NatsServer::start();
    let mut cfg = config(&nats.url(), "http://127.0.0.1:9/unused");
    cfg.smtp.command_timeout_secs = 2;
    cfg.smtp.data_timeout_secs = 2;
    cfg.smtp.data_min_rate_bytes_per_sec = 1000;
    cfg.smtp.max_sessions = TRICKLERS;
    let p = Pipeline::ingest_only(cfg).await;
    let mut tricklers = Vec::new();
    for i in 0..TRICKLERS {
        let session = greeted(p.smtp).await;
        tricklers.push(tokio::spawn(trickle(session, i % 2 == 1)));
    }
    // All slots are taken: another client is refused while the tricklers hold them.
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_c, greeting) = Client::connect(p.smtp).await;
        if greeting.code == 421 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "the slots never filled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (i, t) in tricklers.into_iter().enumerate() {
        let out = t.await.expect("trickler");
        assert!(
            out.contains("421 4.4.2"),
            "trickler {i} (in DATA: {}) was not cut: {out:?}",
            i % 2 == 1
        );
    }
    // The slots are free: a normal client is served.
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (mut c, greeting) = Client::connect(p.smtp).await;
        if greeting.code == 220 {
            let r = c
                .send_mail(
                    "a@example.com",
                    &["support@acme.test"],
                    "Subject: hi\r\n\r\nafter the slow ones\r\n",
                )
                .await;
            assert_eq!(r.code, 250, "{r:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < until, "no slot was freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    p.shutdown().await;
}

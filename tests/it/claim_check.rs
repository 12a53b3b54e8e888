//! The claim check through the binary's own wiring (`postwire_node::start`), with ingest and
//! the workers in two nodes: a mail larger than `storage.inline_limit_bytes` is streamed to
//! object storage during DATA, only its key travels on `MAIL`, and the worker reads it back
//! and delivers it with a signed raw URL.

use postwire_core::bus;
use postwire_core::storage_config::Backend;
use postwire_e2e::nats::NatsServer;
use postwire_e2e::pipeline::{Pipeline, config};
use postwire_e2e::receiver::Receiver;
use postwire_e2e::smtp::Client;
use postwire_e2e::{eventually, free_port};
use postwire_node::Roles;

const KEY: &[u8] = b"an-url-signing-key-of-32-bytes-or-more!";

#[tokio::test]
async fn a_large_mail_travels_by_claim_check_and_arrives_whole() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = config(&nats.url(), &rx.url);
    let port = free_port();
    cfg.storage.backend = Backend::Fs;
    cfg.storage.path = dir.path().display().to_string();
    cfg.storage.inline_limit_bytes = 4096;
    cfg.storage.listen = format!("127.0.0.1:{port}");
    cfg.storage.public_url = format!("http://127.0.0.1:{port}");
    let ingest = Pipeline::with_blob_key(cfg.clone(), Roles::INGEST, KEY).await;

    // 40 KB of body: ten times the inline limit.
    let body: String = (0..800)
        .map(|i| format!("line {i:04} of a long mail body ...........\r\n"))
        .collect();
    let mail =
        format!("From: ann@example.com\r\nTo: support@acme.test\r\nSubject: big\r\n\r\n{body}");
    let (mut c, _) = Client::connect(ingest.smtp).await;
    c.cmd("EHLO client.test").await;
    assert_eq!(c.cmd("MAIL FROM:<ann@example.com>").await.code, 250);
    assert_eq!(c.cmd("RCPT TO:<support@acme.test>").await.code, 250);
    assert_eq!(c.cmd("DATA").await.code, 354);
    c.send(mail.as_bytes()).await;
    let reply = c.cmd(".").await;
    assert_eq!(reply.code, 250, "{}", reply.text());

    // On the bus, MAIL holds only the key; the object is the mail, byte for byte.
    let mail_msgs = ingest.stream_messages(bus::STREAM_MAIL).await;
    assert_eq!(mail_msgs.len(), 1);
    let key = mail_msgs[0]
        .headers
        .get(bus::HEADER_RAW_KEY)
        .expect("a claim-check key")
        .as_str()
        .to_string();
    assert!(
        mail_msgs[0].payload.is_empty(),
        "the raw mail went through NATS"
    );
    let stored = std::fs::read(dir.path().join(&key)).expect("the stored object");
    assert!(
        stored.ends_with(mail.as_bytes()),
        "the stored object ends with the DATA content (after ingest's trace header)"
    );

    // A second node runs the workers; it reads the mail back from storage.
    let workers = Pipeline::with_blob_key(cfg, Roles::PIPELINE, KEY).await;
    assert!(
        eventually(std::time::Duration::from_secs(20), || rx.count() == 1).await,
        "the mail was not delivered"
    );
    let event = rx.received()[0].json();
    let raw = &event["raw"];
    let stored_size = raw["size"].as_u64().expect("raw.size");
    assert_eq!(stored_size, stored.len() as u64);
    let sha = raw["sha256"].as_str().expect("raw.sha256");
    assert_eq!(postwire_core::ids::sha256_hex(&stored), sha);
    let url = raw["url"].as_str().expect("a raw URL");
    assert!(
        url.starts_with(&format!("http://127.0.0.1:{port}/blobs/acme/")),
        "{url}"
    );
    assert!(url.contains("sig="), "{url}");
    assert!(
        event["message"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("line 0799"),
        "the worker read the whole mail back"
    );

    workers.shutdown().await;
    ingest.shutdown().await;
}

//! A mail sent with a real SMTP client library arrives at an HTTP receiver as signed JSON.

use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::{Message, SmtpTransport, Transport};
use postwire_core::bus;
use postwire_core::config::decode_whsec;
use postwire_e2e::idle;
use postwire_e2e::nats::NatsServer;
use postwire_e2e::pipeline::{Pipeline, config};
use postwire_e2e::receiver::Receiver;
use postwire_e2e::{SECRET, eventually};
use postwire_stages::deliver::verify;

fn send_with_lettre(port: u16, to: &[&str], subject: &str, body: &str) {
    let mut builder = Message::builder()
        .from(
            "Ann Example <ann@example.com>"
                .parse::<Mailbox>()
                .expect("from"),
        )
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for t in to {
        builder = builder.to(t.parse::<Mailbox>().expect("to"));
    }
    let email = builder.body(body.to_string()).expect("message");
    let mailer = SmtpTransport::builder_dangerous("127.0.0.1")
        .port(port)
        .build();
    mailer.send(&email).expect("lettre sends the mail");
}

fn verify(r: &postwire_e2e::receiver::Received, body: &[u8]) -> Result<(), verify::VerifyError> {
    let key = decode_whsec(SECRET).expect("secret");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    verify::verify(
        &[key],
        r.header("webhook-id").as_deref(),
        r.header("webhook-timestamp").as_deref(),
        r.header("webhook-signature").as_deref(),
        body,
        now,
        300,
    )
}

#[tokio::test]
async fn mail_from_lettre_arrives_as_signed_json() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    let p = Pipeline::start(config(&nats.url(), &rx.url)).await;
    let port = p.smtp.port();
    tokio::task::spawn_blocking(move || {
        send_with_lettre(
            port,
            &["support@acme.test"],
            "Hello from lettre",
            "Grüße aus Berlin",
        )
    })
    .await
    .expect("send");
    assert!(
        eventually(Duration::from_secs(15), || rx.count() == 1).await,
        "one delivery arrives"
    );
    let got = rx.received().remove(0);
    let json = got.json();
    assert_eq!(json["schema"], "postwire.email.v1");
    assert_eq!(json["tenant"], "acme");
    assert_eq!(json["route"], "support");
    assert_eq!(json["id"].as_str(), got.header("webhook-id").as_deref());
    assert_eq!(json["envelope"]["mail_from"], "ann@example.com");
    assert_eq!(
        json["envelope"]["rcpt_to"],
        serde_json::json!(["support@acme.test"])
    );
    assert_eq!(json["message"]["subject"], "Hello from lettre");
    assert_eq!(json["message"]["from"][0]["name"], "Ann Example");
    assert_eq!(json["message"]["from"][0]["address"], "ann@example.com");
    assert!(
        json["message"]["text"]
            .as_str()
            .expect("text")
            .contains("Grüße aus Berlin")
    );
    assert!(
        json["message"]["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .any(|h| h[0] == "Received")
    );
    assert!(json["mail_id"].as_str().expect("mail id").len() == 36);
    assert_eq!(
        got.header("content-type").as_deref(),
        Some("application/json")
    );
    assert!(
        got.header("webhook-signature")
            .expect("signature")
            .starts_with("v1,")
    );
    // The signature verifies; one changed byte does not.
    assert_eq!(verify(&got, &got.body), Ok(()));
    let mut tampered = got.body.to_vec();
    tampered[10] ^= 1;
    assert_eq!(verify(&got, &tampered), Err(verify::VerifyError::Mismatch));
    p.shutdown().await;
}

#[tokio::test]
async fn one_delivery_per_route_with_distinct_ids() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    let p = Pipeline::start(config(&nats.url(), &rx.url)).await;
    let port = p.smtp.port();
    tokio::task::spawn_blocking(move || {
        send_with_lettre(
            port,
            &["support@acme.test", "sales@acme.test"],
            "Two routes",
            "hi",
        )
    })
    .await
    .expect("send");
    idle::wait_idle(&p.js, Duration::from_secs(15)).await;
    // Two deliveries, both made by the process worker's first attempt (the default): none
    // went through OUTBOX, and the receiver got each once.
    idle::assert_stream_received(&p.js, bus::STREAM_OUTBOX, 0).await;
    let got = rx.received();
    assert_eq!(got.len(), 2, "two deliveries, no duplicates");
    let mut routes: Vec<String> = got
        .iter()
        .map(|r| r.json()["route"].as_str().unwrap_or("").to_string())
        .collect();
    routes.sort();
    assert_eq!(routes, ["sales", "support"]);
    assert_ne!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(
        got[0].json()["mail_id"],
        got[1].json()["mail_id"],
        "one mail, two deliveries"
    );
    p.shutdown().await;
}

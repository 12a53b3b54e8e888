//! Delivery policy with real receivers: status classes, Retry-After, redirects, 410 and
//! re-enable, alerts, the SSRF guard, rate limits and endpoint isolation.

use std::net::IpAddr;
use std::time::Duration;

use postwire_core::bus;
use postwire_e2e::config::{TestConfig, quoted};
use postwire_e2e::dns::DnsServer;
use postwire_e2e::eventually;
use postwire_e2e::idle;
use postwire_e2e::nats::NatsServer;
use postwire_e2e::pipeline::{Pipeline, config};
use postwire_e2e::receiver::{Answer, Receiver};
use postwire_e2e::smtp::Client;
use postwire_stages::deliver::{ssrf, state};

async fn send(p: &Pipeline, to: &str, subject: &str) {
    let (mut c, _) = Client::connect(p.smtp).await;
    let r = c
        .send_mail(
            "ann@example.com",
            &[to],
            &format!("Subject: {subject}\r\n\r\nbody\r\n"),
        )
        .await;
    assert_eq!(r.code, 250, "{r:?}");
}

/// The dead letters once the pipeline is idle (nothing more can arrive).
async fn dead_letters(p: &Pipeline) -> Vec<async_nats::jetstream::message::StreamMessage> {
    idle::wait_idle(&p.js, Duration::from_secs(15)).await;
    p.stream_messages(bus::STREAM_DLQ).await
}

fn last_error(m: &async_nats::jetstream::message::StreamMessage) -> String {
    m.headers
        .get(bus::HEADER_LAST_ERROR)
        .map(|v| v.as_str().to_string())
        .unwrap_or_default()
}

fn last_status(m: &async_nats::jetstream::message::StreamMessage) -> String {
    m.headers
        .get(bus::HEADER_LAST_STATUS)
        .map(|v| v.as_str().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn retryable_statuses_are_retried_and_others_are_not() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    rx.script(&[408, 429, 204, 404]);
    let p = Pipeline::start(config(&nats.url(), &rx.url)).await;
    send(&p, "support@acme.test", "retryable").await;
    assert!(
        eventually(Duration::from_secs(10), || rx.count() == 3).await,
        "408 and 429 retried, then 204"
    );
    send(&p, "support@acme.test", "permanent").await;
    let dlq = dead_letters(&p).await;
    assert_eq!(dlq.len(), 1);
    assert_eq!(last_status(&dlq[0]), "404");
    assert_eq!(rx.count(), 4, "a 404 is not retried");
    p.shutdown().await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    rx.script_answers(vec![Answer {
        status: 503,
        headers: vec![("retry-after", "2".into())],
    }]);
    let p = Pipeline::start(config(&nats.url(), &rx.url)).await;
    send(&p, "support@acme.test", "later").await;
    assert!(eventually(Duration::from_secs(10), || rx.count() == 2).await);
    let got = rx.received();
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(1900),
        "the schedule says 100 ms, Retry-After 2 s: waited {gap:?}"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    let elsewhere = rx.url.replace("/hook", "/elsewhere");
    rx.script_answers(
        (0..3)
            .map(|_| Answer {
                status: 307,
                headers: vec![("location", elsewhere.clone())],
            })
            .collect(),
    );
    let p = Pipeline::start(config(&nats.url(), &rx.url)).await;
    send(&p, "support@acme.test", "redirected").await;
    let dlq = dead_letters(&p).await;
    assert_eq!(
        dlq.len(),
        1,
        "a redirect is a failure, retried, then dead-lettered"
    );
    assert_eq!(last_status(&dlq[0]), "307");
    assert!(
        rx.received().iter().all(|r| r.path == "/hook"),
        "the Location was never requested"
    );
    assert_eq!(rx.count(), 3);
    p.shutdown().await;
}

#[tokio::test]
async fn gone_disables_the_endpoint_until_enabled_again() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    rx.script(&[410]);
    let p = Pipeline::start(config(&nats.url(), &rx.url)).await;
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let mut alerts = client
        .subscribe(bus::subject_alerts("acme"))
        .await
        .expect("subscribe");
    send(&p, "support@acme.test", "gone").await;
    let alert = tokio::time::timeout(
        Duration::from_secs(10),
        futures::StreamExt::next(&mut alerts),
    )
    .await
    .expect("an alert in time")
    .expect("an alert");
    let alert: serde_json::Value = serde_json::from_slice(&alert.payload).expect("json alert");
    assert_eq!(alert["kind"], "endpoint_disabled");
    assert_eq!(alert["endpoint"], "hook");
    assert!(
        state::get(&p.js, "acme", "hook")
            .await
            .expect("state")
            .is_some()
    );
    // While disabled, deliveries go straight to the DLQ without a request.
    send(&p, "support@acme.test", "while disabled").await;
    let dlq = dead_letters(&p).await;
    assert_eq!(dlq.len(), 2);
    let err = last_error(&dlq[1]);
    assert!(err.contains("endpoint disabled"), "{err}");
    assert_eq!(rx.count(), 1);
    // An admin enables it again; the next mail is delivered.
    assert!(state::enable(&p.js, "acme", "hook").await.expect("enable"));
    send(&p, "support@acme.test", "after enable").await;
    idle::wait_idle(&p.js, Duration::from_secs(10)).await;
    assert_eq!(rx.count(), 2);
    assert_eq!(rx.received()[1].status, 204);
    p.shutdown().await;
}

/// The deliver worker reads endpoint states from its mirror of the KV bucket (issue 17): a
/// state written before the mirror started is read with it, and a change made by an admin
/// reaches it through the watch.
#[tokio::test]
async fn an_endpoint_disabled_before_the_first_attempt_stays_disabled() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    let p = Pipeline::start(config(&nats.url(), &rx.url)).await;
    state::disable(&p.js, "acme", "hook", "disabled by the test")
        .await
        .expect("disable");
    send(&p, "support@acme.test", "while disabled").await;
    let dlq = dead_letters(&p).await;
    assert_eq!(dlq.len(), 1);
    let err = last_error(&dlq[0]);
    assert!(err.contains("disabled by the test"), "{err}");
    assert_eq!(rx.count(), 0);
    assert!(state::enable(&p.js, "acme", "hook").await.expect("enable"));
    send(&p, "support@acme.test", "after enable").await;
    idle::wait_idle(&p.js, Duration::from_secs(10)).await;
    assert_eq!(rx.count(), 1);
    p.shutdown().await;
}

#[tokio::test]
async fn ssrf_matrix_is_refused_unless_allow_listed() {
    let dns = DnsServer::start(&[
        (
            "internal.evil.test",
            "10.0.0.7".parse::<IpAddr>().expect("ip"),
        ),
        ("public.example.test", "93.184.216.34".parse().expect("ip")),
    ])
    .await;
    let guard = ssrf::Guard::new(&[], Some(dns.addr)).expect("guard");
    for url in [
        "https://127.0.0.1/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://10.0.0.1/",
        "https://172.16.0.1/",
        "https://192.168.1.1/",
        "https://169.254.169.254/latest/meta-data/",
        "https://100.64.0.1/",
        "https://[fc00::1]/",
        "https://[fe80::1]/",
        "https://0.0.0.0/",
        "https://2130706433/",
        "https://0x7f000001/",
        "https://0177.0.0.1/",
        "https://127.1/",
        "https://0x7f.1/",
        "https://017700000001/",
    ] {
        let u = url::Url::parse(url).expect("url");
        assert!(guard.check_url(&u).is_err(), "{url} must be refused");
    }
    let err = guard
        .resolve_vetted("internal.evil.test")
        .await
        .expect_err("a private answer is refused");
    assert!(err.to_string().contains("SSRF"), "{err}");
    assert_eq!(
        guard
            .resolve_vetted("public.example.test")
            .await
            .expect("public"),
        ["93.184.216.34".parse::<IpAddr>().expect("ip")]
    );
    // Allow-listed hosts and networks pass.
    let allowing = ssrf::Guard::new(&["10.0.0.0/8".into(), "127.0.0.1".into()], Some(dns.addr))
        .expect("guard");
    assert!(
        allowing
            .check_url(&url::Url::parse("https://127.0.0.1/").expect("url"))
            .is_ok()
    );
    assert!(
        allowing
            .check_url(&url::Url::parse("https://[::1]/").expect("url"))
            .is_err()
    );
    assert!(allowing.resolve_vetted("internal.evil.test").await.is_ok());
}

#[tokio::test]
async fn a_name_resolving_to_a_private_address_is_dead_lettered_without_a_request() {
    let nats = NatsServer::start();
    let dns = DnsServer::start(&[(
        "hooks.evil.test",
        "127.0.0.1".parse::<IpAddr>().expect("ip"),
    )])
    .await;
    let rx = Receiver::start().await;
    let port = rx
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .unwrap_or_default()
        .to_string();
    let cfg = TestConfig::new(&nats.url())
        .hook(&format!("https://hooks.evil.test:{port}/hook"))
        .endpoint_set("hook", "allow_http", "false")
        .set("delivery", "ssrf_allow", "[]")
        .set("delivery", "dns_server", &quoted(&dns.addr.to_string()))
        .config();
    let p = Pipeline::start(cfg).await;
    send(&p, "support@acme.test", "ssrf").await;
    let dlq = dead_letters(&p).await;
    assert_eq!(dlq.len(), 1);
    let err = last_error(&dlq[0]);
    assert!(err.contains("SSRF guard"), "{err}");
    assert_eq!(rx.count(), 0, "nothing reached the receiver");
    p.shutdown().await;
}

#[tokio::test]
async fn endpoint_rate_limit_is_respected() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    let cfg = TestConfig::new(&nats.url())
        .hook(&rx.url)
        .endpoint_set("hook", "rate_per_sec", "4.0")
        .config();
    let p = Pipeline::start(cfg).await;
    for i in 0..12 {
        send(&p, "support@acme.test", &format!("rate {i}")).await;
    }
    assert!(eventually(Duration::from_secs(20), || rx.count() == 12).await);
    let times: Vec<_> = rx.received().iter().map(|r| r.at).collect();
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .take_while(|u| **u - *t < Duration::from_secs(1))
            .count();
        assert!(
            in_window <= 5,
            "{in_window} requests within one second at 4/s"
        );
    }
    assert!(
        *times.last().expect("last") - times[0] >= Duration::from_millis(2500),
        "12 requests at 4/s take ~2.75 s"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn a_slow_endpoint_does_not_delay_another() {
    let nats = NatsServer::start();
    let slow = Receiver::start().await;
    slow.delay(Duration::from_secs(3));
    let fast = Receiver::start().await;
    let cfg = TestConfig::new(&nats.url())
        .hook(&slow.url)
        .endpoint_set("hook", "concurrency", "2")
        .endpoint("fast", &fast.url)
        .route("sales", &["sales@acme.test"], &["fast"])
        .set("delivery", "request_timeout_secs", "10")
        .config();
    let p = Pipeline::start(cfg).await;
    for i in 0..10 {
        send(&p, "support@acme.test", &format!("slow {i}")).await;
    }
    // The slow endpoint is busy: both of its slots hold a request.
    assert!(
        eventually(Duration::from_secs(10), || slow.arrived() == 2).await,
        "two requests in flight at the slow endpoint, got {}",
        slow.arrived()
    );
    let started = std::time::Instant::now();
    for i in 0..5 {
        send(&p, "sales@acme.test", &format!("fast {i}")).await;
    }
    assert!(eventually(Duration::from_secs(10), || fast.count() == 5).await);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "the fast endpoint waited for the slow one: {took:?}"
    );
    assert!(
        slow.count() <= 4,
        "the slow endpoint is still busy (concurrency 2, 3 s each)"
    );
    p.shutdown().await;
}

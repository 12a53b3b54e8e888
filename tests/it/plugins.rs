//! Tenant plugin chains in the whole pipeline: `route` fan-out, `drop` with its audit record,
//! and the `fail-open` / `fail-closed` failure modes. The plugins are the real ones from
//! `plugins/build` (`make plugins`).

use std::path::PathBuf;
use std::time::Duration;

use postwire_core::Config;
use postwire_core::bus;
use postwire_core::config::{PluginConfig, PluginFailure};
use postwire_e2e::config::TestConfig;
use postwire_e2e::idle;
use postwire_e2e::nats::NatsServer;
use postwire_e2e::pipeline::Pipeline;
use postwire_e2e::receiver::Receiver;
use postwire_e2e::smtp::Client;
use serde_json::{Value, json};

fn plugin(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/build")
        .join(format!("{name}.wasm"));
    assert!(p.exists(), "{} is missing: run `make plugins`", p.display());
    p
}

/// The test config with a plugin chain for tenant acme, a `billing` route to a second
/// endpoint (`hook2`, the receiver's `/hook2`), and the compiled-plugin cache the unit tests
/// also use.
fn with_plugins(
    nats: &NatsServer,
    rx: &Receiver,
    chain: &[(&str, Value)],
    failure: PluginFailure,
) -> Config {
    let mut cfg = TestConfig::new(&nats.url())
        .hook(&rx.url)
        .endpoint("hook2", &format!("{}2", rx.url))
        .route("billing", &["billing@acme.test"], &["hook2"])
        .config();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    cfg.plugin_host.cache_dir = target.join("plugin-cache").display().to_string();
    // The tests share two busy cores; the deadline test sets its own.
    cfg.plugin_host.deadline_ms = 5_000;
    let t = cfg.tenants.get_mut("acme").expect("tenant acme");
    t.plugins = chain
        .iter()
        .map(|(name, config)| PluginConfig {
            path: plugin(name),
            config: Some(config.clone()),
        })
        .collect();
    t.plugin_failure = failure;
    cfg
}

async fn send(p: &Pipeline, to: &str, subject: &str) {
    let (mut c, _) = Client::connect(p.smtp).await;
    let content = format!(
        "From: Ann <ann@example.com>\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nCall +44 20 7946 0958.\r\n"
    );
    let reply = c.send_mail("ann@example.com", &[to], &content).await;
    assert_eq!(reply.code, 250, "{:?}", reply.lines);
}

/// Waits until the pipeline is idle: every mail sent so far went through the plugins and
/// every delivery was made.
async fn settle(p: &Pipeline) {
    idle::wait_idle(&p.js, Duration::from_secs(30)).await;
}

/// The audit records of `kind` (read once the pipeline is idle).
async fn audit_records(p: &Pipeline, kind: &str) -> Vec<Value> {
    p.stream_messages(bus::STREAM_AUDIT)
        .await
        .into_iter()
        .filter(|m| m.subject.starts_with(&format!("audit.acme.{kind}.")))
        .map(|m| serde_json::from_slice(&m.payload).expect("audit JSON"))
        .collect()
}

#[tokio::test]
async fn route_fans_out_to_two_endpoints_and_drop_leaves_an_audit_record() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    let rules = json!({"rules": [
        {"subject_contains": "unsubscribe", "drop": true},
        {"subject_contains": "invoice", "routes": ["billing", "sales"]},
    ]});
    let cfg = with_plugins(
        &nats,
        &rx,
        &[("redact", json!({})), ("route", rules)],
        PluginFailure::FailClosed,
    );
    let p = Pipeline::start(cfg).await;

    send(&p, "support@acme.test", "Invoice 7").await;
    settle(&p).await;
    let got = rx.received();
    assert_eq!(got.len(), 2, "two deliveries");
    let mut paths: Vec<_> = got.iter().map(|r| r.path.clone()).collect();
    paths.sort();
    assert_eq!(paths, ["/hook", "/hook2"]);
    let ids: Vec<_> = got
        .iter()
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    assert_ne!(ids[0], ids[1], "distinct delivery ids");
    for r in &got {
        let j = r.json();
        assert_eq!(j["id"].as_str(), r.header("webhook-id").as_deref());
        let route = if r.path == "/hook2" {
            "billing"
        } else {
            "sales"
        };
        assert_eq!(j["route"], route);
        // The chain ran redact first.
        assert_eq!(j["message"]["text"], "Call [phone].\n");
    }

    send(&p, "support@acme.test", "Please unsubscribe me").await;
    settle(&p).await;
    let drops = audit_records(&p, "drop").await;
    assert_eq!(drops.len(), 1, "{drops:?}");
    assert_eq!(drops[0]["route"], "support");
    assert_eq!(drops[0]["reason"], "rule 0 of the route plugin");
    assert_eq!(rx.count(), 2, "a dropped mail is not delivered");
    // Two mails processed; both deliveries (of the first mail) made by the process worker's
    // first attempt (the default), so none in OUTBOX.
    idle::assert_stream_received(&p.js, bus::STREAM_MAIL, 2).await;
    idle::assert_stream_received(&p.js, bus::STREAM_OUTBOX, 0).await;
    p.shutdown().await;
}

#[tokio::test]
async fn fail_open_delivers_untransformed_and_audits() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    let cfg = with_plugins(
        &nats,
        &rx,
        &[("misbehave", json!({"do": "stderr"}))],
        PluginFailure::FailOpen,
    );
    let p = Pipeline::start(cfg).await;
    send(&p, "support@acme.test", "Hello").await;
    settle(&p).await;
    assert_eq!(rx.count(), 1);
    let j = rx.received()[0].json();
    assert_eq!(j["schema"], "postwire.email.v1");
    assert_eq!(j["message"]["subject"], "Hello");
    let audits = audit_records(&p, "plugin").await;
    assert_eq!(audits.len(), 1, "{audits:?}");
    assert_eq!(audits[0]["mode"], "fail-open");
    assert_eq!(audits[0]["error_kind"], "plugin");
    assert!(
        audits[0]["reason"]
            .as_str()
            .unwrap()
            .contains("wrote to stderr, then failed")
    );
    // What the plugin wrote is kept with the record.
    assert_eq!(
        audits[0]["output"],
        "[misbehave] stderr: something went wrong"
    );
    assert!(p.stream_messages(bus::STREAM_DLQ).await.is_empty());
    p.shutdown().await;
}

#[tokio::test]
async fn fail_closed_sends_the_mail_to_the_dlq_with_the_error() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    let mut cfg = with_plugins(
        &nats,
        &rx,
        &[("misbehave", json!({"do": "loop"}))],
        PluginFailure::FailClosed,
    );
    // The deadline alone (no fuel), which this test is about.
    cfg.plugin_host.deadline_ms = 200;
    cfg.plugin_host.fuel = 0;
    let p = Pipeline::start(cfg).await;
    send(&p, "support@acme.test", "Hello").await;
    settle(&p).await;
    let dlq = p.stream_messages(bus::STREAM_DLQ).await;
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].subject.as_str(), "dlq.acme._plugin");
    let error = dlq[0]
        .headers
        .get(bus::HEADER_LAST_ERROR)
        .map(|v| v.to_string())
        .unwrap_or_default();
    assert_eq!(error, "plugin misbehave: deadline of 200 ms exceeded");
    assert!(
        String::from_utf8_lossy(&dlq[0].payload).contains("Subject: Hello"),
        "the raw mail is kept"
    );
    assert_eq!(rx.count(), 0, "nothing is delivered");
    idle::assert_stream_received(&p.js, bus::STREAM_OUTBOX, 0).await;
    p.shutdown().await;
}

#[tokio::test]
async fn a_panic_under_fail_closed_keeps_its_message_with_the_dead_letter() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    let cfg = with_plugins(
        &nats,
        &rx,
        &[("misbehave", json!({"do": "panic"}))],
        PluginFailure::FailClosed,
    );
    let p = Pipeline::start(cfg).await;
    send(&p, "support@acme.test", "Hello").await;
    settle(&p).await;
    let dlq = p.stream_messages(bus::STREAM_DLQ).await;
    assert_eq!(dlq.len(), 1);
    let header = |name: &str| {
        dlq[0]
            .headers
            .get(name)
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    assert!(
        header(bus::HEADER_LAST_ERROR)
            .starts_with("plugin misbehave: trapped: wasm `unreachable` executed"),
        "{}",
        header(bus::HEADER_LAST_ERROR)
    );
    let output = header(bus::HEADER_PLUGIN_OUTPUT);
    assert!(
        output.starts_with("[misbehave] thread")
            && output.contains("this plugin panics on purpose"),
        "{output}"
    );
    // Listed with the output, newlines restored.
    let listed = postwire_stages::held::dlq::list(&p.js, &Default::default())
        .await
        .unwrap();
    assert!(
        listed[0]
            .plugin_output
            .contains("\nthis plugin panics on purpose"),
        "{}",
        listed[0].plugin_output
    );
    assert_eq!(rx.count(), 0, "nothing is delivered");
    p.shutdown().await;
}

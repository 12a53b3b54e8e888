//! Alerts POSTed to a tenant's `alert_url` (issue #18): through the SSRF guard like a
//! delivery (every notation of a non-global address refused, nothing sent), and signed with
//! the schemes of the endpoint the alert is about.

use std::sync::Arc;

use postwire_core::Config;
use postwire_core::live::LiveConfig;
use postwire_e2e::nats::NatsServer;
use postwire_e2e::pipeline::config;
use postwire_e2e::receiver::Receiver;
use postwire_stages::deliver::dispatch::Dispatch;
use postwire_stages::deliver::state::{self, AlertPost};
use postwire_stages::deliver::{http, limits, ssrf, verify};
use serde_json::json;

/// The deliver worker's dispatch (client, guard, signers) with `allow` as `ssrf_allow`.
async fn dispatch(nats: &NatsServer, cfg: &Config, allow: &[&str]) -> Dispatch {
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
    let guard = ssrf::Guard::new(&allow, None).expect("guard");
    let http = http::client(&cfg.delivery, guard.clone()).expect("client");
    let limits = limits::Limits::live(LiveConfig::fixed(Arc::new(cfg.clone())));
    Dispatch::new(js, http, guard, limits)
}

fn with_alert_url(cfg: &Config, url: &str) -> Config {
    let mut cfg = cfg.clone();
    cfg.tenants.get_mut("acme").expect("acme").alert_url = Some(url.to_string());
    cfg
}

fn event() -> serde_json::Value {
    json!({"kind": "consecutive_failures", "endpoint": "hook", "failures": 5})
}

#[tokio::test]
async fn alert_url_goes_through_the_ssrf_guard() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    let port = url::Url::parse(&rx.url).expect("url").port().expect("port");
    let cfg = config(&nats.url(), &rx.url);
    // Nothing non-global is allowed: every way of writing an internal address is refused.
    let d = dispatch(&nats, &cfg, &[]).await;
    for url in [
        format!("http://127.0.0.1:{port}/alert"),
        format!("http://localhost:{port}/alert"),
        format!("http://2130706433:{port}/alert"),
        format!("http://0x7f.1:{port}/alert"),
        format!("http://017700000001:{port}/alert"),
        format!("http://[::ffff:127.0.0.1]:{port}/alert"),
        format!("https://[::ffff:7f00:1]:{port}/alert"),
        "https://169.254.169.254/latest/meta-data/".to_string(),
        "https://[fd00::1]/alert".to_string(),
        "https://10.0.0.1/alert".to_string(),
    ] {
        let posted = state::alert(&d, &with_alert_url(&cfg, &url), "acme", event()).await;
        assert!(matches!(posted, AlertPost::Refused(_)), "{url}: {posted:?}");
    }
    assert_eq!(rx.count(), 0, "no alert reached the internal address");
}

#[tokio::test]
async fn alert_is_signed_like_a_delivery() {
    let nats = NatsServer::start();
    let rx = Receiver::start().await;
    let cfg = config(&nats.url(), &rx.url);
    let d = dispatch(&nats, &cfg, &["127.0.0.1"]).await;
    let alert_url = rx.url.replace("/hook", "/alert");
    let posted = state::alert(&d, &with_alert_url(&cfg, &alert_url), "acme", event()).await;
    assert_eq!(posted, AlertPost::Answered(204));
    let got = rx.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.path, "/alert");
    let body = r.json();
    assert_eq!(
        (body["kind"].as_str(), body["tenant"].as_str()),
        (Some("consecutive_failures"), Some("acme"))
    );
    let id = r.header("webhook-id").expect("webhook-id");
    assert!(id.starts_with("alert_"), "{id}");
    // The receiver verifies it with the endpoint's secret, as it verifies deliveries.
    let key = postwire_core::config::decode_whsec(postwire_e2e::SECRET).expect("secret");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let verdict = verify::verify(
        &[key],
        Some(&id),
        r.header("webhook-timestamp").as_deref(),
        r.header("webhook-signature").as_deref(),
        &r.body,
        now,
        300,
    );
    assert_eq!(verdict, Ok(()));
}

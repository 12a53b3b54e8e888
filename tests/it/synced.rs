//! Accepted means on disk: ingest's start-up check and `postwire doctor` read the real
//! nats-server's JetStream settings. A server that syncs every write passes; one with the
//! default sync timer is refused, and the doctor says why.

use std::time::Duration;

use postwire_core::config::NatsConfig;
use postwire_core::durability::{self, DurabilityError};
use postwire_core::{Config, bus, doctor};
use postwire_e2e::nats::NatsServer;

fn nats_config(nats: &NatsServer) -> NatsConfig {
    NatsConfig {
        url: nats.url(),
        monitor_url: nats.monitor_url(),
        ..Default::default()
    }
}

async fn with_streams(cfg: &NatsConfig) {
    let client = bus::connect(cfg, "synced-test").await.expect("connect");
    let js = bus::jetstream(client, cfg);
    bus::ensure_streams(&js, cfg, Duration::from_secs(20))
        .await
        .expect("streams");
}

#[tokio::test]
async fn a_server_that_syncs_every_write_is_accepted_and_reported_durable() {
    let nats = NatsServer::start();
    let nats_cfg = nats_config(&nats);
    durability::ensure_synced(&nats_cfg)
        .await
        .expect("synced server");
    with_streams(&nats_cfg).await;
    let cfg = Config {
        nats: nats_cfg,
        ..Default::default()
    };
    let report = doctor::report(&cfg).await;
    let text = report.to_string();
    assert!(report.durable(), "{text}");
    assert!(text.contains("sync_interval always"), "{text}");
    let streams = report.streams.as_ref().expect("streams read");
    let find = |n: &str| {
        streams
            .iter()
            .find(|s| s.name == n)
            .and_then(|s| s.found.as_ref())
            .unwrap_or_else(|| panic!("{n} in {text}"))
    };
    assert!(
        !find("MAIL").async_persist && !find("MAIL").memory,
        "{text}"
    );
    assert!(!find("OUTBOX").async_persist, "{text}");
    assert!(
        find("AUDIT").async_persist,
        "AUDIT skips the per-write fsync: {text}"
    );
}

#[tokio::test]
async fn a_server_with_the_default_sync_timer_is_refused() {
    let nats = NatsServer::start_unsynced();
    let mut nats_cfg = nats_config(&nats);
    let err = durability::ensure_synced(&nats_cfg).await.unwrap_err();
    match &err {
        DurabilityError::Unsynced { interval, .. } => {
            assert_eq!(*interval, Duration::from_secs(120), "{err}")
        }
        other => panic!("expected Unsynced, got {other}"),
    }
    assert!(err.advice().contains("sync_interval: always"));

    with_streams(&nats_cfg).await;
    let cfg = Config {
        nats: nats_cfg.clone(),
        ..Default::default()
    };
    let report = doctor::report(&cfg).await;
    assert!(!report.durable(), "{report}");
    assert!(report.to_string().contains("syncs every 120 s"), "{report}");

    // Said on purpose, the operator may accept the risk.
    nats_cfg.allow_unsynced = true;
    durability::ensure_synced(&nats_cfg).await.expect("allowed");
}

#[tokio::test]
async fn a_monitoring_port_that_does_not_answer_is_refused() {
    let nats = NatsServer::start();
    let cfg = NatsConfig {
        url: nats.url(),
        // The client port speaks NATS, not HTTP: the settings cannot be read.
        monitor_url: format!("http://{}", nats.url().trim_start_matches("nats://")),
        ..Default::default()
    };
    let err = durability::ensure_synced(&cfg).await.unwrap_err();
    assert!(matches!(err, DurabilityError::Unreadable { .. }), "{err}");
}

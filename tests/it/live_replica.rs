//! A node's tenant configuration is read from the leader, not from a replica that lags.
//!
//! The config bucket's reads were JetStream "direct gets", which any replica may answer. A
//! replica that is behind (a NATS server just back from a kill, a follower that has not yet
//! applied the seeding write) answers "not found" for a tenant it lacks, and `live::start`
//! then started a node without that tenant: every mail for it became an unrouted dead letter,
//! and no later change brought the tenant in (the node watches from the sequence it read).
//! A mirror with `mirror_direct` on one real nats-server is such a replica: it answers direct
//! gets for the bucket in the same queue group as the bucket itself, and its filter leaves
//! `beta` out, so about every second direct get of `beta` says "not found".

use async_nats::jetstream::stream;
use postwire_core::{Config, bus, live};
use postwire_e2e::nats::NatsServer;

fn two_tenants(nats_url: &str) -> Config {
    Config::from_toml(&format!(
        "[nats]\nurl = \"{nats_url}\"\n\n[tenants.acme]\ndomains = [\"acme.test\"]\n\n\
         [tenants.beta]\ndomains = [\"beta.test\"]\n"
    ))
    .expect("config")
}

/// A mirror of the config bucket that holds only `acme` and answers the bucket's direct gets.
async fn lagging_replica(js: &async_nats::jetstream::Context) {
    let origin = format!("KV_{}", bus::KV_TENANTS);
    js.create_stream(stream::Config {
        name: "KV_lagging_replica".into(),
        mirror: Some(stream::Source {
            name: origin,
            filter_subject: Some(format!("$KV.{}.acme", bus::KV_TENANTS)),
            ..Default::default()
        }),
        mirror_direct: true,
        allow_direct: true,
        ..Default::default()
    })
    .await
    .expect("mirror");
}

#[tokio::test]
async fn a_replica_lacking_a_tenant_does_not_start_a_node_without_it() {
    let nats = NatsServer::start();
    let cfg = two_tenants(&nats.url());
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let js = bus::jetstream(client, &cfg.nats);
    bus::ensure_streams(&js, &cfg.nats, std::time::Duration::from_secs(10))
        .await
        .expect("streams");
    let base = std::sync::Arc::new(cfg);
    // The first node seeds the bucket; then the replica appears, holding `acme` only.
    live::start(&js, base.clone()).await.expect("first node");
    lagging_replica(&js).await;
    let kv = js.get_key_value(bus::KV_TENANTS).await.expect("bucket");
    // The replica does answer (once the mirror has started): direct gets of `beta` come back
    // empty about every second time.
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let (mut gets, mut empty) = (0, 0);
    while (empty == 0 || gets < 100) && tokio::time::Instant::now() < until {
        gets += 1;
        if kv.get("beta").await.expect("direct get").is_none() {
            empty += 1;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    eprintln!("direct gets of beta answered 'not found': {empty} of {gets}");
    assert!(
        empty > 0,
        "the lagging replica answered none of {gets} direct gets"
    );

    // A read of the whole bucket sees both, every time: it asks the leader.
    for n in 0..30 {
        let (stored, _) = live::read_all(&kv).await.expect("read");
        let names: Vec<&String> = stored.keys().collect();
        assert_eq!(names, ["acme", "beta"], "read {n} gave {names:?}");
    }
    // Every node started now has both tenants, however the gets fall.
    for n in 0..20 {
        let node = live::start(&js, base.clone()).await.expect("node start");
        let snap = node.get();
        let names: Vec<&String> = snap.cfg.tenants.keys().collect();
        assert_eq!(names, ["acme", "beta"], "node {n} started with {names:?}");
    }
}

//! The whole postwire pipeline (ingest, process, deliver) started in-process against a real
//! nats-server, with a config the test may adjust.

use std::net::SocketAddr;
use std::sync::Arc;

use async_nats::jetstream;
use postwire_core::{Config, bus};
use postwire_ingest::{IngestDeps, JetStreamPublisher};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Pipeline {
    pub smtp: SocketAddr,
    pub cfg: Arc<Config>,
    pub js: jetstream::Context,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// A config for tenant `acme` (domain acme.test; route `support` for support@acme.test and
/// route `sales` for sales@acme.test, both to endpoint `hook` at `hook_url`) with short retry
/// delays.
pub fn config(nats_url: &str, hook_url: &str) -> Config {
    let text = format!(
        r#"
[nats]
url = "{nats_url}"
publish_timeout_ms = 1500
[smtp]
hostname = "mx.test"
[verify]
enabled = false
[delivery]
retry_schedule = ["100ms", "200ms"]
retry_jitter = 0.1
request_timeout_secs = 5
ack_wait_secs = 3
ssrf_allow = ["127.0.0.1"]
[tenants.acme]
domains = ["acme.test"]
[[tenants.acme.routes]]
name = "support"
recipients = ["support@acme.test"]
endpoints = ["hook"]
[[tenants.acme.routes]]
name = "sales"
recipients = ["sales@acme.test"]
endpoints = ["hook"]
[tenants.acme.endpoints.hook]
url = "{hook_url}"
allow_http = true
secret = "{secret}"
"#,
        secret = crate::SECRET
    );
    Config::from_toml(&text).expect("test config parses")
}

fn ingest_deps(cfg: &Config, js: &jetstream::Context) -> IngestDeps<JetStreamPublisher> {
    let tls = postwire_ingest::tls::from_config(&cfg.smtp).expect("TLS config");
    let max_payload = Some(js.client().server_info().max_payload as u64);
    IngestDeps::new(
        cfg,
        JetStreamPublisher::new(js.clone(), cfg.smtp.hostname.clone()),
        tls,
        max_payload,
    )
}

async fn wait(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

impl Pipeline {
    pub async fn start(cfg: Config) -> Pipeline {
        let mut p = Pipeline::ingest_only(cfg).await;
        let rx = p.stop.subscribe();
        let (js2, cfg2, rx2) = (p.js.clone(), p.cfg.clone(), rx.clone());
        p.tasks.push(tokio::spawn(async move {
            postwire_stages::process::run(js2, cfg2, wait(rx2))
                .await
                .expect("process worker");
        }));
        let (js3, cfg3) = (p.js.clone(), p.cfg.clone());
        p.tasks.push(tokio::spawn(async move {
            postwire_stages::deliver::run(js3, cfg3, wait(rx))
                .await
                .expect("deliver worker");
        }));
        p
    }

    /// Only the SMTP ingest (no workers): for conversation tests that inspect the MAIL stream.
    pub async fn ingest_only(cfg: Config) -> Pipeline {
        cfg.validate().expect("test config validates");
        let cfg = Arc::new(cfg);
        let client = bus::connect(&cfg.nats, "postwire-test")
            .await
            .expect("connect");
        let js = bus::jetstream(client, &cfg.nats);
        bus::ensure_streams(&js, &cfg.nats, std::time::Duration::from_secs(10))
            .await
            .expect("streams");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let smtp = listener.local_addr().expect("addr");
        let (stop, rx) = watch::channel(false);
        let deps = ingest_deps(&cfg, &js);
        let tasks = vec![tokio::spawn(postwire_ingest::run(
            vec![listener],
            deps,
            wait(rx),
        ))];
        Pipeline {
            smtp,
            cfg,
            js,
            stop,
            tasks,
        }
    }

    /// All messages currently in a stream, oldest first (payload and headers).
    pub async fn stream_messages(
        &self,
        stream: &str,
    ) -> Vec<async_nats::jetstream::message::StreamMessage> {
        let mut s = self.js.get_stream(stream).await.expect("stream");
        let info = s.info().await.expect("info").clone();
        let mut out = Vec::new();
        if info.state.messages == 0 {
            return out;
        }
        for seq in info.state.first_sequence..=info.state.last_sequence {
            if let Ok(m) = s.get_raw_message(seq).await {
                out.push(m);
            }
        }
        out
    }

    /// Asks every part to stop, without waiting.
    pub fn begin_shutdown(&self) {
        let _ = self.stop.send(true);
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

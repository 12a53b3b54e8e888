//! The whole postwire pipeline (ingest, process, deliver) started in-process against a real
//! nats-server through the same wiring as the binary (`postwire_node::start`), with a config
//! the test may adjust.

use std::net::SocketAddr;
use std::sync::Arc;

use async_nats::jetstream;
use postwire_core::Config;
use postwire_node::{Options, Roles, Running, Shutdown, Trigger};

pub struct Pipeline {
    pub smtp: SocketAddr,
    pub cfg: Arc<Config>,
    pub js: jetstream::Context,
    stop: Trigger,
    running: Running,
}

/// A config for tenant `acme` (domain acme.test; route `support` for support@acme.test and
/// route `sales` for sales@acme.test, both to endpoint `hook` at `hook_url`) with short retry
/// delays. `nats.monitor_url` is the monitoring endpoint of the test's server (ingest reads
/// its sync setting at start).
pub fn config(nats_url: &str, hook_url: &str) -> Config {
    crate::config::TestConfig::new(nats_url)
        .hook(hook_url)
        .config()
}

impl Pipeline {
    pub async fn start(cfg: Config) -> Pipeline {
        Pipeline::with_roles(cfg, Roles::PIPELINE).await
    }

    /// Only the SMTP ingest (no workers): for conversation tests that inspect the MAIL stream.
    pub async fn ingest_only(cfg: Config) -> Pipeline {
        Pipeline::with_roles(cfg, Roles::INGEST).await
    }

    /// A node running `roles` (ingest always, so there is an SMTP address) on `cfg`.
    pub async fn with_roles(cfg: Config, roles: Roles) -> Pipeline {
        Pipeline::launch(cfg, roles, None).await
    }

    /// A node running `roles` with `[storage]` on the filesystem backend, its URLs signed
    /// with `blob_key`.
    pub async fn with_blob_key(cfg: Config, roles: Roles, blob_key: &[u8]) -> Pipeline {
        Pipeline::launch(cfg, roles, Some(blob_key.to_vec())).await
    }

    async fn launch(cfg: Config, roles: Roles, blob_key: Option<Vec<u8>>) -> Pipeline {
        cfg.validate().expect("test config validates");
        let cfg = Arc::new(cfg);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let smtp = listener.local_addr().expect("addr");
        let mut opts = Options::new(
            "postwire-test",
            Roles {
                ingest: true,
                ..roles
            },
        );
        opts.smtp = Some(vec![listener]);
        opts.blob_key = blob_key;
        opts.start_deadline = std::time::Duration::from_secs(10);
        let (stop, shutdown) = Shutdown::manual();
        let running = postwire_node::start(cfg.clone(), opts, shutdown)
            .await
            .expect("the node starts");
        Pipeline {
            smtp,
            cfg,
            js: running.js.clone(),
            stop,
            running,
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
        self.stop.fire();
    }

    /// Stops every part and waits for it; a part that failed fails the test.
    pub async fn shutdown(self) {
        self.stop.fire();
        self.running
            .wait()
            .await
            .expect("every part stopped cleanly");
    }
}

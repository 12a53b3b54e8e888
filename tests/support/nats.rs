//! A real nats-server child process with JetStream, on a random port, removed on drop.
//!
//! Like the servers postwire ships configs for, it syncs every write before acknowledging
//! it (`sync_interval: always`) and serves its monitoring endpoint (`/varz`), which ingest
//! reads at start. [`NatsServer::start_unsynced`] starts one with nats-server's default
//! (a sync every two minutes) for the tests that show it is refused.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Client URL → monitoring URL of every server started here, for [`monitor_url_for`].
static MONITORS: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

/// The monitoring URL of a server this process started (by its client URL): what
/// `nats.monitor_url` must say for ingest's start-up check to read its settings.
pub fn monitor_url_for(nats_url: &str) -> Option<String> {
    MONITORS.lock().ok()?.get(nats_url).cloned()
}

pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    monitor_port: u16,
    dir: tempfile::TempDir,
}

/// `sync_interval: always`: a PubAck means the write is on disk (docs/operations.md).
const DURABLE_CONF: &str = "jetstream {\n    sync_interval: always\n}\n";
/// nats-server's own default: writes are synced on a two-minute timer.
const DEFAULT_CONF: &str = "jetstream {}\n";

/// The nats-server binary: `$POSTWIRE_NATS_SERVER`, else the one `make tools` installs,
/// else `nats-server` on PATH.
pub fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("POSTWIRE_NATS_SERVER") {
        return PathBuf::from(p);
    }
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache")
        });
    let tools = std::env::var("POSTWIRE_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| cache.join("postwire"));
    let candidate = tools.join("venv/bin/nats-server");
    if candidate.exists() {
        candidate
    } else {
        PathBuf::from("nats-server")
    }
}

impl NatsServer {
    /// A server that syncs every write (as deployed).
    pub fn start() -> NatsServer {
        Self::start_with(DURABLE_CONF)
    }

    /// A server with nats-server's default sync timer: it acknowledges unsynced writes.
    pub fn start_unsynced() -> NatsServer {
        Self::start_with(DEFAULT_CONF)
    }

    fn start_with(conf: &str) -> NatsServer {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("nats.conf"), conf).expect("write nats.conf");
        let mut s = NatsServer {
            child: None,
            port: crate::free_port(),
            monitor_port: crate::free_port(),
            dir,
        };
        s.spawn();
        if let Ok(mut m) = MONITORS.lock() {
            m.insert(s.url(), s.monitor_url());
        }
        s
    }

    fn spawn(&mut self) {
        let child = Command::new(binary())
            .arg("-c")
            .arg(self.dir.path().join("nats.conf"))
            .args([
                "-m",
                &self.monitor_port.to_string(),
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path().join("store"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e} (run `make tools`)",
                    binary().display()
                )
            });
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        let up = |p: u16| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok();
        while !up(self.port) || !up(self.monitor_port) {
            assert!(
                Instant::now() < until,
                "nats-server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The monitoring endpoint (`/varz`, `/jsz`), for `nats.monitor_url`.
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    /// Stops the server (its store stays, for [`NatsServer::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port with the same store.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

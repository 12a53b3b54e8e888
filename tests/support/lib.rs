//! Test support: a real `nats-server` per test, an in-process HTTP receiver, the postwire
//! pipeline started in-process, and a raw SMTP line client; the shared test configuration
//! ([`config`]) and checks on JetStream state instead of sleeps ([`idle`]).

pub mod config;
pub mod dns;
pub mod idle;
pub mod nats;
pub mod payload;
pub mod pipeline;
pub mod receiver;
pub mod schema;
pub mod smtp;

/// A free TCP port on 127.0.0.1 (bound then released).
///
/// Never the same port twice in one test process: the kernel may give a released port
/// again at once, and a test asking for two would then get one twice.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut seen = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if seen.insert(port) {
            return port;
        }
    }
}

/// Polls `check` every 50 ms until it returns true or `timeout` passes.
pub async fn eventually(timeout: std::time::Duration, mut check: impl FnMut() -> bool) -> bool {
    let until = tokio::time::Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() > until {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

//! Ingest: the SMTP server that turns an SMTP transaction into a durable JetStream message.
//!
//! - [`smtp`] is the protocol, sans I/O: command parsing, replies, the DATA decoder and the
//!   session state machine. It never touches a socket, so tests drive it with byte slices.
//! - [`server`] is the tokio I/O around it: listener, connection cap, timeouts, shutdown.
//! - [`publish`] turns an accepted transaction into `mail.raw.<tenant>` messages and waits for
//!   the PubAck before the session may answer 250.
//! - [`spool`] streams a large message to object storage while DATA arrives (claim check).
//! - [`verify`] is the seam for inline authentication checks (tenants on `reject`).

pub mod deps;
pub mod limits;
pub mod proxy;
pub mod publish;
pub mod server;
pub mod ses;
pub mod smtp;
pub mod spool;
pub mod tls;
pub mod verify;

#[cfg(test)]
mod test_config;

pub use deps::IngestDeps;
pub use publish::{JetStreamPublisher, PublishFailure, Publisher};
pub use server::run;
pub use spool::{ClaimCheck, SpoolError, Spooled, Upload};
pub use verify::{InlineVerdict, InlineVerifier};

/// The sans-IO rule, checked: nothing under `smtp/` (its `*_tests.rs` files aside) imports
/// from the rest of the crate or touches sockets, files or the runtime.
#[cfg(test)]
mod layering {
    #[test]
    fn the_smtp_module_imports_nothing_from_above_it_and_does_no_io() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/smtp");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            // The module's own unit tests may use the crate's test helpers.
            if path.to_string_lossy().ends_with("_tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                let above = code.contains("crate::") && !code.contains("crate::smtp");
                let io = ["tokio", "std::fs", "std::net::Tcp", "std::io", "async fn"]
                    .iter()
                    .any(|w| code.contains(w));
                assert!(!above && !io, "{}:{}: {line}", path.display(), n + 1);
            }
            checked += 1;
        }
        assert!(checked >= 5);
    }
}

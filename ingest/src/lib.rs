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
pub use spool::{ClaimCheck, Spooled, Upload};
pub use verify::{InlineVerdict, InlineVerifier};

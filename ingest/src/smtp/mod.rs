//! SMTP protocol logic (RFC 5321 with PIPELINING, 8BITMIME, SMTPUTF8, SIZE and
//! ENHANCEDSTATUSCODES), free of I/O. Nothing here imports from the rest of the crate: what
//! the session needs from outside (limits, routing, per-client admission) is passed in.
//!
//! - [`command`]: the bounded command parser; [`data`]: the DATA decoder.
//! - [`session`]: the state machine (commands in `session.rs`, MAIL/RCPT in
//!   `session_envelope.rs`); [`session_limits`]: what it enforces itself.
//! - [`transaction`]: what the session hands over at the end of DATA, and the replies to
//!   its outcome; [`received`]: the `Received:` line; [`admission`]: per-client limits.

pub mod admission;
pub mod command;
pub mod data;
pub mod received;
pub mod reply;
pub mod session;
pub mod session_limits;
pub mod transaction;

pub use admission::Admission;
pub use reply::Reply;
pub use session::{Session, SessionLimits, Step};
pub use transaction::{PublishFailure, Spooled, Transaction};

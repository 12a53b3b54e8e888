//! SMTP protocol logic (RFC 5321 with PIPELINING, 8BITMIME, SMTPUTF8, SIZE and
//! ENHANCEDSTATUSCODES), free of I/O.

pub mod command;
pub mod data;
pub mod reply;
pub mod session;
pub mod session_limits;

pub use reply::Reply;
pub use session::{Session, SessionLimits, Step, Transaction};

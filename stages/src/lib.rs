//! The pipeline stages and the workers that run them.
//!
//! - [`parse`]: raw RFC 5322 bytes → the `message` part of `postwire.email.v1`.
//! - [`antivirus`]: attachments scanned by clamd, verdicts in the payload.
//! - [`store`]: attachments and raw mail in object storage, expiring URLs, retention sweep.
//! - [`transform`]: the WebAssembly plugin host (tenant plugin chains, WIT in `guest-sdk/wit`).
//! - [`prepare`]: one event per route, one outbox delivery per endpoint, body fixed here.
//! - [`process`]: the worker that consumes `MAIL` and runs parse → prepare.
//! - [`runner`]: the consuming loop every worker shares (consumer setup, reconnects, acks
//!   stay with the stage).
//! - [`held`]: the dead-letter stream and the quarantine (one writer, one way back).
//! - [`deliver`]: the worker that consumes `OUTBOX`, signs each attempt and POSTs it, with
//!   retries, backoff and the dead-letter stream.

pub mod antivirus;
pub mod deliver;
pub mod held;
pub mod parse;
pub mod prepare;
pub mod process;
pub mod runner;
pub mod store;
pub mod transform;
pub mod verify;

/// Why a worker could not finish a message. Retryable errors are nak'ed and redelivered.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// Infrastructure trouble (bus, storage): try again later.
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// The input can never succeed (bad headers from a foreign publisher, …).
    #[error("permanent failure: {0}")]
    Permanent(String),
}

impl From<crate::held::HeldError> for StageError {
    fn from(e: crate::held::HeldError) -> StageError {
        match e.is_retryable() {
            true => StageError::Temporary(e.to_string()),
            false => StageError::Permanent(e.to_string()),
        }
    }
}

impl StageError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StageError::Temporary(_))
    }
}

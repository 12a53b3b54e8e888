//! The pipeline stages and the workers that run them.
//!
//! - [`runner`]: what every worker does around its stage, once: the consumer loop, acks
//!   (ack / nak with delay / term), in-progress acks, the span and metrics per stage, and
//!   the one output publisher. A stage says what happened ([`runner::Outcome`]).
//! - [`process`]: the worker that consumes `MAIL` and runs its stages fused, in order:
//!   verify ([`verify`], wrapped in `process/verify.rs`) → [`spam`] (rspamd) → [`parse`] →
//!   scan ([`antivirus`]) → [`store`] → [`route`] → [`transform`] (tenant WebAssembly plugins) → [`prepare`].
//! - [`deliver`]: the worker that consumes `OUTBOX`, signs each attempt and POSTs it, with
//!   retries, backoff and the dead-letter stream.
//! - [`held`]: the dead-letter stream and the quarantine (one writer, one way back).
//!
//! Errors: [`StageError`] is what the runner sees; each module's own error says whether it is
//! worth retrying (`is_retryable`), and maps onto it.

pub mod antivirus;
pub mod deliver;
pub mod held;
pub mod parse;
pub mod prepare;
pub mod process;
pub mod route;
pub mod runner;
pub mod spam;
pub mod store;
pub mod transform;
pub mod verify;

/// Why a stage could not finish a message. Retryable errors are nak'ed and redelivered;
/// the others terminate the message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StageError {
    /// Infrastructure trouble (bus, storage, a scanner): try again later.
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// The input can never succeed (bad headers from a foreign publisher, …), or the
    /// worker's configuration is wrong.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

impl StageError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StageError::Temporary(_))
    }

    /// Sorts any error that knows whether it is retryable.
    pub fn classify(retryable: bool, e: impl std::fmt::Display) -> StageError {
        match retryable {
            true => StageError::Temporary(e.to_string()),
            false => StageError::Permanent(e.to_string()),
        }
    }
}

macro_rules! into_stage_error {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for StageError {
            fn from(e: $t) -> StageError {
                StageError::classify(e.is_retryable(), e)
            }
        }
    )*};
}

into_stage_error!(
    held::HeldError,
    store::StoreError,
    transform::HostError,
    deliver::DeliverError,
);

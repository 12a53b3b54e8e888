//! The deliver worker's errors outside an attempt (an attempt's own result is data:
//! [`super::retry::Outcome`]): reading and writing its state on the bus, and setting up.

/// Why a deliver-side operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliverError {
    /// JetStream (a stream, a KV bucket) did not answer or refused: worth trying again.
    #[error("JetStream: {0}")]
    Bus(String),
    /// The worker's configuration cannot work (`delivery.ca_file`, the DNS configuration):
    /// fixed by an operator, not by waiting.
    #[error("{0}")]
    Config(String),
}

impl DeliverError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, DeliverError::Bus(_))
    }

    pub(crate) fn bus(e: impl std::fmt::Display) -> DeliverError {
        DeliverError::Bus(e.to_string())
    }
}

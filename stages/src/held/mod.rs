//! Mail held back where an operator looks: the dead-letter stream (`DLQ`) and the
//! quarantine (`QUARANTINE`).
//!
//! - [`dlq`]: the typed dead letter ([`dlq::Dead`]: a delivery that gave up, or raw mail with
//!   its reason), its one writer, listing and replay.
//! - [`quarantine`]: mail held by a tenant's policy; list, show, release, purge.
//! - [`payloads`]: delivery bodies kept for a resend (`PAYLOADS`), and the resend.
//! - [`republish`]: the one path that sends held raw mail back to `MAIL` (a quarantine
//!   release, a raw dead letter's replay), with the headers it was processed with.

pub mod dlq;
pub mod payloads;
pub mod quarantine;
pub mod republish;

/// Why reading, writing or sending back held mail failed.
#[derive(Debug, thiserror::Error)]
pub enum HeldError {
    /// JetStream did not answer or refused: worth trying again.
    #[error("JetStream: {0}")]
    Bus(String),
    /// Nothing held under this sequence number.
    #[error("nothing held under sequence {0}")]
    NotFound(u64),
    /// The held message cannot be sent back (it lacks what it needs).
    #[error("{0}")]
    NotReplayable(String),
}

impl HeldError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, HeldError::Bus(_))
    }

    pub(crate) fn bus(e: impl std::fmt::Display) -> HeldError {
        HeldError::Bus(e.to_string())
    }
}

/// A header value of one line, bounded (an error text from a plugin or a receiver).
pub fn one_line(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect()
}

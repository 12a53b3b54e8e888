//! Inline verification for tenants whose authentication policy is `reject`: the check runs
//! after the end of DATA and before the reply, so a DMARC failure the domain owner wants
//! rejected is refused at SMTP time (550 5.7.1) and never bounced later. DNS trouble
//! defers the message (451 4.7.5): the sending MTA retries.
//!
//! Ingest only defines the seam; the implementation (mail-auth) is wired in by the binary.

use std::future::Future;
use std::pin::Pin;

use crate::smtp::Transaction;

/// What inline verification decided about a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InlineVerdict {
    /// Accept; the verdicts (compact JSON) travel with the mail so the worker need not
    /// verify again.
    Accept { auth: Option<String> },
    /// Refuse with 550 5.7.1; the text says why.
    Reject(String),
    /// DNS could not decide: 451 4.7.5, the client retries.
    Defer,
}

pub type VerdictFuture<'a> = Pin<Box<dyn Future<Output = InlineVerdict> + Send + 'a>>;

/// Verifies a complete transaction before DATA is answered.
pub trait InlineVerifier: Send + Sync + 'static {
    fn verify<'a>(&'a self, tx: &'a Transaction) -> VerdictFuture<'a>;
}

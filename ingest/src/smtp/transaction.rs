//! What a session hands to the I/O layer at the end of DATA, and how the outcome of making
//! it durable becomes the reply. Data only: the publisher, the spool and inline verification
//! fill in or read these fields outside this module.

use std::net::IpAddr;

use postwire_core::envelope::{Envelope, TlsInfo};
use postwire_core::event::{Auth, Spam};
use postwire_core::routing::Destination;

use super::command::MailParams;
use super::reply::Reply;

/// A complete message ready to be made durable.
#[derive(Debug, Clone)]
pub struct Transaction {
    pub helo: String,
    pub client_ip: IpAddr,
    pub mail_from: String,
    pub params: MailParams,
    pub rcpts: Vec<(String, Destination)>,
    pub body: Vec<u8>,
    /// The verdicts of inline verification, carried to the worker (`Postwire-Auth`, written
    /// by [`Auth::to_header`] when published) so it never verifies again.
    pub auth: Option<Auth>,
    /// rspamd's verdict when the mail was scored at SMTP time (`Postwire-Spam`).
    pub spam: Option<Spam>,
    pub tls: Option<TlsInfo>,
    /// Set for mail received from Amazon SES instead of SMTP.
    pub ses: Option<serde_json::Value>,
    /// The message was streamed to storage during DATA: `body` holds nothing, the object
    /// holds our `Received:` line and the content.
    pub spooled: Option<Spooled>,
}

impl Transaction {
    /// The envelope of this transaction for `rcpt_to` (one tenant's recipients), received
    /// at `received_at`. The publisher writes it to `Postwire-Envelope`, and inline
    /// verification verifies with it: both see the same envelope, so a verdict made at SMTP
    /// time is the one the worker would have made.
    pub fn envelope(&self, rcpt_to: Vec<String>, received_at: String) -> Envelope {
        Envelope {
            mail_from: self.mail_from.clone(),
            rcpt_to,
            helo: self.helo.clone(),
            client_ip: self.client_ip.to_string(),
            tls: self.tls.clone(),
            body: self.params.body.clone(),
            smtputf8: self.params.smtputf8,
            received_at,
            ses: self.ses.clone(),
        }
    }

    /// Every recipient address, in the order accepted.
    pub fn rcpt_addresses(&self) -> Vec<String> {
        self.rcpts.iter().map(|(a, _)| a.clone()).collect()
    }
}

/// A message streamed to storage, as the publisher sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spooled {
    /// The temporary object (`_incoming/<id>`).
    pub temp_key: String,
    /// sha256 (hex) of the stored bytes: `Received:` line and content.
    pub sha256: String,
    /// sha256 (hex) of the content alone (the idempotency key hashes this).
    pub body_sha256: String,
    /// Stored bytes.
    pub size: u64,
    /// Length of the `Received:` line at the start of the object.
    pub prefix_len: usize,
    /// The mail id named in the `Received:` line (the first tenant's mail id).
    pub mail_id: String,
}

/// Why a transaction could not be made durable; both are temporary for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PublishFailure {
    /// The bus is down or slow: 451 4.3.0.
    #[error("the message bus did not acknowledge the message")]
    Unavailable,
    /// The MAIL stream is full: 452 4.3.1.
    #[error("the MAIL stream is full")]
    Full,
}

/// The reply to the end of DATA once the transaction was (or was not) made durable.
pub fn finished(outcome: &Result<Vec<String>, PublishFailure>) -> Reply {
    match outcome {
        Ok(ids) => Reply::new(250, "2.0.0", format!("OK: queued as {}", ids.join(","))),
        Err(PublishFailure::Full) => {
            Reply::new(452, "4.3.1", "Insufficient system storage, try again later")
        }
        Err(PublishFailure::Unavailable) => Reply::new(
            451,
            "4.3.0",
            "Temporary failure storing the message, try again later",
        ),
    }
}

/// The reply to the end of DATA when inline authentication refused the transaction
/// (`defer`: DNS could not decide).
pub fn refused(defer: bool, why: &str) -> Reply {
    if defer {
        Reply::new(
            451,
            "4.7.5",
            "Cannot verify the sender's authentication now, try again later",
        )
    } else {
        Reply::new(550, "5.7.1", format!("Message rejected: {why}"))
    }
}

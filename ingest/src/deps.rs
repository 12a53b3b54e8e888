//! What every SMTP session shares: limits, the live configuration (routing and tenant
//! settings, read per connection and per transaction), the publisher, TLS, timeouts,
//! inline verification and the spool for streamed DATA.

use std::sync::Arc;
use std::time::Duration;

use postwire_core::Config;
use postwire_core::live::LiveConfig;
use tokio_rustls::TlsAcceptor;

use crate::limits::ClientLimits;
use crate::smtp::SessionLimits;
use crate::spool::ClaimCheck;
use crate::verify::InlineVerifier;

/// Everything a session needs, shared by all connections.
pub struct IngestDeps<P> {
    pub limits: Arc<SessionLimits>,
    pub clients: Arc<ClientLimits>,
    pub publisher: Arc<P>,
    pub tls: Option<TlsAcceptor>,
    /// Deadline of a whole command line (from the previous reply).
    pub command_timeout: Duration,
    /// Deadline of the whole DATA phase at its start, extended per byte received by
    /// `1 / data_min_rate` seconds.
    pub data_timeout: Duration,
    /// Bytes per second (0: no extension).
    pub data_min_rate: u64,
    pub max_sessions: usize,
    pub greeting_delay: Duration,
    pub proxy_protocol: bool,
    pub shutdown_grace: Duration,
    /// Inline authentication checks (it decides per transaction whether they apply);
    /// none: accept without checking.
    pub verifier: Option<Arc<dyn InlineVerifier>>,
    /// The tenant configuration: each new connection takes its domains, routes and
    /// `require_tls` from it (instead of `limits.require_tls`). Fixed to the file's unless
    /// [`IngestDeps::with_live`] gave the live one.
    pub live: Arc<LiveConfig>,
    /// Object storage and the inline limit: content beyond the limit is streamed there
    /// during DATA. None: messages are held in memory until the end of DATA.
    pub spool: Option<(Arc<dyn ClaimCheck>, usize)>,
}

impl<P> IngestDeps<P> {
    /// Follows the live tenant configuration (a domain added through the admin API is
    /// accepted from the next connection on).
    pub fn with_live(mut self, live: Arc<LiveConfig>) -> Self {
        self.live = live;
        self
    }

    /// Adds inline verification.
    pub fn with_verifier(mut self, verifier: Arc<dyn InlineVerifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Streams messages above `inline_limit` bytes to `store` while DATA arrives.
    pub fn with_spool(mut self, store: Arc<dyn ClaimCheck>, inline_limit: usize) -> Self {
        self.spool = Some((store, inline_limit));
        self
    }

    /// The dependencies from the config; STARTTLS is offered when `tls` is given.
    /// `max_payload` is the NATS server's message limit: the advertised SIZE stays below it
    /// (minus room for headers), so a message is never accepted into DATA that the bus would
    /// refuse — which would otherwise be a 451 forever.
    pub fn new(
        cfg: &Config,
        publisher: P,
        tls: Option<TlsAcceptor>,
        max_payload: Option<u64>,
    ) -> Self {
        let s = &cfg.smtp;
        let mut limits = SessionLimits::new(cfg);
        limits.tls_available = tls.is_some();
        if let Some(max) = max_payload {
            let room = max.saturating_sub(HEADER_ROOM);
            if room < limits.max_message_bytes {
                tracing::warn!(
                    configured = limits.max_message_bytes,
                    nats_max_payload = max,
                    "smtp.max_message_bytes is above what NATS accepts in one message; advertising SIZE {room}."
                );
                limits.max_message_bytes = room;
            }
        }
        IngestDeps {
            limits: Arc::new(limits),
            clients: Arc::new(ClientLimits::new(s)),
            publisher: Arc::new(publisher),
            tls,
            command_timeout: Duration::from_secs(s.command_timeout_secs),
            data_timeout: Duration::from_secs(s.data_timeout_secs),
            data_min_rate: s.data_min_rate_bytes_per_sec,
            max_sessions: s.max_sessions,
            greeting_delay: Duration::from_millis(s.greeting_delay_ms),
            proxy_protocol: s.proxy_protocol,
            shutdown_grace: Duration::from_secs(s.shutdown_grace_secs),
            verifier: None,
            live: LiveConfig::fixed(Arc::new(cfg.clone())),
            spool: None,
        }
    }
}

/// Room left in a NATS message for headers and the `Received:` line.
const HEADER_ROOM: u64 = 64 * 1024;

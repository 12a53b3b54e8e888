//! The limits a session enforces itself, from `[smtp]` and the tenants that require TLS.

/// Limits a session enforces itself (timeouts and connection caps are the I/O layer's).
#[derive(Debug, Clone)]
pub struct SessionLimits {
    pub hostname: String,
    pub max_message_bytes: u64,
    pub max_recipients: usize,
    pub max_command_line_bytes: usize,
    pub max_errors: usize,
    /// STARTTLS is offered.
    pub tls_available: bool,
    /// Tenants whose recipients need a TLS connection.
    pub require_tls: std::collections::HashSet<String>,
}

impl SessionLimits {
    /// The tenants of `cfg` whose recipients need TLS.
    pub fn require_tls_of(cfg: &postwire_core::Config) -> std::collections::HashSet<String> {
        cfg.tenants
            .iter()
            .filter(|(_, t)| t.require_tls)
            .map(|(n, _)| n.clone())
            .collect()
    }

    pub fn new(cfg: &postwire_core::Config) -> Self {
        let c = &cfg.smtp;
        SessionLimits {
            hostname: c.hostname.clone(),
            max_message_bytes: c.max_message_bytes,
            max_recipients: c.max_recipients,
            max_command_line_bytes: c.max_command_line_bytes,
            max_errors: c.max_errors,
            tls_available: c.tls_cert_file.is_some(),
            require_tls: Self::require_tls_of(cfg),
        }
    }
}

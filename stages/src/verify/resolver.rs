//! The DNS resolver the checks use: the configured servers or the system's, with hickory's
//! TTL-honouring cache, a per-query timeout and a bounded number of tries.

use std::time::Duration;

use mail_auth::MessageAuthenticator;
use mail_auth::hickory_resolver::config::{
    NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use mail_auth::hickory_resolver::system_conf::read_system_conf;
use postwire_core::config::VerifyConfig;

/// Why the verifier's DNS resolver cannot be built (a configuration or system problem:
/// never worth retrying).
#[derive(Debug, thiserror::Error)]
pub enum ResolverError {
    #[error("verify.dns_servers[{index}]: {message}")]
    DnsServer { index: usize, message: String },
    #[error("reading the system's DNS configuration: {0}")]
    SystemConf(String),
    #[error("building the DNS resolver: {0}")]
    Build(String),
}

/// Builds the authenticator from `[verify]`.
pub fn authenticator(cfg: &VerifyConfig) -> Result<MessageAuthenticator, ResolverError> {
    let servers = cfg
        .dns_server_addrs()
        .map_err(|(index, message)| ResolverError::DnsServer { index, message })?;
    let (config, mut opts) = if servers.is_empty() {
        read_system_conf().map_err(|e| ResolverError::SystemConf(e.to_string()))?
    } else {
        let name_servers = servers
            .iter()
            .map(|addr| {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                ns
            })
            .collect();
        // Configured servers are the whole truth: no /etc/hosts answers either.
        let mut opts = ResolverOpts::default();
        opts.use_hosts_file = ResolveHosts::Never;
        (ResolverConfig::from_name_servers(name_servers), opts)
    };
    opts.timeout = Duration::from_millis(cfg.dns_timeout_ms);
    opts.attempts = cfg.dns_attempts;
    opts.cache_size = cfg.dns_cache_entries;
    // Names are always absolute here: never try search domains.
    opts.ndots = 0;
    MessageAuthenticator::new(config, opts).map_err(|e| ResolverError::Build(e.to_string()))
}

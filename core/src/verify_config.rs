//! The `[verify]` section and the tenants' `auth` policy (kept apart from `config.rs`, which
//! re-exports them).

use serde::Deserialize;

use crate::config::{Config, ConfigError};

/// `[verify]`: SPF, DKIM, DMARC, ARC and iprev checks, and the DNS resolver they use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifyConfig {
    /// Run the checks at all. Off: payloads carry no `auth` and every tenant policy is `tag`.
    pub enabled: bool,
    /// DNS servers as `ip` or `ip:port`; empty means the system's (`/etc/resolv.conf`).
    pub dns_servers: Vec<String>,
    /// Time one DNS query may take before it counts as a timeout.
    pub dns_timeout_ms: u64,
    /// Tries per DNS query (per server).
    pub dns_attempts: usize,
    /// DNS answers kept in the resolver's cache (honouring their TTL).
    pub dns_cache_entries: u64,
    /// Validate ARC chains (`arc`) when a message carries ARC sets.
    pub arc: bool,
    /// Look up the client address's PTR records (`iprev`).
    pub iprev: bool,
    /// How often the process worker retries a mail whose verdicts DNS could not decide
    /// (temperror); after that it delivers with `temperror` verdicts, never `fail`.
    pub max_dns_retries: u32,
    /// Delay before such a retry.
    pub dns_retry_delay_ms: u64,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dns_servers: Vec::new(),
            dns_timeout_ms: 5_000,
            dns_attempts: 2,
            dns_cache_entries: 4_096,
            arc: true,
            iprev: true,
            max_dns_retries: 5,
            dns_retry_delay_ms: 30_000,
        }
    }
}

impl VerifyConfig {
    /// The configured DNS servers; port 53 when none is given.
    pub fn dns_server_addrs(&self) -> Result<Vec<std::net::SocketAddr>, (usize, String)> {
        self.dns_servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parse::<std::net::SocketAddr>()
                    .or_else(|_| {
                        s.parse::<std::net::IpAddr>()
                            .map(|ip| std::net::SocketAddr::new(ip, 53))
                    })
                    .map_err(|_| (i, format!("{s:?} is not an ip or ip:port")))
            })
            .collect()
    }
}

/// What a tenant does with mail that fails DMARC.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AuthPolicy {
    /// Deliver everything, with the verdicts in `auth`.
    #[default]
    Tag,
    /// Keep DMARC failures whose domain asks for quarantine or reject in the QUARANTINE
    /// stream (listable, releasable), undelivered.
    Quarantine,
    /// As quarantine, and refuse DMARC failures whose domain asks for reject at SMTP time
    /// (550 5.7.1; 451 4.7.5 when DNS cannot decide). Ingest verifies inline for this.
    Reject,
}

/// `[tenants.<name>.auth]`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, Default, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TenantAuthConfig {
    pub policy: AuthPolicy,
}

fn config_error(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.into(),
        message: message.into(),
    }
}

impl Config {
    pub(crate) fn validate_verify(&self) -> Result<(), ConfigError> {
        let v = &self.verify;
        v.dns_server_addrs()
            .map_err(|(i, m)| config_error(format!("verify.dns_servers[{i}]"), m))?;
        if v.dns_timeout_ms == 0 {
            return Err(config_error("verify.dns_timeout_ms", "must be at least 1"));
        }
        if v.dns_attempts == 0 {
            return Err(config_error("verify.dns_attempts", "must be at least 1"));
        }
        if !v.enabled {
            for (tname, t) in &self.tenants {
                if t.auth.policy != AuthPolicy::Tag {
                    return Err(config_error(
                        format!("tenants.{tname}.auth.policy"),
                        "needs verify.enabled = true",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The authentication policy of a tenant (`tag` when unknown or verification is off).
    pub fn auth_policy(&self, tenant: &str) -> AuthPolicy {
        if !self.verify.enabled {
            return AuthPolicy::Tag;
        }
        self.tenants
            .get(tenant)
            .map(|t| t.auth.policy)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{AuthPolicy, Config};

    const GOOD: &str = r#"
[tenants.acme]
domains = ["acme.test"]
[[tenants.acme.routes]]
name = "support"
recipients = ["support@acme.test"]
endpoints = ["main"]
[tenants.acme.endpoints.main]
url = "https://example.com/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"#;

    #[test]
    fn verify_and_auth_policy() {
        let cfg = Config::from_toml(GOOD).unwrap();
        assert!(cfg.verify.enabled);
        assert_eq!(cfg.auth_policy("acme"), AuthPolicy::Tag);
        let with = format!(
            "[verify]\ndns_servers = [\"127.0.0.1:5353\", \"::1\"]\n{GOOD}\n[tenants.acme.auth]\npolicy = \"reject\"\n"
        );
        let cfg = Config::from_toml(&with).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.auth_policy("acme"), AuthPolicy::Reject);
        assert_eq!(cfg.verify.dns_server_addrs().unwrap()[1].port(), 53);
        let bad = with.replace("::1", "nope");
        let err = Config::from_toml(&bad).unwrap().validate().unwrap_err();
        assert_eq!(err.path, "verify.dns_servers[1]");
        let err = Config::from_toml(&with.replace("\"reject\"", "\"bounce\"")).unwrap_err();
        assert!(err.to_string().contains("bounce"), "{err}");
        let off = with.replace("[verify]", "[verify]\nenabled = false");
        let err = Config::from_toml(&off).unwrap().validate().unwrap_err();
        assert_eq!(err.path, "tenants.acme.auth.policy");
    }
}

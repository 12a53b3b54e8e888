//! The configuration file (TOML). Every key has a default documented in
//! `docs/configuration.md` and `postwire.example.toml`; unknown keys are errors, and
//! validation runs before anything starts, naming the bad key.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

pub use crate::admin_config::{AdminConfig, AdminToken, TokenGrant};

pub use crate::config_error::ConfigError;
pub use crate::delivery_config::DeliveryConfig;
pub use crate::nats_config::NatsConfig;
pub use crate::plugin_config::{PluginConfig, PluginFailure, PluginHostConfig};
use crate::routing::Router;
pub use crate::tenant_config::{
    EndpointConfig, RouteConfig, TenantConfig, decode_whsec, is_valid_name,
};
pub use crate::verify_config::{AuthPolicy, TenantAuthConfig, VerifyConfig};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub nats: NatsConfig,
    #[serde(default)]
    pub smtp: SmtpConfig,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    #[serde(default)]
    pub verify: VerifyConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub storage: crate::storage_config::StorageConfig,
    #[serde(default)]
    pub antivirus: crate::antivirus_config::AntivirusConfig,
    #[serde(default)]
    pub spam: crate::spam_config::SpamConfig,
    #[serde(default)]
    pub ses: SesConfig,
    #[serde(default)]
    pub plugin_host: PluginHostConfig,
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantConfig>,
}

/// Amazon SES intake: SNS notifications POSTed to `POST /ses` on `listen`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SesConfig {
    /// Address of the SNS endpoint; off when unset.
    pub listen: Option<String>,
    /// Topic ARNs accepted (notifications and subscription confirmations); others get 403.
    pub topic_arns: Vec<String>,
    /// Host names allowed in `SigningCertURL` and `SubscribeURL`; `*` matches one DNS label.
    pub cert_hosts: Vec<String>,
    /// Extra CA certificate (PEM) for fetching signing certificates (tests, proxies).
    pub ca_file: Option<String>,
    /// For the S3 receipt action: region and, for S3-compatible services, endpoint.
    pub s3_region: String,
    pub s3_endpoint: Option<String>,
    pub s3_path_style: bool,
    /// Notifications whose (signed) `Timestamp` is older than this are refused (403): a
    /// replay outside NATS's duplicate window would otherwise be stored again. At most
    /// `nats.duplicate_window_secs`.
    pub max_age_secs: u64,
}

impl Default for SesConfig {
    fn default() -> Self {
        Self {
            listen: None,
            topic_arns: Vec::new(),
            cert_hosts: vec!["sns.*.amazonaws.com".into()],
            ca_file: None,
            s3_region: "us-east-1".into(),
            s3_endpoint: None,
            s3_path_style: false,
            max_age_secs: 1_200,
        }
    }
}

/// The Prometheus endpoint (`GET /metrics`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address to serve `/metrics` on; off when unset. Each role process serves its own.
    pub listen: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// Address the SMTP listener binds.
    pub listen: String,
    /// Name in the greeting, EHLO reply and Received header.
    pub hostname: String,
    /// Largest message accepted (advertised in SIZE; 552 5.3.4 above it).
    pub max_message_bytes: u64,
    /// Recipients per message (452 4.5.3 above it).
    pub max_recipients: usize,
    /// Longest command line, CRLF included (500 5.5.2 above it).
    pub max_command_line_bytes: usize,
    /// Time for a whole command line, from the previous reply to its CRLF (421 4.4.2 after
    /// it): a deadline, not an idle timeout, so a client trickling one byte at a time is cut.
    pub command_timeout_secs: u64,
    /// Time for the whole DATA phase at first (421 4.4.2 after it); each byte received adds
    /// `1 / data_min_rate_bytes_per_sec` seconds, so only a client slower than that is cut.
    pub data_timeout_secs: u64,
    /// The slowest DATA transfer allowed over a whole message (0: the DATA deadline is fixed
    /// at `data_timeout_secs`).
    pub data_min_rate_bytes_per_sec: u64,
    /// Concurrent sessions (421 4.7.0 above it).
    pub max_sessions: usize,
    /// Protocol errors tolerated in one session before it is closed with 421.
    pub max_errors: usize,
    /// More addresses to listen on (e.g. port 25 besides 2525), same settings.
    pub also_listen: Vec<String>,
    /// PEM certificate chain for STARTTLS (offered when both files are set; reloaded when
    /// they change, for ACME renewals).
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
    /// Concurrent connections from one client address (421 4.7.0 above it).
    pub max_connections_per_ip: usize,
    /// Messages one client address may send per `rate_window_secs` (451 4.7.1 above it;
    /// 0: unlimited).
    pub max_messages_per_ip: u32,
    /// Recipients one client address may give per `rate_window_secs` (451 4.7.1; 0: off).
    pub max_recipients_per_ip: u32,
    pub rate_window_secs: u64,
    /// Client networks the per-address limits do not apply to.
    pub limits_exempt: Vec<String>,
    /// Wait this long before the greeting; a client that talks first is refused
    /// (554 5.5.1, early talker). 0: greet at once.
    pub greeting_delay_ms: u64,
    /// Expect a PROXY protocol v1/v2 header on every connection (behind a load balancer);
    /// the client address then comes from it.
    pub proxy_protocol: bool,
    /// On shutdown, how long sessions get to finish their transaction.
    pub shutdown_grace_secs: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:2525".into(),
            hostname: "localhost".into(),
            max_message_bytes: 50 * 1024 * 1024,
            max_recipients: 100,
            max_command_line_bytes: 2_048,
            command_timeout_secs: 300,
            data_timeout_secs: 180,
            data_min_rate_bytes_per_sec: 500,
            max_sessions: 1_000,
            max_errors: 10,
            also_listen: Vec::new(),
            tls_cert_file: None,
            tls_key_file: None,
            max_connections_per_ip: 20,
            max_messages_per_ip: 120,
            max_recipients_per_ip: 1_000,
            rate_window_secs: 60,
            limits_exempt: vec!["127.0.0.0/8".into(), "::1/128".into()],
            greeting_delay_ms: 0,
            proxy_protocol: false,
            shutdown_grace_secs: 30,
        }
    }
}

impl Config {
    /// Reads, parses, applies environment overrides and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(path.display().to_string(), format!("cannot read: {e}"))
        })?;
        let mut cfg = Self::from_toml(&text)?;
        cfg.resolve_plugin_paths(path.parent().unwrap_or(Path::new(".")));
        cfg.apply_env();
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses TOML text (no validation).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let path = e.span().map(|s| locate(text, s.start)).unwrap_or_default();
            ConfigError::new(path, e.message().to_string())
        })
    }

    /// Makes relative plugin paths relative to `base` (the config file's folder).
    pub fn resolve_plugin_paths(&mut self, base: &Path) {
        for t in self.tenants.values_mut() {
            for p in &mut t.plugins {
                if p.path.is_relative() {
                    p.path = base.join(&p.path);
                }
            }
        }
    }

    /// `POSTWIRE_NATS_URL`, `POSTWIRE_NATS_MONITOR_URL` and `POSTWIRE_SMTP_LISTEN` override
    /// the file.
    pub fn apply_env(&mut self) {
        if let Ok(v) = std::env::var("POSTWIRE_NATS_URL") {
            self.nats.url = v;
        }
        if let Ok(v) = std::env::var("POSTWIRE_SMTP_LISTEN") {
            self.smtp.listen = v;
        }
        if let Ok(v) = std::env::var("POSTWIRE_NATS_MONITOR_URL") {
            self.nats.monitor_url = v;
        }
    }

    /// Checks everything that can be checked without the network.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.nats.validate()?;
        self.delivery.validate()?;
        self.storage.validate()?;
        self.antivirus.validate()?;
        let ses_age = self.ses.max_age_secs;
        if self.ses.listen.is_some() && !(60..=self.nats.duplicate_window_secs).contains(&ses_age) {
            return Err(ConfigError::new(
                "ses.max_age_secs",
                "from 60 to nats.duplicate_window_secs (an older notification could be stored twice)",
            ));
        }
        self.spam.validate()?;
        let s = &self.smtp;
        if s.max_command_line_bytes < 512 {
            return Err(ConfigError::new(
                "smtp.max_command_line_bytes",
                "RFC 5321 needs at least 512",
            ));
        }
        if s.max_sessions == 0 || s.max_recipients == 0 {
            return Err(ConfigError::new(
                "smtp",
                "max_sessions and max_recipients must be at least 1",
            ));
        }
        for (i, a) in s.also_listen.iter().enumerate() {
            if a.parse::<std::net::SocketAddr>().is_err() {
                return Err(ConfigError::new(
                    format!("smtp.also_listen[{i}]"),
                    format!("{a:?} is not an address:port"),
                ));
            }
        }
        if s.tls_cert_file.is_some() != s.tls_key_file.is_some() {
            return Err(ConfigError::new(
                "smtp.tls_cert_file",
                "set both tls_cert_file and tls_key_file, or neither",
            ));
        }
        for (i, n) in s.limits_exempt.iter().enumerate() {
            if crate::net::Cidr::parse(n).is_none() {
                return Err(ConfigError::new(
                    format!("smtp.limits_exempt[{i}]"),
                    format!("{n:?} is not a network like 10.0.0.0/8"),
                ));
            }
        }
        if s.max_connections_per_ip == 0 || s.rate_window_secs == 0 {
            return Err(ConfigError::new(
                "smtp",
                "max_connections_per_ip and rate_window_secs must be at least 1",
            ));
        }
        if s.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "smtp.listen",
                format!("{:?} is not an address:port", s.listen),
            ));
        }
        let ph = &self.plugin_host;
        if !(1..=60_000).contains(&ph.deadline_ms) {
            return Err(ConfigError::new(
                "plugin_host.deadline_ms",
                "must be 1 to 60000",
            ));
        }
        if !((1 << 20)..=(4usize << 30)).contains(&ph.memory_limit_bytes) {
            return Err(ConfigError::new(
                "plugin_host.memory_limit_bytes",
                "must be 1 MiB (1048576) to 4 GiB",
            ));
        }
        self.validate_verify()?;
        let mut seen_domains = BTreeMap::new();
        for (tname, t) in &self.tenants {
            t.validate(tname, &mut seen_domains, &self.plugin_host)?;
        }
        Ok(())
    }

    /// The recipient router built from the tenants.
    pub fn router(&self) -> Router {
        Router::new(self)
    }
}

/// Whether a URL's host is a loopback address or `localhost`.
pub fn is_loopback_host(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Turns a byte offset of a TOML error into `line N` (toml's message names the key).
fn locate(text: &str, offset: usize) -> String {
    let line = text[..offset.min(text.len())].matches('\n').count() + 1;
    format!("line {line}")
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

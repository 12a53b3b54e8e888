//! The configuration file (TOML). Every key has a default documented in
//! `docs/configuration.md` and `postwire.example.toml`; unknown keys are errors, and
//! validation runs before anything starts, naming the bad key.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

use crate::routing::{Pattern, Router};
pub use crate::verify_config::{AuthPolicy, TenantAuthConfig, VerifyConfig};

/// A configuration problem, with the dotted path of the offending key.
#[derive(Debug, thiserror::Error)]
#[error("config: {path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

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
    pub tenants: BTreeMap<String, TenantConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// Server URL(s), comma separated.
    pub url: String,
    /// Replicas of each stream (3 on a cluster).
    pub stream_replicas: usize,
    /// How long a publish waits for the JetStream PubAck before SMTP answers 451.
    pub publish_timeout_ms: u64,
    /// Window in which a repeated `Nats-Msg-Id` is dropped as a duplicate.
    pub duplicate_window_secs: u64,
    /// Cap of the MAIL stream in bytes (-1: unlimited). When full, SMTP answers 452 4.3.1.
    pub mail_max_bytes: i64,
    /// How long raw mail stays in the MAIL stream.
    pub mail_max_age_secs: u64,
    /// How long dead letters are kept.
    pub dlq_max_age_secs: u64,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            stream_replicas: 1,
            publish_timeout_ms: 5_000,
            duplicate_window_secs: 1_200,
            mail_max_bytes: -1,
            mail_max_age_secs: 7 * 86_400,
            dlq_max_age_secs: 30 * 86_400,
        }
    }
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
    /// Idle time allowed between commands (421 4.4.2 after it).
    pub command_timeout_secs: u64,
    /// Idle time allowed between two reads during DATA.
    pub data_timeout_secs: u64,
    /// Concurrent sessions (421 4.7.0 above it).
    pub max_sessions: usize,
    /// Protocol errors tolerated in one session before it is closed with 421.
    pub max_errors: usize,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:2525".into(),
            hostname: "localhost".into(),
            max_message_bytes: 10 * 1024 * 1024,
            max_recipients: 100,
            max_command_line_bytes: 2_048,
            command_timeout_secs: 300,
            data_timeout_secs: 180,
            max_sessions: 1_000,
            max_errors: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Attempts per delivery, the first included; then the dead-letter stream.
    pub max_attempts: u32,
    /// Delay before the second attempt.
    pub retry_initial_ms: u64,
    /// Growth factor of the delay from one attempt to the next.
    pub retry_multiplier: f64,
    /// Longest delay between two attempts.
    pub retry_max_ms: u64,
    /// Random spread of each delay, as a fraction (0.2 = ±20 %).
    pub retry_jitter: f64,
    /// Time allowed for one HTTP request.
    pub request_timeout_secs: u64,
    /// Most bytes of a response body read (the rest is discarded).
    pub max_response_bytes: usize,
    /// Deliveries in flight per worker.
    pub concurrency: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            retry_initial_ms: 5_000,
            retry_multiplier: 4.0,
            retry_max_ms: 86_400_000,
            retry_jitter: 0.2,
            request_timeout_secs: 15,
            max_response_bytes: 64 * 1024,
            concurrency: 64,
        }
    }
}

impl DeliveryConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Domains this tenant receives mail for.
    pub domains: Vec<String>,
    /// Routes, tried in order; a recipient goes to the first route that matches it.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Named webhook endpoints.
    #[serde(default)]
    pub endpoints: BTreeMap<String, EndpointConfig>,
    /// Authentication policy.
    #[serde(default)]
    pub auth: TenantAuthConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    /// `user@domain` (also matches `user+tag@domain`), `*@domain`, or `*` (any of the
    /// tenant's domains).
    pub recipients: Vec<String>,
    pub endpoints: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    pub url: String,
    /// Standard Webhooks secret (`whsec_…`). Prefer `secret_env`.
    #[serde(default)]
    pub secret: Option<String>,
    /// Name of an environment variable holding the secret.
    #[serde(default)]
    pub secret_env: Option<String>,
}

/// A name usable as a NATS subject token and a file name.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Decodes a `whsec_` secret into key bytes.
pub fn decode_whsec(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret
        .strip_prefix("whsec_")
        .ok_or("must start with whsec_")?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("not base64 after whsec_: {e}"))?;
    if !(24..=64).contains(&key.len()) {
        return Err(format!("key is {} bytes, must be 24 to 64", key.len()));
    }
    Ok(key)
}

impl EndpointConfig {
    /// The secret's key bytes, read from the file or the environment.
    pub fn secret_key(&self) -> Result<Vec<u8>, String> {
        let secret = match (&self.secret, &self.secret_env) {
            (Some(s), None) => s.clone(),
            (None, Some(var)) => {
                std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?
            }
            (Some(_), Some(_)) => return Err("set only one of secret and secret_env".into()),
            (None, None) => return Err("an endpoint needs secret or secret_env".into()),
        };
        decode_whsec(secret.trim())
    }
}

impl Config {
    /// Reads, parses, applies environment overrides and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(path.display().to_string(), format!("cannot read: {e}"))
        })?;
        let mut cfg = Self::from_toml(&text)?;
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

    /// `POSTWIRE_NATS_URL` and `POSTWIRE_SMTP_LISTEN` override the file.
    pub fn apply_env(&mut self) {
        if let Ok(v) = std::env::var("POSTWIRE_NATS_URL") {
            self.nats.url = v;
        }
        if let Ok(v) = std::env::var("POSTWIRE_SMTP_LISTEN") {
            self.smtp.listen = v;
        }
    }

    /// Checks everything that can be checked without the network.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let d = &self.delivery;
        if d.max_attempts == 0 {
            return Err(ConfigError::new(
                "delivery.max_attempts",
                "must be at least 1",
            ));
        }
        if !(d.retry_multiplier >= 1.0 && d.retry_multiplier.is_finite()) {
            return Err(ConfigError::new(
                "delivery.retry_multiplier",
                "must be >= 1",
            ));
        }
        if !(0.0..1.0).contains(&d.retry_jitter) {
            return Err(ConfigError::new(
                "delivery.retry_jitter",
                "must be in [0, 1)",
            ));
        }
        if d.concurrency == 0 {
            return Err(ConfigError::new(
                "delivery.concurrency",
                "must be at least 1",
            ));
        }
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
        if s.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "smtp.listen",
                format!("{:?} is not an address:port", s.listen),
            ));
        }
        self.validate_verify()?;
        let mut seen_domains = BTreeMap::new();
        for (tname, t) in &self.tenants {
            let tp = format!("tenants.{tname}");
            if !is_valid_name(tname) {
                return Err(ConfigError::new(
                    &tp,
                    "tenant names use a-z, 0-9, - and _ (at most 64)",
                ));
            }
            if t.domains.is_empty() {
                return Err(ConfigError::new(
                    format!("{tp}.domains"),
                    "a tenant needs at least one domain",
                ));
            }
            for (i, dom) in t.domains.iter().enumerate() {
                if let Some(other) = seen_domains.insert(dom.to_ascii_lowercase(), tname) {
                    return Err(ConfigError::new(
                        format!("{tp}.domains[{i}]"),
                        format!("{dom} already belongs to tenant {other}"),
                    ));
                }
            }
            for (ename, e) in &t.endpoints {
                let ep = format!("{tp}.endpoints.{ename}");
                if !is_valid_name(ename) {
                    return Err(ConfigError::new(
                        &ep,
                        "endpoint names use a-z, 0-9, - and _",
                    ));
                }
                match url::Url::parse(&e.url) {
                    Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
                    Ok(_) => return Err(ConfigError::new(format!("{ep}.url"), "must be http(s)")),
                    Err(err) => return Err(ConfigError::new(format!("{ep}.url"), err.to_string())),
                }
                e.secret_key()
                    .map_err(|m| ConfigError::new(format!("{ep}.secret"), m))?;
            }
            let mut route_names = std::collections::BTreeSet::new();
            for (ri, r) in t.routes.iter().enumerate() {
                let rp = format!("{tp}.routes[{ri}]");
                if !is_valid_name(&r.name) {
                    return Err(ConfigError::new(
                        format!("{rp}.name"),
                        "route names use a-z, 0-9, - and _",
                    ));
                }
                if !route_names.insert(&r.name) {
                    return Err(ConfigError::new(
                        format!("{rp}.name"),
                        format!("duplicate route {}", r.name),
                    ));
                }
                if r.recipients.is_empty() {
                    return Err(ConfigError::new(
                        format!("{rp}.recipients"),
                        "needs at least one pattern",
                    ));
                }
                for (pi, p) in r.recipients.iter().enumerate() {
                    let pat = Pattern::parse(p)
                        .map_err(|m| ConfigError::new(format!("{rp}.recipients[{pi}]"), m))?;
                    if !pat.within(&t.domains) {
                        return Err(ConfigError::new(
                            format!("{rp}.recipients[{pi}]"),
                            format!("{p} is not in the tenant's domains"),
                        ));
                    }
                }
                if r.endpoints.is_empty() {
                    return Err(ConfigError::new(
                        format!("{rp}.endpoints"),
                        "needs at least one endpoint",
                    ));
                }
                for (ei, e) in r.endpoints.iter().enumerate() {
                    if !t.endpoints.contains_key(e) {
                        return Err(ConfigError::new(
                            format!("{rp}.endpoints[{ei}]"),
                            format!("unknown endpoint {e:?}"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The recipient router built from the tenants.
    pub fn router(&self) -> Router {
        Router::new(self)
    }
}

/// Turns a byte offset of a TOML error into `line N` (toml's message names the key).
fn locate(text: &str, offset: usize) -> String {
    let line = text[..offset.min(text.len())].matches('\n').count() + 1;
    format!("line {line}")
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn good_config_validates_with_defaults() {
        let cfg = Config::from_toml(GOOD).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.smtp.max_recipients, 100);
        assert_eq!(cfg.delivery.max_attempts, 10);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml("[smtp]\nmax_recipents = 3\n").unwrap_err();
        assert!(err.to_string().contains("max_recipents"), "{err}");
    }

    #[test]
    fn unknown_endpoint_names_the_path() {
        let bad = GOOD.replace("endpoints = [\"main\"]", "endpoints = [\"nope\"]");
        let err = Config::from_toml(&bad).unwrap().validate().unwrap_err();
        assert_eq!(err.path, "tenants.acme.routes[0].endpoints[0]");
    }

    #[test]
    fn bad_secret_is_refused() {
        let bad = GOOD.replace("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "hunter2");
        let err = Config::from_toml(&bad).unwrap().validate().unwrap_err();
        assert_eq!(err.path, "tenants.acme.endpoints.main.secret");
        assert!(
            !err.to_string().contains("hunter2"),
            "secrets never appear in errors"
        );
    }

    #[test]
    fn pattern_outside_domains_is_refused() {
        let bad = GOOD.replace("support@acme.test", "support@other.test");
        let err = Config::from_toml(&bad).unwrap().validate().unwrap_err();
        assert_eq!(err.path, "tenants.acme.routes[0].recipients[0]");
    }
}

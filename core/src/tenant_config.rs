//! Tenants, their routes and webhook endpoints (`[tenants.<name>]`), and the name and secret
//! rules they follow. Validated as part of [`crate::Config::validate`].

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, PluginConfig, PluginFailure, is_loopback_host};
pub use crate::route_config::RouteConfig;
use crate::verify_config::TenantAuthConfig;

#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Domains this tenant receives mail for.
    pub domains: Vec<String>,
    /// Routes, tried by `priority` (lower first), then in order; see [`RouteConfig`].
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Named webhook endpoints.
    #[serde(default)]
    pub endpoints: BTreeMap<String, EndpointConfig>,
    /// Authentication policy.
    #[serde(default)]
    pub auth: TenantAuthConfig,
    /// Requests per second to all of this tenant's endpoints together (per worker).
    #[serde(default)]
    pub rate_per_sec: Option<f64>,
    /// Requests in flight to all of this tenant's endpoints together (per worker).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Where alert events are also POSTed (JSON), besides `postwire.alerts.<tenant>`: https
    /// (plain http only to a loopback host), through the SSRF guard, signed with the schemes
    /// of the endpoint the alert concerns. Setting or changing it needs the global token.
    #[serde(default)]
    pub alert_url: Option<String>,
    /// Refuse this tenant's recipients on connections without TLS (530 5.7.0).
    #[serde(default)]
    pub require_tls: bool,
    /// `store` (URLs), `inline` (base64 up to `storage.inline_max_bytes`) or `drop`.
    #[serde(default)]
    pub attachments: crate::storage_config::AttachmentPolicy,
    /// With `[antivirus]`: `drop` an infected attachment (metadata and verdict stay) or
    /// `quarantine` the whole mail.
    #[serde(default)]
    pub infected_attachments: crate::antivirus_config::InfectedPolicy,
    /// With `[spam]`: quarantine or refuse at SMTP time above a score.
    #[serde(
        default,
        skip_serializing_if = "crate::spam_config::TenantSpamConfig::is_default"
    )]
    pub spam: crate::spam_config::TenantSpamConfig,
    /// WebAssembly plugins run in order over each event before it is delivered.
    #[serde(default)]
    pub plugins: Vec<PluginConfig>,
    /// `fail-closed` (default) or `fail-open`.
    #[serde(default)]
    pub plugin_failure: PluginFailure,
    /// Days each delivered payload is kept for a resend (0: none; capped by
    /// `nats.dlq_max_age_secs`).
    #[serde(default = "default_payload_retention_days")]
    pub payload_retention_days: u32,
}

fn default_payload_retention_days() -> u32 {
    7
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    pub url: String,
    /// Standard Webhooks secret (`whsec_…`). Prefer `secret_env`.
    #[serde(default)]
    pub secret: Option<String>,
    /// Name of an environment variable holding the secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Allow plain `http://` (only to a loopback host, for development).
    #[serde(default)]
    pub allow_http: bool,
    /// More signature schemes, several at once: `[[…endpoints.x.signing]] scheme = "rfc9421"
    /// …` (see docs/verifying.md). `secret`/`secret_env` add Standard Webhooks `v1`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub signing: Vec<postwire_sign::SigningConfig>,
    /// Requests per second to this endpoint (per worker); `delivery.endpoint_rate_per_sec`
    /// when unset.
    #[serde(default)]
    pub rate_per_sec: Option<f64>,
    /// Requests in flight to this endpoint (per worker); `delivery.endpoint_concurrency`
    /// when unset.
    #[serde(default)]
    pub concurrency: Option<usize>,
}

/// The rule for `alert_url`: https, or plain http to a loopback host (development); the
/// address is checked again by the SSRF guard when an alert is sent.
pub fn check_alert_url(url: &str) -> Result<(), String> {
    let u = url::Url::parse(url).map_err(|e| e.to_string())?;
    if u.host().is_none() {
        return Err("has no host".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("must not carry credentials".into());
    }
    match u.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(&u) => Ok(()),
        _ => Err("must be https (plain http only to a loopback host)".into()),
    }
}

/// A name usable as a NATS subject token and a file name.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Why an endpoint's secret or signing schemes cannot be used.
/// Why an endpoint cannot sign.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Signing(#[from] postwire_sign::ConfigError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("must start with whsec_")]
    Prefix,
    #[error("not base64 after whsec_: {0}")]
    Base64(#[source] base64::DecodeError),
    #[error("key is {0} bytes, must be 24 to 64")]
    Length(usize),
    #[error("environment variable {0} is not set")]
    EnvUnset(String),
    #[error("set only one of secret and secret_env")]
    Both,
    #[error("the endpoint has no secret or secret_env")]
    Missing,
    #[error("an endpoint needs secret, secret_env or a signing scheme")]
    NoScheme,
}

/// Decodes a `whsec_` secret into key bytes.
pub fn decode_whsec(secret: &str) -> Result<Vec<u8>, SecretError> {
    let b64 = secret.strip_prefix("whsec_").ok_or(SecretError::Prefix)?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(SecretError::Base64)?;
    if !(24..=64).contains(&key.len()) {
        return Err(SecretError::Length(key.len()));
    }
    Ok(key)
}

impl EndpointConfig {
    /// The `whsec_` secret, read from the file or the environment; `None` when the endpoint
    /// has neither (it then signs only with its `signing` schemes).
    pub fn secret_text(&self) -> Result<Option<String>, SecretError> {
        match (&self.secret, &self.secret_env) {
            (Some(s), None) => Ok(Some(s.trim().to_string())),
            (None, Some(var)) => std::env::var(var)
                .map(|s| Some(s.trim().to_string()))
                .map_err(|_| SecretError::EnvUnset(var.clone())),
            (Some(_), Some(_)) => Err(SecretError::Both),
            (None, None) => Ok(None),
        }
    }

    /// The secret's key bytes.
    pub fn secret_key(&self) -> Result<Vec<u8>, SecretError> {
        let secret = self.secret_text()?.ok_or(SecretError::Missing)?;
        decode_whsec(&secret)
    }

    /// Every scheme this endpoint signs with: `signing`, plus Standard Webhooks `v1` with
    /// the secret when there is one.
    pub fn signing_configs(&self) -> Result<Vec<postwire_sign::SigningConfig>, SecretError> {
        let mut all = self.signing.clone();
        if let Some(secret) = self.secret_text()? {
            decode_whsec(&secret)?;
            all.insert(
                0,
                postwire_sign::SigningConfig::standard_webhooks_secret(&secret),
            );
        }
        if all.is_empty() {
            return Err(SecretError::NoScheme);
        }
        Ok(all)
    }

    /// The signer for this endpoint (validates every key source). The error is text: the
    /// deliver worker keeps it per endpoint (see docs/decisions.md).
    pub fn signer(&self) -> Result<postwire_sign::Signer, SignerError> {
        let configs = self.signing_configs()?;
        Ok(postwire_sign::Signer::from_config(&configs)?)
    }
}

impl TenantConfig {
    /// Checks one tenant; `seen_domains` catches a domain claimed by two tenants.
    pub(crate) fn validate<'a>(
        &'a self,
        tname: &'a String,
        seen_domains: &mut BTreeMap<String, &'a String>,
        host: &crate::config::PluginHostConfig,
    ) -> Result<(), ConfigError> {
        let t = self;
        let tp = format!("tenants.{tname}");
        if !is_valid_name(tname) {
            return Err(ConfigError::new(
                &tp,
                "tenant names use a-z, 0-9, - and _ (at most 64)",
            ));
        }
        if tname.starts_with('_') {
            // Object keys start with the tenant name; `_incoming/` holds uploads in progress.
            return Err(ConfigError::new(
                &tp,
                "tenant names starting with _ are reserved for postwire",
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
            let u = url::Url::parse(&e.url)
                .map_err(|err| ConfigError::new(format!("{ep}.url"), err.to_string()))?;
            match u.scheme() {
                "https" => {}
                "http" if e.allow_http && is_loopback_host(&u) => {}
                "http" if e.allow_http => {
                    return Err(ConfigError::new(
                        format!("{ep}.allow_http"),
                        "plain http is allowed only to a loopback host (127.0.0.1, ::1, localhost)",
                    ));
                }
                "http" => {
                    return Err(ConfigError::new(
                        format!("{ep}.url"),
                        "must be https (set allow_http = true for a loopback development receiver)",
                    ));
                }
                _ => return Err(ConfigError::new(format!("{ep}.url"), "must be https")),
            }
            if e.rate_per_sec.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
                return Err(ConfigError::new(
                    format!("{ep}.rate_per_sec"),
                    "must be > 0",
                ));
            }
            if e.concurrency == Some(0) {
                return Err(ConfigError::new(
                    format!("{ep}.concurrency"),
                    "must be at least 1",
                ));
            }
            e.signer()
                .map_err(|m| ConfigError::new(format!("{ep}.secret"), m.to_string()))?;
        }
        if let Some(u) = &t.alert_url {
            check_alert_url(u).map_err(|m| ConfigError::new(format!("{tp}.alert_url"), m))?;
        }
        for (pi, p) in t.plugins.iter().enumerate() {
            let pp = format!("{tp}.plugins[{pi}]");
            // An uploaded plugin is fetched from the object store by the node that runs it.
            if !p.path.is_file() && host.uploaded_object(&p.path).is_none() {
                return Err(ConfigError::new(
                    format!("{pp}.path"),
                    format!("{} is not a file", p.path.display()),
                ));
            }
            if p.config.as_ref().is_some_and(|c| !c.is_object()) {
                return Err(ConfigError::new(format!("{pp}.config"), "must be a table"));
            }
        }
        t.spam.validate(&tp)?;
        crate::route_config::validate(&tp, t)?;
        Ok(())
    }
}

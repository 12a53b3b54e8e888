//! The `[spam]` section (scoring every mail with rspamd over HTTP, `/checkv2`) and the
//! per-tenant policy (`[tenants.<name>] spam = { quarantine_above = …, reject_above = … }`).

use serde::{Deserialize, Serialize};

use crate::config_error::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpamConfig {
    /// rspamd's normal worker, e.g. `http://127.0.0.1:11333`; spam scoring is off when unset.
    pub rspamd_url: Option<String>,
    /// How long one check may take, connecting included.
    pub timeout_ms: u64,
    /// After rspamd failed to answer, how long until the mail is tried again.
    pub retry_delay_ms: u64,
    /// Sent as rspamd's `Password` header (controller-style auth), from this environment
    /// variable; none when unset.
    pub password_env: Option<String>,
}

impl Default for SpamConfig {
    fn default() -> Self {
        Self {
            rspamd_url: None,
            timeout_ms: 15_000,
            retry_delay_ms: 30_000,
            password_env: None,
        }
    }
}

impl SpamConfig {
    /// The `/checkv2` URL, when scoring is on.
    pub fn check_url(&self) -> Option<url::Url> {
        let base = url::Url::parse(self.rspamd_url.as_deref()?).ok()?;
        base.join("/checkv2").ok()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |k: &str, m: &str| Err(ConfigError::new(format!("spam.{k}"), m));
        if let Some(u) = &self.rspamd_url {
            match url::Url::parse(u) {
                Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => {}
                _ => return err("rspamd_url", "must be an http(s):// URL of rspamd's worker"),
            }
        }
        if !(1..=600_000).contains(&self.timeout_ms) {
            return err("timeout_ms", "must be between 1 and 600000");
        }
        if !(1..=86_400_000).contains(&self.retry_delay_ms) {
            return err("retry_delay_ms", "must be between 1 and 86400000");
        }
        Ok(())
    }
}

/// What a tenant does with spam (the score is always in the payload's `spam`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSpamConfig {
    /// Mail scoring at or above this is held in quarantine (`postwire quarantine`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_above: Option<f64>,
    /// Mail scoring at or above this is refused at SMTP time (550 5.7.1), checked before
    /// the reply to DATA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_above: Option<f64>,
}

impl TenantSpamConfig {
    pub fn is_default(&self) -> bool {
        *self == TenantSpamConfig::default()
    }

    pub(crate) fn validate(&self, tp: &str) -> Result<(), ConfigError> {
        for (k, v) in [
            ("quarantine_above", self.quarantine_above),
            ("reject_above", self.reject_above),
        ] {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err(ConfigError::new(
                    format!("{tp}.spam.{k}"),
                    "must be a number",
                ));
            }
        }
        Ok(())
    }
}

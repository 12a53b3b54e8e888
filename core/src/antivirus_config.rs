//! The `[antivirus]` section: scanning attachments with ClamAV's `clamd` (INSTREAM), and the
//! per-tenant policy for infected attachments (`[tenants.<name>] infected_attachments`).

use serde::Deserialize;

use crate::config_error::ConfigError;

/// Where `clamd` listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdAddress {
    /// `tcp://host:port`
    Tcp(String),
    /// `unix:///path/to/clamd.ctl`
    Unix(String),
}

impl ClamdAddress {
    pub fn parse(s: &str) -> Result<ClamdAddress, String> {
        if let Some(rest) = s.strip_prefix("tcp://") {
            let ok = rest
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            return match ok {
                true => Ok(ClamdAddress::Tcp(rest.to_string())),
                false => Err("tcp:// needs host:port".into()),
            };
        }
        if let Some(path) = s.strip_prefix("unix://") {
            return match path.starts_with('/') {
                true => Ok(ClamdAddress::Unix(path.to_string())),
                false => {
                    Err("unix:// needs an absolute path (unix:///run/clamav/clamd.ctl)".into())
                }
            };
        }
        Err("must be tcp://host:port or unix:///path".into())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AntivirusConfig {
    /// `tcp://127.0.0.1:3310` or `unix:///run/clamav/clamd.ctl`; scanning is off when unset.
    pub clamd: Option<String>,
    /// How long connecting to clamd may take.
    pub connect_timeout_ms: u64,
    /// How long one attachment's scan may take, from connecting to the verdict.
    pub scan_timeout_ms: u64,
    /// Attachments above this size are not sent to clamd; their verdict is `unscanned`.
    /// Keep it at or below clamd's `StreamMaxLength` (25 MiB by default).
    pub max_scan_bytes: u64,
}

impl Default for AntivirusConfig {
    fn default() -> Self {
        Self {
            clamd: None,
            connect_timeout_ms: 2_000,
            scan_timeout_ms: 60_000,
            max_scan_bytes: 25 * 1024 * 1024,
        }
    }
}

impl AntivirusConfig {
    /// The clamd address, when scanning is on.
    pub fn address(&self) -> Option<ClamdAddress> {
        self.clamd
            .as_deref()
            .and_then(|a| ClamdAddress::parse(a).ok())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |k: &str, m: String| Err(ConfigError::new(format!("antivirus.{k}"), m));
        if let Some(a) = &self.clamd
            && let Err(e) = ClamdAddress::parse(a)
        {
            return err("clamd", e);
        }
        if !(1..=60_000).contains(&self.connect_timeout_ms) {
            return err("connect_timeout_ms", "must be between 1 and 60000".into());
        }
        if !(1..=600_000).contains(&self.scan_timeout_ms) {
            return err("scan_timeout_ms", "must be between 1 and 600000".into());
        }
        if !(1..=4 << 30).contains(&self.max_scan_bytes) {
            return err("max_scan_bytes", "must be between 1 and 4294967296".into());
        }
        Ok(())
    }
}

/// What happens to a mail with an infected attachment (per tenant).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum InfectedPolicy {
    /// The attachment is neither stored nor inlined; its metadata and verdict stay.
    #[default]
    Drop,
    /// The whole mail is held in the QUARANTINE stream (`postwire quarantine`).
    Quarantine,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            ClamdAddress::parse("tcp://127.0.0.1:3310"),
            Ok(ClamdAddress::Tcp("127.0.0.1:3310".into()))
        );
        assert_eq!(
            ClamdAddress::parse("unix:///run/clamav/clamd.ctl"),
            Ok(ClamdAddress::Unix("/run/clamav/clamd.ctl".into()))
        );
        for bad in [
            "127.0.0.1:3310",
            "tcp://host",
            "tcp://:1",
            "unix://rel",
            "tcp://h:0",
        ] {
            assert!(ClamdAddress::parse(bad).is_err(), "{bad}");
        }
    }
}

//! The `[nats]` section: where the JetStream servers are, how postwire's streams are sized,
//! and where their monitoring endpoints are (read at start to check that the servers sync
//! every write before they acknowledge it, see [`crate::durability`]).

use serde::Deserialize;

use crate::config::ConfigError;

/// The monitoring port nats-server documents (`http: 8222`).
pub const DEFAULT_MONITOR_PORT: u16 = 8222;

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
    /// How long raw mail stays in MAIL.
    pub mail_max_age_secs: u64,
    /// How long dead letters are kept.
    pub dlq_max_age_secs: u64,
    /// Monitoring endpoint(s) of the servers (`http://host:8222`, comma separated), read at
    /// start for their JetStream sync setting. Empty: port 8222 on each host of `url`.
    pub monitor_url: String,
    /// Start even when a server acknowledges writes it has not synced to disk
    /// (`sync_interval` other than `always`), or when its setting cannot be read. A power
    /// cut can then lose mail that was answered 250.
    pub allow_unsynced: bool,
}

impl NatsConfig {
    /// The server URLs of `url` (comma separated).
    pub fn servers(&self) -> Vec<String> {
        split(&self.url)
    }

    /// The monitoring URLs: `monitor_url`'s, else `http://<host>:8222` for each host of
    /// `url` (in order, without repeats).
    pub fn monitor_urls(&self) -> Vec<String> {
        let explicit = split(&self.monitor_url);
        if !explicit.is_empty() {
            return explicit
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect();
        }
        let mut out: Vec<String> = Vec::new();
        for server in self.servers() {
            let with_scheme = if server.contains("://") {
                server
            } else {
                format!("nats://{server}")
            };
            let Some(host) = url::Url::parse(&with_scheme)
                .ok()
                .and_then(|u| u.host_str().map(String::from))
            else {
                continue;
            };
            let m = format!("http://{host}:{DEFAULT_MONITOR_PORT}");
            if !out.contains(&m) {
                out.push(m);
            }
        }
        out
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        for (i, u) in split(&self.monitor_url).iter().enumerate() {
            match url::Url::parse(u) {
                Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => {}
                _ => {
                    return Err(ConfigError::new(
                        format!("nats.monitor_url[{i}]"),
                        format!("{u:?} is not an http(s) URL like http://127.0.0.1:8222"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn split(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
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
            monitor_url: String::new(),
            allow_unsynced: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_urls_default_to_port_8222_of_each_server() {
        let cfg = NatsConfig {
            url: "nats://n1.example:4222, nats://n2.example:4222,nats://n1.example:4223,tls://[::1]:4222".into(),
            ..Default::default()
        };
        assert_eq!(
            cfg.monitor_urls(),
            [
                "http://n1.example:8222",
                "http://n2.example:8222",
                "http://[::1]:8222"
            ]
        );
    }

    #[test]
    fn explicit_monitor_urls_win() {
        let cfg = NatsConfig {
            monitor_url: "http://127.0.0.1:18222/, https://n2:8222".into(),
            ..Default::default()
        };
        assert_eq!(
            cfg.monitor_urls(),
            ["http://127.0.0.1:18222", "https://n2:8222"]
        );
        cfg.validate().unwrap();
    }

    #[test]
    fn a_bad_monitor_url_is_named() {
        let cfg = NatsConfig {
            monitor_url: "http://ok:8222,nats://127.0.0.1:4222".into(),
            ..Default::default()
        };
        let err = cfg.validate().unwrap_err();
        assert_eq!(err.path, "nats.monitor_url[1]", "{err}");
    }
}

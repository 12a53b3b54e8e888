//! The `[delivery]` section: retry schedule, timeouts, limits, transport security and alerts.

use std::time::Duration;

use serde::Deserialize;

use crate::config_error::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Delays before the 2nd, 3rd, … attempt (the first is immediate), e.g. `["5s", "5m"]`.
    /// Units: `ms`, `s`, `m`, `h`, `d`. Attempts = entries + 1; then the dead-letter stream.
    pub retry_schedule: Vec<String>,
    /// Random spread of each delay, as a fraction (0.2 = ±20 %).
    pub retry_jitter: f64,
    /// Longest `Retry-After` honoured; longer ones are clamped to this.
    pub retry_after_max_secs: u64,
    /// Time allowed for one HTTP request.
    pub request_timeout_secs: u64,
    /// Time JetStream waits for an ack before redelivering; progress acks extend it while a
    /// delivery waits or a request runs, so a crashed worker's deliveries resume after it.
    pub ack_wait_secs: u64,
    /// Most bytes of a response body read (the rest is discarded).
    pub max_response_bytes: usize,
    /// HTTP requests in flight per worker, all endpoints together.
    pub concurrency: usize,
    /// Default cap of requests in flight to one endpoint (per worker).
    pub endpoint_concurrency: usize,
    /// Default request rate per endpoint, per second (0: unlimited).
    pub endpoint_rate_per_sec: f64,
    /// Deliveries one worker keeps waiting for a busy endpoint; beyond that they are put back
    /// in the stream (without counting as an attempt), so a slow endpoint never holds the
    /// consumer's capacity.
    pub endpoint_queue: usize,
    /// Hosts or networks delivery may reach although they are not global (`127.0.0.1`,
    /// `10.0.0.0/8`, `hooks.internal`). Everything else non-global is refused (SSRF guard).
    pub ssrf_allow: Vec<String>,
    /// DNS server (`ip:port`) for endpoint host names; the system's resolver when unset.
    pub dns_server: Option<String>,
    /// Extra CA certificate(s), PEM, trusted besides the webpki roots.
    pub ca_file: Option<String>,
    /// An HTTP(S) proxy for every delivery (`http://proxy.internal:3128`). Unset: no proxy,
    /// whatever `HTTP_PROXY`/`HTTPS_PROXY` say (a proxy would resolve the endpoint's name
    /// itself, past the SSRF guard). When set, the guard checks the proxy's address (list it
    /// in `ssrf_allow` if it is internal) and IP-literal endpoint URLs; resolving endpoint
    /// names is then the proxy's, so it must refuse internal addresses itself.
    pub proxy_url: Option<String>,
    /// Consecutive failures of an endpoint before an alert event (0: never).
    pub alert_after_failures: u32,
    /// The process worker makes a delivery's first attempt itself, waiting at most this long
    /// (default 1000; 0: never, every delivery goes through `OUTBOX` to the deliver worker). A delivery
    /// whose endpoint is busy, slow, failing or disabled, or whose attempt fails or times out,
    /// goes to `OUTBOX` as before. Saves a stream write, an acknowledgement and a hop per mail.
    pub inline_attempt_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            retry_schedule: ["5s", "5m", "30m", "2h", "5h", "10h", "14h", "20h", "24h"]
                .map(String::from)
                .to_vec(),
            retry_jitter: 0.2,
            retry_after_max_secs: 3_600,
            request_timeout_secs: 15,
            ack_wait_secs: 30,
            max_response_bytes: 64 * 1024,
            concurrency: 256,
            endpoint_concurrency: 16,
            endpoint_rate_per_sec: 0.0,
            endpoint_queue: 200,
            ssrf_allow: Vec::new(),
            dns_server: None,
            ca_file: None,
            proxy_url: None,
            alert_after_failures: 5,
            inline_attempt_ms: 1_000,
        }
    }
}

/// Why a duration does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{0:?} is not a duration like 5s, 5m, 2h")]
    NotANumber(String),
    #[error("{0:?}: unit must be ms, s, m, h or d")]
    Unit(String),
    #[error("{0:?} is out of range")]
    OutOfRange(String),
}

/// Parses `250ms`, `5s`, `5m`, `2h`, `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| DurationError::NotANumber(text.to_string()))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => return Err(DurationError::Unit(text.to_string())),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| DurationError::OutOfRange(text.to_string()))
}

impl DeliveryConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn ack_wait(&self) -> Duration {
        Duration::from_secs(self.ack_wait_secs)
    }

    /// Attempts per delivery, the first included.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.retry_schedule.len()).unwrap_or(u32::MAX - 1) + 1
    }

    /// Delay after the failed attempt number `attempt` (1-based), before jitter.
    pub fn retry_delay(&self, attempt: u32) -> Option<Duration> {
        let i = usize::try_from(attempt.checked_sub(1)?).ok()?;
        self.retry_schedule
            .get(i)
            .and_then(|s| parse_duration(s).ok())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |k: &str, m: String| Err(ConfigError::new(format!("delivery.{k}"), m));
        for (i, s) in self.retry_schedule.iter().enumerate() {
            if let Err(m) = parse_duration(s) {
                return err(&format!("retry_schedule[{i}]"), m.to_string());
            }
        }
        if !(0.0..1.0).contains(&self.retry_jitter) {
            return err("retry_jitter", "must be in [0, 1)".into());
        }
        if self.concurrency == 0 || self.endpoint_concurrency == 0 {
            return err(
                "concurrency",
                "concurrency and endpoint_concurrency must be at least 1".into(),
            );
        }
        if !(self.endpoint_rate_per_sec >= 0.0 && self.endpoint_rate_per_sec.is_finite()) {
            return err("endpoint_rate_per_sec", "must be >= 0".into());
        }
        if self.ack_wait_secs < 3 {
            return err("ack_wait_secs", "must be at least 3".into());
        }
        if self.request_timeout_secs == 0 {
            return err("request_timeout_secs", "must be at least 1".into());
        }
        if self.inline_attempt_ms > self.request_timeout_secs.saturating_mul(1000) {
            return err(
                "inline_attempt_ms",
                "must not exceed request_timeout_secs".into(),
            );
        }
        for (i, a) in self.ssrf_allow.iter().enumerate() {
            if a.trim().is_empty() || a.contains(char::is_whitespace) {
                return err(
                    &format!("ssrf_allow[{i}]"),
                    format!("{a:?} is not a host or network"),
                );
            }
            if a.contains('/') && crate::net::Cidr::parse(a).is_none() {
                return err(
                    &format!("ssrf_allow[{i}]"),
                    format!("{a:?} is not a network like 10.0.0.0/8"),
                );
            }
        }
        if let Some(d) = &self.dns_server
            && d.parse::<std::net::SocketAddr>().is_err()
        {
            return err("dns_server", format!("{d:?} is not ip:port"));
        }
        if let Some(p) = &self.proxy_url {
            let ok = url::Url::parse(p)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                return err(
                    "proxy_url",
                    format!("{p:?} is not an http:// or https:// URL"),
                );
            }
        }
        if let Some(f) = &self.ca_file
            && !std::path::Path::new(f).is_file()
        {
            return err("ca_file", format!("{f} is not a readable file"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn default_schedule_is_standard_webhooks_like() {
        let d = DeliveryConfig::default();
        assert_eq!(d.max_attempts(), 10);
        assert_eq!(d.retry_delay(1), Some(Duration::from_secs(5)));
        assert_eq!(d.retry_delay(9), Some(Duration::from_secs(86_400)));
        assert_eq!(d.retry_delay(10), None);
        d.validate().unwrap();
    }
}

//! Retry policy: how an HTTP outcome is classified, and how long to wait before the next
//! attempt (exponential, capped, with jitter; `Retry-After` honoured within the cap).

use std::time::Duration;

use postwire_core::config::DeliveryConfig;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx.
    Delivered { status: u16 },
    /// Worth another attempt: 408, 429, 5xx, timeouts, connection errors, 3xx (redirects are
    /// not followed, and a later attempt may find the endpoint fixed).
    Retry {
        status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
    },
    /// Other 4xx: the receiver refuses this delivery; no retry will change that.
    Permanent { status: u16, error: String },
}

/// Classifies an HTTP status code.
pub fn classify(status: u16, retry_after: Option<Duration>) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered { status },
        408 | 429 | 500..=599 | 300..=399 => Outcome::Retry {
            status: Some(status),
            error: format!("HTTP {status}"),
            retry_after,
        },
        _ => Outcome::Permanent {
            status,
            error: format!("HTTP {status}"),
        },
    }
}

/// Delay after the failed attempt number `attempt` (1 = the first attempt), from the
/// configured schedule with jitter; `Retry-After` is honoured (clamped to
/// `retry_after_max_secs`) when it asks for longer. `unit` is a random number in [0, 1).
/// `None` when the schedule is exhausted.
pub fn backoff(
    cfg: &DeliveryConfig,
    attempt: u32,
    retry_after: Option<Duration>,
    unit: f64,
) -> Option<Duration> {
    let base = cfg.retry_delay(attempt)?;
    let jittered = base.as_secs_f64() * (1.0 + cfg.retry_jitter * (2.0 * unit - 1.0));
    let delay = Duration::from_secs_f64(jittered.max(0.0));
    let cap = Duration::from_secs(cfg.retry_after_max_secs);
    Some(match retry_after {
        Some(ra) => delay.max(ra.min(cap)),
        None => delay,
    })
}

/// Parses `Retry-After` given in seconds (HTTP dates are rare for webhooks and ignored).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert!(matches!(classify(204, None), Outcome::Delivered { .. }));
        for s in [408, 429, 500, 503, 301] {
            assert!(matches!(classify(s, None), Outcome::Retry { .. }), "{s}");
        }
        for s in [400, 401, 404, 410, 422] {
            assert!(
                matches!(classify(s, None), Outcome::Permanent { .. }),
                "{s}"
            );
        }
    }

    #[test]
    fn backoff_follows_schedule_with_jitter_and_retry_after() {
        let cfg = DeliveryConfig {
            retry_schedule: vec!["1s".into(), "4s".into()],
            retry_jitter: 0.2,
            retry_after_max_secs: 60,
            ..Default::default()
        };
        assert_eq!(backoff(&cfg, 1, None, 0.5), Some(Duration::from_secs(1)));
        assert_eq!(backoff(&cfg, 2, None, 0.5), Some(Duration::from_secs(4)));
        assert_eq!(backoff(&cfg, 3, None, 0.5), None, "schedule exhausted");
        assert_eq!(
            backoff(&cfg, 1, None, 0.0),
            Some(Duration::from_millis(800))
        );
        let high = backoff(&cfg, 1, None, 0.999_999).unwrap();
        assert!(high > Duration::from_millis(1199) && high <= Duration::from_millis(1200));
        assert_eq!(
            backoff(&cfg, 1, Some(Duration::from_secs(30)), 0.5),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            backoff(&cfg, 1, Some(Duration::from_secs(9999)), 0.5),
            Some(Duration::from_secs(60))
        );
    }
}

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

/// Parses `Retry-After`: delay seconds, or an HTTP date (IMF-fixdate, `Wed, 21 Oct 2015
/// 07:28:00 GMT`; one in the past is no delay). The cap is applied by [`backoff`].
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    parse_retry_after_at(value, time::OffsetDateTime::now_utc())
}

/// [`parse_retry_after`] with the current time given.
pub fn parse_retry_after_at(value: &str, now: time::OffsetDateTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(v, &fmt).ok()?.assume_utc();
    Some(Duration::try_from(at - now).unwrap_or(Duration::ZERO))
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

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Every delay of the default schedule, attempt by attempt, with the jitter at its middle.
    #[test]
    fn default_schedule_is_exact_and_spans_about_three_days() {
        let cfg = DeliveryConfig::default();
        let delays: Vec<Duration> = (1..cfg.max_attempts())
            .map(|n| backoff(&cfg, n, None, 0.5).expect("a delay before the last attempt"))
            .collect();
        let h = 3_600;
        assert_eq!(
            delays,
            [
                secs(5),
                secs(5 * 60),
                secs(30 * 60),
                secs(2 * h),
                secs(5 * h),
                secs(10 * h),
                secs(14 * h),
                secs(20 * h),
                secs(24 * h)
            ]
        );
        assert_eq!(cfg.max_attempts(), 10);
        assert_eq!(backoff(&cfg, cfg.max_attempts(), None, 0.5), None);
        assert_eq!(backoff(&cfg, 0, None, 0.5), None, "attempts count from 1");
        let total: Duration = delays.iter().sum();
        assert_eq!(
            total,
            secs(75 * h + 35 * 60 + 5),
            "the last attempt ~3 days later"
        );
    }

    /// For every attempt and every jitter draw on a fine grid: the delay stays within
    /// base × (1 ± jitter), reaches both ends, and grows with the draw.
    #[test]
    fn jitter_is_bounded_for_every_draw() {
        let cfg = DeliveryConfig::default();
        for attempt in 1..cfg.max_attempts() {
            let base = cfg.retry_delay(attempt).expect("base").as_secs_f64();
            let (lo, hi) = (base * 0.8, base * 1.2);
            let mut last = Duration::ZERO;
            for i in 0..1000 {
                let unit = f64::from(i) / 1000.0;
                let d = backoff(&cfg, attempt, None, unit).expect("delay");
                let s = d.as_secs_f64();
                assert!(
                    s >= lo - 1e-6 && s < hi,
                    "attempt {attempt}, draw {unit}: {d:?}"
                );
                assert!(d >= last, "monotonic in the draw");
                last = d;
            }
            let lowest = backoff(&cfg, attempt, None, 0.0)
                .expect("delay")
                .as_secs_f64();
            assert!(
                (lowest - lo).abs() < 1e-6,
                "attempt {attempt}: {lowest} vs {lo}"
            );
        }
    }

    #[test]
    fn zero_jitter_gives_the_schedule_whatever_the_draw() {
        let cfg = DeliveryConfig {
            retry_schedule: vec!["250ms".into(), "1s".into()],
            retry_jitter: 0.0,
            ..Default::default()
        };
        for unit in [0.0, 0.3, 0.999_999] {
            assert_eq!(
                backoff(&cfg, 1, None, unit),
                Some(Duration::from_millis(250))
            );
            assert_eq!(backoff(&cfg, 2, None, unit), Some(secs(1)));
        }
    }

    /// `Retry-After` only ever lengthens the wait, never beyond the cap, and does not extend
    /// the schedule: after the last attempt there is none, whatever the receiver asks.
    #[test]
    fn retry_after_lengthens_within_the_cap_only() {
        let cfg = DeliveryConfig {
            retry_schedule: vec!["10s".into(), "1m".into()],
            retry_jitter: 0.0,
            retry_after_max_secs: 120,
            ..Default::default()
        };
        let at = |attempt, ra| backoff(&cfg, attempt, Some(secs(ra)), 0.5);
        assert_eq!(
            at(1, 2),
            Some(secs(10)),
            "shorter than the schedule: ignored"
        );
        assert_eq!(at(1, 10), Some(secs(10)));
        assert_eq!(at(1, 45), Some(secs(45)), "longer: honoured");
        assert_eq!(at(1, 120), Some(secs(120)));
        assert_eq!(at(1, 121), Some(secs(120)), "clamped to the cap");
        assert_eq!(at(1, u64::MAX / 4), Some(secs(120)));
        assert_eq!(at(2, 30), Some(secs(60)));
        assert_eq!(at(3, 30), None, "no attempt past the schedule");
        // A cap below the scheduled delay never shortens it.
        let low_cap = DeliveryConfig {
            retry_after_max_secs: 1,
            ..cfg.clone()
        };
        assert_eq!(backoff(&low_cap, 2, Some(secs(600)), 0.5), Some(secs(60)));
    }

    #[test]
    fn retry_after_header_forms() {
        assert_eq!(parse_retry_after("120"), Some(secs(120)));
        assert_eq!(parse_retry_after(" 7 "), Some(secs(7)));
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        for ignored in ["", "-1", "1.5", "Wed, 21 Oct 2015 07:28:00 PST", "tomorrow"] {
            assert_eq!(parse_retry_after(ignored), None, "{ignored:?}");
        }
    }

    #[test]
    fn retry_after_as_an_http_date() {
        let now = time::macros::datetime!(2026-12-07 12:00:00 UTC);
        assert_eq!(
            parse_retry_after_at("Mon, 07 Dec 2026 12:02:00 GMT", now),
            Some(secs(120))
        );
        assert_eq!(
            parse_retry_after_at("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past: no delay"
        );
        // A far date is clamped by the schedule like a large number of seconds.
        let far = parse_retry_after_at("Fri, 01 Jan 2100 00:00:00 GMT", now);
        assert!(far.is_some_and(|d| d > secs(86_400)), "{far:?}");
    }
}

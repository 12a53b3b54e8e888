//! Time arguments of the CLI and the admin API (`--since`, `?since=`, `?until=`): an RFC 3339
//! time (`2026-11-23T10:00:00Z`) or an age before now (`90m`, `2h`, `3d`). An age so large
//! that it reaches before the year -9999 is refused, never a panic; a time before 1970 is 1970.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Why a time argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinceError {
    #[error("{0:?}: give a time like 2026-11-23T10:00:00Z or an age like 2h")]
    Unreadable(String),
    #[error("{0:?}: that age reaches before any time that can be written down")]
    OutOfRange(String),
}

/// Parses `text` as an RFC 3339 time or an age before `now`.
pub fn parse_at(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, SinceError> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t.max(OffsetDateTime::UNIX_EPOCH));
    }
    let age = crate::delivery_config::parse_duration(text)
        .map_err(|_| SinceError::Unreadable(text.to_string()))?;
    let age =
        time::Duration::try_from(age).map_err(|_| SinceError::OutOfRange(text.to_string()))?;
    // Nothing postwire stores predates 1970: an earlier start is the same as 1970, and stays
    // writable as RFC 3339 (years before 0 are not; NATS consumer start times are RFC 3339).
    now.checked_sub(age)
        .map(|t| t.max(OffsetDateTime::UNIX_EPOCH))
        .ok_or_else(|| SinceError::OutOfRange(text.to_string()))
}

/// [`parse_at`] relative to the current time.
pub fn parse(text: &str) -> Result<OffsetDateTime, SinceError> {
    parse_at(text, OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: OffsetDateTime = time::macros::datetime!(2026-12-07 12:00 UTC);

    #[test]
    fn reads_times_and_ages() {
        assert_eq!(
            parse_at("2026-11-23T10:00:00Z", NOW).unwrap(),
            time::macros::datetime!(2026-11-23 10:00 UTC)
        );
        assert_eq!(
            parse_at("2h", NOW).unwrap(),
            time::macros::datetime!(2026-12-07 10:00 UTC)
        );
    }

    #[test]
    fn huge_ages_are_refused_not_a_panic() {
        for text in ["99999999999h", "18446744073709551615s", "9999999999999d"] {
            assert!(
                matches!(
                    parse_at(text, NOW),
                    Err(SinceError::OutOfRange(_)) | Err(SinceError::Unreadable(_))
                ),
                "{text}"
            );
        }
        assert!(matches!(
            parse_at("99999999999h", NOW),
            Err(SinceError::OutOfRange(_))
        ));
    }

    #[test]
    fn times_before_1970_are_1970() {
        // 3,000,000 days ago is before year 0: not writable as RFC 3339 (a NATS consumer's
        // start time), so it was a panic in the NATS client.
        for text in ["3000000d", "70000000h", "0000-01-01T00:00:00Z"] {
            assert_eq!(
                parse_at(text, NOW).unwrap(),
                OffsetDateTime::UNIX_EPOCH,
                "{text}"
            );
        }
    }

    #[test]
    fn nonsense_is_unreadable() {
        assert!(matches!(
            parse_at("yesterday", NOW),
            Err(SinceError::Unreadable(_))
        ));
    }
}

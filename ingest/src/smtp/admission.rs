//! What the session asks the per-client protection before it accepts a message or a
//! recipient. The bookkeeping (counters, windows, clocks) lives with the I/O layer
//! (`crate::limits::ClientLimits`); the session only needs the answers.

use std::net::IpAddr;

/// Per-client rate limits, as the session sees them.
pub trait Admission: Send + Sync {
    /// Counts one more message from `ip`; false when it is over its limit.
    fn allow_message(&self, ip: IpAddr) -> bool;
    /// Counts one more recipient from `ip`; false when it is over its limit.
    fn allow_recipient(&self, ip: IpAddr) -> bool;
}

/// No limits (tests, tools).
pub struct Unlimited;

impl Admission for Unlimited {
    fn allow_message(&self, _: IpAddr) -> bool {
        true
    }
    fn allow_recipient(&self, _: IpAddr) -> bool {
        true
    }
}

//! Limits that keep a hostile message from costing unbounded time or payload size. A limit
//! never fails the parse: it cuts, and records what it cut in the payload's `limits`.

use postwire_core::event::Limits;

#[derive(Debug, Clone)]
pub struct ParseLimits {
    /// Bytes of the raw message parsed; the rest is ignored.
    pub max_total_bytes: usize,
    /// Headers listed in `message.headers`.
    pub max_headers: usize,
    /// Bytes of one header value.
    pub max_header_bytes: usize,
    /// Nesting of multiparts and enclosed messages.
    pub max_depth: usize,
    /// MIME parts looked at.
    pub max_parts: usize,
    /// Bytes of a short field (subject, names, addresses, ids, file names).
    pub max_field_bytes: usize,
    /// Bytes of `text`, `html` and `stripped_text` each.
    pub max_body_bytes: usize,
    /// A run of base64 lines at least this long is left out of what mail-parser parses and
    /// decoded from the raw mail chunk by chunk when read (see `parse::skeleton`).
    pub stream_min_bytes: usize,
    /// ... but only when such runs are at least this share (percent) of the message: the
    /// skeleton mail-parser reads is a copy of the rest.
    pub stream_min_share_percent: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_total_bytes: 128 * 1024 * 1024,
            max_headers: 500,
            max_header_bytes: 16 * 1024,
            max_depth: 10,
            max_parts: 1_000,
            max_field_bytes: 2_048,
            max_body_bytes: 2 * 1024 * 1024,
            stream_min_bytes: 1024 * 1024,
            stream_min_share_percent: 50,
        }
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary, recording it under `path`.
pub fn clip(s: String, max: usize, path: &str, limits: &mut Limits) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    limits.cut(path, format!("{path} was {} bytes, cut to {max}", s.len()));
    s[..end].to_string()
}

pub fn clip_opt(s: Option<String>, max: usize, path: &str, limits: &mut Limits) -> Option<String> {
    s.map(|s| clip(s, max, path, limits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_on_char_boundaries_and_records() {
        let mut l = Limits::default();
        assert_eq!(clip("grüße".into(), 3, "message.subject", &mut l), "gr");
        assert!(l.truncated);
        assert_eq!(l.fields, ["message.subject"]);
        let mut l = Limits::default();
        assert_eq!(clip("ok".into(), 3, "x", &mut l), "ok");
        assert!(!l.truncated);
    }
}

//! The DATA decoder: dot-unstuffing, end-of-data detection, size accounting.
//!
//! Only `CRLF . CRLF` ends the data. A `.` line reached through a bare LF or ending in a bare
//! LF (`<LF>.<CRLF>`, `<CRLF>.<LF>`, …) is content, not the end: that is the SMTP smuggling
//! class of bugs, where another server would split one message into two.

use bytes::{Buf, BytesMut};

/// Partial lines longer than this are consumed without waiting for their LF, so a line
/// without end cannot grow the input buffer.
const PARTIAL_FLUSH: usize = 8 * 1024;

#[derive(Debug)]
pub struct DataReader {
    body: Vec<u8>,
    /// Bytes of content seen, counted even past the limit.
    total: u64,
    max: u64,
    /// The previous line ended with CRLF (or nothing came yet): a `.` here is special.
    after_crlf: bool,
    /// Part of the current line was already consumed.
    in_line: bool,
    /// The last consumed byte of the current partial line was CR.
    partial_cr: bool,
}

impl DataReader {
    /// A reader whose buffer is sized up front for `declared` bytes (MAIL FROM's SIZE=,
    /// at most `max`): a large message is then not copied at every doubling of the buffer,
    /// which would briefly need 1.5 times its size. Untouched capacity is not resident.
    pub fn with_declared_size(max: u64, declared: Option<u64>) -> DataReader {
        let mut r = DataReader::new(max);
        if let Some(size) = declared {
            r.body.reserve(size.min(max) as usize);
        }
        r
    }

    pub fn new(max: u64) -> DataReader {
        DataReader {
            body: Vec::new(),
            total: 0,
            max,
            after_crlf: true,
            in_line: false,
            partial_cr: false,
        }
    }

    /// Consumes as much of `buf` as possible. Returns true at the end of the data (the
    /// terminating line is consumed; bytes after it stay in `buf`).
    pub fn feed(&mut self, buf: &mut BytesMut) -> bool {
        loop {
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let at_start = !self.in_line && self.after_crlf;
                    if at_start && &buf[..=i] == b".\r\n" {
                        buf.advance(i + 1);
                        return true;
                    }
                    let ends_crlf = if i > 0 {
                        buf[i - 1] == b'\r'
                    } else {
                        self.in_line && self.partial_cr
                    };
                    let skip = usize::from(at_start && buf[0] == b'.');
                    self.push(&buf[skip..=i]);
                    buf.advance(i + 1);
                    self.after_crlf = ends_crlf;
                    self.in_line = false;
                    self.partial_cr = false;
                }
                None if buf.len() >= PARTIAL_FLUSH => {
                    let at_start = !self.in_line && self.after_crlf;
                    let skip = usize::from(at_start && buf[0] == b'.');
                    self.partial_cr = buf[buf.len() - 1] == b'\r';
                    self.push(&buf[skip..]);
                    buf.clear();
                    self.in_line = true;
                    return false;
                }
                None => return false,
            }
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if self.total <= self.max {
            self.body.extend_from_slice(bytes);
        } else if !self.body.is_empty() {
            self.body = Vec::new();
        }
    }

    pub fn exceeded(&self) -> bool {
        self.total > self.max
    }

    pub fn size(&self) -> u64 {
        self.total
    }

    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8], max: u64) -> (bool, Vec<u8>, Vec<u8>, bool) {
        let mut r = DataReader::new(max);
        let mut buf = BytesMut::from(input);
        let done = r.feed(&mut buf);
        let exceeded = r.exceeded();
        (done, r.into_body(), buf.to_vec(), exceeded)
    }

    #[test]
    fn ends_on_crlf_dot_crlf_and_unstuffs() {
        let (done, body, rest, _) = run(b"Subject: x\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n", 1000);
        assert!(done);
        assert_eq!(body, b"Subject: x\r\n\r\n.leading dot\r\n");
        assert_eq!(rest, b"QUIT\r\n");
    }

    #[test]
    fn bare_lf_dot_is_content_not_end() {
        for evil in [
            &b"a\n.\r\nMAIL FROM:<x@y>\r\n"[..],
            b"a\r\n.\nMAIL FROM:<x@y>\r\n",
            b"a\r.\r\nMAIL\r\n",
        ] {
            let (done, body, rest, _) = run(evil, 1000);
            assert!(
                !done,
                "{:?} must not end the data",
                String::from_utf8_lossy(evil)
            );
            assert!(rest.is_empty() || !rest.starts_with(b"MAIL"));
            assert!(
                body.windows(4).any(|w| w == b"MAIL"),
                "the injected command stays content"
            );
        }
    }

    #[test]
    fn split_across_feeds() {
        let mut r = DataReader::new(1000);
        let mut buf = BytesMut::from(&b"hello\r"[..]);
        assert!(!r.feed(&mut buf));
        buf.extend_from_slice(b"\n.");
        assert!(!r.feed(&mut buf));
        buf.extend_from_slice(b"\r\n");
        assert!(r.feed(&mut buf));
        assert_eq!(r.into_body(), b"hello\r\n");
    }

    #[test]
    fn long_line_is_flushed_and_bounded() {
        let mut r = DataReader::new(1_000_000);
        let mut buf = BytesMut::from(vec![b'x'; 20_000].as_slice());
        assert!(!r.feed(&mut buf));
        assert!(buf.is_empty());
        buf.extend_from_slice(b"\r\n.\r\n");
        assert!(r.feed(&mut buf));
        assert_eq!(r.into_body().len(), 20_002);
    }

    #[test]
    fn size_limit_counts_everything_but_keeps_nothing() {
        let (done, body, _, exceeded) = run(b"0123456789\r\n0123456789\r\n.\r\n", 15);
        assert!(done && exceeded && body.is_empty());
    }

    #[test]
    fn empty_data() {
        let (done, body, _, _) = run(b".\r\n", 10);
        assert!(done && body.is_empty());
    }
}

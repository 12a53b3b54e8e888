//! Attachment bodies handed to the scan and store stages: held (a buffer) or deferred (the
//! encoded base64 range of the raw mail, decoded chunk by chunk whenever it is read), so a
//! large attachment never exists decoded as a whole. See docs/decisions.md, "Issue 17: large
//! attachments streamed".
//!
//! The decoder is mail-parser 0.11's MIME base64 decoder (`decode_base64_mime`) restated
//! as a state machine that can stop and go on: the same alphabet, `=` writing out the partial
//! group, white space ignored, a partial group at the end dropped. Where mail-parser would
//! give up on the part (any other byte, or `--` not followed by the boundary), this decoder
//! says so, and the parse then takes mail-parser's own path for the whole message.

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

/// Decoded bytes per chunk when a deferred body is read.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// An attachment's contents as the parse hands them on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// The contents themselves (decoded by mail-parser, or a view of the raw bytes).
    Held(Bytes),
    /// A base64 body decoded on demand from the raw mail.
    Deferred(Deferred),
}

/// The encoded range of a base64 body (a view of the raw mail) and its decoded size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred {
    encoded: Bytes,
    size: u64,
}

impl Body {
    /// Decoded size in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Held(b) => b.len() as u64,
            Body::Deferred(d) => d.size,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The contents in order, as chunks of at most [`CHUNK_BYTES`] for a deferred body
    /// (a held body is one chunk).
    pub fn chunks(&self) -> Chunks {
        match self {
            Body::Held(b) => Chunks {
                held: Some(b.clone()),
                encoded: Bytes::new(),
                pos: 0,
                dec: Decoder::default(),
            },
            Body::Deferred(d) => Chunks {
                held: None,
                encoded: d.encoded.clone(),
                pos: 0,
                dec: Decoder::default(),
            },
        }
    }

    /// The whole contents in one buffer (a deferred body is decoded into a new one).
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Body::Held(b) => b.clone(),
            Body::Deferred(d) => {
                let mut out = Vec::with_capacity(usize::try_from(d.size).unwrap_or(0));
                let mut dec = Decoder::default();
                dec.feed(&d.encoded, &mut out);
                Bytes::from(out)
            }
        }
    }

    /// True for a body decoded on demand.
    pub fn is_deferred(&self) -> bool {
        matches!(self, Body::Deferred(_))
    }
}

impl Deferred {
    /// `encoded`, whose decoded size [`measure`] found to be `size`.
    pub fn new(encoded: Bytes, size: u64) -> Self {
        Deferred { encoded, size }
    }
}

/// Decoded size and sha256 (hex) of an encoded base64 body, in one pass of bounded memory;
/// None where mail-parser would not decode it as base64.
pub fn measure(encoded: &[u8]) -> Option<(u64, String)> {
    let mut dec = Decoder::default();
    let mut hash = Sha256::new();
    let mut size = 0u64;
    let mut out = Vec::with_capacity(CHUNK_BYTES);
    for piece in encoded.chunks(CHUNK_BYTES) {
        out.clear();
        if !dec.feed(piece, &mut out) {
            return None;
        }
        hash.update(&out);
        size += out.len() as u64;
    }
    Some((size, postwire_core::ids::hex(&hash.finalize())))
}

/// Decoded chunks of a body, in order.
pub struct Chunks {
    held: Option<Bytes>,
    encoded: Bytes,
    pos: usize,
    dec: Decoder,
}

impl Iterator for Chunks {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if let Some(b) = self.held.take() {
            return (!b.is_empty()).then_some(b);
        }
        // 4 encoded bytes make at most 3 decoded ones.
        let step = CHUNK_BYTES / 3 * 4;
        while self.pos < self.encoded.len() {
            let end = (self.pos + step).min(self.encoded.len());
            let mut out = Vec::with_capacity((end - self.pos) / 4 * 3 + 3);
            // The whole range was measured at the parse: it decodes.
            self.dec.feed(&self.encoded[self.pos..end], &mut out);
            self.pos = end;
            if !out.is_empty() {
                return Some(Bytes::from(out));
            }
        }
        None
    }
}

/// mail-parser's MIME base64 decoding, resumable.
#[derive(Debug, Clone)]
pub struct Decoder {
    acc: u32,
    count: u8,
    last: u8,
}

impl Default for Decoder {
    fn default() -> Self {
        // mail-parser starts as if after a line break.
        Decoder {
            acc: 0,
            count: 0,
            last: b'\n',
        }
    }
}

impl Decoder {
    /// Decodes `input` onto `out`. False at a byte where mail-parser gives up on the part (the
    /// rest of `input` is not read).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &ch in input {
            let v = VALUE[ch as usize];
            if v < 64 {
                self.acc = ((self.acc << 6) | v as u32) & 0x00ff_ffff;
                self.count = (self.count + 1) & 3;
                if self.count == 0 {
                    let a = self.acc;
                    out.extend_from_slice(&[(a >> 16) as u8, (a >> 8) as u8, a as u8]);
                }
            } else {
                match ch {
                    b'=' => {
                        let a = self.acc;
                        match self.count {
                            1 => out.push((a << 2) as u8),
                            2 => out.push((a >> 4) as u8),
                            3 => out.extend_from_slice(&[(a >> 10) as u8, (a >> 2) as u8]),
                            _ => {}
                        }
                        self.count = 0;
                    }
                    b'\n' | b' ' | b'\t' | b'\r' => {}
                    // `--` starts a boundary: the body ends before it.
                    b'-' if self.last == b'-' => return false,
                    b'-' => {}
                    _ => return false,
                }
            }
            self.last = ch;
        }
        true
    }
}

/// The value of each base64 character, 0xff for the others.
static VALUE: [u8; 256] = value_table();

const fn value_table() -> [u8; 256] {
    let mut t = [0xffu8; 256];
    let mut v = 0u8;
    while v < 64 {
        let ch = match v {
            0..=25 => b'A' + v,
            26..=51 => b'a' + (v - 26),
            52..=61 => b'0' + (v - 52),
            62 => b'+',
            _ => b'/',
        };
        t[ch as usize] = v;
        v += 1;
    }
    t
}

/// True for a byte of the base64 alphabet or `=`.
pub fn is_base64_char(ch: u8) -> bool {
    VALUE[ch as usize] < 64 || ch == b'='
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        Decoder::default().feed(s, &mut out).then_some(out)
    }

    #[test]
    fn decodes_as_mail_parser_does_at_the_edges() {
        assert_eq!(decode(b"SGVsbG8=").unwrap(), b"Hello");
        assert_eq!(decode(b"SGVs\r\nbG8=\r\n").unwrap(), b"Hello");
        // A partial group without `=` at the end is dropped, as mail-parser drops it.
        assert_eq!(decode(b"SGVsbG8").unwrap(), b"Hel");
        // `=` in the middle writes out the partial group and decoding goes on.
        assert_eq!(decode(b"SGk=SGk=").unwrap(), b"HiHi");
        assert_eq!(decode(b"a-b").unwrap(), decode(b"ab").unwrap());
        assert_eq!(decode(b"SGVs--"), None);
        assert_eq!(decode(b"SGVs*"), None);
    }

    #[test]
    fn chunks_match_the_whole_and_measure_matches_both() {
        let text: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut enc = String::new();
        use base64::Engine as _;
        for line in base64::engine::general_purpose::STANDARD
            .encode(&text)
            .as_bytes()
            .chunks(76)
        {
            enc.push_str(std::str::from_utf8(line).unwrap());
            enc.push_str("\r\n");
        }
        let encoded = Bytes::from(enc);
        let (size, sha) = measure(&encoded).unwrap();
        assert_eq!(size, text.len() as u64);
        assert_eq!(sha, postwire_core::ids::sha256_hex(&text));
        let body = Body::Deferred(Deferred::new(encoded, size));
        let chunks: Vec<Bytes> = body.chunks().collect();
        assert!(chunks.len() > 2 && chunks.iter().all(|c| c.len() <= CHUNK_BYTES));
        assert_eq!(chunks.concat(), text);
        assert_eq!(body.to_bytes(), text);
        assert_eq!(body.len(), text.len() as u64);
    }
}

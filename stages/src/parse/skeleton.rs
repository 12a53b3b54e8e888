//! The skeleton of a large mail: the raw bytes without the middle of its large base64 bodies,
//! small enough to hand to mail-parser (which decodes every body it parses). Headers and
//! structure still come from mail-parser; the left-out bodies are decoded later, chunk by
//! chunk, from the raw mail ([`super::deferred`]). See docs/decisions.md, "Issue 17: large
//! attachments streamed".
//!
//! How a body is found without a MIME parser of our own: a *run* is two or more consecutive
//! lines made only of base64 characters. All its lines but the last are cut out (a cut never
//! holds a boundary, a header or a line break mail-parser would end a body on: those need
//! `-`, `:` or an empty line). The skeleton is then parsed, and a cut is kept only when it lies
//! inside the body of a top-level base64 attachment that mail-parser decoded as binary
//! without an encoding problem; otherwise it is put back and the skeleton made again. Such a
//! body decodes the same whether its middle lines are there or not, so the skeleton's parse is
//! the raw mail's, except for those bodies' contents, which [`super::deferred`] decodes from
//! the raw range as mail-parser does.

use std::ops::Range;

use bytes::Bytes;
use mail_parser::{Encoding, MessageParser, PartType};

use super::deferred::{is_base64_char, measure};

/// A large body left out of the skeleton.
pub struct DeferredPart {
    /// Index in the skeleton's `parts`.
    pub part: u32,
    /// The encoded body in the raw mail.
    pub raw: Range<usize>,
    pub size: u64,
    pub sha256: String,
}

pub struct Skeleton {
    pub bytes: Bytes,
    pub parts: Vec<DeferredPart>,
}

impl Skeleton {
    pub fn part(&self, idx: u32) -> Option<&DeferredPart> {
        self.parts.iter().find(|p| p.part == idx)
    }
}

/// A cut: `raw` left out; it sat at `at` in the skeleton.
struct Cut {
    raw: Range<usize>,
    at: usize,
}

/// The skeleton of `raw` without the runs of at least `min` bytes, or None when there is none
/// that can be left out, or when they are less than `share_percent` of the mail (the mail is
/// then parsed as it is).
pub fn plan(raw: &[u8], min: usize, share_percent: usize) -> Option<Skeleton> {
    let mut cuts = runs(raw, min);
    // The skeleton is a copy of what is not cut: worth it only when the cuts are most of the
    // mail (a mail of mostly text keeps mail-parser's path rather than a second copy of it).
    let cut: usize = cuts.iter().map(|c| c.len()).sum();
    if cut.saturating_mul(100) < raw.len().saturating_mul(share_percent) {
        return None;
    }
    // A second pass only puts back cuts that the first found outside such bodies.
    for _ in 0..2 {
        if cuts.is_empty() {
            return None;
        }
        let (bytes, placed) = build(raw, &cuts);
        let bytes = Bytes::from(bytes);
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let msg = MessageParser::default().parse(&bytes[..])?;
            Some(eligible(&msg))
        }));
        let Ok(Some(bodies)) = parsed else {
            return None;
        };
        let inside = |c: &Cut| bodies.iter().find(|(_, b)| b.start <= c.at && c.at < b.end);
        if placed.iter().all(|c| inside(c).is_some()) {
            let mut parts = Vec::new();
            for (idx, body) in &bodies {
                if !placed.iter().any(|c| body.start <= c.at && c.at < body.end) {
                    continue;
                }
                let range = to_raw(&placed, body.start)..to_raw(&placed, body.end);
                let (size, sha256) = measure(raw.get(range.clone())?)?;
                parts.push(DeferredPart {
                    part: *idx,
                    raw: range,
                    size,
                    sha256,
                });
            }
            return Some(Skeleton { bytes, parts });
        }
        cuts = placed
            .into_iter()
            .filter(|c| inside(c).is_some())
            .map(|c| c.raw)
            .collect();
    }
    None
}

/// The top-level parts whose body may be left out, with their body's range in the skeleton.
fn eligible(msg: &mail_parser::Message<'_>) -> Vec<(u32, Range<usize>)> {
    msg.attachments
        .iter()
        .filter_map(|&idx| {
            let p = msg.parts.get(idx as usize)?;
            let binary = matches!(p.body, PartType::Binary(_) | PartType::InlineBinary(_));
            let ok = binary && p.encoding == Encoding::Base64 && !p.is_encoding_problem;
            let body = p.offset_body as usize..p.offset_end as usize;
            (ok && body.start < body.end).then_some((idx, body))
        })
        .collect()
}

/// The raw offset of skeleton offset `s` (a cut placed at `s` itself lies after it).
fn to_raw(cuts: &[Cut], s: usize) -> usize {
    s + cuts
        .iter()
        .filter(|c| c.at < s)
        .map(|c| c.raw.len())
        .sum::<usize>()
}

fn build(raw: &[u8], cuts: &[Range<usize>]) -> (Vec<u8>, Vec<Cut>) {
    let removed: usize = cuts.iter().map(|c| c.len()).sum();
    let mut out = Vec::with_capacity(raw.len() - removed);
    let mut placed = Vec::with_capacity(cuts.len());
    let mut pos = 0;
    for c in cuts {
        out.extend_from_slice(&raw[pos..c.start]);
        placed.push(Cut {
            raw: c.clone(),
            at: out.len(),
        });
        pos = c.end;
    }
    out.extend_from_slice(&raw[pos..]);
    (out, placed)
}

/// Runs of base64 lines (all but their last line) of at least `min` bytes, in order.
fn runs(raw: &[u8], min: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    // The run being read: its start, and the start of its last line.
    let mut run: Option<(usize, usize)> = None;
    let mut pos = 0;
    while pos < raw.len() {
        let end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| pos + i + 1);
        let line = &raw[pos..end.unwrap_or(raw.len())];
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        // White space mail-parser's decoder skips may end a line.
        let text = text.trim_ascii_end();
        let is_b64 = end.is_some() && !text.is_empty() && text.iter().all(|&b| is_base64_char(b));
        run = match (run, is_b64) {
            (None, true) => Some((pos, pos)),
            (Some((start, _)), true) => Some((start, pos)),
            (Some((start, last)), false) => {
                close(start, last, min, &mut out);
                None
            }
            (None, false) => None,
        };
        pos = end.unwrap_or(raw.len());
    }
    if let Some((start, last)) = run {
        close(start, last, min, &mut out);
    }
    out
}

fn close(start: usize, last: usize, min: usize, out: &mut Vec<Range<usize>>) {
    if last > start && last - start >= min.max(1) {
        out.push(start..last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mail_of_mostly_other_lines_is_not_copied_into_a_skeleton() {
        let body = "QUFBQUFB\r\n".repeat(100);
        let mail = |text: &str| {
            format!(
                "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n{text}\r\n--b\r\n\
Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}--b--\r\n"
            )
        };
        assert!(plan(mail("short text").as_bytes(), 0, 50).is_some());
        let long = mail(&"long text ".repeat(200));
        assert!(plan(long.as_bytes(), 0, 50).is_none());
        assert!(plan(long.as_bytes(), 0, 0).is_some());
    }

    #[test]
    fn runs_leave_their_last_line() {
        let raw = b"H: v\r\n\r\nAAAA\r\nBBBB\r\nCC==\r\n--b\r\nDDDD\r\n";
        let r = runs(raw, 0);
        assert_eq!(r.len(), 1);
        assert_eq!(&raw[r[0].clone()], b"AAAA\r\nBBBB\r\n");
        assert!(runs(raw, 100).is_empty());
    }

    #[test]
    fn offsets_map_back_to_the_raw_mail() {
        let raw = b"0123AAAA\nBBBB\nCCCC\nxyz";
        let (sk, placed) = build(raw, &[4..14]);
        assert_eq!(sk, b"0123CCCC\nxyz");
        assert_eq!(
            to_raw(&placed, 4),
            4,
            "a body starting at the cut starts before it"
        );
        assert_eq!(to_raw(&placed, 9), 19);
    }
}

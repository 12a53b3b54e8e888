//! Parse and sanitise: raw RFC 5322 bytes → the `message` object of the payload, with
//! mail-parser doing the MIME work. Never fails: what cannot be made sense of still yields an
//! event, and every limit that cut something is recorded in `limits`.
//!
//! - [`headers`]: headers in order, addresses (names, groups, IDN).
//! - [`body`]: text and HTML views as a mail client shows them.
//! - [`sanitize`]: ammonia rules for the HTML.
//! - [`stripped`]: the reply without quoted history and signature.
//! - [`thread`]: the conversation id (`thread_id`).
//! - [`attachments`]: attachments and enclosed messages.
//! - [`skeleton`]: large base64 bodies left out of what mail-parser parses.
//! - [`deferred`]: those bodies decoded from the raw mail chunk by chunk, as mail-parser would.
//! - [`limits`]: the limits and the recording of cuts.
//! - [`stage`]: parse as a stage of the process worker.
//!
//! Where mail-parser 0.11 needs help, see docs/decisions.md.

pub mod attachments;
pub mod body;
pub mod deferred;
pub mod headers;
pub mod limits;
pub mod sanitize;
pub mod skeleton;
pub mod stage;
pub mod stripped;
pub mod thread;

use bytes::Bytes;
use mail_parser::MessageParser;
use postwire_core::event::{Limits, Message};

pub use attachments::safe_filename;
pub use deferred::Body;
pub use limits::ParseLimits;

use limits::{clip, clip_opt};

/// The `limits` note of a message the MIME parser failed on.
pub const PARSER_FAILED: &str = "the MIME parser failed on this message; only the raw form is kept";

/// Parses raw bytes with the default limits. Returns the message and what was cut.
pub fn parse(raw: &[u8]) -> (Message, Limits) {
    parse_with(raw, &ParseLimits::default())
}

pub fn parse_with(raw: &[u8], lim: &ParseLimits) -> (Message, Limits) {
    let (message, limits, _) = parse_inner(raw, lim, None);
    (message, limits)
}

/// A parsed message and the decoded contents of its attachments: `bodies[i]` belongs to
/// `message.attachments[i]` (enclosed messages' own attachments are not included).
///
/// A body is not a copy: a large base64 body is deferred (a view of its encoded range in the
/// raw mail, decoded chunk by chunk when read); a decoded one (base64, quoted-printable, a
/// charset) is the buffer mail-parser decoded it into, moved out of the parsed MIME tree; one
/// the raw mail holds as it is (8bit, binary) is a view of the raw bytes. See
/// docs/decisions.md, "Issue 17".
pub struct Parsed {
    pub message: Message,
    pub limits: Limits,
    pub bodies: Vec<Body>,
}

/// Parses with the default limits and keeps the attachment contents (sharing `raw`'s buffer
/// where a body is the raw bytes as they are, or is deferred).
pub fn parse_with_bodies(raw: &Bytes) -> Parsed {
    parse_with_bodies_using(raw, &ParseLimits::default())
}

/// [`parse_with_bodies`] with the limits `lim`.
pub fn parse_with_bodies_using(raw: &Bytes, lim: &ParseLimits) -> Parsed {
    let (message, limits, bodies) = parse_inner(raw, lim, Some(raw));
    Parsed {
        message,
        limits,
        bodies,
    }
}

/// `keep`: the buffer `raw` is, when the attachment contents are wanted.
fn parse_inner(
    raw: &[u8],
    lim: &ParseLimits,
    keep: Option<&Bytes>,
) -> (Message, Limits, Vec<Body>) {
    let mut limits = Limits::default();
    let bodies = Vec::new();
    let raw = if raw.len() > lim.max_total_bytes {
        limits.cut(
            "raw",
            format!(
                "the message is {} bytes; only the first {} were parsed",
                raw.len(),
                lim.max_total_bytes
            ),
        );
        &raw[..lim.max_total_bytes]
    } else {
        raw
    };
    // Large base64 bodies are left out of what mail-parser parses (it would decode them
    // whole) and decoded from `raw` chunk by chunk when read.
    let skeleton = match lim.stream_min_bytes <= raw.len() {
        true => skeleton::plan(raw, lim.stream_min_bytes, lim.stream_min_share_percent),
        false => None,
    };
    let source: &[u8] = skeleton.as_ref().map_or(raw, |s| &s.bytes[..]);
    // mail-parser has debug_assert!s that malformed MIME can reach (found by fuzzing); in a
    // debug build they panic. A parser failure must cost one message's parse, not a worker.
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        MessageParser::default().parse(source)
    }));
    let mut msg = match parsed {
        Ok(Some(msg)) => msg,
        Ok(None) => {
            limits.notes.push(
                "the message could not be parsed as RFC 5322; only the raw form is kept".into(),
            );
            return (Message::default(), limits, bodies);
        }
        Err(_) => {
            limits.cut("message", PARSER_FAILED);
            return (Message::default(), limits, bodies);
        }
    };
    let mut parts = Vec::new();
    let mut message = convert(&msg, Some(&mut parts), lim, 0, "message", &mut limits);
    let Some(sk) = skeleton.as_ref() else {
        let bodies = match keep {
            Some(whole) => attachments::take_bodies(&mut msg, &parts, whole),
            None => Vec::new(),
        };
        return (
            message,
            limits,
            bodies.into_iter().map(Body::Held).collect(),
        );
    };
    // The deferred bodies' size and hash, measured from the raw mail.
    for (att, &idx) in message.attachments.iter_mut().zip(&parts) {
        if let Some(d) = sk.part(idx) {
            att.size = d.size;
            att.sha256.clone_from(&d.sha256);
        }
    }
    let bodies = match keep {
        Some(whole) => attachments::take_bodies(&mut msg, &parts, &sk.bytes)
            .into_iter()
            .zip(&parts)
            .map(|(held, &idx)| match sk.part(idx) {
                Some(d) => {
                    Body::Deferred(deferred::Deferred::new(whole.slice(d.raw.clone()), d.size))
                }
                None => Body::Held(held),
            })
            .collect(),
        None => Vec::new(),
    };
    (message, limits, bodies)
}

/// One (possibly enclosed) message at nesting `depth`, its payload path being `path`.
fn convert(
    msg: &mail_parser::Message<'_>,
    bodies: Option<&mut Vec<u32>>,
    lim: &ParseLimits,
    depth: usize,
    path: &str,
    limits: &mut Limits,
) -> Message {
    let f = lim.max_field_bytes;
    let p = |field: &str| format!("{path}.{field}");
    let headers = headers::all(msg, lim, path, limits);
    if msg.parts.len() > lim.max_parts {
        limits.cut(
            &p("attachments"),
            format!(
                "{path}: {} MIME parts, only the first {} were read",
                msg.parts.len(),
                lim.max_parts
            ),
        );
    }
    let body::Bodies {
        text,
        html,
        stripped_html,
    } = body::bodies(msg, lim.max_parts);
    let stripped_text = text.as_deref().map(stripped::strip);
    let mut nested = |m: &mail_parser::Message<'_>, np: &str, l: &mut Limits| {
        convert(m, None, lim, depth + 1, np, l)
    };
    let attachments = attachments::collect(msg, bodies, lim, depth, path, limits, &mut nested);
    let b = lim.max_body_bytes;
    let message_id = clip_opt(
        msg.message_id().map(str::to_string),
        f,
        &p("message_id"),
        limits,
    );
    let in_reply_to = clip_opt(
        headers::text_of(msg.in_reply_to()),
        f,
        &p("in_reply_to"),
        limits,
    );
    let references: Vec<String> = headers::list_of(msg.references())
        .into_iter()
        .take(lim.max_headers)
        .map(|r| clip(r, f, &p("references"), limits))
        .collect();
    let thread_id = thread::thread_id(message_id.as_deref(), in_reply_to.as_deref(), &references);
    Message {
        message_id,
        in_reply_to,
        references,
        thread_id,
        date: msg.date().and_then(|d| rfc3339(&d.to_rfc3339())),
        subject: clip_opt(msg.subject().map(str::to_string), f, &p("subject"), limits),
        from: headers::mailboxes(msg.from(), lim, &p("from"), limits),
        sender: headers::mailboxes(msg.sender(), lim, &p("sender"), limits),
        to: headers::mailboxes(msg.to(), lim, &p("to"), limits),
        cc: headers::mailboxes(msg.cc(), lim, &p("cc"), limits),
        reply_to: headers::mailboxes(msg.reply_to(), lim, &p("reply_to"), limits),
        headers,
        text: clip_opt(text, b, &p("text"), limits),
        html: clip_opt(html, b, &p("html"), limits),
        attachments,
        stripped_text: clip_opt(stripped_text, b, &p("stripped_text"), limits),
        stripped_html: clip_opt(stripped_html, b, &p("stripped_html"), limits),
    }
}

/// mail-parser formats impossible dates (30 February, hour 24 with some zones) without
/// complaint; only a date that reads back as RFC 3339 is kept.
fn rfc3339(s: &str) -> Option<String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|_| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use postwire_core::ids::sha256_hex;

    const MAIL: &[u8] = b"From: \"Ann Example\" <ann@example.com>\r\n\
To: support@acme.test, Team: bob@acme.test, carol@acme.test;\r\n\
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\
Message-ID: <abc@example.com>\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n\
X-Folded: one\r\n two\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello\r\n\
--b\r\n\
Content-Type: application/pdf; name=\"../../etc/passwd.pdf\"\r\n\
Content-Disposition: attachment; filename=\"../../etc/passwd.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
SGVsbG8=\r\n\
--b--\r\n";

    #[test]
    fn parses_the_basics() {
        let (m, limits) = parse(MAIL);
        assert!(limits.notes.is_empty());
        assert_eq!(m.subject.as_deref(), Some("Grüße"));
        assert_eq!(m.message_id.as_deref(), Some("abc@example.com"));
        assert_eq!(m.date.as_deref(), Some("2026-11-23T10:00:00+01:00"));
        assert_eq!(m.from[0].name.as_deref(), Some("Ann Example"));
        assert_eq!(m.to.len(), 3);
        assert_eq!(m.to[1].group.as_deref(), Some("Team"));
        assert_eq!(m.text.as_deref().map(str::trim), Some("Hello"));
        assert!(m.html.is_none());
        let folded = m
            .headers
            .iter()
            .find(|(n, _)| n == "X-Folded")
            .map(|h| h.1.as_str());
        assert_eq!(folded, Some("one two"));
        let a = &m.attachments[0];
        assert_eq!(a.filename.as_deref(), Some("passwd.pdf"));
        assert_eq!(a.content_type, "application/pdf");
        assert_eq!(a.size, 5);
        assert_eq!(a.sha256, sha256_hex(b"Hello"));
    }

    #[test]
    fn bodies_come_with_their_attachments() {
        let p = parse_with_bodies(&Bytes::from_static(MAIL));
        assert_eq!(p.bodies.len(), p.message.attachments.len());
        assert_eq!(p.bodies[0].to_bytes(), b"Hello"[..]);
        assert_eq!(
            p.message.attachments[0].sha256,
            sha256_hex(&p.bodies[0].to_bytes())
        );
        assert_eq!(parse(MAIL).0, p.message, "the same payload either way");
    }

    #[test]
    fn a_body_the_raw_mail_holds_as_it_is_is_a_view_of_it_not_a_copy() {
        let raw = Bytes::from_static(
            b"Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
--b\r\nContent-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename=a.bin\r\n\r\nRAWBYTES\r\n\
--b\r\nContent-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename=b.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n\
SGVsbG8=\r\n--b--\r\n",
        );
        let p = parse_with_bodies(&raw);
        assert_eq!(p.bodies.len(), 2);
        let (Body::Held(b0), Body::Held(b1)) = (&p.bodies[0], &p.bodies[1]) else {
            panic!("small bodies are held");
        };
        assert_eq!(b0, &b"RAWBYTES"[..]);
        let inside = raw.as_ptr_range().contains(&b0.as_ptr());
        assert!(inside, "the 8bit body shares the raw buffer");
        assert_eq!(b1, &b"Hello"[..]);
        let inside = raw.as_ptr_range().contains(&b1.as_ptr());
        assert!(!inside, "the decoded body is its own buffer");
    }

    #[test]
    fn impossible_dates_become_null() {
        // mail-parser formats 30 February as "2026-02-30T10:00:00Z" without complaint.
        let (m, _) = parse(b"Date: Mon, 30 Feb 2026 10:00:00 +0000\r\nSubject: x\r\n\r\nx\r\n");
        assert_eq!(m.date, None);
        let (m, _) = parse(b"Date: Sat, 28 Feb 2026 10:00:00 +0000\r\nSubject: x\r\n\r\nx\r\n");
        assert_eq!(m.date.as_deref(), Some("2026-02-28T10:00:00Z"));
    }

    #[test]
    fn limits_record_instead_of_failing() {
        let lim = ParseLimits {
            max_total_bytes: 400,
            max_header_bytes: 8,
            max_parts: 3,
            max_body_bytes: 4,
            max_field_bytes: 5,
            ..ParseLimits::default()
        };
        let (m, limits) = parse_with(MAIL, &lim);
        assert!(limits.truncated);
        for f in ["raw", "message.headers", "message.subject", "message.from"] {
            assert!(
                limits.fields.iter().any(|x| x == f),
                "{f} in {:?}",
                limits.fields
            );
        }
        assert_eq!(m.subject.as_deref(), Some("Grü"));
        assert!(m.headers.iter().all(|(_, v)| v.len() <= 8));
        let mut many =
            b"Subject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
        for i in 0..6 {
            many.extend_from_slice(
                format!("--b\r\nContent-Type: application/x-{i}\r\n\r\nx\r\n").as_bytes(),
            );
        }
        many.extend_from_slice(b"--b--\r\n");
        let (m, limits) = parse_with(&many, &lim);
        assert!(m.attachments.len() < 6);
        assert!(limits.fields.iter().any(|f| f == "message.attachments"));
    }

    #[test]
    fn garbage_still_yields_an_event() {
        let (m, _) = parse(b"\x00\x01\x02");
        assert!(m.subject.is_none());
        let (_, limits) = parse(b"");
        assert_eq!(limits.notes.len(), 1);
    }
}

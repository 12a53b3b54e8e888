//! Parsing with mail-parser into the `message` object of the payload. Never fails: a message
//! mail-parser cannot make sense of still yields an event, with a note in `limits`.

use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders};
use postwire_core::event::{Attachment, Limits, Mailbox, Message};
use postwire_core::ids::sha256_hex;

/// Parses raw bytes. Returns the message and notes about anything lost or odd.
pub fn parse(raw: &[u8]) -> (Message, Limits) {
    let mut limits = Limits::default();
    let Some(msg) = MessageParser::default().parse(raw) else {
        limits
            .notes
            .push("the message could not be parsed as RFC 5322; only the raw form is kept".into());
        return (Message::default(), limits);
    };
    let text_of = |v: &HeaderValue| match v {
        HeaderValue::Text(t) => Some(t.to_string()),
        HeaderValue::TextList(l) => l.first().map(|t| t.to_string()),
        _ => None,
    };
    let list_of = |v: &HeaderValue| match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    };
    let headers = msg
        .headers()
        .iter()
        .map(|h| {
            let value = match h.value() {
                HeaderValue::Text(t) => unfold(t),
                HeaderValue::TextList(l) => unfold(&l.join(", ")),
                _ => unfold(&String::from_utf8_lossy(
                    raw.get(h.offset_start() as usize..h.offset_end() as usize)
                        .unwrap_or_default(),
                )),
            };
            (h.name().to_string(), value)
        })
        .collect();
    let html = msg
        .html_bodies()
        .find(|p| p.is_text_html())
        .and_then(|p| p.text_contents().map(str::to_string));
    let attachments = msg
        .attachments()
        .enumerate()
        .map(|(i, part)| {
            let content_type = part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".into())
                .to_ascii_lowercase();
            let contents = part.contents();
            let inline = part.content_disposition().is_some_and(|d| d.is_inline());
            Attachment {
                id: format!("att_{i}"),
                filename: part.attachment_name().map(safe_filename),
                content_type,
                size: contents.len() as u64,
                sha256: sha256_hex(contents),
                disposition: if inline { "inline" } else { "attachment" }.into(),
                content_id: part
                    .content_id()
                    .map(|c| c.trim_matches(['<', '>']).to_string()),
                url: None,
                url_expires_at: None,
                content_base64: None,
            }
        })
        .collect();
    let message = Message {
        message_id: msg.message_id().map(str::to_string),
        in_reply_to: text_of(msg.in_reply_to()),
        references: list_of(msg.references()),
        date: msg.date().map(|d| d.to_rfc3339()),
        subject: msg.subject().map(str::to_string),
        from: mailboxes(msg.from()),
        sender: mailboxes(msg.sender()),
        to: mailboxes(msg.to()),
        cc: mailboxes(msg.cc()),
        reply_to: mailboxes(msg.reply_to()),
        headers,
        text: msg.body_text(0).map(|t| t.into_owned()),
        html,
        attachments,
    };
    (message, limits)
}

fn mailboxes(addr: Option<&Address>) -> Vec<Mailbox> {
    let mk = |a: &mail_parser::Addr, group: Option<&str>| Mailbox {
        name: a.name.as_ref().map(|n| n.to_string()),
        address: a.address.as_ref().map(|n| n.to_string()),
        group: group.map(str::to_string),
    };
    match addr {
        None => Vec::new(),
        Some(Address::List(list)) => list.iter().map(|a| mk(a, None)).collect(),
        Some(Address::Group(groups)) => groups
            .iter()
            .flat_map(|g| g.addresses.iter().map(move |a| mk(a, g.name.as_deref())))
            .collect(),
    }
}

/// A header value unfolded (RFC 5322 §2.2.3) and trimmed.
fn unfold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if i > 0 && !line.is_empty() {
            out.push(' ');
            out.push_str(line.trim_start());
        } else {
            out.push_str(line);
        }
    }
    out.trim().to_string()
}

/// The last path component of a file name, without control characters.
pub fn safe_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = base.chars().filter(|c| !c.is_control()).collect();
    match clean.trim() {
        "" | "." | ".." => "attachment".into(),
        s => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn garbage_still_yields_an_event() {
        let (m, _) = parse(b"\x00\x01\x02");
        assert!(m.subject.is_none());
        let (_, limits) = parse(b"");
        assert_eq!(limits.notes.len(), 1);
    }
}

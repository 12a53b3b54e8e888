//! Attachments: decoded file name without path components, content type, size, sha256,
//! disposition, Content-ID, and for `message/rfc822` parts the enclosed message, parsed.

use std::borrow::Cow;

use bytes::Bytes;
use mail_parser::{MimeHeaders, PartType};
use postwire_core::event::{Attachment, Limits};
use postwire_core::ids::sha256_hex;

use super::limits::{ParseLimits, clip};

/// Depth of every part below the root (root = 0); parts not reachable stay at 0.
pub fn part_depths(msg: &mail_parser::Message<'_>) -> Vec<usize> {
    let mut depth = vec![0usize; msg.parts.len()];
    let mut stack = vec![0usize];
    let mut seen = vec![false; msg.parts.len()];
    while let Some(i) = stack.pop() {
        if i >= msg.parts.len() || std::mem::replace(&mut seen[i], true) {
            continue;
        }
        if let PartType::Multipart(children) = &msg.parts[i].body {
            for &c in children {
                let c = c as usize;
                if c < depth.len() && !seen[c] {
                    depth[c] = depth[i] + 1;
                    stack.push(c);
                }
            }
        }
    }
    depth
}

/// The attachments of `msg`. With `bodies`, the index in `msg.parts` of each returned
/// attachment is pushed there too, in the same order (the parse takes their contents out of
/// the parsed tree for the store stage and the antivirus, so a large mail is parsed once and
/// its attachments are not copied).
pub fn collect(
    msg: &mail_parser::Message<'_>,
    mut bodies: Option<&mut Vec<u32>>,
    lim: &ParseLimits,
    depth: usize,
    path: &str,
    limits: &mut Limits,
    nested: &mut dyn FnMut(
        &mail_parser::Message<'_>,
        &str,
        &mut Limits,
    ) -> postwire_core::event::Message,
) -> Vec<Attachment> {
    let depths = part_depths(msg);
    let field = format!("{path}.attachments");
    let mut out = Vec::new();
    for &idx in &msg.attachments {
        let idx = idx as usize;
        let Some(part) = msg.parts.get(idx) else {
            continue;
        };
        if idx >= lim.max_parts {
            limits.cut(
                &field,
                format!(
                    "{field}: more than {} MIME parts, the rest ignored",
                    lim.max_parts
                ),
            );
            break;
        }
        if depth + depths[idx] > lim.max_depth {
            limits.cut(
                &field,
                format!(
                    "{field}: a part nested deeper than {} was ignored",
                    lim.max_depth
                ),
            );
            continue;
        }
        let n = out.len();
        let apath = format!("{field}[{n}]");
        let content_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub),
                None => ct.ctype().to_string(),
            })
            .unwrap_or_else(|| match part.body {
                PartType::Message(_) => "message/rfc822".into(),
                _ => "application/octet-stream".into(),
            })
            .to_ascii_lowercase();
        let contents = part.contents();
        let message = match &part.body {
            PartType::Message(m) if depth + depths[idx] < lim.max_depth => {
                Some(Box::new(nested(m, &format!("{apath}.message"), limits)))
            }
            PartType::Message(_) => {
                limits.cut(
                    &format!("{apath}.message"),
                    format!(
                        "{apath}: enclosed message nested deeper than {}",
                        lim.max_depth
                    ),
                );
                None
            }
            _ => None,
        };
        let filename = part
            .attachment_name()
            .map(safe_filename)
            .map(|f| clip(f, lim.max_field_bytes, &format!("{apath}.filename"), limits));
        out.push(Attachment {
            id: format!("att_{n}"),
            filename,
            content_type,
            size: contents.len() as u64,
            sha256: sha256_hex(contents),
            disposition: if super::body::is_inline(part) {
                "inline"
            } else {
                "attachment"
            }
            .into(),
            content_id: part.content_id().map(|c| {
                clip(
                    c.trim().trim_matches(['<', '>']).to_string(),
                    lim.max_field_bytes,
                    &format!("{apath}.content_id"),
                    limits,
                )
            }),
            url: None,
            url_expires_at: None,
            message,
            content_base64: None,
            scan: None,
        });
        if let Some(b) = bodies.as_deref_mut() {
            b.push(idx as u32);
        }
    }
    out
}

/// The contents of the parts `parts` (as `MessagePart::contents` gives them), moved out of the
/// parsed tree instead of copied: a decoded body is the decoder's buffer, a body that is the
/// raw bytes as they are is a view of `whole` (the buffer the message was parsed from).
pub fn take_bodies(msg: &mut mail_parser::Message<'_>, parts: &[u32], whole: &Bytes) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(parts.len());
    for &idx in parts {
        let Some(part) = msg.parts.get_mut(idx as usize) else {
            out.push(Bytes::new());
            continue;
        };
        let bytes = match std::mem::take(&mut part.body) {
            PartType::Text(t) | PartType::Html(t) => match t {
                Cow::Owned(s) => Bytes::from(s.into_bytes()),
                Cow::Borrowed(s) => view(whole, s.as_bytes()),
            },
            PartType::Binary(b) | PartType::InlineBinary(b) => owned_or_view(b, whole),
            PartType::Message(m) => {
                // As `Message::raw_message`: its root part's range of its raw bytes.
                let range = m
                    .parts
                    .first()
                    .map(|p| p.offset_header as usize..p.offset_end as usize);
                let bytes = owned_or_view(m.raw_message, whole);
                match range.filter(|r| r.start <= r.end && r.end <= bytes.len()) {
                    Some(r) => bytes.slice(r),
                    None => Bytes::new(),
                }
            }
            PartType::Multipart(_) => Bytes::new(),
        };
        out.push(bytes);
    }
    out
}

fn owned_or_view(b: Cow<'_, [u8]>, whole: &Bytes) -> Bytes {
    match b {
        Cow::Owned(v) => Bytes::from(v),
        Cow::Borrowed(s) => view(whole, s),
    }
}

/// `s` as a view of `whole` when it lies inside it (it always does for a part borrowed from
/// the parsed raw mail); a copy otherwise.
fn view(whole: &Bytes, s: &[u8]) -> Bytes {
    let outer = whole.as_ptr_range();
    let inner = s.as_ptr_range();
    if s.is_empty() {
        Bytes::new()
    } else if outer.start <= inner.start && inner.end <= outer.end {
        whole.slice_ref(s)
    } else {
        Bytes::copy_from_slice(s)
    }
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

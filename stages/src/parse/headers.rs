//! Headers and addresses: every header in order (decoded, unfolded), structured mailboxes
//! with display names, groups and IDN domains in Unicode.

use mail_parser::{Address, HeaderValue};
use postwire_core::event::{Limits, Mailbox};

use super::limits::{ParseLimits, clip};

/// Every header as `(name, value)`, within the count and size limits.
pub fn all(
    msg: &mail_parser::Message<'_>,
    lim: &ParseLimits,
    path: &str,
    limits: &mut Limits,
) -> Vec<(String, String)> {
    let raw = msg.raw_message();
    let headers = msg.headers();
    let field = format!("{path}.headers");
    if headers.len() > lim.max_headers {
        limits.cut(
            &field,
            format!(
                "{field}: {} headers, kept the first {}",
                headers.len(),
                lim.max_headers
            ),
        );
    }
    headers
        .iter()
        .take(lim.max_headers)
        .map(|h| {
            let value = match h.value() {
                HeaderValue::Text(t) => unfold(t),
                HeaderValue::TextList(l) => unfold(&l.join(", ")),
                HeaderValue::Address(a) => render_address(a),
                _ => unfold(&String::from_utf8_lossy(
                    raw.get(h.offset_start() as usize..h.offset_end() as usize)
                        .unwrap_or_default(),
                )),
            };
            let name = h.name().to_string();
            (name, clip(value, lim.max_header_bytes, &field, limits))
        })
        .collect()
}

/// An address header as text, decoded: `Name <a@b>, Group: c@d;`.
fn render_address(addr: &Address<'_>) -> String {
    let one = |a: &mail_parser::Addr<'_>| match (&a.name, &a.address) {
        (Some(n), Some(ad)) => format!("{n} <{ad}>"),
        (None, Some(ad)) => ad.to_string(),
        (Some(n), None) => n.to_string(),
        (None, None) => String::new(),
    };
    match addr {
        Address::List(l) => l.iter().map(one).collect::<Vec<_>>().join(", "),
        Address::Group(groups) => groups
            .iter()
            .map(|g| {
                let members = g.addresses.iter().map(one).collect::<Vec<_>>().join(", ");
                match &g.name {
                    Some(n) => format!("{n}: {members};"),
                    None => members,
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Mailboxes of an address header; group members carry the group name.
pub fn mailboxes(
    addr: Option<&Address<'_>>,
    lim: &ParseLimits,
    path: &str,
    limits: &mut Limits,
) -> Vec<Mailbox> {
    let mut mk = |a: &mail_parser::Addr<'_>, group: Option<&str>| Mailbox {
        name: a
            .name
            .as_ref()
            .map(|n| clip(n.trim().to_string(), lim.max_field_bytes, path, limits))
            .filter(|n| !n.is_empty()),
        address: a
            .address
            .as_ref()
            .map(|n| clip(idn_to_unicode(n), lim.max_field_bytes, path, limits)),
        group: group.map(str::to_string),
    };
    match addr {
        None => Vec::new(),
        Some(Address::List(list)) => list.iter().map(|a| mk(a, None)).collect(),
        Some(Address::Group(groups)) => groups
            .iter()
            .flat_map(|g| {
                g.addresses
                    .iter()
                    .map(|a| mk(a, g.name.as_deref()))
                    .collect::<Vec<_>>()
            })
            .collect(),
    }
}

/// `user@xn--bcher-kva.example` → `user@bücher.example`; anything else unchanged.
pub fn idn_to_unicode(addr: &str) -> String {
    let addr = addr.trim();
    match addr.rsplit_once('@') {
        Some((local, domain)) if domain.to_ascii_lowercase().contains("xn--") => {
            let (uni, res) = idna::domain_to_unicode(domain);
            if res.is_ok() {
                format!("{local}@{uni}")
            } else {
                addr.to_string()
            }
        }
        _ => addr.to_string(),
    }
}

pub fn text_of(v: &HeaderValue<'_>) -> Option<String> {
    match v {
        HeaderValue::Text(t) => Some(t.to_string()),
        HeaderValue::TextList(l) => l.first().map(|t| t.to_string()),
        _ => None,
    }
}

pub fn list_of(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// A header value unfolded (RFC 5322 §2.2.3) and trimmed.
pub fn unfold(text: &str) -> String {
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

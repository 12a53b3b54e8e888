//! Text and HTML bodies chosen as a mail client shows them: every part of the text view
//! (or of the HTML view) in order, alternatives resolved, related parts kept as inline
//! attachments, HTML-only mail rendered to text and text-only mail left without `html`.

use std::collections::HashMap;

use mail_parser::MimeHeaders;

use super::sanitize::sanitize;
use super::stripped::html::strip_html;

/// The views of a message; the HTML ones are already sanitised.
pub struct Bodies {
    pub text: Option<String>,
    pub html: Option<String>,
    /// `html` without quoted history and signature (see `stripped::html`).
    pub stripped_html: Option<String>,
}

/// The text and HTML views of a message.
pub fn bodies(msg: &mail_parser::Message<'_>, max_parts: usize) -> Bodies {
    let texts: Vec<String> = msg
        .text_body
        .iter()
        .take(max_parts)
        .enumerate()
        .filter_map(|(i, &idx)| match msg.parts.get(idx as usize) {
            // mail-parser's own conversion breaks lines only at <br> and </p>.
            Some(part) if part.is_text_html() => part.text_contents().map(html_to_text),
            _ => msg.body_text(i).map(|t| t.into_owned()),
        })
        .map(|t| normalize_text(&t))
        .collect();
    let has_real_html = msg.html_bodies().take(max_parts).any(|p| p.is_text_html());
    let raw_html = has_real_html.then(|| {
        (0..msg.html_body.len().min(max_parts))
            .filter_map(|i| msg.body_html(i).map(|t| t.into_owned()))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let html = raw_html.as_deref().map(|h| sanitize(h, &HashMap::new()));
    let stripped_html = raw_html.as_deref().map(|h| match strip_html(h) {
        Some(reply) => sanitize(&reply, &HashMap::new()),
        None => html.clone().unwrap_or_default(),
    });
    let text = (!texts.is_empty()).then(|| texts.join("\n"));
    Bodies {
        text,
        html,
        stripped_html,
    }
}

/// Plain text of an HTML part: every block element ends a line.
pub fn html_to_text(html: &str) -> String {
    const BLOCKS: [&str; 16] = [
        "</h1>",
        "</h2>",
        "</h3>",
        "</h4>",
        "</h5>",
        "</h6>",
        "</div>",
        "</li>",
        "</tr>",
        "</table>",
        "</blockquote>",
        "</pre>",
        "</ul>",
        "</ol>",
        "</dt>",
        "</dd>",
    ];
    let mut marked = String::with_capacity(html.len() + 64);
    let lower = html.to_ascii_lowercase();
    let mut last = 0;
    let mut i = 0;
    while let Some(off) = lower[i..].find("</") {
        let at = i + off;
        if let Some(tag) = BLOCKS.iter().find(|t| lower[at..].starts_with(*t)) {
            let end = at + tag.len();
            marked.push_str(&html[last..end]);
            marked.push_str("<br>");
            last = end;
            i = end;
        } else {
            i = at + 2;
        }
    }
    marked.push_str(&html[last..]);
    mail_parser::decoders::html::html_to_text(&marked)
}

/// Line ends as `\n`, no byte-order mark (mail-parser keeps both as sent).
pub fn normalize_text(text: &str) -> String {
    text.trim_start_matches('\u{feff}').replace("\r\n", "\n")
}

/// True for parts that are inline images of the HTML view (`multipart/related`).
pub fn is_inline(part: &mail_parser::MessagePart<'_>) -> bool {
    part.content_disposition().is_some_and(|d| d.is_inline())
        || (part.content_disposition().is_none() && part.content_id().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_elements_end_lines() {
        let t = html_to_text("<h1>Title</h1><p>One</p><ul><li>a</li><li>b</li></ul>");
        assert_eq!(
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>(),
            ["Title", "One", "a", "b"]
        );
    }

    #[test]
    fn text_is_normalised() {
        assert_eq!(normalize_text("\u{feff}a\r\nb\r\n"), "a\nb\n");
    }
}

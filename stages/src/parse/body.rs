//! Text and HTML bodies chosen as a mail client shows them: every part of the text view
//! (or of the HTML view) in order, alternatives resolved, related parts kept as inline
//! attachments, HTML-only mail rendered to text and text-only mail left without `html`.

use std::collections::HashMap;

use mail_parser::MimeHeaders;

use super::sanitize::sanitize;

/// `(text, html)` of a message; `html` is already sanitised.
pub fn bodies(
    msg: &mail_parser::Message<'_>,
    max_parts: usize,
) -> (Option<String>, Option<String>) {
    let texts: Vec<String> = (0..msg.text_body.len().min(max_parts))
        .filter_map(|i| msg.body_text(i).map(|t| t.into_owned()))
        .collect();
    let has_real_html = msg.html_bodies().take(max_parts).any(|p| p.is_text_html());
    let html = has_real_html.then(|| {
        let html: String = (0..msg.html_body.len().min(max_parts))
            .filter_map(|i| msg.body_html(i).map(|t| t.into_owned()))
            .collect::<Vec<_>>()
            .join("\n");
        sanitize(&html, &HashMap::new())
    });
    let text = (!texts.is_empty()).then(|| texts.join("\n"));
    (text, html)
}

/// True for parts that are inline images of the HTML view (`multipart/related`).
pub fn is_inline(part: &mail_parser::MessagePart<'_>) -> bool {
    part.content_disposition().is_some_and(|d| d.is_inline())
        || (part.content_disposition().is_none() && part.content_id().is_some())
}

//! HTML sanitising with ammonia: scripts, styles, event handlers, `javascript:` and other
//! unsafe URLs, forms and embedded objects are removed; the presentational markup mail
//! relies on (tables, fonts, colours, sizes) stays. `cid:` references are rewritten to
//! attachment URLs when the store stage provides them, and kept as `cid:` otherwise.

use std::borrow::Cow;
use std::collections::HashMap;

/// Sanitises `html`. `cid_urls` maps Content-IDs (without `<>`) to attachment URLs.
pub fn sanitize(html: &str, cid_urls: &HashMap<String, String>) -> String {
    let cids = cid_urls.clone();
    ammonia::Builder::default()
        .add_url_schemes(["cid"])
        .add_generic_attributes([
            "align", "valign", "bgcolor", "color", "width", "height", "border", "dir",
        ])
        .add_tags(["font", "center"])
        .add_tag_attributes("font", ["face", "size"])
        .add_tag_attributes("table", ["cellpadding", "cellspacing"])
        .attribute_filter(move |_element, attribute, value| {
            // Compare bytes: the fifth byte may sit inside a multi-byte character.
            if matches!(attribute, "src" | "href" | "background")
                && value.len() > 4
                && value.as_bytes()[..4].eq_ignore_ascii_case(b"cid:")
            {
                let id = value[4..].trim_matches(['<', '>']);
                return Some(match cids.get(id) {
                    Some(url) => Cow::Owned(url.clone()),
                    None => Cow::Borrowed(value),
                });
            }
            Some(Cow::Borrowed(value))
        })
        .clean(html)
        .to_string()
}

/// Points the `cid:` references of already sanitised HTML at the attachments' URLs, once the
/// store stage gave them one. ammonia writes every attribute value in double quotes with `&`
/// and `"` escaped, so a quoted `cid:<id>` is exactly an attribute value.
pub fn rewrite_cids(message: &mut postwire_core::event::Message) {
    let attachments = &message.attachments;
    for html in [message.html.as_mut(), message.stripped_html.as_mut()]
        .into_iter()
        .flatten()
    {
        rewrite(html, attachments);
    }
}

fn rewrite(html: &mut String, attachments: &[postwire_core::event::Attachment]) {
    for a in attachments {
        let (Some(id), Some(url)) = (&a.content_id, &a.url) else {
            continue;
        };
        let escaped = url.replace('&', "&amp;").replace('"', "&quot;");
        let id = id.replace('&', "&amp;").replace('"', "&quot;");
        for scheme in ["cid:", "CID:", "Cid:"] {
            let needle = format!("\"{scheme}{id}\"");
            if html.contains(&needle) {
                *html = html.replace(&needle, &format!("\"{escaped}\""));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cid_references_follow_stored_attachments() {
        let mut m = postwire_core::event::Message {
            html: Some(sanitize(
                r#"<img src="cid:logo@x"><img src="cid:other">"#,
                &HashMap::new(),
            )),
            attachments: vec![postwire_core::event::Attachment {
                id: "att_0".into(),
                filename: None,
                content_type: "image/png".into(),
                size: 1,
                sha256: "0".repeat(64),
                disposition: "inline".into(),
                content_id: Some("logo@x".into()),
                url: Some("https://blobs.example/a?sig=1&exp=2".into()),
                url_expires_at: None,
                message: None,
                content_base64: None,
                scan: None,
            }],
            ..Default::default()
        };
        rewrite_cids(&mut m);
        let html = m.html.unwrap();
        assert!(
            html.contains(r#"src="https://blobs.example/a?sig=1&amp;exp=2""#),
            "{html}"
        );
        assert!(html.contains(r#"src="cid:other""#), "{html}");
    }

    #[test]
    fn removes_active_content_keeps_layout() {
        let dirty = r##"<p onclick="x()">Hi <b>there</b></p><script>alert(1)</script>
<a href="javascript:alert(1)">j</a><form action="https://evil"><input name=p></form>
<table cellpadding="2"><tr><td bgcolor="#fff">c</td></tr></table><img src="cid:logo@x">"##;
        let clean = sanitize(dirty, &HashMap::new());
        for bad in ["script", "onclick", "javascript", "<form", "<input"] {
            assert!(!clean.contains(bad), "{bad} in {clean}");
        }
        for good in [
            "<b>there</b>",
            "bgcolor=\"#fff\"",
            "cellpadding",
            "src=\"cid:logo@x\"",
        ] {
            assert!(clean.contains(good), "{good} missing in {clean}");
        }
        let urls = HashMap::from([("logo@x".to_string(), "https://s/a".to_string())]);
        assert!(sanitize(r#"<img src="cid:logo@x">"#, &urls).contains("src=\"https://s/a\""));
    }

    #[test]
    fn multibyte_character_where_cid_colon_would_be() {
        // Found by fuzzing (parse_sanitize): "cid\u{fffd}pic" sliced inside the character.
        let clean = sanitize("<img src=\"cid\u{fffd}pic\">", &HashMap::new());
        assert!(clean.starts_with("<img"), "{clean}");
    }
}

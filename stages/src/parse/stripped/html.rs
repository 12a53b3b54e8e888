//! `stripped_html`: the HTML view without quoted history and signature. Works on the HTML as
//! the client wrote it (before sanitising, which drops the classes and ids that mark quotes):
//! the containers clients put history in are removed — Gmail's `gmail_quote`, Apple Mail's
//! and Thunderbird's `<blockquote type="cite">` (with Thunderbird's `moz-cite-prefix`),
//! Yahoo's and Proton's quote blocks, Gmail's and Thunderbird's signature blocks — wherever
//! they are, so inline and bottom-posted replies keep the sender's text around them; from
//! Outlook's reply header (`divRplyFwdMsg`, `appendonsend`, the `border-top` rule above
//! `From:`/`Sent:`, Hotmail's `stopSpelling` rule) everything to the end is history, as
//! Outlook only top-posts. The result is sanitised like `html`.

/// Containers whose whole element is history or signature.
const CONTAINERS: &[&str] = &[
    "class=\"gmail_quote",
    "class=\"gmail_signature",
    "type=\"cite\"",
    "class=\"moz-cite-prefix",
    "class=\"moz-signature",
    "class=\"yahoo_quoted",
    "class=\"protonmail_quote",
    "class=\"zmail_extra",
];

/// Marks after which everything is history.
const REST: &[&str] = &[
    "id=\"divrplyfwdmsg\"",
    "id=\"appendonsend\"",
    "id=\"stopspelling\"",
    "border-top:solid #e1e1e1",
    "border-top: solid #e1e1e1",
    "border-top:solid #b5c4df",
    "border-top: solid #b5c4df",
];

/// The start of the tag holding `needle` at `at` (a `<` with no `>` between), and its name.
fn tag_around(lower: &str, at: usize) -> Option<(usize, String)> {
    let start = lower[..at].rfind('<')?;
    if lower[start..at].contains('>') {
        return None;
    }
    let name: String = lower[start + 1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    (!name.is_empty()).then_some((start, name))
}

/// The first marker of `set` found at or after `from`: the start of its tag and its name.
fn first(lower: &str, from: usize, set: &[&str]) -> Option<(usize, String)> {
    set.iter()
        .filter_map(|m| {
            let mut pos = from;
            while let Some(off) = lower[pos..].find(m) {
                let at = pos + off;
                if let Some(t) = tag_around(lower, at) {
                    return Some(t);
                }
                pos = at + m.len();
            }
            None
        })
        .min_by_key(|(start, _)| *start)
}

/// The end (after its closing tag) of the `name` element starting at `start`, counting
/// nested elements of the same name; the end of the text when it is never closed.
fn element_end(lower: &str, start: usize, name: &str) -> usize {
    let open = format!("<{name}");
    let close = format!("</{name}");
    let mut depth = 0usize;
    let mut pos = start;
    loop {
        let next_open = lower[pos..].find(&open).map(|o| pos + o);
        let next_close = lower[pos..].find(&close).map(|c| pos + c);
        match (next_open, next_close) {
            (Some(o), Some(c)) if o < c => {
                let after = lower.as_bytes().get(o + open.len()).copied();
                if after.is_none_or(|b| !b.is_ascii_alphanumeric()) {
                    depth += 1;
                }
                pos = o + open.len();
            }
            (_, Some(c)) => {
                depth = depth.saturating_sub(1);
                let end = lower[c..].find('>').map_or(lower.len(), |e| c + e + 1);
                if depth == 0 {
                    return end;
                }
                pos = end;
            }
            (_, None) => return lower.len(),
        }
    }
}

/// The HTML reply, unsanitised (the caller sanitises), or `None` when the HTML holds no
/// marker at all (then it is the reply as it is).
pub fn strip_html(html: &str) -> Option<String> {
    // Lower-casing ASCII only keeps byte offsets aligned with `html`.
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len());
    let mut pos = 0;
    let mut found = false;
    let cut = first(&lower, 0, REST).map_or(html.len(), |(s, _)| s);
    found |= cut < html.len();
    while let Some((start, name)) = first(&lower, pos, CONTAINERS).filter(|(s, _)| *s < cut) {
        found = true;
        out.push_str(&html[pos..start]);
        pos = element_end(&lower, start, &name).min(cut).max(start + 1);
    }
    if !found {
        return None;
    }
    if pos < cut {
        out.push_str(&html[pos..cut]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::strip_html;

    fn text(h: &str) -> String {
        crate::parse::body::html_to_text(&crate::parse::sanitize::sanitize(h, &Default::default()))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn gmail_apple_thunderbird_outlook() {
        let gmail = r#"<div dir="ltr">Yes, Tuesday.<div><br></div></div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, Nov 23, 2026 at 10:00 AM Ann &lt;<a href="mailto:a@b">a@b</a>&gt; wrote:<br></div><blockquote class="gmail_quote" style="margin:0px"><div dir="ltr">Does <div>Tuesday</div> work?</div></blockquote></div>"#;
        assert_eq!(text(&strip_html(gmail).unwrap()), "Yes, Tuesday.");
        let apple = r#"<html><body dir="auto">Sounds good!<br><br><div dir="ltr"><br><blockquote type="cite">On 23 Nov 2026, at 10:00, Ann &lt;a@b&gt; wrote:<br><br></blockquote></div><blockquote type="cite"><div dir="ltr">Lunch?</div></blockquote></body></html>"#;
        assert_eq!(text(&strip_html(apple).unwrap()), "Sounds good!");
        let tb = r#"<p>I'll be there.</p><div class="moz-cite-prefix">On 23/11/2026 10:00, Ann wrote:<br></div><blockquote type="cite" cite="mid:x@y"><p>Party at 8?</p><blockquote type="cite">older</blockquote>still quoted</blockquote><pre class="moz-signature" cols="72">-- Bob</pre>"#;
        assert_eq!(text(&strip_html(tb).unwrap()), "I'll be there.");
        let outlook = r#"<div>Yes.</div><div id="appendonsend"></div><hr style="display:inline-block;width:98%"><div id="divRplyFwdMsg" dir="ltr"><b>From:</b> Ann<br><b>Sent:</b> Monday</div><div>old text</div>"#;
        assert_eq!(text(&strip_html(outlook).unwrap()), "Yes.");
        let desktop = r#"<div class=WordSection1><p>Agreed.</p><div><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm"><p><b>From:</b> Ann</p></div></div><p>old</p></div>"#;
        assert_eq!(text(&strip_html(desktop).unwrap()), "Agreed.");
    }

    #[test]
    fn inline_and_bottom_posted_replies_keep_every_part() {
        let inline = r#"<div class="moz-cite-prefix">On 1/1/2026 Ann wrote:</div><blockquote type="cite">Question one?</blockquote><div>Answer one.</div><blockquote type="cite">Question two?</blockquote><p>Answer two.</p>"#;
        assert_eq!(
            text(&strip_html(inline).unwrap()),
            "Answer one. Answer two."
        );
        assert_eq!(strip_html("<p>No quote here.</p>"), None);
        // Unclosed containers end the text; a marker in text is not a tag.
        assert_eq!(
            text(&strip_html(r#"Hi<div class="gmail_quote">old"#).unwrap()),
            "Hi"
        );
        assert_eq!(strip_html(r#"<p>type="cite" is an attribute</p>"#), None);
    }
}

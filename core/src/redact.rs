//! What may reach logs, audit records and API documents of a URL: the one place URLs are
//! redacted. Credentials are dropped, a query (which often carries a token) becomes `…`, the
//! fragment goes; scheme, host, port and path stay. [`text`] does the same to every URL inside
//! a free text, such as an HTTP client's error (`error sending request for url (…)`).

/// `url` fit for a log line; `<bad url>` when it does not parse.
pub fn url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            let had_query = u.query().is_some();
            u.set_query(None);
            u.set_fragment(None);
            if had_query {
                format!("{u}?…")
            } else {
                u.to_string()
            }
        }
        Err(_) => "<bad url>".into(),
    }
}

/// `text` with every `http://` or `https://` URL in it redacted as [`url`] does.
pub fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_scheme(rest) {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(tail.len());
        out.push_str(&url(&tail[..end]));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Where the first `http://` or `https://` (any case) starts.
fn find_scheme(s: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    [lower.find("http://"), lower.find("https://")]
        .into_iter()
        .flatten()
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_keeps_scheme_host_port_and_path() {
        assert_eq!(
            url("https://user:pw@hooks.example:8443/in/bound?token=s3cret#frag"),
            "https://hooks.example:8443/in/bound?…"
        );
        assert_eq!(url("https://hooks.example/a"), "https://hooks.example/a");
        assert_eq!(url("not a url"), "<bad url>");
    }

    #[test]
    fn every_url_in_an_error_text_is_redacted() {
        let e = "connection failed: error sending request for url (http://127.0.0.1:9/hook?token=abc): \
                 tcp connect error; retried HTTPS://Other.example/x?k=v\tand";
        let r = text(e);
        assert!(!r.contains("abc") && !r.contains("k=v"), "{r}");
        assert!(r.contains("(http://127.0.0.1:9/hook?…)"), "{r}");
        assert!(r.contains("tcp connect error"), "{r}");
        assert!(r.ends_with("\tand"), "{r}");
        assert_eq!(text("no url here"), "no url here");
    }
}

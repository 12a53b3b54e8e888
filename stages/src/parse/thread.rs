//! `thread_id`: one id for every mail of a conversation, from `References`, `In-Reply-To` and
//! `Message-ID`.
//!
//! The root of a conversation is the first id of `References` (RFC 5322 §3.6.4: a reply's
//! `References` is its parent's `References` followed by the parent's id, so the first entry
//! is the mail that started it). A reply from a client that writes no `References` falls back
//! on its parent (`In-Reply-To`), and a mail that starts a conversation is its own root. Ids
//! are normalised so that the spellings clients produce for one id compare equal: angle
//! brackets, white space and `mailto:` dropped, the part after `@` (a domain in practice) in
//! lower case. The local part keeps its case: Gmail's and Outlook's ids differ in case alone.

/// The normalised id of the conversation, or `None` when the mail names no usable id at all.
pub fn thread_id(
    message_id: Option<&str>,
    in_reply_to: Option<&str>,
    references: &[String],
) -> Option<String> {
    references
        .iter()
        .find_map(|r| normalise(r))
        .or_else(|| in_reply_to.and_then(normalise))
        .or_else(|| message_id.and_then(normalise))
}

/// One message id in its comparable form; `None` for text that holds no id.
pub fn normalise(id: &str) -> Option<String> {
    // A header may carry several ids or comments around one; the first `<…>` wins, else the
    // whole text.
    let inner = match (id.find('<'), id.find('>')) {
        (Some(a), Some(b)) if a < b => &id[a + 1..b],
        _ => id,
    };
    let compact: String = inner
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '<' && *c != '>')
        .collect();
    let compact = compact
        .strip_prefix("mailto:")
        .map(str::to_string)
        .unwrap_or(compact);
    if compact.is_empty() {
        return None;
    }
    Some(match compact.rsplit_once('@') {
        Some((local, right)) if !local.is_empty() => {
            format!("{local}@{}", right.to_lowercase())
        }
        _ => compact,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_from_references_then_parent_then_own() {
        let refs = vec![
            "<root@a.example>".to_string(),
            "<mid@b.example>".to_string(),
        ];
        assert_eq!(
            thread_id(Some("me@c.example"), Some("mid@b.example"), &refs).as_deref(),
            Some("root@a.example")
        );
        assert_eq!(
            thread_id(Some("me@c.example"), Some("<mid@B.Example>"), &[]).as_deref(),
            Some("mid@b.example")
        );
        assert_eq!(
            thread_id(Some("me@C.EXAMPLE"), None, &[]).as_deref(),
            Some("me@c.example")
        );
        assert_eq!(thread_id(None, None, &[]), None);
    }

    #[test]
    fn normalises_client_spellings() {
        for s in [
            "<CAF=x+Y@mail.gmail.com>",
            "CAF=x+Y@mail.gmail.com",
            " <CAF=x+Y@MAIL.GMAIL.COM> ",
            "<CAF=x+Y@mail.gmail.com> (comment)",
            "<CAF=x+Y@mail.\r\n gmail.com>",
        ] {
            assert_eq!(
                normalise(s).as_deref(),
                Some("CAF=x+Y@mail.gmail.com"),
                "{s:?}"
            );
        }
        assert_eq!(normalise("<>"), None);
        assert_eq!(normalise("   "), None);
        // Local parts keep their case.
        assert_ne!(normalise("<AbC@x>"), normalise("<abc@x>"));
    }

    #[test]
    fn blank_references_are_skipped() {
        let refs = vec!["".to_string(), "<root@x>".to_string()];
        assert_eq!(thread_id(None, None, &refs).as_deref(), Some("root@x"));
    }
}

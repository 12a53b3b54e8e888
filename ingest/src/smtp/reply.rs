//! SMTP replies: a code, an enhanced status code (RFC 3463) and text, possibly multi-line.

use std::fmt::Write as _;

use super::command::ParseError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Lines of text; the enhanced status code, when there is one, starts the first line.
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply with an enhanced status code, e.g. `Reply::new(250, "2.0.0", "OK")`.
    pub fn new(code: u16, enhanced: &str, text: impl AsRef<str>) -> Reply {
        Reply {
            code,
            lines: vec![format!("{enhanced} {}", text.as_ref())],
        }
    }

    /// A reply without enhanced status code (greeting, EHLO).
    pub fn plain(code: u16, lines: Vec<String>) -> Reply {
        Reply { code, lines }
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// Wire form: `250-first\r\n250 last\r\n`.
    pub fn to_wire(&self) -> String {
        let mut out = String::new();
        let n = self.lines.len().max(1);
        for i in 0..n {
            let sep = if i + 1 == n { ' ' } else { '-' };
            let line = self.lines.get(i).map(String::as_str).unwrap_or("");
            // Reply text never carries CR or LF from input.
            let clean: String = line.chars().filter(|c| *c != '\r' && *c != '\n').collect();
            let _ = write!(out, "{}{}{}\r\n", self.code, sep, clean);
        }
        out
    }
}

/// The reply to a command that does not parse.
impl From<ParseError> for Reply {
    fn from(e: ParseError) -> Reply {
        match e {
            ParseError::Unknown => Reply::new(500, "5.5.1", "Command unrecognized"),
            ParseError::Syntax => Reply::new(500, "5.5.2", "Syntax error"),
            ParseError::BadArguments(why) => {
                Reply::new(501, "5.5.4", format!("Syntax error: {why}"))
            }
            ParseError::BadAddress { rcpt: false, why } => {
                Reply::new(501, "5.1.7", format!("Bad sender address: {why}"))
            }
            ParseError::BadAddress { rcpt: true, why } => {
                Reply::new(501, "5.1.3", format!("Bad recipient address: {why}"))
            }
            ParseError::UnsupportedParam(p) => {
                Reply::new(555, "5.5.4", format!("Unsupported parameter {p}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms() {
        assert_eq!(Reply::new(250, "2.0.0", "OK").to_wire(), "250 2.0.0 OK\r\n");
        let r = Reply::plain(250, vec!["a".into(), "b".into()]);
        assert_eq!(r.to_wire(), "250-a\r\n250 b\r\n");
        assert_eq!(
            Reply::new(500, "5.5.2", "x\r\nMAIL").to_wire(),
            "500 5.5.2 xMAIL\r\n"
        );
    }
}

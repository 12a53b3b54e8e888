//! Parsing one SMTP command line (without its line ending). Bounded: the caller has already
//! limited the line length; nothing here allocates more than the line.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    Mail {
        from: String,
        params: MailParams,
    },
    Rcpt {
        to: String,
    },
    Data,
    Rset,
    Noop,
    Quit,
    Help,
    Vrfy,
    Expn,
    /// `true` when arguments were given (a syntax error).
    StartTls(bool),
    Auth,
    Bdat,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailParams {
    pub size: Option<u64>,
    /// `7BIT` or `8BITMIME`.
    pub body: Option<String>,
    pub smtputf8: bool,
}

/// Why a line is not an acceptable command; each maps to one reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// 500 5.5.1: not a command we know.
    Unknown,
    /// 500 5.5.2: not valid text (bad UTF-8, control characters).
    Syntax,
    /// 501 5.5.4: arguments missing or malformed.
    BadArguments(&'static str),
    /// 501 5.1.7 / 5.1.3: the address in MAIL / RCPT is malformed.
    BadAddress { rcpt: bool, why: &'static str },
    /// 555 5.5.4: a MAIL/RCPT parameter we do not support.
    UnsupportedParam(String),
}

/// Longest reverse or forward path, angle brackets excluded (RFC 5321 §4.5.3.1.3).
pub const MAX_PATH: usize = 256;

pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::Syntax)?;
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Err(ParseError::Syntax);
    }
    let (verb, rest) = match line.find([' ', '\t']) {
        Some(i) => (&line[..i], line[i + 1..].trim()),
        None => (line, ""),
    };
    let verb = verb.to_ascii_uppercase();
    let no_args = |c: Command| {
        if rest.is_empty() {
            Ok(c)
        } else {
            Err(ParseError::BadArguments("no arguments allowed"))
        }
    };
    match verb.as_str() {
        "EHLO" | "HELO" => {
            let name = rest
                .split_whitespace()
                .next()
                .ok_or(ParseError::BadArguments("a domain is required"))?;
            if name.len() > 255 {
                return Err(ParseError::BadArguments("domain too long"));
            }
            Ok(if verb == "EHLO" {
                Command::Ehlo(name.into())
            } else {
                Command::Helo(name.into())
            })
        }
        "MAIL" => {
            let arg = strip_keyword(rest, "FROM:")
                .ok_or(ParseError::BadArguments("syntax is MAIL FROM:<address>"))?;
            let (from, params) = split_path(arg, false)?;
            Ok(Command::Mail {
                from,
                params: parse_mail_params(params)?,
            })
        }
        "RCPT" => {
            let arg = strip_keyword(rest, "TO:")
                .ok_or(ParseError::BadArguments("syntax is RCPT TO:<address>"))?;
            let (to, params) = split_path(arg, true)?;
            if to.is_empty() {
                return Err(ParseError::BadAddress {
                    rcpt: true,
                    why: "empty recipient",
                });
            }
            if let Some(p) = params.split_whitespace().next() {
                return Err(ParseError::UnsupportedParam(p.to_string()));
            }
            Ok(Command::Rcpt { to })
        }
        "DATA" => no_args(Command::Data),
        "RSET" => no_args(Command::Rset),
        "NOOP" => Ok(Command::Noop),
        "QUIT" => no_args(Command::Quit),
        "HELP" => Ok(Command::Help),
        "VRFY" => Ok(Command::Vrfy),
        "EXPN" => Ok(Command::Expn),
        "STARTTLS" => Ok(Command::StartTls(!rest.is_empty())),
        "AUTH" => Ok(Command::Auth),
        "BDAT" => Ok(Command::Bdat),
        _ => Err(ParseError::Unknown),
    }
}

/// `FROM:` / `TO:`, case-insensitive, with optional spaces after the colon.
fn strip_keyword<'a>(rest: &'a str, kw: &str) -> Option<&'a str> {
    let head = rest.get(..kw.len())?;
    head.eq_ignore_ascii_case(kw)
        .then(|| rest[kw.len()..].trim_start())
}

/// Splits `<path> params` into the address (no brackets, source route dropped) and params.
fn split_path(arg: &str, rcpt: bool) -> Result<(String, &str), ParseError> {
    let bad = |why| ParseError::BadAddress { rcpt, why };
    let inner = arg
        .strip_prefix('<')
        .ok_or(bad("the address must be in <angle brackets>"))?;
    // Find the closing '>' outside a quoted local part.
    let mut quoted = false;
    let mut escaped = false;
    let mut end = None;
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => {
                end = Some(i);
                break;
            }
            _ => {}
        }
    }
    let end = end.ok_or(bad("missing >"))?;
    let mut path = &inner[..end];
    let params = inner[end + 1..].trim();
    if !params.is_empty() && !inner[end + 1..].starts_with(' ') {
        return Err(bad("text after >"));
    }
    if path.len() > MAX_PATH {
        return Err(bad("address too long"));
    }
    // Obsolete source route: <@a,@b:user@host> → user@host.
    if path.starts_with('@') {
        path = path
            .split_once(':')
            .map(|(_, p)| p)
            .ok_or(bad("bad source route"))?;
    }
    if path.is_empty() {
        return Ok((String::new(), params));
    }
    validate_mailbox(path).map_err(bad)?;
    Ok((path.to_string(), params))
}

fn validate_mailbox(path: &str) -> Result<(), &'static str> {
    let (local, domain) = path
        .rsplit_once('@')
        .ok_or("the address needs an @domain")?;
    if local.is_empty() || local.len() > 64 {
        return Err("local part must be 1 to 64 octets");
    }
    if domain.is_empty() || domain.len() > 255 {
        return Err("bad domain");
    }
    if !local.starts_with('"')
        && local.contains([' ', '"', '<', '>', '(', ')', ',', ';', '\\', '[', ']'])
    {
        return Err("bad characters in local part");
    }
    let literal = domain.starts_with('[') && domain.ends_with(']');
    if !literal
        && (domain.starts_with('.')
            || domain.contains("..")
            || domain
                .chars()
                .any(|c| c.is_ascii() && !(c.is_ascii_alphanumeric() || c == '-' || c == '.')))
    {
        return Err("bad characters in domain");
    }
    Ok(())
}

fn parse_mail_params(params: &str) -> Result<MailParams, ParseError> {
    let mut out = MailParams::default();
    for p in params.split_whitespace() {
        let (key, value) = match p.split_once('=') {
            Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
            None => (p.to_ascii_uppercase(), None),
        };
        match (key.as_str(), value) {
            ("SIZE", Some(v)) => {
                out.size = Some(
                    v.parse()
                        .map_err(|_| ParseError::BadArguments("SIZE must be a number"))?,
                );
            }
            ("BODY", Some(v))
                if v.eq_ignore_ascii_case("7BIT") || v.eq_ignore_ascii_case("8BITMIME") =>
            {
                out.body = Some(v.to_ascii_uppercase());
            }
            ("SMTPUTF8", None) => out.smtputf8 = true,
            _ => return Err(ParseError::UnsupportedParam(p.to_string())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_with_params() {
        let c = parse(b"mail from: <a@b.test> SIZE=100 BODY=8bitmime SMTPUTF8").unwrap();
        assert_eq!(
            c,
            Command::Mail {
                from: "a@b.test".into(),
                params: MailParams {
                    size: Some(100),
                    body: Some("8BITMIME".into()),
                    smtputf8: true
                }
            }
        );
    }

    #[test]
    fn null_sender_and_source_route() {
        assert!(
            matches!(parse(b"MAIL FROM:<>"), Ok(Command::Mail { from, .. }) if from.is_empty())
        );
        assert!(
            matches!(parse(b"RCPT TO:<@x.test,@y.test:u@z.test>"), Ok(Command::Rcpt { to }) if to == "u@z.test")
        );
        assert!(parse(b"RCPT TO:<>").is_err());
    }

    #[test]
    fn quoted_local_part_with_bracket() {
        assert!(
            matches!(parse(b"RCPT TO:<\"a>b\"@x.test>"), Ok(Command::Rcpt { to }) if to == "\"a>b\"@x.test")
        );
    }

    #[test]
    fn rejects() {
        assert_eq!(parse(b"FOO bar"), Err(ParseError::Unknown));
        assert_eq!(
            parse(b"MAIL FROM:<a@b.test> BODY=BINARYMIME"),
            Err(ParseError::UnsupportedParam("BODY=BINARYMIME".into()))
        );
        assert!(matches!(
            parse(b"MAIL FROM:a@b.test"),
            Err(ParseError::BadAddress { .. })
        ));
        assert!(matches!(
            parse(b"RCPT TO:<a b@c.test>"),
            Err(ParseError::BadAddress { rcpt: true, .. })
        ));
        assert_eq!(
            parse(b"DATA x"),
            Err(ParseError::BadArguments("no arguments allowed"))
        );
        assert_eq!(parse(b"NOOP\x00"), Err(ParseError::Syntax));
        assert_eq!(parse(&[0xff, 0xfe]), Err(ParseError::Syntax));
        let long = format!("RCPT TO:<{}@x.test>", "a".repeat(300));
        assert!(matches!(
            parse(long.as_bytes()),
            Err(ParseError::BadAddress { .. })
        ));
    }

    #[test]
    fn utf8_address_parses() {
        assert!(matches!(
            parse("RCPT TO:<grüße@bücher.test>".as_bytes()),
            Ok(Command::Rcpt { .. })
        ));
    }
}

//! What starts quoted history or a signature, line by line, in the languages mail clients
//! write: attributions (`On … wrote:` and its translations), forward and original-message
//! separators, Outlook's header block, and device sign-offs ("Sent from my iPhone").

use std::cell::OnceCell;

use super::words::{DEVICES, FROM, OTHER, SENT, SEPARATOR_WORDS, SEPARATORS, SIGN_OFFS, WROTE};

/// One line of the text with the lower-cased forms the markers compare against, made once
/// per line. Every marker used to lower-case the line again (six to ten times per line):
/// 13 % of the process worker's instructions per 2 KB mail (callgrind, issue 17).
pub struct Line<'a> {
    /// The line as written.
    pub raw: &'a str,
    /// `raw.trim().to_lowercase()`.
    pub low: String,
    /// The line without leading `*`, spaces and tabs, lower-cased, without `**`: how
    /// header-block lines are compared ([`is_outlook_block`]); made when first needed.
    head: OnceCell<String>,
}

impl<'a> Line<'a> {
    pub fn new(raw: &'a str) -> Self {
        Self {
            raw,
            low: raw.trim().to_lowercase(),
            head: OnceCell::new(),
        }
    }

    /// An empty or white-space line.
    pub fn is_blank(&self) -> bool {
        self.low.is_empty()
    }

    fn head(&self) -> &str {
        self.head.get_or_init(|| {
            self.raw
                .trim_start_matches(['*', ' ', '\t'])
                .to_lowercase()
                .replace("**", "")
        })
    }
}

/// Whether `text` (one line, or a wrapped attribution joined with spaces) is an attribution:
/// it ends with a colon, names a writing verb of some language, and carries a date or an
/// address (digits or `@`), so a sentence of the reply ending in "wrote:" is not one.
pub fn is_attribution(text: &str) -> bool {
    is_attribution_low(&text.trim().to_lowercase())
}

/// [`is_attribution`] of a text already trimmed and lower-cased.
pub fn is_attribution_low(l: &str) -> bool {
    // Zoho: "---- On <date> <who> wrote ----".
    let l = l.trim_matches(|c: char| c == '-' || c.is_whitespace());
    if l.chars().count() > 400 || l.starts_with('>') {
        return false;
    }
    let anchored = |b: &str| b.chars().any(|c| c.is_ascii_digit()) || b.contains('@');
    match l.strip_suffix(':').or_else(|| l.strip_suffix('：')) {
        Some(body) => {
            (anchored(body) && WROTE.iter().any(|w| body.contains(w))) || dated_address(body)
        }
        // "On <date> <who> <addr> wrote" without the colon (some webmails).
        None => {
            l.starts_with("on ")
                && l.contains('@')
                && anchored(l)
                && WROTE.iter().any(|w| l.ends_with(w))
        }
    }
}

/// `<date and time>, "Name" <addr>` before the colon: how several clients attribute without
/// a verb. Needs a time (`10:00`, `18.30`) and the address in angle brackets at the end.
fn dated_address(body: &str) -> bool {
    let b = body.trim_end();
    let Some(open) = b.rfind('<') else {
        return false;
    };
    let addr = &b[open..];
    if !(addr.ends_with('>') && addr.contains('@')) {
        return false;
    }
    let head: Vec<char> = b[..open].chars().collect();
    head.windows(4).any(|w| {
        w[0].is_ascii_digit()
            && matches!(w[1], ':' | '.')
            && w[2].is_ascii_digit()
            && w[3].is_ascii_digit()
    })
}

/// `<who> wrote:` without a date or address (only an attribution when quoted lines follow).
pub fn names_writer(line: &Line) -> bool {
    let l = &line.low;
    let Some(body) = l.strip_suffix(':').or_else(|| l.strip_suffix('：')) else {
        return false;
    };
    l.chars().count() <= 200 && WROTE.iter().any(|w| body.trim_end().ends_with(w))
}

/// Words an attribution wrapped over several lines starts with (its first line alone does
/// not end with a colon): "On", "Am", "Le", "El", "Il", "Op", "Em", "W dniu", "Den", "Dne"…,
/// or a date, or the writer's address.
pub fn may_start_attribution(line: &Line) -> bool {
    let l = &line.low;
    const OPENERS: &[&str] = &[
        "on ",
        "am ",
        "le ",
        "el ",
        "il ",
        "op ",
        "em ",
        "w dniu ",
        "den ",
        "dne ",
        "dňa ",
        "quoting ",
        "citando ",
        "zitat von ",
    ];
    !l.is_empty()
        && !l.starts_with('>')
        && (OPENERS.iter().any(|o| l.starts_with(o))
            || l.chars().any(|c| c.is_ascii_digit())
            || l.contains('@'))
}

/// A line that starts an attribution of its own ("On …"): a wrapped attribution never runs
/// into one, so the line before it is the sender's.
pub fn starts_own_attribution(line: &Line) -> bool {
    let l = &line.low;
    const OPENERS: &[&str] = &[
        "on ", "am ", "le ", "el ", "il ", "op ", "em ", "w dniu ", "den ", "dne ",
    ];
    OPENERS.iter().any(|o| l.starts_with(o))
}

/// A separator line starting quoted or forwarded history.
pub fn is_separator(line: &Line) -> bool {
    let l = &line.low;
    if SEPARATORS.iter().any(|s| l.starts_with(s)) {
        return true;
    }
    let inner = l.trim_matches(|c: char| c == '-' || c == '=').trim();
    l.starts_with("--")
        && l.ends_with("--")
        && !inner.is_empty()
        && inner.chars().count() <= 40
        && SEPARATOR_WORDS.iter().any(|w| inner.contains(w))
}

/// A rule: a line of only `-`, `_`, `=`, `*` or `—` (four or more).
pub fn is_rule(line: &str) -> bool {
    let l = line.trim();
    l.chars().count() >= 4 && l.chars().all(|c| matches!(c, '-' | '_' | '=' | '*' | '—'))
}

fn starts_any(line: &Line, set: &[&str]) -> bool {
    let s = line.head();
    set.iter().any(|p| s.starts_with(p))
}

/// Outlook's header block at `i`: `From:` then `Sent:`/`Date:` within the next four lines,
/// possibly after a rule of underscores.
pub fn is_outlook_block(lines: &[Line], i: usize) -> bool {
    let l = lines[i].raw.trim();
    let is_rule = l.chars().count() >= 10 && l.chars().all(|c| c == '_');
    let from_at = if is_rule { i + 1 } else { i };
    if from_at >= lines.len() {
        return false;
    }
    if starts_any(&lines[from_at], FROM)
        && lines[from_at + 1..]
            .iter()
            .take(4)
            .any(|s| starts_any(s, SENT))
    {
        return true;
    }
    // Three header lines in a row, one of them the sender ("Message du :", "De :", "A :").
    let header = |s: &Line| starts_any(s, FROM) || starts_any(s, SENT) || starts_any(s, OTHER);
    let run: Vec<&Line> = lines[from_at..].iter().take_while(|s| header(s)).collect();
    run.len() >= 3 && run.iter().any(|s| starts_any(s, FROM))
}

/// A mailing list's footer: a rule of underscores, then the list's name or address.
pub fn is_list_footer(lines: &[Line], i: usize) -> bool {
    let l = &lines[i].low;
    if l.chars().count() < 2 || !l.chars().all(|c| c == '_') {
        return false;
    }
    lines[i + 1..]
        .iter()
        .find(|n| !n.is_blank())
        .is_some_and(|n| {
            let n = &n.low;
            n.contains("mailing list") || n.contains("listinfo") || n.contains("unsubscribe")
        })
}

/// A sign-off a mobile client or webmail adds ("Sent from my iPhone", "Get Outlook for
/// iOS", "Von meinem iPhone gesendet", "Envoyé de mon iPad"…). Only the short, formulaic
/// line: "Sent from my desk, is much easier to type" is the sender's own sentence.
pub fn is_device_signature(line: &Line) -> bool {
    let l = line.low.trim_end_matches(['.', '!']);
    if l.chars().count() > 80 {
        return false;
    }
    if let Some(rest) = l.strip_prefix("sent from my ") {
        let words: Vec<&str> = rest.split_whitespace().collect();
        let first = words
            .first()
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()));
        // A device word, or a brand as written (capitalised: "Wiko RIDGE FAB 4G").
        let brand = line
            .raw
            .trim()
            .get("sent from my ".len()..)
            .is_some_and(|r| r.starts_with(|c: char| c.is_uppercase()));
        return words.len() <= 6
            && (brand || first.is_some_and(|f| DEVICES.iter().any(|d| f.starts_with(d))))
            && !rest.contains(", ");
    }
    // "Sent from TypeApp<https://…>": an app's sign-off with its link.
    if let Some(rest) = l.strip_prefix("sent from ") {
        let name = rest.split('<').next().unwrap_or_default();
        return rest.contains("<http") && name.split_whitespace().count() <= 3;
    }
    let plain = l.split('<').next().unwrap_or_default();
    SIGN_OFFS.iter().any(|f| l.starts_with(f)) && plain.chars().count() <= 60
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_signatures_but_never_a_sentence() {
        for s in [
            "Sent from my iPhone",
            "Sent from my Samsung Galaxy smartphone.",
            "Sent from my BlackBerry® wireless device",
            "Get Outlook for iOS",
            "Von meinem iPhone gesendet",
            "Envoyé de mon iPad",
            "iPhoneから送信",
        ] {
            assert!(is_device_signature(&Line::new(s)), "{s}");
        }
        for s in [
            "Sent from my desk, is much easier to type on a real keyboard.",
            "Sent from my desk",
            "Sent from my phone, which is why the numbers above are rounded: please check them.",
        ] {
            assert!(!is_device_signature(&Line::new(s)), "{s}");
        }
    }

    #[test]
    fn attributions_in_many_languages() {
        for s in [
            "On Mon, 23 Nov 2026 at 10:00, Ann <ann@example.com> wrote:",
            "Am 23.11.2026 um 10:00 schrieb Ann Example <ann@example.com>:",
            "Le lun. 23 nov. 2026 à 10:00, Ann <ann@example.com> a écrit :",
            "El lun, 23 nov 2026 a las 10:00, Ann (<ann@example.com>) escribió:",
            "Il giorno lun 23 nov 2026 alle ore 10:00 Ann <ann@example.com> ha scritto:",
            "Op ma 23 nov. 2026 om 10:00 schreef Ann <ann@example.com>:",
            "Em seg., 23 de nov. de 2026 às 10:00, Ann <ann@example.com> escreveu:",
            "пн, 23 нояб. 2026 г. в 10:00, Ann <ann@example.com>: написал(а):",
            "2026年11月23日(月) 10:00 Ann <ann@example.com> さんは書きました:",
            "Ann <ann@example.com> 于2026年11月23日周一 10:00写道：",
            "2026년 11월 23일 (월) 오전 10:00, Ann <ann@example.com>님이 작성:",
            "W dniu 23.11.2026 o 10:00 Ann <ann@example.com> pisze:",
            "Den mån 23 nov. 2026 kl 10:00 skrev Ann <ann@example.com>:",
            "Den 23. nov. 2026 kl. 10.00 skrev Ann <ann@example.com>:",
            "ma 23.11.2026 klo 10.00 Ann (ann@example.com) kirjoitti:",
            "Ann <ann@example.com>, 23 Kas 2026 Pzt, 10:00 tarihinde şunu yazdı:",
            "Dne po 23. 11. 2026 10:00 uživatel Ann <ann@example.com> napsal:",
        ] {
            assert!(is_attribution(s), "{s}");
        }
        for s in [
            "Here is what Ann wrote:",
            "> On Mon, 1 Jan 2026, Ann wrote:",
            "Notes:",
        ] {
            assert!(!is_attribution(s), "{s}");
        }
    }
}

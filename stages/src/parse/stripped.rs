//! `stripped_text`: the reply itself, without the quoted history and the signature, for
//! replies as Gmail, Outlook, Apple Mail and Thunderbird write them (and their common
//! translations).

/// Lines that introduce quoted history, matched on the trimmed line.
fn is_attribution(line: &str) -> bool {
    let l = line.trim();
    let lower = l.to_lowercase();
    // Gmail, Apple Mail, Thunderbird: "On <date>, <who> wrote:" (and translations).
    let wrote = [
        " wrote",
        " schrieb",
        " écrit",
        " escribió",
        " scritto",
        " schreef",
        " escreveu",
    ];
    let opener = ["on ", "am ", "le ", "el ", "il ", "op ", "em "];
    if lower.ends_with(':')
        && wrote.iter().any(|w| lower.contains(w))
        && opener.iter().any(|o| lower.starts_with(o))
    {
        return true;
    }
    // Outlook and Thunderbird separators.
    lower.starts_with("-----original message-----")
        || lower.starts_with("-------- original message --------")
        || lower.starts_with("-------- forwarded message --------")
        || lower.starts_with("---------- forwarded message ---------")
        || lower.starts_with("begin forwarded message:")
}

/// Outlook's header block: `From:` then `Sent:`/`Date:` within the next lines, often after a
/// line of underscores.
fn is_outlook_block(lines: &[&str], i: usize) -> bool {
    let l = lines[i].trim();
    let starts_from = |s: &str| {
        let s = s.trim_start_matches(['*', ' ']).to_lowercase();
        s.starts_with("from:") || s.starts_with("von:") || s.starts_with("de :")
    };
    let is_rule = l.len() >= 10 && l.chars().all(|c| c == '_');
    let from_at = if is_rule { i + 1 } else { i };
    if from_at >= lines.len() || !starts_from(lines[from_at]) {
        return false;
    }
    lines[from_at + 1..].iter().take(4).any(|s| {
        let s = s.trim_start_matches(['*', ' ']).to_lowercase();
        s.starts_with("sent:") || s.starts_with("date:") || s.starts_with("gesendet:")
    })
}

/// Mobile and webmail sign-offs that are signatures in all but name.
fn is_device_signature(line: &str) -> bool {
    let l = line.trim().to_lowercase();
    l.starts_with("sent from my ")
        || l.starts_with("sent from outlook")
        || l.starts_with("get outlook for ")
        || l.starts_with("von meinem iphone gesendet")
}

/// `On … wrote:` (possibly wrapped over two lines) at `i`: how many lines it takes.
fn wrote_attribution(lines: &[&str], i: usize) -> Option<usize> {
    if is_attribution(lines[i]) && lines[i].trim_end().ends_with(':') {
        return Some(1);
    }
    let next = lines.get(i + 1)?;
    let joined = format!("{} {}", lines[i].trim(), next.trim());
    (lines[i].trim_start().to_lowercase().starts_with("on ") && is_attribution(&joined))
        .then_some(2)
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// `Name wrote:` directly followed by quoted lines.
fn is_short_attribution(lines: &[&str], i: usize) -> bool {
    let l = lines[i].trim().to_lowercase();
    (l.ends_with(" wrote:") || l.ends_with(" schrieb:") || l.ends_with(" a écrit :"))
        && lines[i + 1..]
            .iter()
            .find(|n| !n.trim().is_empty())
            .is_some_and(|n| is_quoted(n))
}

/// The reply part of `text`. Top-posted replies end at the attribution of the quoted
/// history; bottom-posted ones (nothing above the attribution) keep what follows the quote.
pub fn strip(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let has_content = out.iter().any(|l| !l.trim().is_empty());
        if line.trim_end() == "--" || line == "-- " || is_device_signature(line) {
            break;
        }
        if let Some(n) = wrote_attribution(&lines, i) {
            if has_content {
                break;
            }
            i += n;
            while i < lines.len() && (is_quoted(lines[i]) || lines[i].trim().is_empty()) {
                i += 1;
            }
            continue;
        }
        if is_attribution(line) || is_outlook_block(&lines, i) {
            break;
        }
        if !is_quoted(line) && !is_short_attribution(&lines, i) {
            out.push(line);
        }
        i += 1;
    }
    let mut out = out.join("\n");
    out.truncate(out.trim_end().len());
    let start = out.len() - out.trim_start_matches(['\n', ' ', '\t']).len();
    out[start..].to_string()
}

#[cfg(test)]
mod tests {
    use super::strip;

    #[test]
    fn gmail() {
        let t = "Thanks, works now.\n\nOn Mon, 23 Nov 2026 at 10:00, Ann Example <ann@example.com>\nwrote:\n> Did it work?\n";
        assert_eq!(strip(t), "Thanks, works now.");
    }

    #[test]
    fn outlook() {
        let t = "Yes.\r\n\r\n________________________________\r\nFrom: Ann <ann@example.com>\r\nSent: Monday\r\nTo: b\r\nSubject: q\r\n\r\nold";
        assert_eq!(strip(t), "Yes.");
        let t = "Yes.\n\n-----Original Message-----\nFrom: Ann\n";
        assert_eq!(strip(t), "Yes.");
    }

    #[test]
    fn apple_thunderbird_and_signature() {
        let t = "Sure.\n\nSent from my iPhone\n\n> On 23 Nov 2026, at 10:00, Ann <a@b> wrote:\n";
        assert_eq!(strip(t), "Sure.");
        let t = "Fine by me.\n-- \nBob\n\nOn 23/11/2026 10:00, Ann Example wrote:\n> x\n";
        assert_eq!(strip(t), "Fine by me.");
        let t = "Am 23.11.2026 um 10:00 schrieb Ann:\n> x";
        assert_eq!(strip(t), "");
    }

    #[test]
    fn bottom_posting_keeps_the_reply_below_the_quote() {
        let t = "On Wed, 19 Nov 2014, Levi <l@php.net> wrote:\n\n> proposal\n>\n+1 from me.\n\n--\nFerenc\n";
        assert_eq!(strip(t), "+1 from me.");
        let t = "Marc wrote:\n> quoted\n\nMy answer.\n";
        assert_eq!(strip(t), "My answer.");
    }

    #[test]
    fn interleaved_quotes_are_dropped() {
        let t = "> question one\nanswer one\n> question two\nanswer two\n";
        assert_eq!(strip(t), "answer one\nanswer two");
    }
}

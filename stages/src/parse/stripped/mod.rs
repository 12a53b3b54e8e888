//! `stripped_text`: the reply itself, without the quoted history and the signature, for
//! replies as Gmail, Outlook, Apple Mail, Thunderbird and mobile clients write them, in the
//! languages they write them in ([`markers`]). What the sender wrote is never cut: a line is
//! dropped only when it is quoted (`>`), an attribution, or after the point where the history
//! or the signature starts; bottom-posted and inline replies keep every line of the reply.
//! [`html`] does the same for the HTML view (`stripped_html`).

pub mod html;
pub mod markers;
pub mod words;

use markers::{
    Line, is_attribution, is_attribution_low, is_device_signature, is_list_footer,
    is_outlook_block, is_rule, is_separator, may_start_attribution, names_writer,
    starts_own_attribution,
};

fn is_quoted(line: &Line) -> bool {
    line.low.starts_with('>')
}

/// The rest of a quoted line that the quoting client wrapped without a `>`: it follows a long
/// quoted line that stops mid-sentence, and starts in lower case ("ignissim odio?").
fn is_wrapped_quote(lines: &[Line], i: usize) -> bool {
    let Some(prev) = i.checked_sub(1).map(|p| &lines[p]) else {
        return false;
    };
    let quoted = is_quoted(prev);
    let prev = prev.raw.trim_end();
    quoted
        && prev.chars().count() >= 60
        && prev.split_whitespace().count() >= 6
        && !prev.ends_with(['.', '?', '!', ':'])
        && lines[i]
            .raw
            .trim_start()
            .starts_with(|c: char| c.is_lowercase())
}

fn is_blank(line: &Line) -> bool {
    line.is_blank()
}

fn is_sig_delimiter(line: &Line) -> bool {
    line.raw == "-- " || line.raw.trim_end() == "--"
}

/// Where the sender's text ends for good: a signature delimiter or a list footer.
fn ends_reply(lines: &[Line], i: usize) -> bool {
    is_sig_delimiter(&lines[i]) || is_list_footer(lines, i)
}

/// How many lines (1 to 4) the attribution starting at `i` takes, if one does. A wrapped
/// one ("On Dec 16, 2011, at 12:47 PM, Name\n<addr>\nwrote:") must start like one.
fn attribution_at(lines: &[Line], i: usize) -> Option<usize> {
    if is_attribution_low(&lines[i].low) {
        return Some(1);
    }
    if !may_start_attribution(&lines[i]) || lines[i].raw.trim_end().ends_with(':') {
        return None;
    }
    let mut joined = lines[i].raw.trim().to_string();
    for (n, next) in lines.iter().enumerate().skip(i + 1).take(3) {
        // Gmail may wrap the address's closing bracket onto a line of its own (">:").
        let bracket = next.low.starts_with(">:");
        if is_blank(next) || (is_quoted(next) && !bracket) || starts_own_attribution(next) {
            return None;
        }
        joined.push(' ');
        joined.push_str(next.raw.trim());
        if next.raw.trim_end().ends_with([':', '：']) {
            return is_attribution(&joined).then_some(n - i + 1);
        }
    }
    None
}

/// Where the history starts at `i`: an attribution (its length), a separator or an Outlook
/// header block (0: everything from here is history).
fn history_at(lines: &[Line], i: usize) -> Option<usize> {
    if let Some(n) = attribution_at(lines, i) {
        return Some(n);
    }
    (is_separator(&lines[i]) || is_outlook_block(lines, i)).then_some(0)
}

/// Nothing of the reply follows `from`: only blank lines, quoted lines and history.
fn only_history_after(lines: &[Line], from: usize) -> bool {
    for i in from..lines.len() {
        if is_blank(&lines[i]) || is_quoted(&lines[i]) {
            continue;
        }
        return history_at(lines, i).is_some() || ends_reply(lines, i);
    }
    true
}

/// The next non-blank line from `from` starts the history.
fn rule_before_history(lines: &[Line], from: usize) -> bool {
    (from..lines.len())
        .find(|&i| !is_blank(&lines[i]))
        .is_some_and(|i| history_at(lines, i).is_some() || ends_reply(lines, i))
}

/// After the attribution ending before `k` comes a `>` quote and then more of the sender's
/// own text: an inline or bottom-posted reply, whose later lines are kept.
fn reply_continues(lines: &[Line], k: usize) -> bool {
    let mut i = k;
    while i < lines.len() && is_blank(&lines[i]) {
        i += 1;
    }
    if i >= lines.len() || !is_quoted(&lines[i]) {
        return false;
    }
    while i < lines.len()
        && (is_quoted(&lines[i]) || is_blank(&lines[i]) || is_wrapped_quote(lines, i))
    {
        i += 1;
    }
    i < lines.len()
        && !is_sig_delimiter(&lines[i])
        && !is_device_signature(&lines[i])
        && history_at(lines, i).is_none()
}

/// `Name wrote:` (or a date and an address and a colon, as Gmail writes it in Japanese)
/// directly followed by quoted lines.
fn is_short_attribution(lines: &[Line], i: usize) -> bool {
    let l = lines[i].raw.trim_end();
    let dated =
        l.ends_with([':', '：']) && l.contains('@') && l.chars().any(|c| c.is_ascii_digit());
    (names_writer(&lines[i]) || dated)
        && lines[i + 1..]
            .iter()
            .find(|n| !is_blank(n))
            .is_some_and(|n| is_quoted(n))
}

/// The reply part of `text`. Top-posted replies end where the quoted history starts;
/// bottom-posted and inline ones keep what the sender wrote between and after the quotes.
pub fn strip(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let lines: Vec<Line> = text.split('\n').map(Line::new).collect();
    let mut out: Vec<&str> = Vec::new();
    // Whether `out` holds a line that is not blank.
    let mut has_content = false;
    // A quote or attribution was just dropped: blank lines around it collapse into one.
    let mut dropped = false;
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        if ends_reply(&lines, i) {
            break;
        }
        // A sign-off ends the reply when history follows it, or a blank line and then
        // anything (mobile clients append the original unquoted); directly followed by more
        // text it is the sender's sentence.
        if is_device_signature(line)
            && (only_history_after(&lines, i + 1) || lines.get(i + 1).is_some_and(is_blank))
        {
            break;
        }
        // A rule right above the history belongs to it.
        if is_rule(line.raw) && has_content && rule_before_history(&lines, i + 1) {
            break;
        }
        if let Some(n) = history_at(&lines, i) {
            if n > 0 && (!has_content || reply_continues(&lines, i + n)) {
                // Bottom-posted or inline: drop the attribution, keep going.
                i += n;
                dropped = true;
                continue;
            }
            break;
        }
        if is_quoted(line) || is_short_attribution(&lines, i) || is_wrapped_quote(&lines, i) {
            dropped = true;
        } else if is_blank(line) && dropped && out.last().is_some_and(|l| l.trim().is_empty()) {
            // The second blank line around a dropped quote.
        } else {
            if !is_blank(line) {
                dropped = false;
                has_content = true;
            }
            out.push(line.raw);
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

    #[test]
    fn attribution_wrapped_over_three_lines() {
        let t = "I get proper rendering as well.\n\nOn Dec 16, 2011, at 12:47 PM, Corey Donohoe\n<reply@reply.github.com>\nwrote:\n\n> Was this caching related?\n";
        assert_eq!(strip(t), "I get proper rendering as well.");
        // A reply line followed by an attribution is not part of it.
        let t = "I agree with the plan\nOn Mon, 1 Jan 2026 Ann <a@b> wrote:\n> plan\n";
        assert_eq!(strip(t), "I agree with the plan");
    }

    #[test]
    fn a_sentence_starting_like_a_sign_off_is_kept() {
        let t = "Here is another email\n\nSent from my desk, is much easier then my mobile phone.\n\n_______________________________________________\nFrom: Bob <b@c>\nSent: Monday\nTo: x\nSubject: y\n\nold";
        assert_eq!(
            strip(t),
            "Here is another email\n\nSent from my desk, is much easier then my mobile phone."
        );
        // Followed by more of the reply, even the formula is the sender's text.
        let t = "Sent from my iPhone\nbecause I was on the train.\n";
        assert_eq!(strip(t), "Sent from my iPhone\nbecause I was on the train.");
    }

    #[test]
    fn inline_reply_after_a_greeting_keeps_every_answer() {
        let t = "Hi,\nOn Tue, 2011-03-01 at 18:02 +0530, Ann wrote:\n> q1\n\nanswer one\n\n> q2\n\nanswer two\n";
        assert_eq!(strip(t), "Hi,\n\nanswer one\n\nanswer two");
    }

    #[test]
    fn other_languages() {
        let t = "Ok, d'accord.\n\nLe lun. 23 nov. 2026 à 10:00, Ann <ann@example.com> a\nécrit :\n> Question ?\n";
        assert_eq!(strip(t), "Ok, d'accord.");
        let t = "Хорошо.\n\n23.11.2026, 10:00, Ann <ann@example.com> пишет:\n> Вопрос?\n";
        assert_eq!(strip(t), "Хорошо.");
        let t = "了解しました。\n\n2026年11月23日(月) 10:00 Ann <ann@example.com>:\n> 質問\n";
        assert_eq!(strip(t), "了解しました。");
        let t = "好的。\n\nAnn <ann@example.com> 于2026年11月23日周一 10:00写道：\n> 问题\n";
        assert_eq!(strip(t), "好的。");
    }
}

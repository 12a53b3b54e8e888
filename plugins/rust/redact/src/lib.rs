//! Redacts personal data from the subject, text and HTML: card numbers (13 to 19 digits that
//! pass the Luhn check) and phone numbers (9 to 15 digits, with `+`, spaces, dashes, dots or
//! parentheses between them). Adds a note to `limits.notes` saying how many were removed.
//!
//! Config: `{ "card": "[card]", "phone": "[phone]" }` (replacement texts, optional).

use postwire_guest_sdk::{Error, Event, Outcome, Value};

struct Replacements {
    card: String,
    phone: String,
}

#[derive(Default)]
struct Counts {
    cards: usize,
    phones: usize,
}

fn transform(mut event: Event) -> Result<Outcome, Error> {
    let cfg: Value = postwire_guest_sdk::config()?;
    let text = |k: &str, d: &str| cfg.get(k).and_then(Value::as_str).unwrap_or(d).to_string();
    let with = Replacements {
        card: text("card", "[card]"),
        phone: text("phone", "[phone]"),
    };
    let mut counts = Counts::default();
    let m = &mut event.message;
    for s in [&mut m.subject, &mut m.text, &mut m.html]
        .into_iter()
        .flatten()
    {
        *s = redact(s, &with, &mut counts);
    }
    if let Some(Value::String(s)) = m.extra.get_mut("stripped_text") {
        *s = redact(s, &with, &mut counts);
    }
    if counts.cards + counts.phones > 0 {
        let note = format!(
            "redact: {} card number(s) and {} phone number(s) removed",
            counts.cards, counts.phones
        );
        if let Some(Value::Array(notes)) = event
            .extra
            .get_mut("limits")
            .and_then(|l| l.get_mut("notes"))
        {
            notes.push(Value::String(note));
        }
    }
    Outcome::deliver(&event)
}

fn is_part(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')' | '+')
}

/// Replaces every run of digits and separators that is a card or phone number.
fn redact(input: &str, with: &Replacements, counts: &mut Counts) -> String {
    let chars: Vec<char> = input.chars().collect();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let starts = c.is_ascii_digit()
            || (matches!(c, '+' | '(') && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit()));
        let inside_word = i > 0 && chars[i - 1].is_alphanumeric();
        if !starts || inside_word {
            out.push(c);
            i += 1;
            continue;
        }
        let mut end = i;
        while end < chars.len() && is_part(chars[end]) {
            end += 1;
        }
        // Trailing separators (a sentence's space or full stop) are not part of the number.
        while end > i && !chars[end - 1].is_ascii_digit() {
            end -= 1;
        }
        let run: String = chars[i..end].iter().collect();
        let digits: Vec<u32> = run.chars().filter_map(|c| c.to_digit(10)).collect();
        let followed_by_word = chars.get(end).is_some_and(|c| c.is_alphanumeric());
        if !followed_by_word && (13..=19).contains(&digits.len()) && luhn(&digits) {
            out.push_str(&with.card);
            counts.cards += 1;
        } else if !followed_by_word && (9..=15).contains(&digits.len()) {
            out.push_str(&with.phone);
            counts.phones += 1;
        } else {
            out.push_str(&run);
        }
        i = end.max(i + 1);
    }
    out
}

fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| match i % 2 {
            0 => d,
            _ if d * 2 > 9 => d * 2 - 9,
            _ => d * 2,
        })
        .sum();
    sum.is_multiple_of(10)
}

postwire_guest_sdk::plugin!(transform);

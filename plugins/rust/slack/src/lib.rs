//! Reshapes the event into a chat message: Slack's incoming-webhook shape (`text` +
//! `blocks`) or Discord's (`content` + `embeds`).
//!
//! Config: `{ "style": "slack" | "discord", "max_chars": 500 }` (both optional).

use postwire_guest_sdk::{Error, Event, Outcome, Value, json};

fn transform(event: Event) -> Result<Outcome, Error> {
    let cfg: Value = postwire_guest_sdk::config()?;
    let style = cfg.get("style").and_then(Value::as_str).unwrap_or("slack");
    let max_chars = cfg.get("max_chars").and_then(Value::as_u64).unwrap_or(500) as usize;

    let m = &event.message;
    let from = m
        .from
        .first()
        .map(|f| f.display())
        .unwrap_or_else(|| event.envelope.mail_from.clone());
    let subject = m.subject.clone().unwrap_or_else(|| "(no subject)".into());
    let body = excerpt(m.text.as_deref().unwrap_or(""), max_chars);
    let attachments = m.attachments.len();

    let out = match style {
        "slack" => {
            let mut fields = vec![json!({"type": "mrkdwn", "text": format!("*From:*\n{from}")})];
            if attachments > 0 {
                fields.push(
                    json!({"type": "mrkdwn", "text": format!("*Attachments:*\n{attachments}")}),
                );
            }
            json!({
                "text": format!("New mail from {from}: {subject}"),
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": subject}},
                    {"type": "section", "fields": fields},
                    {"type": "section", "text": {"type": "mrkdwn", "text": body}},
                    {"type": "context", "elements": [
                        {"type": "mrkdwn", "text": format!("postwire · {} · {}", event.route, event.mail_id)}
                    ]}
                ]
            })
        }
        "discord" => json!({
            "content": format!("New mail from {from}"),
            "embeds": [{
                "title": subject,
                "description": body,
                "author": {"name": from},
                "footer": {"text": format!("postwire · {}", event.route)},
                "timestamp": event.received_at,
            }]
        }),
        other => {
            return Err(Error::InvalidConfig(format!(
                "style must be slack or discord, not {other:?}"
            )));
        }
    };
    Ok(Outcome::Deliver(out))
}

/// The first `max` characters of `text`, with an ellipsis when cut.
fn excerpt(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max).collect();
    cut.push('…');
    cut
}

postwire_guest_sdk::plugin!(transform);

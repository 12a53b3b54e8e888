//! Routes by subject or recipient: the first matching rule decides.
//!
//! Config:
//! ```json
//! { "rules": [
//!     { "subject_contains": "invoice", "routes": ["billing", "archive"] },
//!     { "recipient": "vip@acme.test", "routes": ["vip"] },
//!     { "subject_contains": "unsubscribe", "drop": true }
//! ] }
//! ```
//! `subject_contains` is case-insensitive; `recipient` compares envelope recipients without
//! case. No match: the event is delivered unchanged to the route it matched.

use postwire_guest_sdk::{Error, Event, Outcome, Value, log};

fn transform(event: Event) -> Result<Outcome, Error> {
    let cfg: Value = postwire_guest_sdk::config()?;
    let rules = cfg
        .get("rules")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::InvalidConfig("rules must be a list".into()))?;
    let subject = event
        .message
        .subject
        .as_deref()
        .unwrap_or("")
        .to_lowercase();
    for (i, rule) in rules.iter().enumerate() {
        let by_subject = rule
            .get("subject_contains")
            .and_then(Value::as_str)
            .map(|s| subject.contains(&s.to_lowercase()));
        let by_rcpt = rule.get("recipient").and_then(Value::as_str).map(|r| {
            event
                .envelope
                .rcpt_to
                .iter()
                .any(|t| t.eq_ignore_ascii_case(r))
        });
        let matched = match (by_subject, by_rcpt) {
            (None, None) => {
                return Err(Error::InvalidConfig(format!(
                    "rules[{i}] needs subject_contains or recipient"
                )));
            }
            (s, r) => s.unwrap_or(true) && r.unwrap_or(true),
        };
        if !matched {
            continue;
        }
        if rule.get("drop").and_then(Value::as_bool) == Some(true) {
            return Outcome::drop(format!("rule {i} of the route plugin"));
        }
        let routes: Vec<String> = rule
            .get("routes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if routes.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "rules[{i}] needs routes or drop"
            )));
        }
        log::info(&format!(
            "Rule {i} routes the mail to {}.",
            routes.join(", ")
        ));
        let value = serde_json::to_value(&event).map_err(|e| Error::Failed(e.to_string()))?;
        return Ok(Outcome::Route(
            routes
                .into_iter()
                .map(|r| {
                    let mut v = value.clone();
                    v["route"] = Value::String(r.clone());
                    (r, v)
                })
                .collect(),
        ));
    }
    Outcome::deliver(&event)
}

postwire_guest_sdk::plugin!(transform);

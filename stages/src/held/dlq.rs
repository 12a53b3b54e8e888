//! The dead-letter stream. [`Dead`] is what can be dead-lettered — a delivery that gave up,
//! or raw mail that could not be processed (no route matches its recipients any more, or a
//! fail-closed plugin failed) — and [`write`] is its one writer. Listing and [`replay`]:
//! a delivery goes back to `OUTBOX` with the same delivery id and body (the receiver sees the
//! same `webhook-id`); raw mail goes back to `MAIL` through [`super::republish`].

use async_nats::{HeaderMap, jetstream};
use bytes::Bytes;
use postwire_core::bus;
use serde::Serialize;

use super::republish::{self, Why};
use super::{HeldError, one_line};
use crate::deliver::scan::{self, Stored};

/// Why raw mail was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RawReason {
    /// No route matches its recipients (routes changed after the RCPT check).
    Unrouted,
    /// A plugin failed under a fail-closed policy.
    Plugin,
}

impl RawReason {
    fn kind(self) -> &'static str {
        match self {
            RawReason::Unrouted => "unrouted",
            RawReason::Plugin => "plugin",
        }
    }

    /// The subject's route part (`dlq.<tenant>._unrouted`), kept for filtering.
    fn route(self) -> &'static str {
        match self {
            RawReason::Unrouted => "_unrouted",
            RawReason::Plugin => "_plugin",
        }
    }
}

/// What is dead-lettered (owned: a stage hands it to the runner, which writes it).
#[derive(Debug)]
pub enum Dead {
    /// An OUTBOX delivery that gave up (`headers` and `body` as consumed).
    Delivery {
        headers: HeaderMap,
        body: Bytes,
        tenant: String,
        route: String,
        attempts: u32,
        status: Option<u16>,
        error: String,
        /// The OUTBOX sequence: a replayed copy that fails again is a new dead letter.
        outbox_seq: u64,
    },
    /// A raw mail (`headers` and `payload` as on MAIL).
    RawMail {
        headers: HeaderMap,
        payload: Bytes,
        tenant: String,
        mail_id: String,
        reason: RawReason,
        /// The route whose plugin failed, if any.
        route: Option<String>,
        error: String,
        /// What the failed plugin wrote to stdout/stderr (empty: nothing).
        output: String,
        /// The MAIL sequence: a redelivered MAIL message writes its dead letter once, a
        /// replayed copy (a new sequence) that fails again writes a new one.
        mail_seq: u64,
    },
}

impl Dead {
    pub fn tenant(&self) -> &str {
        match self {
            Dead::Delivery { tenant, .. } | Dead::RawMail { tenant, .. } => tenant,
        }
    }

    pub fn is_delivery(&self) -> bool {
        matches!(self, Dead::Delivery { .. })
    }
}

/// The one writer of the dead-letter stream; waits for the PubAck.
pub async fn write(js: &jetstream::Context, dead: Dead) -> Result<(), HeldError> {
    let (subject, headers, body) = match dead {
        Dead::Delivery {
            headers,
            body,
            tenant,
            route,
            attempts,
            status,
            error,
            outbox_seq,
        } => {
            let mut h = headers;
            let id = h
                .get(bus::HEADER_DELIVERY_ID)
                .map(|v| v.as_str().to_string())
                .unwrap_or_default();
            h.insert(
                bus::HEADER_MSG_ID,
                format!("{id}:dlq:{outbox_seq}").as_str(),
            );
            h.insert(bus::HEADER_DEAD_KIND, "delivery");
            h.insert(bus::HEADER_ATTEMPTS, attempts.to_string().as_str());
            let status = status.map(|s| s.to_string()).unwrap_or_default();
            h.insert(bus::HEADER_LAST_STATUS, status.as_str());
            h.insert(bus::HEADER_LAST_ERROR, one_line(&error, 1000).as_str());
            (bus::subject_dlq(&tenant, &route), h, body)
        }
        Dead::RawMail {
            headers,
            payload,
            tenant,
            mail_id,
            reason,
            route,
            error,
            output,
            mail_seq,
        } => {
            let mut h = headers;
            let msg_id = match &route {
                Some(r) => format!("{mail_id}:{}:{r}:{mail_seq}", reason.kind()),
                None => format!("{mail_id}:{}:{mail_seq}", reason.kind()),
            };
            h.insert(bus::HEADER_MSG_ID, msg_id.as_str());
            h.insert(bus::HEADER_DEAD_KIND, reason.kind());
            if let Some(r) = &route {
                h.insert(bus::HEADER_ROUTE, r.as_str());
            }
            h.insert(bus::HEADER_LAST_ERROR, one_line(&error, 500).as_str());
            if !output.is_empty() {
                h.insert(bus::HEADER_PLUGIN_OUTPUT, escape_lines(&output).as_str());
            }
            (bus::subject_dlq(&tenant, reason.route()), h, payload)
        }
    };
    js.publish_with_headers(subject, headers, body)
        .await
        .map_err(HeldError::bus)?
        .await
        .map_err(HeldError::bus)?;
    Ok(())
}

/// What a listed dead letter holds (serialised as `delivery`, `unrouted` or `plugin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Delivery,
    RawMail(RawReason),
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Delivery => "delivery",
            Kind::RawMail(r) => r.kind(),
        }
    }
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A dead letter as listed by `postwire dlq` and the admin API.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub seq: u64,
    pub kind: Kind,
    pub tenant: String,
    pub route: String,
    pub delivery_id: String,
    pub mail_id: String,
    pub endpoint: String,
    pub attempts: String,
    pub last_status: String,
    pub last_error: String,
    /// What a failed plugin wrote to stdout/stderr (raw mail of kind `plugin`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub plugin_output: String,
    pub failed_at: String,
    #[serde(skip)]
    pub stored: Stored,
}

impl DeadLetter {
    fn from_stored(s: Stored) -> DeadLetter {
        let h = |n: &str| s.header(n).unwrap_or_default().to_string();
        let mut parts = s.subject.splitn(3, '.').skip(1);
        let tenant = parts.next().unwrap_or_default().to_string();
        let route = parts.next().unwrap_or_default().to_string();
        // Dead letters written before the kind header: told by their route.
        let kind = match s.header(bus::HEADER_DEAD_KIND).unwrap_or(route.as_str()) {
            "unrouted" | "_unrouted" => Kind::RawMail(RawReason::Unrouted),
            "plugin" | "_plugin" => Kind::RawMail(RawReason::Plugin),
            _ => Kind::Delivery,
        };
        DeadLetter {
            seq: s.seq,
            kind,
            tenant,
            route,
            delivery_id: h(bus::HEADER_DELIVERY_ID),
            mail_id: h(bus::HEADER_MAIL_ID),
            endpoint: h(bus::HEADER_ENDPOINT),
            attempts: h(bus::HEADER_ATTEMPTS),
            last_status: h(bus::HEADER_LAST_STATUS),
            last_error: h(bus::HEADER_LAST_ERROR),
            plugin_output: unescape_lines(&h(bus::HEADER_PLUGIN_OUTPUT)),
            failed_at: s
                .time
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            stored: s,
        }
    }

    pub fn payload_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stored.payload).unwrap_or(serde_json::Value::Null)
    }
}

/// Multi-line text as one header value: `\` → `\\`, newline → `\n`, other control
/// characters → space.
fn escape_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`escape_lines`].
fn unescape_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Which dead letters to list or replay.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub tenant: Option<String>,
    pub since: Option<time::OffsetDateTime>,
    /// A delivery id, a mail id, or a stream sequence number.
    pub id: Option<String>,
}

impl Filter {
    fn matches(&self, d: &DeadLetter) -> bool {
        self.id
            .as_deref()
            .is_none_or(|id| d.delivery_id == id || d.mail_id == id || d.seq.to_string() == id)
    }
}

pub async fn list(js: &jetstream::Context, f: &Filter) -> Result<Vec<DeadLetter>, HeldError> {
    let subject = match &f.tenant {
        Some(t) => format!("dlq.{t}.>"),
        None => "dlq.>".to_string(),
    };
    let all = scan::read(js, bus::STREAM_DLQ, &subject, f.since)
        .await
        .map_err(HeldError::bus)?;
    Ok(all
        .into_iter()
        .map(DeadLetter::from_stored)
        .filter(|d| f.matches(d))
        .collect())
}

/// Sends a dead letter back, then removes it from DLQ: a delivery to OUTBOX (same delivery
/// id and body); raw mail to MAIL, processed again with the configuration of now (a route
/// added or a plugin fixed since).
pub async fn replay(js: &jetstream::Context, d: &DeadLetter) -> Result<(), HeldError> {
    match d.kind {
        Kind::RawMail(_) => {
            republish::raw_mail(
                js,
                &d.stored.headers,
                d.stored.payload.clone(),
                Why::Replayed,
                d.seq,
            )
            .await?
        }
        Kind::Delivery => replay_delivery(js, d).await?,
    }
    js.get_stream(bus::STREAM_DLQ)
        .await
        .map_err(HeldError::bus)?
        .delete_message(d.seq)
        .await
        .map_err(HeldError::bus)?;
    Ok(())
}

async fn replay_delivery(js: &jetstream::Context, d: &DeadLetter) -> Result<(), HeldError> {
    if d.route.starts_with('_') || d.endpoint.is_empty() {
        return Err(HeldError::NotReplayable(format!(
            "dead letter {} is not a delivery and cannot be replayed",
            d.seq
        )));
    }
    let mut headers = HeaderMap::new();
    for name in [
        bus::HEADER_DELIVERY_ID,
        bus::HEADER_MAIL_ID,
        bus::HEADER_TENANT,
        bus::HEADER_ROUTE,
        bus::HEADER_ENDPOINT,
    ] {
        if let Some(v) = d.stored.header(name) {
            headers.insert(name, v);
        }
    }
    headers.insert(
        bus::HEADER_MSG_ID,
        format!("{}:replay:{}", d.delivery_id, d.seq).as_str(),
    );
    js.publish_with_headers(
        bus::subject_outbox(&d.tenant, &d.route),
        headers,
        d.stored.payload.clone(),
    )
    .await
    .map_err(HeldError::bus)?
    .await
    .map_err(HeldError::bus)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn plugin_output_survives_the_header_escaping() {
        let text = "thread 'main' panicked at src\\lib.rs:3:\nboom\r\n\\n";
        let header = super::escape_lines(text);
        assert!(!header.contains('\n') && !header.contains('\r'));
        assert_eq!(
            super::unescape_lines(&header),
            "thread 'main' panicked at src\\lib.rs:3:\nboom \n\\n"
        );
    }
}

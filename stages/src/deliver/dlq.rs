//! The dead-letter stream: writing a delivery that gave up, listing, showing and replaying.
//! A replay publishes the same body with the same delivery id (so the receiver sees the same
//! `webhook-id`) as a fresh OUTBOX message, then removes the dead letter.

use async_nats::jetstream;
use postwire_core::bus;
use serde::Serialize;

use super::scan::{self, Stored};

/// A dead letter as listed by `postwire dlq` and the admin API.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub seq: u64,
    pub tenant: String,
    pub route: String,
    pub delivery_id: String,
    pub mail_id: String,
    pub endpoint: String,
    pub attempts: String,
    pub last_status: String,
    pub last_error: String,
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
        DeadLetter {
            seq: s.seq,
            tenant,
            route,
            delivery_id: h(bus::HEADER_DELIVERY_ID),
            mail_id: h(bus::HEADER_MAIL_ID),
            endpoint: h(bus::HEADER_ENDPOINT),
            attempts: h(bus::HEADER_ATTEMPTS),
            last_status: h(bus::HEADER_LAST_STATUS),
            last_error: h(bus::HEADER_LAST_ERROR),
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

pub async fn list(js: &jetstream::Context, f: &Filter) -> Result<Vec<DeadLetter>, String> {
    let subject = match &f.tenant {
        Some(t) => format!("dlq.{t}.>"),
        None => "dlq.>".to_string(),
    };
    let all = scan::read(js, bus::STREAM_DLQ, &subject, f.since).await?;
    Ok(all
        .into_iter()
        .map(DeadLetter::from_stored)
        .filter(|d| f.matches(d))
        .collect())
}

/// Writes a delivery that gave up to `dlq.<tenant>.<route>`, waiting for the PubAck.
#[allow(clippy::too_many_arguments)]
pub async fn write(
    js: &jetstream::Context,
    msg: &jetstream::Message,
    tenant: &str,
    route: &str,
    attempts: u32,
    status: Option<u16>,
    error: &str,
    outbox_seq: u64,
) -> Result<(), String> {
    let mut headers = msg.headers.clone().unwrap_or_default();
    let id = headers
        .get(bus::HEADER_DELIVERY_ID)
        .map(|v| v.as_str().to_string())
        .unwrap_or_default();
    headers.insert(
        bus::HEADER_MSG_ID,
        format!("{id}:dlq:{outbox_seq}").as_str(),
    );
    headers.insert(bus::HEADER_ATTEMPTS, attempts.to_string().as_str());
    headers.insert(
        bus::HEADER_LAST_STATUS,
        status.map(|s| s.to_string()).unwrap_or_default().as_str(),
    );
    let one_line: String = error
        .chars()
        .filter(|c| !c.is_control())
        .take(1000)
        .collect();
    headers.insert(bus::HEADER_LAST_ERROR, one_line.as_str());
    let ack = js
        .publish_with_headers(
            bus::subject_dlq(tenant, route),
            headers,
            msg.payload.clone(),
        )
        .await
        .map_err(|e| e.to_string())?;
    ack.await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Sends a dead letter back: a delivery to OUTBOX (same delivery id and body); a raw mail
/// (`_unrouted`, `_plugin`) to the MAIL stream, where it is processed again with the
/// configuration of now (a route added or a plugin fixed since). Then removes it from DLQ.
pub async fn replay(js: &jetstream::Context, d: &DeadLetter) -> Result<(), String> {
    if matches!(d.route.as_str(), "_unrouted" | "_plugin") {
        return replay_raw(js, d).await;
    }
    if d.route.starts_with('_') || d.endpoint.is_empty() {
        return Err(format!(
            "dead letter {} is not a delivery and cannot be replayed",
            d.seq
        ));
    }
    let mut headers = async_nats::HeaderMap::new();
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
    let ack = js
        .publish_with_headers(
            bus::subject_outbox(&d.tenant, &d.route),
            headers,
            d.stored.payload.clone(),
        )
        .await
        .map_err(|e| e.to_string())?;
    ack.await.map_err(|e| e.to_string())?;
    let stream = js
        .get_stream(bus::STREAM_DLQ)
        .await
        .map_err(|e| e.to_string())?;
    stream
        .delete_message(d.seq)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// A raw mail back to `mail.raw.<tenant>` with the headers it was processed with (mail id,
/// envelope, verdicts, claim-check key), so it gets the same mail id and so the same delivery
/// ids: a route that was delivered before gets the same `webhook-id` again.
async fn replay_raw(js: &jetstream::Context, d: &DeadLetter) -> Result<(), String> {
    let mut headers = async_nats::HeaderMap::new();
    for name in [
        bus::HEADER_MAIL_ID,
        bus::HEADER_TENANT,
        bus::HEADER_ENVELOPE,
        bus::HEADER_AUTH,
        bus::HEADER_RELEASED,
        bus::HEADER_RAW_KEY,
        bus::HEADER_RAW_SIZE,
        "traceparent",
    ] {
        if let Some(v) = d.stored.header(name) {
            headers.insert(name, v);
        }
    }
    if d.stored.header(bus::HEADER_ENVELOPE).is_none() || d.tenant.is_empty() {
        return Err(format!("dead letter {} lacks its envelope", d.seq));
    }
    headers.insert(
        bus::HEADER_MSG_ID,
        format!("{}:replay:{}", d.mail_id, d.seq).as_str(),
    );
    js.publish_with_headers(
        bus::subject_mail_raw(&d.tenant),
        headers,
        d.stored.payload.clone(),
    )
    .await
    .map_err(|e| e.to_string())?
    .await
    .map_err(|e| e.to_string())?;
    js.get_stream(bus::STREAM_DLQ)
        .await
        .map_err(|e| e.to_string())?
        .delete_message(d.seq)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

//! Delivered payloads kept for a resend: the process worker writes each delivery's body, as
//! prepared, to `payload.<tenant>.<delivery id>` in the `PAYLOADS` stream with a per-message
//! TTL of the tenant's `payload_retention_days` (0 keeps none). [`resend`] sends one again:
//! a new `OUTBOX` message with the same delivery id (the receiver sees the same `webhook-id`)
//! and a fresh `Nats-Msg-Id`, so the deliver worker makes a new attempt, signed anew.

use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::{HeaderMap, jetstream};
use postwire_core::bus;

use super::HeldError;
use crate::runner::Publish;

/// The payload of one delivery as kept.
#[derive(Debug, Clone)]
pub struct Kept {
    pub tenant: String,
    pub delivery_id: String,
    pub mail_id: String,
    pub route: String,
    pub endpoint: String,
    pub body: bytes::Bytes,
    /// When it was kept (the mail's processing).
    pub time: time::OffsetDateTime,
}

impl Kept {
    fn from_message(m: StreamMessage) -> Option<Kept> {
        let h = |n: &str| m.headers.get(n).map(|v| v.as_str().to_string());
        let tenant = m.subject.split('.').nth(1)?.to_string();
        Some(Kept {
            tenant,
            delivery_id: h(bus::HEADER_DELIVERY_ID)?,
            mail_id: h(bus::HEADER_MAIL_ID).unwrap_or_default(),
            route: h(bus::HEADER_ROUTE)?,
            endpoint: h(bus::HEADER_ENDPOINT)?,
            body: m.payload,
            time: m.time,
        })
    }

    pub fn payload_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// The publish that keeps one prepared delivery for `days` days (none for 0).
pub fn keep(
    days: u32,
    tenant: &str,
    delivery_id: &str,
    mail_id: &str,
    route: &str,
    endpoint: &str,
    body: bytes::Bytes,
) -> Option<Publish> {
    (days > 0).then(|| {
        Publish::new(
            bus::subject_payload(tenant, delivery_id),
            format!("{delivery_id}:payload"),
            body,
        )
        .header(bus::HEADER_DELIVERY_ID, delivery_id)
        .header(bus::HEADER_MAIL_ID, mail_id)
        .header(bus::HEADER_TENANT, tenant)
        .header(bus::HEADER_ROUTE, route)
        .header(bus::HEADER_ENDPOINT, endpoint)
        .header(bus::HEADER_TTL, &format!("{}h", u64::from(days) * 24))
    })
}

/// The kept payload of `delivery_id` in `tenant`, if it is still there.
pub async fn get(
    js: &jetstream::Context,
    tenant: &str,
    delivery_id: &str,
) -> Result<Option<Kept>, HeldError> {
    let stream = js
        .get_stream_no_info(bus::STREAM_PAYLOADS)
        .await
        .map_err(HeldError::bus)?;
    match stream
        .get_last_raw_message_by_subject(&bus::subject_payload(tenant, delivery_id))
        .await
    {
        Ok(m) => Ok(Kept::from_message(m)),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(HeldError::bus(e)),
    }
}

/// Sends a kept payload again as a new `OUTBOX` message (same delivery id, fresh signature
/// at the attempt), and waits for the PubAck. `nonce` tells this resend from earlier ones.
pub async fn resend(js: &jetstream::Context, k: &Kept, nonce: &str) -> Result<(), HeldError> {
    let mut h = HeaderMap::new();
    h.insert(bus::HEADER_DELIVERY_ID, k.delivery_id.as_str());
    h.insert(bus::HEADER_MAIL_ID, k.mail_id.as_str());
    h.insert(bus::HEADER_TENANT, k.tenant.as_str());
    h.insert(bus::HEADER_ROUTE, k.route.as_str());
    h.insert(bus::HEADER_ENDPOINT, k.endpoint.as_str());
    h.insert(
        bus::HEADER_MSG_ID,
        format!("{}:resend:{nonce}", k.delivery_id).as_str(),
    );
    js.publish_with_headers(bus::subject_outbox(&k.tenant, &k.route), h, k.body.clone())
        .await
        .map_err(HeldError::bus)?
        .await
        .map_err(HeldError::bus)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_is_kept_for_the_tenants_days_or_not_at_all() {
        assert!(keep(0, "acme", "msg_1", "m", "r", "e", bytes::Bytes::new()).is_none());
        let p = keep(7, "acme", "msg_1", "m", "r", "e", "{}".into()).unwrap();
        assert_eq!(p.subject, "payload.acme.msg_1");
        assert_eq!(p.msg_id, "msg_1:payload");
        assert_eq!(
            p.headers.get(bus::HEADER_TTL).map(|v| v.as_str()),
            Some("168h")
        );
        assert_eq!(
            p.headers.get(bus::HEADER_ENDPOINT).map(|v| v.as_str()),
            Some("e")
        );
    }
}

//! Sends held raw mail back to `mail.raw.<tenant>`: a quarantine release and the replay of
//! a raw dead letter go through [`raw_mail`], with the headers the mail was processed with
//! (mail id, envelope, verdicts, claim-check key, trace), so it keeps its mail id and so its
//! delivery ids: a receiver sees the same `webhook-id` again.

use async_nats::HeaderMap;
use async_nats::jetstream;
use bytes::Bytes;
use postwire_core::bus;

use super::HeldError;

/// The headers a raw mail carries on `MAIL` and keeps when it is held and sent back.
pub const RAW_MAIL_HEADERS: [&str; 8] = [
    bus::HEADER_MAIL_ID,
    bus::HEADER_TENANT,
    bus::HEADER_ENVELOPE,
    bus::HEADER_AUTH,
    bus::HEADER_RELEASED,
    // A claim-checked mail stays in object storage; the key travels along.
    bus::HEADER_RAW_KEY,
    bus::HEADER_RAW_SIZE,
    "traceparent",
];

/// Why held mail goes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Released from quarantine: delivered whatever its verdicts.
    Released,
    /// A raw dead letter replayed: processed with the configuration of now.
    Replayed,
}

/// Publishes held raw mail (`headers` as held, `payload` as held) to `mail.raw.<tenant>`
/// and waits for the PubAck. `seq` is the held message's sequence: it makes the
/// `Nats-Msg-Id` of this send distinct from an earlier one of the same mail.
pub async fn raw_mail(
    js: &jetstream::Context,
    held: &HeaderMap,
    payload: Bytes,
    why: Why,
    seq: u64,
) -> Result<(), HeldError> {
    let get = |n: &str| held.get(n).map(|v| v.as_str()).unwrap_or_default();
    let (tenant, mail_id) = (get(bus::HEADER_TENANT), get(bus::HEADER_MAIL_ID));
    if tenant.is_empty() || mail_id.is_empty() || held.get(bus::HEADER_ENVELOPE).is_none() {
        return Err(HeldError::NotReplayable(format!(
            "held mail {seq} lacks its tenant, mail id or envelope"
        )));
    }
    let mut h = HeaderMap::new();
    for name in RAW_MAIL_HEADERS {
        if let Some(v) = held.get(name) {
            h.insert(name, v.as_str());
        }
    }
    let msg_id = match why {
        Why::Released => {
            h.insert(bus::HEADER_RELEASED, "true");
            format!("{mail_id}:released:{seq}")
        }
        Why::Replayed => format!("{mail_id}:replay:{seq}"),
    };
    h.insert(bus::HEADER_MSG_ID, msg_id.as_str());
    js.publish_with_headers(bus::subject_mail_raw(tenant), h, payload)
        .await
        .map_err(HeldError::bus)?
        .await
        .map_err(HeldError::bus)?;
    Ok(())
}

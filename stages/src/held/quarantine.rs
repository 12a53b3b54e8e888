//! Mail held back by a tenant's authentication or infected-attachment policy, kept raw in the
//! `QUARANTINE` stream with its verdicts and the reason. Release sends it back to
//! `mail.raw.<tenant>` marked as released (the worker then delivers it with its verdicts)
//! through [`super::republish`], and removes it from the quarantine.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::StreamMessage};
use bytes::Bytes;
use postwire_core::bus;
use postwire_core::envelope::Envelope;
use postwire_core::event::Auth;

use super::republish::{self, Why};
use super::{HeldError, one_line};

fn header<'a>(m: &'a StreamMessage, name: &str) -> &'a str {
    m.headers.get(name).map(|v| v.as_str()).unwrap_or("")
}

/// A mail held in quarantine.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Quarantined {
    pub seq: u64,
    pub tenant: String,
    pub mail_id: String,
    pub received_at: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub reason: String,
    pub size: usize,
}

fn describe(seq: u64, m: &StreamMessage) -> Quarantined {
    let env = Envelope::from_header(header(m, bus::HEADER_ENVELOPE)).unwrap_or_default();
    Quarantined {
        seq,
        tenant: header(m, bus::HEADER_TENANT).to_string(),
        mail_id: header(m, bus::HEADER_MAIL_ID).to_string(),
        received_at: env.received_at,
        mail_from: env.mail_from,
        rcpt_to: env.rcpt_to,
        reason: header(m, bus::HEADER_QUARANTINE_REASON).to_string(),
        // A claim-checked mail holds only its key here.
        size: header(m, bus::HEADER_RAW_SIZE)
            .parse::<usize>()
            .unwrap_or(m.payload.len()),
    }
}

async fn stream(js: &jetstream::Context) -> Result<jetstream::stream::Stream, HeldError> {
    js.get_stream(bus::STREAM_QUARANTINE)
        .await
        .map_err(HeldError::bus)
}

/// Holds a mail (`headers` and `payload` as on MAIL) in `quarantine.<tenant>` with its
/// verdicts and the reason; waits for the PubAck.
pub async fn hold(
    js: &jetstream::Context,
    headers: &HeaderMap,
    payload: Bytes,
    tenant: &str,
    mail_id: &str,
    auth: Option<&Auth>,
    reason: &str,
) -> Result<(), HeldError> {
    let mut h = headers.clone();
    h.insert(bus::HEADER_MSG_ID, format!("{mail_id}:quarantine").as_str());
    if let Some(auth) = auth {
        h.insert(bus::HEADER_AUTH, auth.to_header().as_str());
    }
    h.insert(
        bus::HEADER_QUARANTINE_REASON,
        one_line(reason, 500).as_str(),
    );
    js.publish_with_headers(bus::subject_quarantine(tenant), h, payload)
        .await
        .map_err(HeldError::bus)?
        .await
        .map_err(HeldError::bus)?;
    Ok(())
}

/// Every quarantined mail (of `tenant`, or all), oldest first.
pub async fn entries(
    js: &jetstream::Context,
    tenant: Option<&str>,
) -> Result<Vec<Quarantined>, HeldError> {
    let st = stream(js).await?;
    let info = st.get_info().await.map_err(HeldError::bus)?;
    let mut out = Vec::new();
    if info.state.messages == 0 {
        return Ok(out);
    }
    for seq in info.state.first_sequence..=info.state.last_sequence {
        let Ok(m) = st.get_raw_message(seq).await else {
            continue; // deleted (released) in between
        };
        let t = header(&m, bus::HEADER_TENANT);
        if tenant.is_some_and(|want| want != t) {
            continue;
        }
        out.push(describe(seq, &m));
    }
    Ok(out)
}

/// One quarantined mail and its verdicts, or `None` when it is not there.
pub async fn one(
    js: &jetstream::Context,
    seq: u64,
) -> Result<Option<(Quarantined, Option<Auth>)>, HeldError> {
    let st = stream(js).await?;
    let Ok(m) = st.get_raw_message(seq).await else {
        return Ok(None);
    };
    let auth = m
        .headers
        .get(bus::HEADER_AUTH)
        .and_then(|v| Auth::from_header(v.as_str()).ok());
    Ok(Some((describe(seq, &m), auth)))
}

/// The tenant of a quarantined mail, or `None` when it is not there.
pub async fn tenant_of(js: &jetstream::Context, seq: u64) -> Result<Option<String>, HeldError> {
    let st = stream(js).await?;
    Ok(st
        .get_raw_message(seq)
        .await
        .ok()
        .map(|m| header(&m, bus::HEADER_TENANT).to_string()))
}

/// Releases one quarantined mail: sent back to `mail.raw.<tenant>` marked as released
/// (delivered with its verdicts), then removed. Returns (tenant, mail id).
pub async fn release_one(js: &jetstream::Context, seq: u64) -> Result<(String, String), HeldError> {
    let st = stream(js).await?;
    let m = st
        .get_raw_message(seq)
        .await
        .map_err(|_| HeldError::NotFound(seq))?;
    let tenant = header(&m, bus::HEADER_TENANT).to_string();
    let mail_id = header(&m, bus::HEADER_MAIL_ID).to_string();
    republish::raw_mail(js, &m.headers, m.payload.clone(), Why::Released, seq).await?;
    st.delete_message(seq).await.map_err(HeldError::bus)?;
    Ok((tenant, mail_id))
}

/// Deletes one quarantined mail for good.
pub async fn purge_one(js: &jetstream::Context, seq: u64) -> Result<(), HeldError> {
    stream(js)
        .await?
        .delete_message(seq)
        .await
        .map(|_| ())
        .map_err(|_| HeldError::NotFound(seq))
}

//! `postwire quarantine list|release`: mail held back by a tenant's authentication policy
//! or infected-attachment policy, kept raw in the QUARANTINE stream. Release republishes it to `mail.raw.<tenant>` marked
//! as released (the worker then delivers it with its verdicts) and removes it from the
//! quarantine.

use std::path::Path;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::message::StreamMessage;
use postwire_core::bus;
use postwire_core::envelope::Envelope;

use crate::roles::{connect_jetstream, load};
use crate::tools::Failure;

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

/// Every quarantined mail (of `tenant`, or all), oldest first.
pub async fn entries(
    js: &async_nats::jetstream::Context,
    tenant: Option<&str>,
) -> Result<Vec<Quarantined>, String> {
    let st = js
        .get_stream(bus::STREAM_QUARANTINE)
        .await
        .map_err(|e| e.to_string())?;
    let info = st.get_info().await.map_err(|e| e.to_string())?;
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

/// One quarantined mail and its verdicts header (JSON text), or `None` when it is not there.
pub async fn one(
    js: &async_nats::jetstream::Context,
    seq: u64,
) -> Result<Option<(Quarantined, Option<String>)>, String> {
    let st = js
        .get_stream(bus::STREAM_QUARANTINE)
        .await
        .map_err(|e| e.to_string())?;
    let Ok(m) = st.get_raw_message(seq).await else {
        return Ok(None);
    };
    let auth = m
        .headers
        .get(bus::HEADER_AUTH)
        .map(|v| v.as_str().to_string());
    Ok(Some((describe(seq, &m), auth)))
}

/// The tenant of a quarantined mail, or `None` when it is not there.
pub async fn tenant_of(
    js: &async_nats::jetstream::Context,
    seq: u64,
) -> Result<Option<String>, String> {
    let st = js
        .get_stream(bus::STREAM_QUARANTINE)
        .await
        .map_err(|e| e.to_string())?;
    Ok(st
        .get_raw_message(seq)
        .await
        .ok()
        .map(|m| header(&m, bus::HEADER_TENANT).to_string()))
}

/// Releases one quarantined mail: republished to `mail.raw.<tenant>` marked as released
/// (delivered with its verdicts), then removed. Returns (tenant, mail id).
pub async fn release_one(
    js: &async_nats::jetstream::Context,
    seq: u64,
) -> Result<(String, String), String> {
    let st = js
        .get_stream(bus::STREAM_QUARANTINE)
        .await
        .map_err(|e| e.to_string())?;
    let m = st
        .get_raw_message(seq)
        .await
        .map_err(|e| format!("quarantined mail {seq}: {e}"))?;
    let tenant = header(&m, bus::HEADER_TENANT).to_string();
    let mail_id = header(&m, bus::HEADER_MAIL_ID).to_string();
    let mut h = HeaderMap::new();
    for name in [
        bus::HEADER_MAIL_ID,
        bus::HEADER_TENANT,
        bus::HEADER_ENVELOPE,
        bus::HEADER_AUTH,
        // A claim-checked mail stays in object storage; the key travels along.
        bus::HEADER_RAW_KEY,
        bus::HEADER_RAW_SIZE,
    ] {
        if let Some(v) = m.headers.get(name) {
            h.insert(name, v.as_str());
        }
    }
    h.insert(bus::HEADER_RELEASED, "true");
    h.insert(bus::HEADER_MSG_ID, format!("{mail_id}:released").as_str());
    js.publish_with_headers(bus::subject_mail_raw(&tenant), h, m.payload.clone())
        .await
        .map_err(|e| format!("releasing {seq}: {e}"))?
        .await
        .map_err(|e| format!("releasing {seq}: no PubAck: {e}"))?;
    st.delete_message(seq)
        .await
        .map_err(|e| format!("removing {seq} from quarantine: {e}"))?;
    Ok((tenant, mail_id))
}

/// Deletes one quarantined mail for good.
pub async fn purge_one(js: &async_nats::jetstream::Context, seq: u64) -> Result<(), String> {
    let st = js
        .get_stream(bus::STREAM_QUARANTINE)
        .await
        .map_err(|e| e.to_string())?;
    st.delete_message(seq)
        .await
        .map(|_| ())
        .map_err(|e| format!("quarantined mail {seq}: {e}"))
}

/// Prints one line per quarantined mail (oldest first), or one JSON object per line.
pub async fn list(config: &Path, tenant: Option<&str>, json: bool) -> Result<(), Failure> {
    let cfg = load(config)?;
    let js = connect_jetstream(&cfg, "postwire-quarantine", Duration::from_secs(5)).await?;
    let all = entries(&js, tenant)
        .await
        .map_err(|e| Failure::Failed(format!("cannot read the QUARANTINE stream: {e}")))?;
    for q in &all {
        if json {
            println!("{}", serde_json::to_string(q).unwrap_or_default());
        } else {
            println!(
                "{}\t{}\t{}\t{}\t<{}>\t{}",
                q.seq, q.tenant, q.mail_id, q.received_at, q.mail_from, q.reason
            );
        }
    }
    if !json {
        eprintln!("{} quarantined mail(s)", all.len());
    }
    Ok(())
}

/// Releases the mails with these stream sequence numbers.
pub async fn release(config: &Path, seqs: &[u64]) -> Result<(), Failure> {
    let cfg = load(config)?;
    let js = connect_jetstream(&cfg, "postwire-quarantine", Duration::from_secs(5)).await?;
    for &seq in seqs {
        let (tenant, mail_id) = release_one(&js, seq).await.map_err(Failure::Failed)?;
        println!("released {seq} ({tenant} {mail_id})");
    }
    Ok(())
}

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

async fn stream(
    js: &async_nats::jetstream::Context,
) -> Result<async_nats::jetstream::stream::Stream, Failure> {
    js.get_stream(bus::STREAM_QUARANTINE)
        .await
        .map_err(|e| Failure::Failed(format!("cannot open the QUARANTINE stream: {e}")))
}

/// Prints one line per quarantined mail (oldest first), or one JSON object per line.
pub async fn list(config: &Path, tenant: Option<&str>, json: bool) -> Result<(), Failure> {
    let cfg = load(config)?;
    let js = connect_jetstream(&cfg, "postwire-quarantine", Duration::from_secs(5)).await?;
    let st = stream(&js).await?;
    let info = st
        .get_info()
        .await
        .map_err(|e| Failure::Failed(format!("QUARANTINE stream info: {e}")))?;
    let mut count = 0;
    for seq in info.state.first_sequence..=info.state.last_sequence {
        if info.state.messages == 0 {
            break;
        }
        let Ok(m) = st.get_raw_message(seq).await else {
            continue; // deleted (released) in between
        };
        let t = header(&m, bus::HEADER_TENANT);
        if tenant.is_some_and(|want| want != t) {
            continue;
        }
        count += 1;
        let env = Envelope::from_header(header(&m, bus::HEADER_ENVELOPE)).unwrap_or_default();
        let reason = header(&m, bus::HEADER_QUARANTINE_REASON);
        let mail_id = header(&m, bus::HEADER_MAIL_ID);
        if json {
            let line = serde_json::json!({
                "seq": seq, "tenant": t, "mail_id": mail_id, "received_at": env.received_at,
                "mail_from": env.mail_from, "rcpt_to": env.rcpt_to, "reason": reason,
                "size": header(&m, bus::HEADER_RAW_SIZE).parse::<usize>().unwrap_or(m.payload.len()),
            });
            println!("{line}");
        } else {
            println!(
                "{seq}\t{t}\t{mail_id}\t{}\t<{}>\t{reason}",
                env.received_at, env.mail_from
            );
        }
    }
    if !json {
        eprintln!("{count} quarantined mail(s)");
    }
    Ok(())
}

/// Releases the mails with these stream sequence numbers.
pub async fn release(config: &Path, seqs: &[u64]) -> Result<(), Failure> {
    let cfg = load(config)?;
    let js = connect_jetstream(&cfg, "postwire-quarantine", Duration::from_secs(5)).await?;
    let st = stream(&js).await?;
    for &seq in seqs {
        let m = st
            .get_raw_message(seq)
            .await
            .map_err(|e| Failure::Failed(format!("quarantined mail {seq}: {e}")))?;
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
            .map_err(|e| Failure::Failed(format!("releasing {seq}: {e}")))?
            .await
            .map_err(|e| Failure::Failed(format!("releasing {seq}: no PubAck: {e}")))?;
        st.delete_message(seq)
            .await
            .map_err(|e| Failure::Failed(format!("removing {seq} from quarantine: {e}")))?;
        println!("released {seq} ({tenant} {mail_id})");
    }
    Ok(())
}

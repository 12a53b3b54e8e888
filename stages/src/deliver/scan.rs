//! Reading a stream's stored messages back (DLQ listing, audit trail) with an ephemeral
//! ordered consumer: filtered by subject, optionally from a start time.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull};
use futures::StreamExt;

use super::DeliverError;

/// A stored message with its stream sequence and time.
#[derive(Debug, Clone)]
pub struct Stored {
    pub seq: u64,
    pub subject: String,
    pub headers: async_nats::HeaderMap,
    pub payload: bytes::Bytes,
    pub time: time::OffsetDateTime,
}

impl Stored {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.as_str())
    }
}

/// Every message of `stream` matching `filter`, oldest first, published at or after `since`.
pub async fn read(
    js: &jetstream::Context,
    stream: &str,
    filter: &str,
    since: Option<time::OffsetDateTime>,
) -> Result<Vec<Stored>, DeliverError> {
    let s = js.get_stream(stream).await.map_err(DeliverError::bus)?;
    let deliver_policy = match since {
        // The start time goes to NATS as RFC 3339, which has no year before 0: nothing is
        // older than 1970 anyway.
        Some(t) => DeliverPolicy::ByStartTime {
            start_time: t.max(time::OffsetDateTime::UNIX_EPOCH),
        },
        None => DeliverPolicy::All,
    };
    let consumer = s
        .create_consumer(pull::OrderedConfig {
            filter_subject: filter.to_string(),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(DeliverError::bus)?;
    let mut out = Vec::new();
    if consumer.cached_info().num_pending == 0 {
        return Ok(out);
    }
    let mut messages = consumer.messages().await.map_err(DeliverError::bus)?;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
        let msg = match next {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => return Err(DeliverError::bus(e)),
            Ok(None) | Err(_) => break,
        };
        let info = msg.info().map_err(DeliverError::bus)?;
        let (seq, pending, time) = (info.stream_sequence, info.pending, info.published);
        out.push(Stored {
            seq,
            subject: msg.subject.to_string(),
            headers: msg.headers.clone().unwrap_or_default(),
            payload: msg.payload.clone(),
            time,
        });
        if pending == 0 {
            break;
        }
    }
    Ok(out)
}

/// The first message of `stream` matching `filter` at or after `since` that `keep` accepts
/// (stops reading there: the dashboard's chart period needs only the oldest record).
pub async fn first(
    js: &jetstream::Context,
    stream: &str,
    filter: &str,
    since: time::OffsetDateTime,
    keep: impl Fn(&Stored) -> bool,
) -> Result<Option<Stored>, DeliverError> {
    let s = js.get_stream(stream).await.map_err(DeliverError::bus)?;
    let consumer = s
        .create_consumer(pull::OrderedConfig {
            filter_subject: filter.to_string(),
            deliver_policy: DeliverPolicy::ByStartTime { start_time: since },
            ..Default::default()
        })
        .await
        .map_err(DeliverError::bus)?;
    if consumer.cached_info().num_pending == 0 {
        return Ok(None);
    }
    let mut messages = consumer.messages().await.map_err(DeliverError::bus)?;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
        let msg = match next {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => return Err(DeliverError::bus(e)),
            Ok(None) | Err(_) => return Ok(None),
        };
        let info = msg.info().map_err(DeliverError::bus)?;
        let (seq, pending, time) = (info.stream_sequence, info.pending, info.published);
        let stored = Stored {
            seq,
            subject: msg.subject.to_string(),
            headers: msg.headers.clone().unwrap_or_default(),
            payload: msg.payload.clone(),
            time,
        };
        if keep(&stored) {
            return Ok(Some(stored));
        }
        if pending == 0 {
            return Ok(None);
        }
    }
}

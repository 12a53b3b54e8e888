//! The consumed message as a stage sees it: its headers, payload and delivery info, plus the
//! best-effort records (audit trail, dashboard counts) a stage notes while it works.

use std::sync::Mutex;

use async_nats::HeaderMap;
use async_nats::jetstream;
use bytes::Bytes;
use postwire_core::bus;

use super::publish::Publish;

pub struct Input {
    msg: jetstream::Message,
    records: Mutex<Vec<Publish>>,
}

impl Input {
    pub fn new(msg: jetstream::Message) -> Input {
        Input {
            msg,
            records: Mutex::default(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.msg.headers.as_ref()?.get(name).map(|v| v.as_str())
    }

    /// The headers as consumed (empty when there are none).
    pub fn headers(&self) -> HeaderMap {
        self.msg.headers.clone().unwrap_or_default()
    }

    pub(crate) fn header_map(&self) -> Option<&HeaderMap> {
        self.msg.headers.as_ref()
    }

    pub fn payload(&self) -> &Bytes {
        &self.msg.payload
    }

    pub fn subject(&self) -> &str {
        self.msg.subject.as_str()
    }

    pub fn mail_id(&self) -> Option<&str> {
        self.header(bus::HEADER_MAIL_ID)
    }

    pub fn tenant(&self) -> Option<&str> {
        self.header(bus::HEADER_TENANT)
    }

    /// How many times JetStream delivered this message (1 the first time).
    pub fn delivered(&self) -> i64 {
        self.msg.info().map(|i| i.delivered).unwrap_or(1)
    }

    /// The message's sequence in its stream (0 when unknown).
    pub fn stream_sequence(&self) -> u64 {
        self.msg.info().map(|i| i.stream_sequence).unwrap_or(0)
    }

    pub(crate) fn message(&self) -> &jetstream::Message {
        &self.msg
    }

    /// Notes a best-effort record, published after the input is settled (whatever became of
    /// it) without waiting for its PubAck: a lost record never blocks or repeats the work.
    pub fn record(&self, r: Publish) {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(r);
    }

    pub(crate) async fn publish_records(&self, js: &jetstream::Context) {
        let records = std::mem::take(&mut *self.records.lock().unwrap_or_else(|e| e.into_inner()));
        for r in records {
            let headers = r.headers_with_id();
            if let Err(e) = js.publish_with_headers(r.subject, headers, r.payload).await {
                tracing::warn!(error = %e, "Could not append an audit record.");
            }
        }
    }
}

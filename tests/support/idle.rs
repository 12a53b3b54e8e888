//! State instead of sleeps: when is the pipeline provably done, and what do the streams hold.
//!
//! MAIL and OUTBOX are work queues, and each worker acknowledges its input only after its
//! output was acknowledged (the deliver worker after the HTTP response). So once a mail was
//! accepted (250), some work queue holds it or what became of it until the last delivery
//! attempt was answered. When both are empty and neither durable consumer has anything
//! pending or awaiting an ack, every request the pipeline will ever make has been made: a
//! count checked then cannot grow later.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use postwire_core::bus;

/// The durable consumer's info; `None` while it does not exist (yet).
pub async fn consumer_info(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
) -> Option<consumer::Info> {
    js.get_stream(stream)
        .await
        .ok()?
        .consumer_info(name)
        .await
        .ok()
}

/// The stream's state (messages held now, first and last sequence ever stored).
pub async fn stream_state(js: &jetstream::Context, name: &str) -> stream::State {
    let mut s = js
        .get_stream(name)
        .await
        .unwrap_or_else(|e| panic!("stream {name}: {e}"));
    s.info()
        .await
        .unwrap_or_else(|e| panic!("info of stream {name}: {e}"))
        .state
        .clone()
}

fn settled(c: &consumer::Info) -> bool {
    c.num_pending == 0 && c.num_ack_pending == 0
}

/// Waits until consumer `name` on `stream` exists with nothing pending and nothing awaiting
/// an ack; returns its info. Panics with the last state seen after `timeout`.
pub async fn wait_consumer_idle(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
    timeout: Duration,
) -> consumer::Info {
    let until = tokio::time::Instant::now() + timeout;
    loop {
        let info = consumer_info(js, stream, name).await;
        match info {
            Some(i) if settled(&i) => return i,
            _ if tokio::time::Instant::now() > until => {
                panic!("consumer {stream}/{name} not idle within {timeout:?}: {info:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The consumers of an idle pipeline, for assertions on what JetStream delivered.
#[derive(Debug)]
pub struct Idle {
    pub process: consumer::Info,
    pub deliver: consumer::Info,
}

/// Waits until the whole pipeline is idle (see the module docs); panics with the last state
/// seen after `timeout`.
pub async fn wait_idle(js: &jetstream::Context, timeout: Duration) -> Idle {
    let until = tokio::time::Instant::now() + timeout;
    loop {
        let mail = stream_state(js, bus::STREAM_MAIL).await;
        let outbox = stream_state(js, bus::STREAM_OUTBOX).await;
        let process = consumer_info(js, bus::STREAM_MAIL, bus::CONSUMER_PROCESS).await;
        let deliver = consumer_info(js, bus::STREAM_OUTBOX, bus::CONSUMER_DELIVER).await;
        let empty = mail.messages == 0 && outbox.messages == 0;
        match (process, deliver) {
            (Some(process), Some(deliver)) if empty && settled(&process) && settled(&deliver) => {
                return Idle { process, deliver };
            }
            (process, deliver) if tokio::time::Instant::now() > until => panic!(
                "the pipeline is not idle within {timeout:?}: MAIL holds {}, OUTBOX holds {}; \
                 process: {process:?}; deliver: {deliver:?}",
                mail.messages, outbox.messages
            ),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Asserts that `stream` holds exactly `n` messages now.
pub async fn assert_stream_len(js: &jetstream::Context, stream: &str, n: u64) {
    let state = stream_state(js, stream).await;
    assert_eq!(state.messages, n, "stream {stream} holds {state:?}");
}

/// Asserts that exactly `n` messages were ever stored in `stream` (deleted or not): for a work
/// queue, how many units of work it was given.
pub async fn assert_stream_received(js: &jetstream::Context, stream: &str, n: u64) {
    let state = stream_state(js, stream).await;
    assert_eq!(state.last_sequence, n, "stream {stream}: {state:?}");
}

/// What JetStream did for one delivery consumer: `deliveries` messages handed out in all
/// (redeliveries included), the last one acknowledged, none waiting to be redelivered.
pub fn assert_deliveries(c: &consumer::Info, messages: u64, deliveries: u64) {
    assert_eq!(
        (
            c.delivered.stream_sequence,
            c.delivered.consumer_sequence,
            c.ack_floor.stream_sequence,
            c.num_redelivered,
        ),
        (messages, deliveries, messages, 0),
        "consumer {}: (last stream seq, deliveries, ack floor, awaiting redelivery); {c:?}",
        c.name
    );
}

//! In-progress acks: while a stage works on a message, JetStream is told every `every`
//! (a third of the consumer's `ack_wait`) that the message is still held, so slow DNS, a slow
//! scanner or a slow endpoint never makes it redeliver the message to another worker.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::AckKind;

use super::Input;

pub(crate) async fn while_working<T>(
    input: &Input,
    every: Duration,
    work: impl Future<Output = T>,
) -> T {
    tokio::pin!(work);
    let every = every.max(Duration::from_millis(100));
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => {
                let _ = input.message().ack_with(AckKind::Progress).await;
            }
        }
    }
}

//! The consuming loop: (re)creates the durable pull consumer, survives NATS restarts, runs a
//! handler per message with bounded concurrency, and stops pulling on shutdown while letting
//! in-flight messages finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;

/// Consumes `stream` through the durable consumer `config` until `shutdown` resolves.
pub async fn consume<H, F>(
    js: &jetstream::Context,
    stream: &str,
    config: pull::Config,
    concurrency: usize,
    shutdown: impl Future<Output = ()>,
    handler: H,
) where
    H: Fn(jetstream::Message) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send,
{
    let handler = Arc::new(handler);
    let name = config.durable_name.clone().unwrap_or_default();
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let mut delay = Duration::from_millis(100);
    loop {
        let messages = async {
            let s = js.get_stream(stream).await.map_err(|e| e.to_string())?;
            let c = s
                .get_or_create_consumer(&name, config.clone())
                .await
                .map_err(|e| e.to_string())?;
            c.messages().await.map_err(|e| e.to_string())
        };
        let messages = tokio::select! {
            _ = shutdown.clone() => return,
            m = messages => m,
        };
        let messages = match messages {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(stream, consumer = %name, error = %e, "Cannot consume yet; retrying.");
                tokio::select! {
                    _ = shutdown.clone() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        delay = Duration::from_millis(100);
        let mut failed = false;
        messages
            .take_until(shutdown.clone())
            .take_while(|m| {
                let ok = match m {
                    Ok(_) => true,
                    // Heartbeat and connection errors end this subscription; we subscribe again.
                    Err(e) => {
                        tracing::warn!(stream, consumer = %name, error = %e, "Consuming was interrupted; resubscribing.");
                        failed = true;
                        false
                    }
                };
                std::future::ready(ok)
            })
            .for_each_concurrent(concurrency, |m| {
                let handler = handler.clone();
                async move {
                    if let Ok(m) = m {
                        handler(m).await;
                    }
                }
            })
            .await;
        if !failed {
            return;
        }
        tokio::select! {
            _ = shutdown.clone() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

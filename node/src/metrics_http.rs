//! `GET /metrics`: the process's counters and histograms, plus gauges read from JetStream
//! at scrape time (stream depths, consumer lag).

use std::future::Future;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use postwire_core::{bus, metrics};
use tokio::net::TcpListener;

pub async fn serve(
    listener: TcpListener,
    js: async_nats::jetstream::Context,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(js);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "The metrics endpoint stopped.");
    }
}

async fn scrape(State(js): State<async_nats::jetstream::Context>) -> impl IntoResponse {
    let mut gauges = Vec::new();
    for name in [bus::STREAM_MAIL, bus::STREAM_OUTBOX, bus::STREAM_DLQ] {
        if let Ok(mut s) = js.get_stream(name).await
            && let Ok(info) = s.info().await
        {
            gauges.push((
                "postwire_stream_messages",
                "Messages stored in a stream.",
                vec![("stream", name.to_string())],
                info.state.messages as f64,
            ));
            for consumer in [bus::CONSUMER_PROCESS, bus::CONSUMER_DELIVER] {
                if let Ok(mut c) = s
                    .get_consumer::<async_nats::jetstream::consumer::pull::Config>(consumer)
                    .await
                    && let Ok(ci) = c.info().await
                {
                    gauges.push((
                        "postwire_consumer_pending_messages",
                        "Messages not yet delivered to a consumer (lag).",
                        vec![("consumer", consumer.to_string())],
                        ci.num_pending as f64,
                    ));
                }
            }
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics::render(&gauges),
    )
}

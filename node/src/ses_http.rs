//! `POST /ses`: the HTTPS endpoint an SNS topic delivers SES notifications to.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use postwire_ingest::JetStreamPublisher;
use postwire_ingest::ses::{Answer, SesIntake};
use tokio::net::TcpListener;

pub async fn serve(
    listener: TcpListener,
    intake: SesIntake<JetStreamPublisher>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let app = axum::Router::new()
        .route("/ses", axum::routing::post(receive))
        .with_state(Arc::new(intake));
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "The SES endpoint stopped.");
    }
}

async fn receive(
    State(intake): State<Arc<SesIntake<JetStreamPublisher>>>,
    body: Bytes,
) -> (StatusCode, String) {
    match intake.handle(&body).await {
        Answer::Ok(m) => (StatusCode::OK, m),
        Answer::Forbidden(m) => (StatusCode::FORBIDDEN, m),
        Answer::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
        Answer::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
    }
}

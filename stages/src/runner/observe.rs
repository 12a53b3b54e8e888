//! Telemetry per message and stage: one span per message per worker (`mail_id`, `tenant`,
//! `stage`; continued from the `traceparent` header, so one mail is one trace), and the
//! metrics every stage emits (documented in docs/observability.md).

use std::time::Duration;

use postwire_core::{bus, metrics};

use super::{Input, Kind};

pub const STAGE_DURATION: &str = "postwire_stage_duration_seconds";
pub const STAGE_DURATION_HELP: &str = "Time a stage took for one message.";
pub const STAGE_MESSAGES: &str = "postwire_stage_messages_total";
const STAGE_MESSAGES_HELP: &str =
    "Messages a stage finished, by outcome (done, held, retry, dead, error, refused).";

/// The span of one message in worker `kind`. The deliver span has room for what the stage
/// learns (the attempt number, the HTTP status).
pub(crate) fn span(kind: Kind, input: &Input) -> tracing::Span {
    let mail_id = input.mail_id().unwrap_or_default();
    let tenant = input.tenant().unwrap_or_default();
    let span = match kind {
        Kind::Process => tracing::info_span!("process", mail_id, tenant, stage = "process"),
        Kind::Deliver => tracing::info_span!(
            "deliver",
            delivery_id = input.header(bus::HEADER_DELIVERY_ID).unwrap_or_default(),
            mail_id,
            tenant,
            route = input.header(bus::HEADER_ROUTE).unwrap_or_default(),
            endpoint = input.header(bus::HEADER_ENDPOINT).unwrap_or_default(),
            stage = "deliver",
            attempt = tracing::field::Empty,
            http.status = tracing::field::Empty,
        ),
    };
    postwire_core::telemetry::continue_from(&span, input.header_map());
    span
}

/// Records the time one stage took for one message (`stage` = a worker or a fused stage).
pub fn observe_stage(stage: &'static str, took: Duration) {
    metrics::observe(
        STAGE_DURATION,
        STAGE_DURATION_HELP,
        &[("stage", stage)],
        took,
    );
}

pub(crate) fn finished(kind: Kind, outcome: &'static str, took: Duration) {
    observe_stage(kind.name(), took);
    metrics::inc(
        STAGE_MESSAGES,
        STAGE_MESSAGES_HELP,
        &[("stage", kind.name()), ("outcome", outcome)],
    );
}

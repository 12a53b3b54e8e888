//! Settling an input after its stage ran: outputs written first, then ack; a delayed nak
//! when the stage asks for a retry or when writing failed; a dead letter then term when the
//! stage gave up; term alone when the input can never be handled.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use postwire_core::metrics;

use super::{Input, Outcome, Settled, publish};
use crate::StageError;

/// Settles `input`; returns the outcome's metric label and how it was settled.
pub(crate) async fn settle(
    js: &jetstream::Context,
    input: &Input,
    result: Result<Outcome, StageError>,
    error_delay: Duration,
) -> (&'static str, Settled) {
    let written = match result {
        Ok(Outcome::Done(outputs)) => ("done", publish::outputs(js, outputs).await),
        Ok(Outcome::Hold(held)) => ("held", publish::hold(js, &held).await),
        Ok(Outcome::Retry(delay)) => {
            nak(input, delay).await;
            return ("retry", Settled::Handed);
        }
        Ok(Outcome::Dead(dead)) => {
            let tenant = dead.tenant().to_string();
            let counts = dead.is_delivery();
            match crate::held::dlq::write(js, dead).await {
                Ok(()) => {
                    if counts {
                        metrics::inc(
                            "postwire_dlq_messages_total",
                            "Deliveries moved to the dead-letter stream.",
                            &[("tenant", &tenant)],
                        );
                    }
                    term(input).await;
                    return ("dead", Settled::Terminated);
                }
                Err(e) => {
                    tracing::error!(error = %e, "Writing to the dead-letter stream failed; keeping the message for later.");
                    nak(input, error_delay).await;
                    return ("error", Settled::Handed);
                }
            }
        }
        Err(e) if e.is_retryable() => {
            tracing::warn!(error = %e, "A stage failed on a message; retrying it later.");
            nak(input, error_delay).await;
            return ("error", Settled::Handed);
        }
        Err(e) => {
            tracing::error!(error = %e, subject = %input.subject(), "A message can never be handled; terminating it.");
            term(input).await;
            return ("refused", Settled::Refused);
        }
    };
    match written {
        (label, Ok(())) => {
            if let Err(e) = input.message().double_ack().await {
                tracing::warn!(error = %e, "Acknowledging a message failed; it will be handled again (idempotently).");
            }
            (label, Settled::Acked)
        }
        (_, Err(e)) => {
            tracing::warn!(error = %e, "Writing a stage's outputs failed; retrying the message later.");
            nak(input, error_delay).await;
            ("error", Settled::Handed)
        }
    }
}

async fn nak(input: &Input, delay: Duration) {
    let _ = input.message().ack_with(AckKind::Nak(Some(delay))).await;
}

async fn term(input: &Input) {
    let _ = input.message().ack_with(AckKind::Term).await;
}

//! Logging and tracing setup shared by every role, and trace propagation through NATS.
//!
//! - Logs are sentences on stderr; `RUST_LOG` filters them, `POSTWIRE_LOG_FORMAT=json` gives
//!   one JSON object per line.
//! - Traces go to an OTLP collector (HTTP/protobuf, e.g. Jaeger on :4318) when the standard
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set; off
//!   otherwise. `OTEL_SERVICE_NAME` names the service (default `postwire-<role>`).
//! - One trace per mail: the span context travels in a lowercase `traceparent` NATS header
//!   from ingest to the process worker to each delivery attempt.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Flushes and stops the trace exporter when dropped.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("warning: flushing traces failed: {e}");
        }
    }
}

fn otlp_configured() -> bool {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

fn tracer_provider(
    role: &str,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()?;
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| format!("postwire-{role}"));
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .build();
    Ok(SdkTracerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build())
}

/// Installs logging (and tracing export when configured). Call once, outside any async
/// runtime (the exporter's HTTP client is a blocking one); keep the guard until exit.
pub fn init(role: &str, default_filter: &str) -> Telemetry {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = std::env::var("POSTWIRE_LOG_FORMAT").is_ok_and(|v| v == "json");
    // Colours only on a terminal (and not with NO_COLOR set): `make run > log` or a process
    // supervisor's log must not fill with escape codes.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour_wanted(std::io::stderr().is_terminal()));
    let fmt = if json {
        fmt.json().boxed()
    } else {
        fmt.compact().boxed()
    };
    let mut provider = None;
    let otel = if otlp_configured() {
        match tracer_provider(role) {
            Ok(p) => {
                let layer = tracing_opentelemetry::layer().with_tracer(p.tracer("postwire"));
                provider = Some(p);
                Some(layer)
            }
            Err(e) => {
                eprintln!("warning: OTLP trace export is configured but cannot start: {e}");
                None
            }
        }
    } else {
        None
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init();
    Telemetry { provider }
}

/// Whether log lines get ANSI colours: only on a terminal, and never with `NO_COLOR` set
/// (<https://no-color.org>).
pub fn colour_wanted(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Logging only (tests and short commands).
pub fn init_logging(default_filter: &str) {
    std::mem::forget(init("cli", default_filter));
}

use std::io::IsTerminal as _;

use tracing_subscriber::Layer as _;

/// The W3C trace-context header, lowercase as DESIGN §8 asks.
pub const HEADER_TRACEPARENT: &str = "traceparent";

struct NatsInjector<'a>(&'a mut async_nats::HeaderMap);

impl Injector for NatsInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0
            .insert(key.to_ascii_lowercase().as_str(), value.as_str());
    }
}

struct NatsExtractor<'a>(&'a async_nats::HeaderMap);

impl Extractor for NatsExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        vec![HEADER_TRACEPARENT, "tracestate"]
    }
}

/// Writes the span's trace context into NATS headers (nothing when tracing is off).
pub fn inject(span: &tracing::Span, headers: &mut async_nats::HeaderMap) {
    let cx = span.context();
    TraceContextPropagator::new().inject_context(&cx, &mut NatsInjector(headers));
}

/// Makes `span` a child of the trace context carried in NATS headers, if any.
pub fn continue_from(span: &tracing::Span, headers: Option<&async_nats::HeaderMap>) {
    let Some(h) = headers else { return };
    if h.get(HEADER_TRACEPARENT).is_none() {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&NatsExtractor(h));
    let _ = span.set_parent(cx);
}

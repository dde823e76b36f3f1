//! OpenTelemetry export (cargo feature `otel`): the `request` and `call` spans sent over OTLP/HTTP
//! with the trace ids the downstream services see.
//!
//! ```no_run
//! use tracing_subscriber::layer::SubscriberExt;
//! use tracing_subscriber::util::SubscriberInitExt;
//!
//! // Exports to `OTEL_EXPORTER_OTLP_ENDPOINT` (default `http://localhost:4318`).
//! let (otel, _flush_on_exit) = orchestrate_runtime::telemetry::otel::layer("checkout-bff")?;
//! tracing_subscriber::registry().with(otel).init();
//! # Ok::<(), orchestrate_runtime::telemetry::otel::OtelError>(())
//! ```
//!
//! With the layer installed, the router makes the client's `traceparent` the parent of the
//! `request` span (or takes the trace id OpenTelemetry chose for a new trace), and each
//! downstream request carries its `call` span's id as parent id, so a trace shows the client,
//! this service's calls and what each service did, in one tree. The exporter uses the blocking
//! HTTP client on the batch processor's own thread (the async client panics there).

use super::{Correlation, SpanId, TraceContext, TraceId};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use std::fmt;
use tracing::Subscriber;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};
use tracing_subscriber::registry::LookupSpan;

/// The layer [`layer`] returns.
///
/// ```
/// # fn f() -> Result<(), orchestrate_runtime::telemetry::otel::OtelError> {
/// let (layer, _guard): (orchestrate_runtime::telemetry::otel::OtelLayer<tracing_subscriber::Registry>, _) =
///     orchestrate_runtime::telemetry::otel::layer("checkout-bff")?;
/// # Ok(()) }
/// ```
pub type OtelLayer<S> = OpenTelemetryLayer<S, SdkTracer>;

/// Why [`layer`] failed.
///
/// ```
/// match orchestrate_runtime::telemetry::otel::layer::<tracing_subscriber::Registry>("checkout-bff") {
///     Ok((_layer, _guard)) => {}
///     Err(error) => eprintln!("tracing export disabled: {error}"),
/// }
/// ```
#[derive(Debug)]
pub struct OtelError(opentelemetry_otlp::ExporterBuildError);

impl fmt::Display for OtelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the OTLP exporter cannot be built: {}", self.0)
    }
}

impl std::error::Error for OtelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Sends the spans still buffered when dropped; keep it alive until the application exits.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (_layer, guard) = orchestrate_runtime::telemetry::otel::layer::<tracing_subscriber::Registry>("checkout-bff")?;
/// // .. serve ..
/// drop(guard); // sends the spans still buffered
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OtelGuard {
    provider: SdkTracerProvider,
}

impl Drop for OtelGuard {
    fn drop(&mut self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("orchestrate: OpenTelemetry shutdown: {error}");
        }
    }
}

/// A `tracing` layer exporting spans over OTLP/HTTP (protobuf) as `service_name`, configured by
/// the standard `OTEL_EXPORTER_OTLP_*` environment variables, and the guard that flushes it.
///
/// # Errors
///
/// [`OtelError`] when the exporter cannot be built (e.g. an invalid endpoint).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use tracing_subscriber::layer::SubscriberExt;
/// let (otel, _guard) = orchestrate_runtime::telemetry::otel::layer("checkout-bff")?;
/// let subscriber = tracing_subscriber::registry().with(otel);
/// # let _ = subscriber;
/// # Ok(()) }
/// ```
pub fn layer<S>(service_name: impl Into<String>) -> Result<(OtelLayer<S>, OtelGuard), OtelError>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    // The exporter's HTTP client is a reqwest client like the services' ones: built without a
    // default TLS provider, it needs the one the runtime installs.
    crate::tls::install_tls_provider();
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().build().map_err(OtelError)?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service_name.into()).build())
        .build();
    let tracer = provider.tracer("orchestrate");
    Ok((tracing_opentelemetry::layer().with_tracer(tracer), OtelGuard { provider }))
}

/// Ties the `request` span to the inbound trace: the client's span becomes its parent; for a new
/// trace, the trace id OpenTelemetry picked replaces the generated one. Without the layer,
/// nothing changes.
pub(crate) fn attach(span: &tracing::Span, mut correlation: Correlation) -> Correlation {
    if span.is_disabled() {
        return correlation;
    }
    if correlation.continued() {
        let trace = correlation.trace();
        let state = trace.tracestate().and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<TraceState>().ok());
        let remote = SpanContext::new(
            opentelemetry::trace::TraceId::from_bytes(trace.trace_id().0),
            opentelemetry::trace::SpanId::from_bytes(trace.parent_id().0),
            TraceFlags::new(trace.flags()),
            true,
            state.unwrap_or_default(),
        );
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
        let own = span.context().span().span_context().clone();
        if own.is_valid() {
            correlation.server_span = SpanId(own.span_id().to_bytes());
        }
    } else {
        let context = span.context();
        let own = context.span().span_context().clone();
        if own.is_valid() {
            correlation.set_trace(TraceContext::from_parts(
                TraceId(own.trace_id().to_bytes()),
                SpanId(own.span_id().to_bytes()),
                own.trace_flags().to_u8(),
            ));
            correlation.server_span = SpanId(own.span_id().to_bytes());
        }
    }
    correlation
}

/// The trace as sent by the current (`call`) span, when OpenTelemetry tracks it in `trace`.
pub(crate) fn current_span_context(trace: &TraceContext) -> Option<TraceContext> {
    let context = tracing::Span::current().context();
    let current = context.span().span_context().clone();
    (current.is_valid() && current.trace_id().to_bytes() == trace.trace_id().0)
        .then(|| trace.with_parent_id(SpanId(current.span_id().to_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    const CLIENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    fn with_layer(test: impl FnOnce()) {
        let provider = SdkTracerProvider::builder().build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), test);
    }

    #[test]
    fn downstream_requests_carry_the_call_spans_id_in_the_clients_trace() {
        with_layer(|| {
            let mut headers = http::HeaderMap::new();
            headers.insert("traceparent", http::HeaderValue::from_static(CLIENT));
            let request = tracing::info_span!("request");
            let correlation = attach(&request, Correlation::from_inbound(&mut headers));
            let _request = request.enter();
            let call = tracing::info_span!("call");
            let _call = call.enter();
            let sent = current_span_context(correlation.trace()).unwrap();
            let own = call.context().span().span_context().span_id().to_bytes();
            assert_eq!(sent.trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
            assert_eq!(sent.parent_id(), SpanId(own));
            assert_eq!(request.context().span().span_context().trace_id().to_bytes(), sent.trace_id().0);
        });
    }

    #[test]
    fn a_new_trace_takes_the_id_opentelemetry_chose() {
        with_layer(|| {
            let request = tracing::info_span!("request");
            let correlation = attach(&request, Correlation::from_inbound(&mut http::HeaderMap::new()));
            let otel_trace = request.context().span().span_context().trace_id().to_bytes();
            assert_eq!(correlation.trace().trace_id().0, otel_trace);
            let _request = request.enter();
            assert_eq!(current_span_context(correlation.trace()).unwrap().trace_id().0, otel_trace);
        });
    }
}

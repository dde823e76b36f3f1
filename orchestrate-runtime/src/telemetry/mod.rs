//! Seeing what a request did: W3C trace context and request ids carried to every downstream call,
//! the metrics the runtime records, and the `Server-Timing` header.
//!
//! What the runtime emits, and where:
//!
//! - **`tracing` spans**: `request` per inbound request (in [`router::serve`](crate::router::serve):
//!   `method`, `route`, `endpoint`, `request_id`, `trace_id`, `status`, `partial`) and, inside
//!   it, `call` per downstream call (in the executor: `service`, `call`, `attempts`, `status`,
//!   `outcome`, `duration_ms`, `breaker`, `retry_reason`); each attempt of a call is a `debug`
//!   event from [`ServiceClient::send`](crate::ServiceClient::send). All at `INFO` or `DEBUG`,
//!   written with the `tracing` macros, so they cost a callsite check when no subscriber wants
//!   them. Any `tracing-subscriber` shows them; `FmtSpan::CLOSE` prints one line per span with its
//!   fields.
//! - **Propagation**: [`Correlation::from_inbound`] continues the client's `traceparent` (a new
//!   trace when it is absent or invalid) and keeps or generates its `x-request-id`; the client
//!   sends every downstream request the same trace id with a fresh parent id and the same request
//!   id, and the response carries the request id back, and the trace id in `traceresponse` (W3C
//!   Trace Context Level 2) so that a client can report which trace its request belonged to.
//! - **Metrics**: see [`metrics`] for the names and labels and
//!   [`ops::metrics`](crate::ops::metrics) for the Prometheus recorder and `/metrics`.
//! - **`Server-Timing`**: [`server_timing`] turns a request's [`Timeline`](crate::Timeline) into
//!   the header a browser's network panel shows.
//! - **OpenTelemetry** (cargo feature `otel`): `otel` exports the spans over OTLP with the same
//!   trace ids.

pub mod metrics;
#[cfg(feature = "otel")]
pub mod otel;
mod server_timing;
mod trace_context;

pub use server_timing::server_timing;
pub use trace_context::{SpanId, TRACEPARENT, TRACERESPONSE, TRACESTATE, TraceContext, TraceId};

use http::HeaderValue;
use http::header::HeaderMap;

/// The request id header.
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::REQUEST_ID, "x-request-id");
/// ```
pub const REQUEST_ID: &str = "x-request-id";

/// Longest inbound request id kept; a longer one is replaced.
const MAX_REQUEST_ID: usize = 200;

/// The identity of one inbound request across services: its request id and its place in a trace.
///
/// ```
/// use orchestrate_runtime::telemetry::Correlation;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-request-id", "req-42".parse().unwrap());
/// headers.insert("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".parse().unwrap());
/// let ids = Correlation::from_inbound(&mut headers);
/// assert_eq!(ids.request_id(), "req-42");
/// assert!(ids.continued());
/// assert_eq!(ids.trace().trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
///
/// // Without them: a generated request id and a new trace, written into the headers.
/// let mut headers = http::HeaderMap::new();
/// let ids = Correlation::from_inbound(&mut headers);
/// assert!(!ids.continued());
/// assert_eq!(headers["x-request-id"], ids.request_id());
/// assert_eq!(headers["traceparent"], ids.trace().traceparent());
/// ```
#[derive(Debug, Clone)]
pub struct Correlation {
    request_id: HeaderValue,
    trace: TraceContext,
    continued: bool,
    /// The id of this server's span for the request (`traceresponse`): the `request` span's with
    /// the `otel` feature and an OpenTelemetry layer, else a random one.
    server_span: SpanId,
}

impl Correlation {
    /// Reads the request id and trace context of an inbound request and normalizes `headers` so
    /// that what is forwarded downstream is valid: exactly one `x-request-id` (the client's when
    /// it is 1 to 200 visible ASCII characters, else a generated UUID), the continued or new
    /// `traceparent`, and `tracestate` only when it belongs to a valid `traceparent`.
    ///
    /// ```
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-request-id", "two words".parse().unwrap()); // not a usable id
    /// let ids = orchestrate_runtime::telemetry::Correlation::from_inbound(&mut headers);
    /// assert_ne!(ids.request_id(), "two words");
    /// assert_eq!(headers["x-request-id"], ids.request_id());
    /// ```
    pub fn from_inbound(headers: &mut HeaderMap) -> Self {
        let mut ids = headers.get_all(REQUEST_ID).iter();
        let request_id = match (ids.next(), ids.next()) {
            (Some(id), None) if is_valid_request_id(id) => id.clone(),
            _ => new_request_id(),
        };
        headers.insert(REQUEST_ID, request_id.clone());
        let (trace, continued) = match TraceContext::from_headers(headers) {
            Some(trace) => (trace, true),
            None => (TraceContext::new_root(), false),
        };
        headers.insert(TRACEPARENT, trace.traceparent());
        headers.remove(TRACESTATE);
        if let Some(state) = trace.tracestate() {
            headers.insert(TRACESTATE, state.clone());
        }
        Self { request_id, trace, continued, server_span: SpanId::random() }
    }

    /// The request id sent downstream and returned to the client.
    ///
    /// ```
    /// let ids = orchestrate_runtime::telemetry::Correlation::from_inbound(&mut http::HeaderMap::new());
    /// assert_eq!(ids.request_id().len(), 36);
    /// ```
    pub fn request_id(&self) -> &HeaderValue {
        &self.request_id
    }

    /// The trace this request belongs to.
    ///
    /// ```
    /// let ids = orchestrate_runtime::telemetry::Correlation::from_inbound(&mut http::HeaderMap::new());
    /// assert!(ids.trace().sampled());
    /// ```
    pub fn trace(&self) -> &TraceContext {
        &self.trace
    }

    /// Whether the client's `traceparent` was continued (else a new trace was started).
    ///
    /// ```
    /// let ids = orchestrate_runtime::telemetry::Correlation::from_inbound(&mut http::HeaderMap::new());
    /// assert!(!ids.continued());
    /// ```
    pub fn continued(&self) -> bool {
        self.continued
    }

    /// The `traceresponse` header of the response (W3C Trace Context Level 2): the request's
    /// trace id and flags, with this server's span id for the request.
    ///
    /// ```
    /// use orchestrate_runtime::telemetry::{Correlation, TraceContext};
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".parse().unwrap());
    /// let ids = Correlation::from_inbound(&mut headers);
    /// let answer = TraceContext::parse(ids.traceresponse().to_str().unwrap()).unwrap();
    /// assert_eq!(answer.trace_id(), ids.trace().trace_id());
    /// assert_ne!(answer.parent_id(), ids.trace().parent_id(), "the server's span, not the client's");
    /// ```
    pub fn traceresponse(&self) -> HeaderValue {
        self.trace.traceresponse(self.server_span)
    }

    /// Replaces the trace (the OpenTelemetry layer does when it started the trace itself).
    ///
    /// ```
    /// use orchestrate_runtime::telemetry::{Correlation, TraceContext};
    /// let mut ids = Correlation::from_inbound(&mut http::HeaderMap::new());
    /// let trace = TraceContext::new_root();
    /// ids.set_trace(trace.clone());
    /// assert_eq!(ids.trace(), &trace);
    /// ```
    pub fn set_trace(&mut self, trace: TraceContext) {
        self.trace = trace;
    }
}

/// The `traceparent` of one downstream request of a request in `trace`: the same trace id with a
/// fresh parent id (with the `otel` feature and an OpenTelemetry layer, the id of the current call
/// span, so the service's spans hang under it in the trace).
///
/// ```
/// use orchestrate_runtime::telemetry::{TraceContext, downstream_traceparent};
/// let trace = TraceContext::new_root();
/// let sent = downstream_traceparent(&trace);
/// let sent = TraceContext::parse(sent.to_str().unwrap()).unwrap();
/// assert_eq!(sent.trace_id(), trace.trace_id());
/// assert_ne!(sent.parent_id(), trace.parent_id());
/// ```
pub fn downstream_traceparent(trace: &TraceContext) -> HeaderValue {
    #[cfg(feature = "otel")]
    if let Some(current) = otel::current_span_context(trace) {
        return current.traceparent();
    }
    trace.child_traceparent()
}

/// Whether an inbound `x-request-id` is kept: 1 to 200 visible ASCII characters.
///
/// ```
/// use orchestrate_runtime::telemetry::is_valid_request_id;
/// assert!(is_valid_request_id(&"req-42".parse().unwrap()));
/// assert!(!is_valid_request_id(&"two words".parse().unwrap()));
/// ```
pub fn is_valid_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_REQUEST_ID && bytes.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// A new request id: a random (version 4) UUID.
///
/// ```
/// let id = orchestrate_runtime::telemetry::new_request_id();
/// let text = id.to_str().unwrap();
/// assert_eq!((text.len(), &text[14..15]), (36, "4"));
/// ```
pub fn new_request_id() -> HeaderValue {
    let mut bytes = fastrand::u128(..).to_be_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    let mut text = String::with_capacity(36);
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("orchestrate"))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_or_repeated_inbound_ids_are_replaced() {
        let mut headers = HeaderMap::new();
        headers.append(REQUEST_ID, HeaderValue::from_static("a"));
        headers.append(REQUEST_ID, HeaderValue::from_static("b"));
        headers.insert(TRACEPARENT, HeaderValue::from_static("00-zz-not-valid"));
        headers.insert(TRACESTATE, HeaderValue::from_static("vendor=1"));
        let ids = Correlation::from_inbound(&mut headers);
        assert_ne!(ids.request_id(), "a");
        assert_eq!(headers.get_all(REQUEST_ID).iter().count(), 1);
        assert!(!ids.continued());
        assert!(headers.get(TRACESTATE).is_none(), "tracestate of an invalid traceparent is dropped");
        assert_eq!(TraceContext::parse(headers[TRACEPARENT].to_str().unwrap()).as_ref(), Some(ids.trace()));
        let long = HeaderValue::from_str(&"x".repeat(201)).unwrap();
        assert!(!is_valid_request_id(&long));
    }
}

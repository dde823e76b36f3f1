//! What an endpoint run knows of the inbound request: headers that may be forwarded downstream.

use crate::telemetry::TraceContext;
use http::header::{HeaderMap, HeaderName};

/// Inbound request data that calls carry downstream.
///
/// The router fills it from the client's request; code that runs an endpoint directly may set
/// headers itself.
///
/// ```
/// use orchestrate_runtime::RequestContext;
/// let ctx = RequestContext::default().with_header("x-request-id", "r-1");
/// assert_eq!(ctx.headers()["x-request-id"], "r-1");
/// ```
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    headers: HeaderMap,
    trace: Option<TraceContext>,
}

/// Headers forwarded to every service unless configured otherwise.
pub const DEFAULT_FORWARD_HEADERS: &[&str] = &["authorization", "traceparent", "tracestate", "x-request-id"];

/// Headers that describe one connection and never pass a proxy (RFC 9110 §7.6.1), plus those the
/// client computes itself.
pub const HOP_BY_HOP_HEADERS: &[&str] = orchestrate_core::headers::HOP_BY_HOP;

impl RequestContext {
    /// A context with the given inbound headers.
    pub fn from_headers(headers: HeaderMap) -> Self {
        Self { headers, trace: None }
    }

    /// Sets the trace the request belongs to: every downstream request then carries a
    /// `traceparent` with its trace id and a fresh parent id. The router sets it from the
    /// client's `traceparent` (or a new trace).
    ///
    /// ```
    /// use orchestrate_runtime::RequestContext;
    /// use orchestrate_runtime::telemetry::TraceContext;
    /// let trace = TraceContext::new_root();
    /// let ctx = RequestContext::default().with_trace(trace.clone());
    /// assert_eq!(ctx.trace(), Some(&trace));
    /// ```
    pub fn with_trace(mut self, trace: TraceContext) -> Self {
        self.trace = Some(trace);
        self
    }

    /// The trace the request belongs to, if one was set.
    ///
    /// ```
    /// assert!(orchestrate_runtime::RequestContext::default().trace().is_none());
    /// ```
    pub fn trace(&self) -> Option<&TraceContext> {
        self.trace.as_ref()
    }

    /// Adds an inbound header; invalid names or values are ignored.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), value.parse()) {
            self.headers.append(name, value);
        }
        self
    }

    /// The inbound headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Mutable access to the inbound headers.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }
}

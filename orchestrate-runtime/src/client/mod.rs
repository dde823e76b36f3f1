//! Downstream HTTP: one client per service, a pluggable transport at the bottom.
//!
//! A [`ServiceClient`] turns an [`Outgoing`] request into `http::Request<Bytes>`, applies the
//! service's policies and hands the request to its [`Transport`], a `tower::Service` from
//! `http::Request<Bytes>` to `http::Response<Bytes>`. The default transport is a pooled `reqwest`
//! client per service ([`HttpTransport`]); tests and special deployments put any tower service
//! there (an in-memory service with virtual-time latency, a service with extra layers).
//!
//! The client knows nothing of endpoints or graphs: it is given a [`CallPolicy`] (timeout, retry,
//! idempotency) and the request's deadline.

mod custom;
mod http_transport;
mod target;

pub use custom::{CallClient, RequestBuilder, Tally};
pub use http_transport::HttpTransport;
pub use target::Target;

use crate::context::{DEFAULT_FORWARD_HEADERS, HOP_BY_HOP_HEADERS, RequestContext};
use crate::error::{CallError, CallErrorKind};
use crate::service::{RetryPolicy, ServiceSpec};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use std::fmt::Display;
use std::time::Duration;
use tokio::time::Instant;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

/// The bottom of a service's client: sends one request and reads the whole (capped) response.
///
/// Errors are [`CallError`]s so a transport can say whether it failed to connect, timed out or got
/// an oversized body.
///
/// ```
/// use bytes::Bytes;
/// use orchestrate_runtime::{CallError, Transport};
/// use tower::service_fn;
///
/// // An in-memory service: every request gets the same JSON.
/// let transport = Transport::new(service_fn(|_req: http::Request<Bytes>| async {
///     Ok::<_, CallError>(http::Response::new(Bytes::from_static(br#"{"ok":true}"#)))
/// }));
/// # let _ = transport;
/// ```
pub type Transport = BoxCloneSyncService<http::Request<Bytes>, http::Response<Bytes>, CallError>;

/// How one call behaves: the attempt timeout, the retry policy in force and whether repeating the
/// request is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallPolicy {
    /// Per-attempt timeout (each attempt gets the smaller of this and the time left).
    pub timeout: Duration,
    /// Retries in force for this call.
    pub retry: RetryPolicy,
    /// Whether the request may be repeated (idempotent method or idempotency key).
    pub retryable: bool,
}

/// The result of sending one call: the response or why not, and how many attempts it took.
#[derive(Debug)]
pub struct Sent {
    /// The successful (2xx) response, or the failure.
    pub result: Result<http::Response<Bytes>, CallError>,
    /// Requests sent (0 when none left the process).
    pub attempts: u32,
    /// Status of the last response, if any arrived.
    pub status: Option<u16>,
}

/// A request to a service before its policies run: method, path and query, body and headers.
///
/// Generated code builds these from the `#[call]` attribute; [`CallClient`] builds them for
/// custom logic.
#[derive(Debug)]
pub struct Outgoing {
    method: http::Method,
    target: Target,
    body: Option<Bytes>,
    headers: HeaderMap,
    error: Option<CallError>,
}

impl Outgoing {
    /// A request with no body.
    pub fn new(method: http::Method, target: Target) -> Self {
        Self { method, target, body: None, headers: HeaderMap::new(), error: None }
    }

    /// Sets a JSON body.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => {
                self.body = Some(Bytes::from(bytes));
                self.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            Err(error) => self.fail(CallError::with_source(CallErrorKind::Encode, error)),
        }
        self
    }

    /// Appends `query` (serialized as a form) to the query string.
    pub fn query<T: Serialize + ?Sized>(mut self, query: &T) -> Self {
        self.target.query(query);
        self
    }

    /// Adds a header. A name or value that is not valid HTTP fails the call with
    /// [`CallErrorKind::InvalidInput`].
    pub fn header(mut self, name: &str, value: &dyn Display) -> Self {
        let parsed = HeaderName::from_bytes(name.as_bytes()).ok().zip(HeaderValue::from_str(&value.to_string()).ok());
        match parsed {
            Some((name, value)) => {
                self.headers.append(name, value);
            }
            None => self.fail(CallError::with_source(
                CallErrorKind::InvalidInput,
                format!("header `{name}` has an invalid value"),
            )),
        }
        self
    }

    /// Adds every `(name, value)` pair as a header.
    pub fn headers<I, K, V>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Display,
    {
        for (name, value) in headers {
            self = self.header(name.as_ref(), &value);
        }
        self
    }

    /// Sets the `Idempotency-Key` header, sent unchanged on every attempt.
    pub fn idempotency_key(self, key: &dyn Display) -> Self {
        self.header("idempotency-key", key)
    }

    fn fail(&mut self, error: CallError) {
        if self.error.is_none() {
            self.error = Some(error);
        }
    }
}

/// The client of one downstream service, shared by every request.
#[derive(Debug, Clone)]
pub struct ServiceClient {
    spec: ServiceSpec,
    base_url: String,
    forward: Vec<HeaderName>,
    transport: Transport,
}

impl ServiceClient {
    /// A client for `spec` at `base_url` over `transport`.
    pub fn new(spec: ServiceSpec, base_url: &str, transport: Transport) -> Self {
        let mut forward: Vec<HeaderName> = Vec::new();
        for name in DEFAULT_FORWARD_HEADERS.iter().chain(spec.forward_headers) {
            if let Ok(name) = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                && !HOP_BY_HOP_HEADERS.contains(&name.as_str())
                && !forward.contains(&name)
            {
                forward.push(name);
            }
        }
        Self { spec, base_url: base_url.trim_end_matches('/').to_owned(), forward, transport }
    }

    /// The service's name.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The service's policies as configured at start-up.
    pub fn spec(&self) -> &ServiceSpec {
        &self.spec
    }

    /// The base URL calls go to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Inbound headers forwarded to this service.
    pub fn forwarded_headers(&self) -> &[HeaderName] {
        &self.forward
    }

    /// Sends `outgoing` under `policy`, within `deadline`.
    pub async fn send(
        &self,
        policy: &CallPolicy,
        context: &RequestContext,
        deadline: Instant,
        outgoing: Outgoing,
    ) -> Sent {
        let request = match self.build(context, outgoing) {
            Ok(request) => request,
            Err(error) => return Sent { result: Err(error), attempts: 0, status: None },
        };
        let (result, status) = self.attempt(policy, deadline, request).await;
        Sent { result, attempts: 1, status }
    }

    /// One attempt: the smaller of the call's timeout and the time left.
    async fn attempt(
        &self,
        policy: &CallPolicy,
        deadline: Instant,
        request: http::Request<Bytes>,
    ) -> (Result<http::Response<Bytes>, CallError>, Option<u16>) {
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        if left.is_zero() {
            return (Err(CallError::new(CallErrorKind::DeadlineExceeded)), None);
        }
        let (limit, cut_by_deadline) = if policy.timeout < left { (policy.timeout, false) } else { (left, true) };
        match tokio::time::timeout(limit, self.transport.clone().oneshot(request)).await {
            Err(_elapsed) => {
                let kind = if cut_by_deadline { CallErrorKind::DeadlineExceeded } else { CallErrorKind::Timeout };
                (Err(CallError::new(kind)), None)
            }
            Ok(Err(error)) => (Err(error), None),
            Ok(Ok(response)) => {
                let status = response.status();
                if status.is_success() {
                    (Ok(response), Some(status.as_u16()))
                } else {
                    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
                    (Err(CallError::status(status, retry_after)), Some(status.as_u16()))
                }
            }
        }
    }

    fn build(&self, context: &RequestContext, outgoing: Outgoing) -> Result<http::Request<Bytes>, CallError> {
        if let Some(error) = outgoing.error {
            return Err(error);
        }
        let path = outgoing.target.finish()?;
        let mut url = String::with_capacity(self.base_url.len() + path.len());
        url.push_str(&self.base_url);
        url.push_str(&path);
        let uri: http::Uri = url.parse().map_err(|e| CallError::with_source(CallErrorKind::InvalidInput, e))?;
        let mut request = http::Request::new(outgoing.body.unwrap_or_default());
        *request.method_mut() = outgoing.method;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        for name in &self.forward {
            for value in context.headers().get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        for (name, value) in outgoing.headers {
            if let Some(name) = name {
                headers.insert(name, value);
            }
        }
        if !headers.contains_key(header::ACCEPT) {
            headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        }
        Ok(request)
    }
}

/// Decodes a JSON response body as `T`; a body that is not a `T` is the call's failure.
///
/// # Errors
///
/// [`CallErrorKind::Decode`] with serde's explanation (no body content).
pub fn decode_json<T: serde::de::DeserializeOwned>(response: &http::Response<Bytes>) -> Result<T, CallError> {
    serde_json::from_slice(response.body()).map_err(|e| CallError::with_source(CallErrorKind::Decode, e))
}

//! What an endpoint run produces: the assembled value (maybe partial), or a failure that maps to
//! the HTTP status and body of the design's failure table.
//!
//! | what happened | status | `error.code` |
//! |---|---|---|
//! | every call succeeded | 200 | – |
//! | an optional call failed | 200, `partialData: true`, `failedServices`, `x-partial-data: true` | – |
//! | an optional call was shed | 200, `partialData: true`, `shedServices` (not `failedServices`) | – |
//! | a required call failed | 502 | `DOWNSTREAM_FAILURE` |
//! | a required call was shed (the service's concurrency limit in the BFF was reached) | 503 with `Retry-After: 1`; the service is not named as failed | `OVERLOADED` |
//! | a required call timed out, or the endpoint deadline passed | 504 | `GATEWAY_TIMEOUT` |
//! | a required call got 401 | 401 | `UNAUTHORIZED` |
//! | a required call got 429 | 429 with the downstream's `Retry-After` | `RATE_LIMITED` |
//! | a required call got another 4xx | that status | e.g. `NOT_FOUND` |
//! | a value cannot be placed in a downstream URL (`".."`, empty) | 400 | `INVALID_INPUT` |
//!
//! Error bodies name services, never URLs or internal errors.

use crate::error::{CallError, CallErrorKind};
use crate::timeline::Timeline;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

/// A call that failed during a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedCall {
    /// Field name of the call.
    pub call: &'static str,
    /// Service called.
    pub service: &'static str,
    /// Why it failed.
    pub kind: CallErrorKind,
    /// Downstream status, when the service answered.
    pub status: Option<StatusCode>,
    /// Whether the call was required.
    pub required: bool,
}

impl FailedCall {
    /// Call `call` of `service` failed with `error`.
    ///
    /// ```
    /// use orchestrate_runtime::{CallError, CallErrorKind, FailedCall};
    /// let failed = FailedCall::new("shipping", "shipping", &CallError::new(CallErrorKind::Timeout), false);
    /// assert_eq!((failed.kind, failed.status, failed.required), (CallErrorKind::Timeout, None, false));
    /// ```
    pub fn new(call: &'static str, service: &'static str, error: &CallError, required: bool) -> Self {
        Self { call, service, kind: error.kind(), status: error.http_status(), required }
    }

    /// A call cut by the endpoint's deadline while in flight.
    pub(crate) fn cut(call: &'static str, service: &'static str, required: bool) -> Self {
        Self { call, service, kind: CallErrorKind::DeadlineExceeded, status: None, required }
    }
}

/// The services of `failed` calls, in order, without repeats: those that failed, or (with
/// `shed`) those the BFF shed.
fn services_of(failed: &[FailedCall], shed: bool) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::with_capacity(failed.len());
    for f in failed.iter().filter(|f| f.kind.is_shed() == shed) {
        if !names.contains(&f.service) {
            names.push(f.service);
        }
    }
    names
}

fn failed_services(failed: &[FailedCall]) -> Vec<&'static str> {
    services_of(failed, false)
}

fn services_compensated(compensations: &[Compensation], done: bool) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for c in compensations.iter().filter(|c| c.done == done) {
        if !names.contains(&c.service) {
            names.push(c.service);
        }
    }
    names
}

/// A successful run: the assembled endpoint value and what degraded on the way.
#[derive(Debug)]
pub struct Outcome<T> {
    /// The endpoint struct, every field filled.
    pub value: T,
    /// Optional calls that failed (their fields hold `None` or their fallback).
    pub failed: Vec<FailedCall>,
    /// Every call's timing and result.
    pub timeline: Timeline,
}

impl<T> Outcome<T> {
    /// Whether some optional call failed.
    pub fn is_partial(&self) -> bool {
        !self.failed.is_empty()
    }

    /// Names of the services whose calls failed, in order, without repeats (calls the BFF shed
    /// are not failures of their service; see [`shed_services`](Self::shed_services)).
    pub fn failed_services(&self) -> Vec<&'static str> {
        failed_services(&self.failed)
    }

    /// Names of the services whose optional calls were shed by their concurrency limit.
    pub fn shed_services(&self) -> Vec<&'static str> {
        services_of(&self.failed, true)
    }

    /// The response body: the value's fields plus `partialData` (and `failedServices` and
    /// `shedServices` when partial).
    pub fn body(&self) -> Envelope<'_, T> {
        Envelope {
            data: &self.value,
            partial_data: self.is_partial(),
            failed_services: self.failed_services(),
            shed_services: self.shed_services(),
        }
    }
}

/// The JSON body of a successful run. Serializes the endpoint's own fields followed by
/// `partialData` and, when partial, `failedServices`.
#[derive(Debug, Serialize)]
pub struct Envelope<'a, T> {
    #[serde(flatten)]
    data: &'a T,
    #[serde(rename = "partialData")]
    partial_data: bool,
    #[serde(rename = "failedServices", skip_serializing_if = "Vec::is_empty")]
    failed_services: Vec<&'static str>,
    #[serde(rename = "shedServices", skip_serializing_if = "Vec::is_empty")]
    shed_services: Vec<&'static str>,
}

impl<T: Serialize> IntoResponse for Outcome<T> {
    fn into_response(self) -> Response {
        let body = match serde_json::to_vec(&self.body()) {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(%error, "endpoint value does not serialize");
                return error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_ERROR",
                    "the response could not be encoded",
                    &[],
                    None,
                );
            }
        };
        let mut response =
            (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body)
                .into_response();
        if self.is_partial() {
            let headers = response.headers_mut();
            headers.insert("x-partial-data", HeaderValue::from_static("true"));
            let failed = self.failed_services();
            if !failed.is_empty()
                && let Ok(value) = HeaderValue::from_str(&failed.join(","))
            {
                headers.insert("x-failed-services", value);
            }
        }
        response
    }
}

/// Why a run failed as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCause {
    /// The required call at this position of [`Failure::failed`] failed.
    Required(usize),
    /// The endpoint's deadline passed.
    Deadline,
}

/// A failed run: a required call failed or the deadline passed. Every call still in flight was
/// cancelled when this was produced.
#[derive(Debug)]
pub struct Failure(Box<FailureInner>);

#[derive(Debug)]
struct FailureInner {
    endpoint: &'static str,
    cause: FailureCause,
    failed: Vec<FailedCall>,
    retry_after: Option<HeaderValue>,
    timeline: Timeline,
    compensations: Vec<Compensation>,
}

/// How the compensation of one committed call ended, after a failed request (see
/// [`saga`](crate::saga)).
///
/// ```
/// use orchestrate_runtime::outcome::Compensation;
/// let refund = Compensation::new("payment", "payment", true, 1);
/// assert!(refund.done);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Compensation {
    /// Field name of the compensated call.
    pub call: &'static str,
    /// Its service.
    pub service: &'static str,
    /// Whether the compensation succeeded (a 2xx answer within its retries).
    pub done: bool,
    /// Requests it sent.
    pub attempts: u32,
}

impl Compensation {
    /// The compensation of `call` (of `service`), `done` or not after `attempts` requests.
    pub fn new(call: &'static str, service: &'static str, done: bool, attempts: u32) -> Self {
        Self { call, service, done, attempts }
    }
}

impl Failure {
    pub(crate) fn required(
        endpoint: &'static str,
        mut failed: Vec<FailedCall>,
        call: FailedCall,
        error: &CallError,
        timeline: Timeline,
    ) -> Self {
        failed.push(call);
        let cause = FailureCause::Required(failed.len() - 1);
        let retry_after = error.retry_after().cloned();
        Self(Box::new(FailureInner { endpoint, cause, failed, retry_after, timeline, compensations: Vec::new() }))
    }

    pub(crate) fn deadline(endpoint: &'static str, failed: Vec<FailedCall>, timeline: Timeline) -> Self {
        let cause = FailureCause::Deadline;
        Self(Box::new(FailureInner { endpoint, cause, failed, retry_after: None, timeline, compensations: Vec::new() }))
    }

    /// The same failure, after the compensations of its committed calls ran.
    pub(crate) fn with_compensations(mut self, compensations: Vec<Compensation>) -> Self {
        self.0.compensations = compensations;
        self
    }

    /// How the compensation of each committed call ended, in the order they ran (empty when no
    /// call with `compensate` had committed).
    pub fn compensations(&self) -> &[Compensation] {
        &self.0.compensations
    }

    /// The services whose calls were compensated, in the order they ran, without repeats.
    pub fn compensated(&self) -> Vec<&'static str> {
        services_compensated(&self.0.compensations, true)
    }

    /// The services whose compensations could not complete.
    pub fn not_compensated(&self) -> Vec<&'static str> {
        services_compensated(&self.0.compensations, false)
    }

    /// The endpoint that failed.
    pub fn endpoint(&self) -> &'static str {
        self.0.endpoint
    }

    /// Why it failed.
    pub fn cause(&self) -> FailureCause {
        self.0.cause
    }

    /// The required call that failed, if that was the cause.
    pub fn failed_call(&self) -> Option<&FailedCall> {
        match self.0.cause {
            FailureCause::Required(i) => self.0.failed.get(i),
            FailureCause::Deadline => None,
        }
    }

    /// Every call that failed, optional ones included, plus the calls the deadline cut.
    pub fn failed(&self) -> &[FailedCall] {
        &self.0.failed
    }

    /// Names of the failed services, in order, without repeats (calls the BFF shed are not
    /// failures of their service).
    pub fn failed_services(&self) -> Vec<&'static str> {
        failed_services(&self.0.failed)
    }

    /// Every call's timing and result up to the failure.
    pub fn timeline(&self) -> &Timeline {
        &self.0.timeline
    }

    /// Moves the timeline out (the router keeps it while the failure becomes the response).
    pub(crate) fn take_timeline(&mut self) -> Timeline {
        std::mem::take(&mut self.0.timeline)
    }

    /// The downstream `Retry-After`, when a required call was rate limited.
    pub fn retry_after(&self) -> Option<&HeaderValue> {
        self.0.retry_after.as_ref()
    }

    /// The status the client gets (see the [module docs](self)).
    pub fn status(&self) -> StatusCode {
        let Some(call) = self.failed_call() else {
            return StatusCode::GATEWAY_TIMEOUT;
        };
        match (call.kind, call.status) {
            (kind, _) if kind.is_timeout() => StatusCode::GATEWAY_TIMEOUT,
            (kind, _) if kind.is_shed() => StatusCode::SERVICE_UNAVAILABLE,
            (CallErrorKind::InvalidInput, _) => StatusCode::BAD_REQUEST,
            (CallErrorKind::Encode, _) => StatusCode::INTERNAL_SERVER_ERROR,
            (CallErrorKind::Status, Some(status)) if status.is_client_error() => status,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// The machine-readable `error.code` of the body.
    pub fn code(&self) -> &'static str {
        match self.status() {
            StatusCode::GATEWAY_TIMEOUT => "GATEWAY_TIMEOUT",
            StatusCode::SERVICE_UNAVAILABLE => "OVERLOADED",
            StatusCode::BAD_GATEWAY => "DOWNSTREAM_FAILURE",
            StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
            StatusCode::TOO_MANY_REQUESTS => "RATE_LIMITED",
            StatusCode::BAD_REQUEST => "INVALID_INPUT",
            StatusCode::FORBIDDEN => "FORBIDDEN",
            StatusCode::NOT_FOUND => "NOT_FOUND",
            StatusCode::CONFLICT => "CONFLICT",
            StatusCode::GONE => "GONE",
            StatusCode::UNPROCESSABLE_ENTITY => "UNPROCESSABLE_ENTITY",
            StatusCode::INTERNAL_SERVER_ERROR => "INTERNAL_ERROR",
            _ => "DOWNSTREAM_REJECTED",
        }
    }

    /// A human-readable sentence for `error.message`; names services, never URLs.
    pub fn message(&self) -> String {
        let Some(call) = self.failed_call() else {
            return format!("`{}` did not finish within its deadline", self.0.endpoint);
        };
        let service = call.service;
        match (call.kind, call.status) {
            (kind, _) if kind.is_timeout() => format!("service `{service}` did not answer in time"),
            (CallErrorKind::Status, Some(StatusCode::UNAUTHORIZED)) => {
                format!("service `{service}` rejected the credentials")
            }
            (CallErrorKind::Status, Some(StatusCode::TOO_MANY_REQUESTS)) => {
                format!("service `{service}` is rate limiting; retry later")
            }
            (CallErrorKind::Status, Some(status)) if status.is_client_error() => {
                format!("service `{service}` answered {}", status.as_u16())
            }
            (CallErrorKind::InvalidInput, _) => {
                format!("a value sent to `{service}` (call `{}`) cannot be placed in a URL", call.call)
            }
            (CallErrorKind::Encode, _) => "the request to a service could not be encoded".to_owned(),
            (CallErrorKind::BreakerOpen, _) => format!("service `{service}` is unavailable (circuit open)"),
            (CallErrorKind::BulkheadFull, _) => {
                format!("this server is at its limit of calls to `{service}` in flight; retry shortly")
            }
            (CallErrorKind::RateLimited, _) => {
                format!("this server is at its rate limit of calls to `{service}`; retry shortly")
            }
            (CallErrorKind::Status, Some(status)) => format!("service `{service}` answered {}", status.as_u16()),
            (CallErrorKind::Connect | CallErrorKind::Transport, _) => {
                format!("service `{service}` is unreachable or dropped the connection")
            }
            (CallErrorKind::Decode, _) => {
                format!("service `{service}` answered something other than the expected data")
            }
            (CallErrorKind::BodyTooLarge, _) => format!("service `{service}` answered more data than allowed"),
            _ => format!("service `{service}` is unavailable"),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status(), self.code(), self.message())
    }
}

impl std::error::Error for Failure {}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    failed_services: &'a [&'static str],
    partial_data: bool,
    /// Services whose committed calls were undone after the failure (sagas).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    compensated: &'a [&'static str],
    /// Services whose compensations could not complete.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    not_compensated: &'a [&'static str],
}

/// Builds the design's error body `{"error":{"code","message","failedServices","partialData"}}`.
pub(crate) fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    failed_services: &[&'static str],
    retry_after: Option<HeaderValue>,
) -> Response {
    saga_error_response(status, code, message, failed_services, retry_after, (&[], &[]))
}

/// The error body with the saga's `compensated` and `notCompensated` services.
fn saga_error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    failed_services: &[&'static str],
    retry_after: Option<HeaderValue>,
    (compensated, not_compensated): (&[&'static str], &[&'static str]),
) -> Response {
    let error = ErrorDetail { code, message, failed_services, partial_data: false, compensated, not_compensated };
    let body = ErrorBody { error };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut response =
        (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response();
    if let Some(retry_after) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, retry_after);
    }
    response
}

/// `Retry-After` of a shed request: a place frees up within a call's latency; one second is the
/// least a client can be told.
const SHED_RETRY_AFTER: HeaderValue = HeaderValue::from_static("1");

/// The answer to a request the BFF sheds because one of its own limits is reached (a service's
/// concurrency limit, the listener's requests in flight): 503 `OVERLOADED`, `Retry-After: 1`, no
/// service named as failed.
pub(crate) fn shed_response(message: &str) -> Response {
    error_response(StatusCode::SERVICE_UNAVAILABLE, "OVERLOADED", message, &[], Some(SHED_RETRY_AFTER))
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match status {
            StatusCode::TOO_MANY_REQUESTS => self.0.retry_after.clone(),
            StatusCode::SERVICE_UNAVAILABLE => Some(SHED_RETRY_AFTER),
            _ => None,
        };
        let (compensated, not_compensated) = (self.compensated(), self.not_compensated());
        let saga = (compensated.as_slice(), not_compensated.as_slice());
        saga_error_response(status, self.code(), &self.message(), &self.failed_services(), retry_after, saga)
    }
}

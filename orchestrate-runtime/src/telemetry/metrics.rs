//! The metrics the runtime records, through the [`metrics`](https://docs.rs/metrics) facade.
//!
//! Nothing is recorded until [`ops::metrics::install`](crate::ops::metrics::install) (the
//! Prometheus recorder behind `/metrics`) or [`ops::metrics::enable`](crate::ops::metrics::enable)
//! (the application's own recorder) is called: until then every recording point is one relaxed
//! atomic load.
//!
//! Every label value is bounded: method and route *template* (never a raw path), endpoint, service
//! and call names from the code, status codes, and the fixed outcome and reason names.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `orchestrate_request_duration_seconds` | histogram | `method`, `route`, `status` |
//! | `orchestrate_requests_in_flight` | gauge | `method`, `route` |
//! | `orchestrate_call_duration_seconds` | histogram | `endpoint`, `service`, `call` |
//! | `orchestrate_calls_total` | counter | `endpoint`, `service`, `call`, `outcome` (`ok`, `failed`, `timed_out`, `fallback`, `skipped`, `cancelled`) |
//! | `orchestrate_calls_in_flight` | gauge | `service` (downstream requests under way, retries included) |
//! | `orchestrate_retries_total` | counter | `service`, `reason` (the failure retried, e.g. `timeout`, `status`) |
//! | `orchestrate_breaker_state` | gauge | `service`: 0 closed, 1 half-open, 2 open |

use crate::breaker::BreakerState;
use crate::endpoint::EndpointSpec;
use crate::timeline::{CallOutcome, CallRecord};
use metrics::{Gauge, Unit};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Time from the request's arrival to its response, per endpoint and status.
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::metrics::REQUEST_DURATION, "orchestrate_request_duration_seconds");
/// ```
pub const REQUEST_DURATION: &str = "orchestrate_request_duration_seconds";
/// Requests being served now, per endpoint.
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::metrics::REQUESTS_IN_FLIGHT, "orchestrate_requests_in_flight");
/// ```
pub const REQUESTS_IN_FLIGHT: &str = "orchestrate_requests_in_flight";
/// Time of each downstream call (all its attempts and backoff), per call.
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::metrics::CALL_DURATION, "orchestrate_call_duration_seconds");
/// ```
pub const CALL_DURATION: &str = "orchestrate_call_duration_seconds";
/// Calls by how they ended.
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::metrics::CALLS, "orchestrate_calls_total");
/// ```
pub const CALLS: &str = "orchestrate_calls_total";
/// Downstream requests under way, per service.
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::metrics::CALLS_IN_FLIGHT, "orchestrate_calls_in_flight");
/// ```
pub const CALLS_IN_FLIGHT: &str = "orchestrate_calls_in_flight";
/// Retries sent, per service and reason.
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::metrics::RETRIES, "orchestrate_retries_total");
/// ```
pub const RETRIES: &str = "orchestrate_retries_total";
/// Circuit breaker state per service: 0 closed, 1 half-open, 2 open.
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::metrics::BREAKER_STATE, "orchestrate_breaker_state");
/// ```
pub const BREAKER_STATE: &str = "orchestrate_breaker_state";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns recording on (it stays on).
pub(crate) fn enable() {
    if !ENABLED.swap(true, Ordering::Relaxed) {
        describe();
    }
}

/// Whether the runtime records metrics.
///
/// ```
/// // Off until `ops::metrics::install()` or `ops::metrics::enable()`.
/// let _ = orchestrate_runtime::telemetry::metrics::enabled();
/// ```
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

fn describe() {
    metrics::describe_histogram!(REQUEST_DURATION, Unit::Seconds, "Time from a request's arrival to its response.");
    metrics::describe_gauge!(REQUESTS_IN_FLIGHT, "Requests being served now.");
    metrics::describe_histogram!(CALL_DURATION, Unit::Seconds, "Time of a downstream call, retries included.");
    metrics::describe_counter!(CALLS, "Downstream calls by how they ended.");
    metrics::describe_gauge!(CALLS_IN_FLIGHT, "Downstream requests under way.");
    metrics::describe_counter!(RETRIES, "Retries sent, by the failure that was retried.");
    metrics::describe_gauge!(BREAKER_STATE, "Circuit breaker state: 0 closed, 1 half-open, 2 open.");
}

/// Decrements its gauge when dropped: an in-flight count that survives cancellation.
#[derive(Debug)]
pub(crate) struct InFlight(Option<Gauge>);

impl InFlight {
    /// One more request of `spec` in flight.
    pub(crate) fn request(spec: &EndpointSpec) -> Self {
        if !enabled() {
            return Self(None);
        }
        Self::enter(metrics::gauge!(REQUESTS_IN_FLIGHT, "method" => spec.method.as_str(), "route" => spec.route))
    }

    /// One more downstream request to `service` in flight.
    pub(crate) fn call(service: &'static str) -> Self {
        if !enabled() {
            return Self(None);
        }
        Self::enter(metrics::gauge!(CALLS_IN_FLIGHT, "service" => service))
    }

    fn enter(gauge: Gauge) -> Self {
        gauge.increment(1.0);
        Self(Some(gauge))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(gauge) = &self.0 {
            gauge.decrement(1.0);
        }
    }
}

/// A request of `spec` answered `status` after `elapsed`.
pub(crate) fn request(spec: &EndpointSpec, status: u16, elapsed: Duration) {
    if enabled() {
        metrics::histogram!(REQUEST_DURATION, "method" => spec.method.as_str(), "route" => spec.route, "status" => status.to_string())
            .record(elapsed.as_secs_f64());
    }
}

/// A call of `endpoint` ended as `record` says.
pub(crate) fn call(endpoint: &'static str, record: &CallRecord) {
    if !enabled() {
        return;
    }
    let (service, call) = (record.service, record.call);
    let outcome = record.outcome_label();
    metrics::counter!(CALLS, "endpoint" => endpoint, "service" => service, "call" => call, "outcome" => outcome)
        .increment(1);
    if !matches!(record.outcome, CallOutcome::Skipped | CallOutcome::Cancelled) {
        metrics::histogram!(CALL_DURATION, "endpoint" => endpoint, "service" => service, "call" => call)
            .record(record.duration().as_secs_f64());
    }
}

/// A retry of a call to `service` after a failure of kind `reason`.
pub(crate) fn retry(service: &'static str, reason: &'static str) {
    if enabled() {
        metrics::counter!(RETRIES, "service" => service, "reason" => reason).increment(1);
    }
}

/// The breaker of `service` is now `state`.
pub(crate) fn breaker(service: &'static str, state: BreakerState) {
    if enabled() {
        metrics::gauge!(BREAKER_STATE, "service" => service).set(f64::from(state.as_gauge()));
    }
}

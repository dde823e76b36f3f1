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
//! | `orchestrate_calls_total` | counter | `endpoint`, `service`, `call`, `outcome` (`ok`, `failed`, `timed_out`, `shed`, `fallback`, `skipped`, `cancelled`) |
//! | `orchestrate_calls_in_flight` | gauge | `service` (downstream requests under way, retries included) |
//! | `orchestrate_retries_total` | counter | `service`, `reason` (the failure retried, e.g. `timeout`, `status`) |
//! | `orchestrate_hedges_total` | counter | `service`, `outcome` (`sent`: a hedge went out; `won`: a hedge answered first; `budget_exhausted`: one was due but the service's hedge budget was spent) |
//! | `orchestrate_breaker_state` | gauge | `service`: 0 closed, 1 half-open, 2 open |
//! | `orchestrate_instance_estimate_seconds` | gauge | `service`, `instance` (host and port): the balancer's latency estimate, for services with several instances |
//! | `orchestrate_instance_ejected` | gauge | `service`, `instance`: 1 while ejected |
//! | `orchestrate_cache_requests_total` | counter | `endpoint`, `call` (the endpoint's name for its own cache), `result` (`hit`, `stale`, `miss`, `coalesced`, `error`) |
//! | `orchestrate_rate_limited_total` | counter | `endpoint`, `scope` (`per_ip`, `per_user`, `per_endpoint`, `global`) |
//! | `orchestrate_rate_limit_fallbacks_total` | counter | `scope`: checks of a shared limit made by the instance alone because the store did not answer |
//! | `orchestrate_store_errors_total` | counter | `operation` (the command, `pipeline` or `script:<name>`), `kind` (`timeout`, `unavailable`, `reply`) |
//! | `orchestrate_auth_failures_total` | counter | `reason` (`missing`, `malformed`, `algorithm`, `unknown_key`, `signature`, `expired`, `not_yet_valid`, `issuer`, `audience`, `claim`, `no_keys`) |

use crate::spec::EndpointSpec;
use crate::timeline::{CallOutcome, CallRecord};
use metrics::{Counter, Gauge, Histogram, Unit};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::LocalKey;
use std::time::Duration;

/// Time from the request's arrival to its response, per route (`method`, `route`), `status` and
/// `version` (`stable`, or a canary's version, see [`canary`](crate::canary)).
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
/// Hedges of calls with `hedge(..)`, per service and outcome (`sent`, `won`, `budget_exhausted`).
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::metrics::HEDGES, "orchestrate_hedges_total");
/// ```
pub const HEDGES: &str = "orchestrate_hedges_total";
/// Circuit breaker state per service: 0 closed, 1 half-open, 2 open.
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::metrics::BREAKER_STATE, "orchestrate_breaker_state");
/// ```
pub const BREAKER_STATE: &str = "orchestrate_breaker_state";

/// The balancer's latency estimate of each instance of a service with several.
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::metrics::INSTANCE_ESTIMATE, "orchestrate_instance_estimate_seconds");
/// ```
pub const INSTANCE_ESTIMATE: &str = "orchestrate_instance_estimate_seconds";

/// 1 while an instance is ejected, else 0.
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::metrics::INSTANCE_EJECTED, "orchestrate_instance_ejected");
/// ```
pub const INSTANCE_EJECTED: &str = "orchestrate_instance_ejected";

/// Cache lookups, per endpoint, call and result.
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::metrics::CACHE_REQUESTS, "orchestrate_cache_requests_total");
/// ```
pub const CACHE_REQUESTS: &str = "orchestrate_cache_requests_total";

/// What a cache lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheResult {
    /// A fresh answer.
    Hit,
    /// A stale answer, served while it is refreshed.
    Stale,
    /// Nothing usable: this caller fills it.
    Miss,
    /// Nothing usable, and another caller was filling it already: this one waits for that.
    Coalesced,
    /// The cache could not be read (a miss).
    Error,
}

impl CacheResult {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Stale => "stale",
            Self::Miss => "miss",
            Self::Coalesced => "coalesced",
            Self::Error => "error",
        }
    }
}
/// Failed operations of the shared store ([`store`](crate::store)), per operation and kind.
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::metrics::STORE_ERRORS, "orchestrate_store_errors_total");
/// ```
pub const STORE_ERRORS: &str = "orchestrate_store_errors_total";

/// Compensations of committed calls after a failed saga, per endpoint, call and outcome
/// (`compensated` or `failed`: every attempt of its retry policy failed).
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::metrics::COMPENSATIONS, "orchestrate_compensations_total");
/// ```
pub const COMPENSATIONS: &str = "orchestrate_compensations_total";
/// Requests refused for their bearer token ([`auth`](crate::auth)), per reason.
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::metrics::AUTH_FAILURES, "orchestrate_auth_failures_total");
/// ```
pub const AUTH_FAILURES: &str = "orchestrate_auth_failures_total";
/// What the listener ([`server`](crate::server)) refused or cut, per reason: `header_timeout` (a
/// connection closed for not sending a request head in time), `max_requests` (a request answered
/// 503), `max_connections` (the listener reached its connection cap and stopped accepting, until a
/// connection closes).
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::metrics::SERVER_REFUSED, "orchestrate_server_refused_total");
/// ```
pub const SERVER_REFUSED: &str = "orchestrate_server_refused_total";
/// Canary versions rolled back by themselves ([`canary`](crate::canary)), per endpoint and
/// version.
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::metrics::CANARY_ROLLBACKS, "orchestrate_canary_rollbacks_total");
/// ```
pub const CANARY_ROLLBACKS: &str = "orchestrate_canary_rollbacks_total";

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
    metrics::describe_counter!(HEDGES, "Hedges of hedged calls: sent, won, or not sent for the hedge budget.");
    metrics::describe_gauge!(BREAKER_STATE, "Circuit breaker state: 0 closed, 1 half-open, 2 open.");
    metrics::describe_gauge!(INSTANCE_ESTIMATE, Unit::Seconds, "The balancer's latency estimate of an instance.");
    metrics::describe_gauge!(INSTANCE_EJECTED, "1 while an instance is ejected for failing.");
    metrics::describe_counter!(CACHE_REQUESTS, "Cache lookups by what they found.");
    metrics::describe_counter!(RATE_LIMITED, "Requests refused by an inbound rate limit, by endpoint and scope.");
    metrics::describe_counter!(AUTH_FAILURES, "Requests refused for their bearer token, by reason.");
    metrics::describe_counter!(SERVER_REFUSED, "Connections and requests the listener refused or cut, by reason.");
    metrics::describe_counter!(
        CANARY_ROLLBACKS,
        "Canary versions rolled back for doing worse than the stable version."
    );
    metrics::describe_counter!(
        RATE_LIMIT_FALLBACKS,
        "Checks of shared rate limits made locally while the store did not answer."
    );
    metrics::describe_counter!(STORE_ERRORS, "Failed operations of the shared store, by operation and kind.");
    metrics::describe_counter!(COMPENSATIONS, "Compensations of committed calls after a failed request, by outcome.");
}

/// A metric by its name and label values: the address and length of each `&'static str`, or a
/// number (a status code) in place of one.
type HandleKey = [(usize, usize); 5];

/// Handles by [`HandleKey`], hashed with [`WordHasher`].
type Handles<H> = HashMap<HandleKey, H, BuildHasherDefault<WordHasher>>;

thread_local! {
    static COUNTERS: RefCell<Handles<Counter>> = RefCell::default();
    static GAUGES: RefCell<Handles<Gauge>> = RefCell::default();
    static HISTOGRAMS: RefCell<Handles<Histogram>> = RefCell::default();
}

/// A multiply-rotate hash of machine words (the `FxHash` of rustc), for keys made of addresses
/// the program chose: SipHash's protection against chosen keys buys nothing here and costs a
/// microsecond per request.
#[derive(Debug, Default)]
struct WordHasher(u64);

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The key of metric `name` with the label values `labels` (at most four).
fn key(name: &'static str, labels: &[&'static str]) -> HandleKey {
    let mut key = [(0, 0); 5];
    for (slot, text) in key.iter_mut().zip(std::iter::once(&name).chain(labels)) {
        *slot = (text.as_ptr() as usize, text.len());
    }
    key
}

/// Applies `used` to the handle of the metric `key`, registered by `register` the first time this
/// thread needs it.
///
/// Registering (`metrics::counter!(..)` and its kin) builds the key, sorts and hashes its labels
/// and looks it up in the recorder: several hundred instructions and a few allocations, for each
/// of the half-dozen metrics a request and its calls record. Their label values are `&'static str`
/// from the code (and status codes), so each thread keeps the handles it registered, keyed by
/// those strings' addresses. The recorder is process-wide and set once, so a kept handle stays
/// the one the recorder would return. The handle is used where it is kept: a handle is an `Arc`,
/// and a copy of it per use would be two atomic operations more.
fn cached<H, R>(
    cache: &'static LocalKey<RefCell<Handles<H>>>,
    key: HandleKey,
    register: impl FnOnce() -> H,
    used: impl FnOnce(&H) -> R,
) -> R {
    cache.with(|handles| {
        if let Some(handle) = handles.borrow().get(&key) {
            return used(handle);
        }
        let handle = register();
        let result = used(&handle);
        handles.borrow_mut().insert(key, handle);
        result
    })
}

/// Decrements its gauge when dropped: an in-flight count that survives cancellation. The gauge
/// is the thread's copy of a kept handle, or one its owner keeps.
#[derive(Debug)]
pub(crate) struct InFlight<'g>(Option<Cow<'g, Gauge>>);

impl InFlight<'static> {
    /// One more request of `spec` in flight.
    pub(crate) fn request(spec: &EndpointSpec) -> Self {
        if !enabled() {
            return Self(None);
        }
        let (method, route) = (spec.method.as_str(), spec.route);
        let gauge = cached(
            &GAUGES,
            key(REQUESTS_IN_FLIGHT, &[method, route]),
            || metrics::gauge!(REQUESTS_IN_FLIGHT, "method" => method, "route" => route),
            Gauge::clone,
        );
        Self::enter(Cow::Owned(gauge))
    }
}

impl<'g> InFlight<'g> {
    /// One more downstream request to `service` in flight, counted with the gauge `kept` holds
    /// (registered on first use: the service's client keeps it, so a call neither looks it up
    /// nor copies it).
    pub(crate) fn call(service: &'static str, kept: &'g OnceLock<Gauge>) -> Self {
        if !enabled() {
            return Self(None);
        }
        Self::enter(Cow::Borrowed(kept.get_or_init(|| metrics::gauge!(CALLS_IN_FLIGHT, "service" => service))))
    }

    fn enter(gauge: Cow<'g, Gauge>) -> Self {
        gauge.increment(1.0);
        Self(Some(gauge))
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(gauge) = &self.0 {
            gauge.decrement(1.0);
        }
    }
}

/// A request of `spec` answered `status` after `elapsed`.
pub(crate) fn request(spec: &EndpointSpec, status: u16, elapsed: Duration) {
    if enabled() {
        let (method, route, version) = (spec.method.as_str(), spec.route, spec.version());
        let mut handle = key(REQUEST_DURATION, &[method, route]);
        handle[3] = (usize::from(status), 0);
        handle[4] = (version.as_ptr() as usize, version.len());
        cached(
            &HISTOGRAMS,
            handle,
            || metrics::histogram!(REQUEST_DURATION, "method" => method, "route" => route, "status" => status.to_string(), "version" => version),
            |histogram| histogram.record(elapsed.as_secs_f64()),
        );
    }
}

/// A call of `endpoint` ended as `record` says.
pub(crate) fn call(endpoint: &'static str, record: &CallRecord) {
    if !enabled() {
        return;
    }
    let (service, call) = (record.service, record.call);
    let outcome = record.outcome_label();
    cached(
        &COUNTERS,
        key(CALLS, &[endpoint, service, call, outcome]),
        || metrics::counter!(CALLS, "endpoint" => endpoint, "service" => service, "call" => call, "outcome" => outcome),
        |counter| counter.increment(1),
    );
    if !matches!(record.outcome, CallOutcome::Skipped | CallOutcome::Cancelled) {
        cached(
            &HISTOGRAMS,
            key(CALL_DURATION, &[endpoint, service, call]),
            || metrics::histogram!(CALL_DURATION, "endpoint" => endpoint, "service" => service, "call" => call),
            |histogram| histogram.record(record.duration().as_secs_f64()),
        );
    }
}

/// A retry of a call to `service` after a failure of kind `reason`.
pub(crate) fn retry(service: &'static str, reason: &'static str) {
    if enabled() {
        metrics::counter!(RETRIES, "service" => service, "reason" => reason).increment(1);
    }
}

/// A hedge of a call to `service`: `sent`, `won` or `budget_exhausted`.
pub(crate) fn hedge(service: &'static str, outcome: &'static str) {
    if enabled() {
        metrics::counter!(HEDGES, "service" => service, "outcome" => outcome).increment(1);
    }
}

/// A cache lookup of call `call` of `endpoint` found `result`.
pub(crate) fn cache(endpoint: &'static str, call: &'static str, result: CacheResult) {
    if enabled() {
        let result = result.as_str();
        cached(
            &COUNTERS,
            key(CACHE_REQUESTS, &[endpoint, call, result]),
            || metrics::counter!(CACHE_REQUESTS, "endpoint" => endpoint, "call" => call, "result" => result),
            |counter| counter.increment(1),
        );
    }
}

/// The breaker of `service` is now in the state whose gauge value is `gauge` (0 closed, 1
/// half-open, 2 open).
pub(crate) fn breaker(service: &'static str, gauge: u8) {
    if enabled() {
        metrics::gauge!(BREAKER_STATE, "service" => service).set(f64::from(gauge));
    }
}

/// Requests refused by an inbound rate limit.
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::metrics::RATE_LIMITED, "orchestrate_rate_limited_total");
/// ```
pub const RATE_LIMITED: &str = "orchestrate_rate_limited_total";

/// Checks of a shared rate limit that the store could not answer, made by the instance alone.
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::metrics::RATE_LIMIT_FALLBACKS, "orchestrate_rate_limit_fallbacks_total");
/// ```
pub const RATE_LIMIT_FALLBACKS: &str = "orchestrate_rate_limit_fallbacks_total";

/// A check of a shared limit of `scope` made locally: the store did not answer.
pub(crate) fn rate_limit_fallback(scope: &'static str) {
    if enabled() {
        metrics::counter!(RATE_LIMIT_FALLBACKS, "scope" => scope).increment(1);
    }
}

/// A request of `endpoint` refused by its limit of `scope`.
pub(crate) fn rate_limited(endpoint: &'static str, scope: &'static str) {
    if enabled() {
        cached(
            &COUNTERS,
            key(RATE_LIMITED, &[endpoint, scope]),
            || metrics::counter!(RATE_LIMITED, "endpoint" => endpoint, "scope" => scope),
            |counter| counter.increment(1),
        );
    }
}

/// Instance `host` of `service`: its latency estimate and whether it is ejected (read at scrape
/// time; hosts come from the configuration, so the label values are bounded).
pub(crate) fn instance(service: &'static str, host: &str, estimate: Duration, ejected: bool) {
    if enabled() {
        let labels = [("service", service.to_owned()), ("instance", host.to_owned())];
        metrics::gauge!(INSTANCE_ESTIMATE, &labels).set(estimate.as_secs_f64());
        metrics::gauge!(INSTANCE_EJECTED, &labels).set(if ejected { 1.0 } else { 0.0 });
    }
}

/// An operation of the shared store failed with an error of `kind`. Failures only: the label
/// values are bounded by the commands and scripts the features use.
pub(crate) fn store_error(operation: &str, kind: &'static str) {
    if enabled() {
        metrics::counter!(STORE_ERRORS, "operation" => operation.to_owned(), "kind" => kind).increment(1);
    }
}

/// The compensation of call `call` of `endpoint` ended with `outcome` (`compensated`, `failed`).
pub(crate) fn compensation(
    endpoint: impl Into<metrics::SharedString>,
    call: impl Into<metrics::SharedString>,
    outcome: &'static str,
) {
    let (endpoint, call) = (endpoint.into(), call.into());
    if enabled() {
        metrics::counter!(COMPENSATIONS, "endpoint" => endpoint, "call" => call, "outcome" => outcome).increment(1);
    }
}

/// The listener refused or cut a connection or request, for `reason` (one of a fixed set).
pub(crate) fn server_refused(reason: &'static str) {
    if enabled() {
        metrics::counter!(SERVER_REFUSED, "reason" => reason).increment(1);
    }
}

/// Canary `version` of `endpoint` was rolled back.
pub(crate) fn canary_rollback(endpoint: &'static str, version: &'static str) {
    if enabled() {
        metrics::counter!(CANARY_ROLLBACKS, "endpoint" => endpoint, "version" => version).increment(1);
    }
}

/// A request was refused for its bearer token, for `reason` (one of a fixed set of names).
pub(crate) fn auth_failure(reason: &'static str) {
    if enabled() {
        metrics::counter!(AUTH_FAILURES, "reason" => reason).increment(1);
    }
}

//! `/health`: whether the application can serve its endpoints, with each downstream service's
//! state, for load balancers, Kubernetes probes and people.
//!
//! ```text
//! GET /health → 200 | 503
//! {"status":"ok","services":[{"name":"cart","required":true,"usable":true,"breaker":"closed",
//!   "errorRate":0.0,"recentAttempts":12,"recentFailures":0,"lastSuccess":"Tue, 03 Nov 2026 10:00:00 GMT",
//!   "lastSuccessSecondsAgo":0.4,"inFlight":1,"maxInFlight":48}, ..],
//!  "store":{"backend":"redis","status":"ok","target":"redis://cache:6379/0","consecutiveFailures":0,
//!   "failures":0,"lastError":null},
//!  "canaries":[{"route":"POST /checkout/summary","endpoint":"SummaryV2","version":"v2","key":"sub",
//!   "weight":0,"configuredWeight":5,"rolledBack":true,"reason":"error rate 40.0% against ..",
//!   "recentRequests":60,"recentErrors":24}]}
//! ```
//!
//! A service is *required* when some endpoint has a required call to it (every service, when no
//! endpoints are given), and *usable* unless its circuit breaker is open. A half-open breaker is
//! usable: it lets probe calls through, and only traffic can close it again — an instance taken
//! out of its load balancer while half-open would never get the probes that bring it back. The
//! answer is 503 (`"status":"unavailable"`) when a required service is not usable, else 200:
//! `"ok"` when every breaker is closed and the store answers, `"degraded"` otherwise.
//!
//! `/health/live` is the liveness probe: 200 `{"status":"ok"}` whenever the process serves HTTP,
//! whatever the downstream services and the store do. Restarting an instance because a service
//! it calls is down would not bring that service back; readiness (whether to send it traffic) is
//! `/health`.
//!
//! The [shared store](crate::store) is shown under `store` (`"backend":"memory"` alone when there
//! is no Redis). The route pings it first (within its command timeout; at once while the store is
//! known to be down), so its `status` is current even without traffic. A store that does not
//! answer makes the report `degraded`, never `unavailable`: the features that use it degrade (a
//! cache miss, a local rate limit) and the endpoints still answer, so taking the instance out of
//! its load balancer would turn a degradation into an outage — and every instance shares the same
//! store, so all of them would go at once.

use crate::Runtime;
use crate::breaker::BreakerState;
use crate::canary::CanaryReport;
use crate::health::ServiceHealth;
use crate::spec::{EndpointSpec, NodeKind};
use crate::store::{Backend, StoreHealth};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use serde::Serialize;
use std::time::SystemTime;

/// The overall state.
///
/// ```
/// use orchestrate_runtime::ops::health::{HealthReport, Status};
/// use orchestrate_runtime::{Runtime, ServiceSpec};
/// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://127.0.0.1:9")];
/// let report = HealthReport::of(&Runtime::builder(SERVICES).read_env(false).build().unwrap(), &[]);
/// assert_eq!(serde_json::to_value(report.status).unwrap(), "ok");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every breaker is closed.
    Ok,
    /// Every required service is usable, but some breaker is open or half-open, or the shared
    /// store does not answer.
    Degraded,
    /// A required service's breaker is open.
    Unavailable,
}

/// One service in the report.
///
/// ```
/// use orchestrate_runtime::ops::health::{HealthReport, Status};
/// use orchestrate_runtime::{Runtime, ServiceSpec};
/// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://127.0.0.1:9")];
/// let report = HealthReport::of(&Runtime::builder(SERVICES).read_env(false).build().unwrap(), &[]);
/// let cart = &report.services[0];
/// assert_eq!((cart.name, cart.breaker, cart.error_rate, cart.last_success.as_deref()), ("cart", "closed", 0.0, None));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceReport {
    /// The service's name.
    pub name: &'static str,
    /// Whether some endpoint cannot answer without it.
    pub required: bool,
    /// Whether calls can reach it (its breaker is not open).
    pub usable: bool,
    /// `closed`, `half_open` or `open`.
    pub breaker: &'static str,
    /// Failed share of the attempts over the last minute.
    pub error_rate: f64,
    /// Attempts over the last minute.
    pub recent_attempts: u64,
    /// Failed attempts over the last minute.
    pub recent_failures: u64,
    /// When it last answered well, as an HTTP date.
    pub last_success: Option<String>,
    /// Seconds since it last answered well.
    pub last_success_seconds_ago: Option<f64>,
    /// Calls in flight now (counted by its bulkhead).
    pub in_flight: u32,
    /// Its concurrency limit now (the adaptive limit's current value, or the fixed one).
    pub max_in_flight: u32,
    /// Each instance, when its base URL lists several (left out otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceReport>,
}

/// One instance of a service with several, in the report.
///
/// ```
/// use orchestrate_runtime::ops::health::HealthReport;
/// use orchestrate_runtime::{Runtime, ServiceSpec};
/// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://10.0.0.1:80, http://10.0.0.2:80")];
/// let report = HealthReport::of(&Runtime::builder(SERVICES).read_env(false).build().unwrap(), &[]);
/// let json = serde_json::to_value(&report.services[0].instances[1]).unwrap();
/// assert_eq!(json, serde_json::json!({"host": "10.0.0.2:80", "estimateMs": 30.0, "inFlight": 0, "ejected": false, "ejections": 0}));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceReport {
    /// Host and port (no scheme, credentials or path).
    pub host: String,
    /// The balancer's latency estimate, in milliseconds.
    pub estimate_ms: f64,
    /// Attempts in flight.
    pub in_flight: u32,
    /// Whether it is ejected now (no calls go to it).
    pub ejected: bool,
    /// How often it was ejected.
    pub ejections: u32,
}

/// The shared store in the report.
///
/// ```
/// use orchestrate_runtime::ops::health::HealthReport;
/// use orchestrate_runtime::Runtime;
/// let report = HealthReport::of(&Runtime::builder(&[]).read_env(false).build().unwrap(), &[]);
/// assert_eq!(serde_json::to_value(&report.store).unwrap(), serde_json::json!({"backend": "memory", "status": "ok"}));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct StoreReport {
    /// `memory` or `redis`.
    pub backend: &'static str,
    /// `ok`, or `unavailable` when its last attempt timed out or could not reach it.
    pub status: &'static str,
    /// The server, password hidden.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Attempts in a row that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<u32>,
    /// Failed operations since start-up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures: Option<u64>,
    /// The last failure (Redis only: `null` before the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<Option<StoreErrorReport>>,
}

/// The last failure of the store in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct StoreErrorReport {
    /// `timeout`, `unavailable` or `reply`.
    pub kind: &'static str,
    /// The command, `pipeline` or `script:<name>`.
    pub operation: String,
    /// What happened.
    pub message: String,
    /// Seconds since it happened.
    pub seconds_ago: f64,
}

impl StoreReport {
    fn of(health: &StoreHealth) -> Self {
        let redis = health.backend == Backend::Redis;
        let last_error = health.last_error.as_ref().map(|e| StoreErrorReport {
            kind: e.kind.as_str(),
            operation: e.operation.clone(),
            message: e.message.clone(),
            seconds_ago: (e.at.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        });
        Self {
            backend: health.backend.as_str(),
            status: health.status(),
            target: health.target.clone(),
            consecutive_failures: redis.then_some(health.consecutive_failures),
            failures: redis.then_some(health.failures),
            last_error: redis.then_some(last_error),
        }
    }
}

/// The body of `/health`.
///
/// ```
/// use orchestrate_runtime::ops::health::{HealthReport, Status};
/// use orchestrate_runtime::{Runtime, ServiceSpec};
/// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://127.0.0.1:9")];
/// let runtime = Runtime::builder(SERVICES).read_env(false).build().unwrap();
/// let report = HealthReport::of(&runtime, &[]);
/// assert_eq!(report.status, Status::Ok);
/// assert!(report.services[0].required && report.services[0].usable);
/// assert_eq!(report.http_status(), http::StatusCode::OK);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    /// The overall state.
    pub status: Status,
    /// Every service, in declaration order.
    pub services: Vec<ServiceReport>,
    /// The shared store.
    pub store: StoreReport,
    /// Each canary version of an endpoint, its weight now and whether it was rolled back (left
    /// out when no route has versions). A rolled-back canary changes no status: the stable
    /// version answers in its place.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub canaries: Vec<CanaryReport>,
}

impl HealthReport {
    /// The state of `runtime`'s services for `endpoints` (every service counts as required when
    /// `endpoints` is empty).
    ///
    /// ```
    /// use orchestrate_runtime::ops::health::{HealthReport, Status};
    /// use orchestrate_runtime::{Runtime, ServiceSpec};
    /// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://127.0.0.1:9")];
    /// let report = HealthReport::of(&Runtime::builder(SERVICES).read_env(false).build().unwrap(), &[]);
    /// assert_eq!(report.status, Status::Ok);
    /// ```
    pub fn of(runtime: &Runtime, endpoints: &[&'static EndpointSpec]) -> Self {
        let now = SystemTime::now();
        let services: Vec<ServiceReport> = runtime
            .services()
            .iter()
            .map(|client| {
                let health = client.health();
                let mut report =
                    service_report(&health, endpoints.is_empty() || requires(endpoints, health.service), now);
                report.instances = client
                    .instances()
                    .into_iter()
                    .map(|i| InstanceReport {
                        host: i.host,
                        estimate_ms: (i.estimate.as_secs_f64() * 1e6).round() / 1e3,
                        in_flight: i.in_flight,
                        ejected: i.ejected,
                        ejections: i.ejections,
                    })
                    .collect();
                report
            })
            .collect();
        let store = runtime.store().health();
        let status = if services.iter().any(|s| s.required && !s.usable) {
            Status::Unavailable
        } else if !store.available || services.iter().any(|s| s.breaker != BreakerState::Closed.as_str()) {
            Status::Degraded
        } else {
            Status::Ok
        };
        Self { status, services, store: StoreReport::of(&store), canaries: runtime.canaries().report() }
    }

    /// 503 when unavailable, else 200.
    ///
    /// ```
    /// use orchestrate_runtime::ops::health::{HealthReport, Status};
    /// use orchestrate_runtime::{Runtime, ServiceSpec};
    /// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://127.0.0.1:9")];
    /// let report = HealthReport::of(&Runtime::builder(SERVICES).read_env(false).build().unwrap(), &[]);
    /// assert_eq!(report.http_status(), http::StatusCode::OK);
    /// ```
    pub fn http_status(&self) -> StatusCode {
        match self.status {
            Status::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Status::Ok | Status::Degraded => StatusCode::OK,
        }
    }
}

fn requires(endpoints: &[&'static EndpointSpec], service: &str) -> bool {
    endpoints.iter().flat_map(|e| e.nodes).any(|node| match &node.kind {
        NodeKind::Call(call) => call.required && call.service == service,
        NodeKind::Compute { .. } => false,
    })
}

fn service_report(health: &ServiceHealth, required: bool, now: SystemTime) -> ServiceReport {
    let ago = health.last_success.map(|at| at.elapsed());
    ServiceReport {
        name: health.service,
        required,
        usable: health.breaker != BreakerState::Open,
        breaker: health.breaker.as_str(),
        error_rate: health.error_rate(),
        recent_attempts: health.recent_attempts,
        recent_failures: health.recent_failures,
        last_success: ago.and_then(|ago| now.checked_sub(ago)).map(httpdate::fmt_http_date),
        last_success_seconds_ago: ago.map(|ago| (ago.as_secs_f64() * 1000.0).round() / 1000.0),
        in_flight: health.in_flight,
        max_in_flight: health.max_in_flight,
        instances: Vec::new(),
    }
}

/// `GET /health` for `runtime` and `endpoints`: pings the store, then answers the
/// [`HealthReport`].
///
/// ```
/// # let runtime = orchestrate_runtime::Runtime::builder(&[]).read_env(false).build().unwrap();
/// let app: axum::Router = orchestrate_runtime::ops::health::routes(&runtime, &[]);
/// ```
pub fn routes(runtime: &Runtime, endpoints: &[&'static EndpointSpec]) -> axum::Router {
    let runtime = runtime.clone();
    let endpoints: std::sync::Arc<[&'static EndpointSpec]> = endpoints.into();
    axum::Router::new()
        .route(
            "/health",
            get(move || {
                let (runtime, endpoints) = (runtime.clone(), endpoints.clone());
                async move { answer(&runtime, &endpoints).await }
            }),
        )
        .route(
            "/health/live",
            get(|| async { ([(axum::http::header::CONTENT_TYPE, "application/json")], "{\"status\":\"ok\"}") }),
        )
}

async fn answer(runtime: &Runtime, endpoints: &[&'static EndpointSpec]) -> Response {
    // The outcome is in the store's health, which the report reads.
    let _ = runtime.store().ping().await;
    let report = HealthReport::of(runtime, endpoints);
    let body = serde_json::to_vec(&report).unwrap_or_default();
    let headers = [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")];
    (report.http_status(), headers, body).into_response()
}

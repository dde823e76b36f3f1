//! `/health`: whether the application can serve its endpoints, with each downstream service's
//! state, for load balancers, Kubernetes probes and people.
//!
//! ```text
//! GET /health → 200 | 503
//! {"status":"ok","services":[{"name":"cart","required":true,"usable":true,"breaker":"closed",
//!   "errorRate":0.0,"recentAttempts":12,"recentFailures":0,"lastSuccess":"Tue, 03 Nov 2026 10:00:00 GMT",
//!   "lastSuccessSecondsAgo":0.4,"inFlight":1,"maxInFlight":48}, ..]}
//! ```
//!
//! A service is *required* when some endpoint has a required call to it (every service, when no
//! endpoints are given), and *usable* unless its circuit breaker is open. A half-open breaker is
//! usable: it lets probe calls through, and only traffic can close it again — an instance taken
//! out of its load balancer while half-open would never get the probes that bring it back. The
//! answer is 503 (`"status":"unavailable"`) when a required service is not usable, else 200:
//! `"ok"` when every breaker is closed, `"degraded"` otherwise.

use crate::Runtime;
use crate::breaker::BreakerState;
use crate::health::ServiceHealth;
use crate::spec::{EndpointSpec, NodeKind};
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
    /// Every required service is usable, but some breaker is open or half-open.
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
                service_report(&health, endpoints.is_empty() || requires(endpoints, health.service), now)
            })
            .collect();
        let status = if services.iter().any(|s| s.required && !s.usable) {
            Status::Unavailable
        } else if services.iter().any(|s| s.breaker != BreakerState::Closed.as_str()) {
            Status::Degraded
        } else {
            Status::Ok
        };
        Self { status, services }
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
    }
}

/// `GET /health` for `runtime` and `endpoints`.
///
/// ```
/// # let runtime = orchestrate_runtime::Runtime::builder(&[]).read_env(false).build().unwrap();
/// let app: axum::Router = orchestrate_runtime::ops::health::routes(&runtime, &[]);
/// ```
pub fn routes(runtime: &Runtime, endpoints: &[&'static EndpointSpec]) -> axum::Router {
    let runtime = runtime.clone();
    let endpoints = endpoints.to_vec();
    axum::Router::new().route("/health", get(move || std::future::ready(answer(&runtime, &endpoints))))
}

fn answer(runtime: &Runtime, endpoints: &[&'static EndpointSpec]) -> Response {
    let report = HealthReport::of(runtime, endpoints);
    let body = serde_json::to_vec(&report).unwrap_or_default();
    let headers = [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")];
    (report.http_status(), headers, body).into_response()
}

//! Prometheus text at `/metrics`, from the runtime's [metrics](crate::telemetry::metrics).
//!
//! A library should not install a process-wide recorder behind the application's back, so this is
//! explicit: call [`install`] once at start-up, then mount [`ops::router`](crate::ops::router)
//! (or [`routes`]). Histograms get real buckets ([`DEFAULT_BUCKETS`], in seconds), so p50/p95/p99
//! can be computed over many instances with `histogram_quantile(0.99, sum by (le, route)
//! (rate(orchestrate_request_duration_seconds_bucket[5m])))`.
//!
//! ```no_run
//! # async fn run(runtime: orchestrate_runtime::Runtime) -> Result<(), Box<dyn std::error::Error>> {
//! orchestrate_runtime::ops::metrics::install()?;
//! let app = orchestrate_runtime::ops::router(&runtime, &[]);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! An application that already has a `metrics` recorder (another exporter, a test recorder) calls
//! [`enable`] instead: the runtime then records into that recorder and `/metrics` answers 404.

use crate::Runtime;
use crate::telemetry::metrics as names;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::fmt;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Histogram buckets, in seconds: from 5 ms to 10 s, denser where BFF latencies live.
///
/// ```
/// assert_eq!(orchestrate_runtime::ops::metrics::DEFAULT_BUCKETS.last(), Some(&10.0));
/// ```
pub const DEFAULT_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0];

/// How often the installed recorder drains histogram samples when nobody scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// The installed Prometheus recorder.
///
/// ```
/// let metrics = orchestrate_runtime::ops::metrics::install().unwrap();
/// assert!(metrics.render().is_empty() || metrics.render().contains("# TYPE"));
/// ```
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Everything recorded so far, in the Prometheus text format.
    ///
    /// ```
    /// let metrics = orchestrate_runtime::ops::metrics::install().unwrap();
    /// let text = metrics.render();
    /// assert!(text.lines().all(|line| line.is_empty() || line.starts_with('#') || line.starts_with("orchestrate_")));
    /// ```
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}

/// Why [`install`] failed.
///
/// ```
/// use orchestrate_runtime::ops::metrics::MetricsError;
/// assert!(MetricsError::OtherRecorder.to_string().contains("enable()"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricsError {
    /// The application already installed another `metrics` recorder; call [`enable`] to record
    /// into it instead.
    OtherRecorder,
    /// The buckets are not usable (empty).
    Buckets(String),
}

impl fmt::Display for MetricsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OtherRecorder => f.write_str(
                "another `metrics` recorder is already installed; call `orchestrate::ops::metrics::enable()` to record into it",
            ),
            Self::Buckets(reason) => write!(f, "invalid histogram buckets: {reason}"),
        }
    }
}

impl std::error::Error for MetricsError {}

static INSTALLED: OnceLock<Metrics> = OnceLock::new();
static INSTALLING: Mutex<()> = Mutex::new(());

/// Installs the Prometheus recorder process-wide with [`DEFAULT_BUCKETS`] and turns recording on.
///
/// Calling it again returns the same recorder, so tests and libraries may call it freely. A
/// background thread drains histogram samples every few seconds so memory stays bounded when
/// nobody scrapes.
///
/// # Errors
///
/// [`MetricsError::OtherRecorder`] when another `metrics` recorder was installed first.
///
/// ```
/// let first = orchestrate_runtime::ops::metrics::install().unwrap();
/// let again = orchestrate_runtime::ops::metrics::install().unwrap();
/// # let _ = (first, again);
/// assert!(orchestrate_runtime::ops::metrics::installed().is_some());
/// ```
pub fn install() -> Result<Metrics, MetricsError> {
    install_with_buckets(DEFAULT_BUCKETS)
}

/// [`install`] with other histogram buckets (upper bounds in seconds). Ignored when a recorder is
/// already installed by this module.
///
/// # Errors
///
/// As [`install`], plus [`MetricsError::Buckets`] for an empty list.
///
/// ```
/// let metrics = orchestrate_runtime::ops::metrics::install_with_buckets(&[0.05, 0.1, 0.5, 1.0]).unwrap();
/// # let _ = metrics;
/// ```
pub fn install_with_buckets(buckets: &[f64]) -> Result<Metrics, MetricsError> {
    if let Some(metrics) = INSTALLED.get() {
        return Ok(metrics.clone());
    }
    let _installing = INSTALLING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(metrics) = INSTALLED.get() {
        return Ok(metrics.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets(buckets)
        .map_err(|e| MetricsError::Buckets(e.to_string()))?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| MetricsError::OtherRecorder)?;
    let upkeep = handle.clone();
    // A plain thread: no async runtime is needed, and it sleeps almost always.
    let _ = std::thread::Builder::new().name("orchestrate-metrics".to_owned()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP);
            upkeep.run_upkeep();
        }
    });
    names::enable();
    Ok(INSTALLED.get_or_init(|| Metrics { handle }).clone())
}

/// Records the runtime's metrics into whatever `metrics` recorder the application installed.
///
/// ```
/// orchestrate_runtime::ops::metrics::enable();
/// assert!(orchestrate_runtime::telemetry::metrics::enabled());
/// ```
pub fn enable() {
    names::enable();
}

/// The recorder [`install`] installed, if it was called.
///
/// ```
/// orchestrate_runtime::ops::metrics::install().unwrap();
/// assert!(orchestrate_runtime::ops::metrics::installed().is_some());
/// ```
pub fn installed() -> Option<Metrics> {
    INSTALLED.get().cloned()
}

/// `GET /metrics` for `runtime`: the Prometheus text, with each service's breaker state read at
/// scrape time (an open breaker turns half-open by the clock, with no call to record it).
///
/// ```
/// # let runtime = orchestrate_runtime::Runtime::builder(&[]).read_env(false).build().unwrap();
/// let app: axum::Router = orchestrate_runtime::ops::metrics::routes(&runtime);
/// ```
pub fn routes(runtime: &Runtime) -> axum::Router {
    let runtime = runtime.clone();
    axum::Router::new().route("/metrics", get(move || std::future::ready(scrape(&runtime))))
}

fn scrape(runtime: &Runtime) -> Response {
    let Some(metrics) = installed() else {
        let body = serde_json::json!({ "error": {
            "code": "METRICS_NOT_INSTALLED",
            "message": "call `orchestrate::ops::metrics::install()` at start-up to serve Prometheus metrics",
        }});
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    };
    for service in runtime.services() {
        names::breaker(service.name(), service.breaker_state().as_gauge());
        for instance in service.instances() {
            names::instance(service.name(), &instance.host, instance.estimate, instance.ejected);
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics.render()).into_response()
}

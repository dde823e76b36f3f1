//! What recent requests did, for operators: the "Recent requests" part of each endpoint's section
//! of `/_orchestrate` and `/_orchestrate/requests.json`, both read from the runtime's
//! [recent requests](crate::recent) when they are asked for.
//!
//! Each kept request is drawn as a waterfall (inline SVG: one bar per call on the request's time
//! axis, the critical path outlined, failed calls red and marked `✕`, fallbacks amber, cancelled
//! and skipped calls grey, each recorded attempt a segment of its call's bar with the backoff
//! between them left light), with its status, duration, request id and trace id, and beside it
//! the critical path's share of the request and, when the request missed the endpoint's target
//! (its `timeout` today; see [`recent::target`](crate::recent::target)), the call during which it
//! did.
//!
//! Filters are links (`?show=slow`, `?show=failed`, `?show=partial`): the page is rendered per
//! request, so a filter is applied where the page is made, works without a script (the page's
//! `Content-Security-Policy` allows none), and a filtered view can be sent to a colleague as a
//! URL. The JSON takes the same `show` parameter.
//!
//! ```
//! # use orchestrate_runtime::Runtime;
//! let runtime = Runtime::builder(&[]).read_env(false).build().unwrap();
//! let json: serde_json::Value =
//!     serde_json::from_str(&orchestrate_runtime::ops::requests::json(&runtime, &[], Default::default())).unwrap();
//! assert_eq!(json["recording"], true);
//! assert_eq!(json["kept"]["last"], 50);
//! ```

mod page;
mod waterfall;

pub(crate) use page::anchor;
pub use page::{STYLE, section};
pub use waterfall::svg;

use crate::Runtime;
use crate::recent::{Analysis, Filter, RecentRequest, analyse, filter};
use crate::spec::EndpointSpec;
use axum::extract::RawQuery;
use axum::response::IntoResponse;
use axum::routing::get;
use http::header;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// `GET /_orchestrate/requests.json` (with `?show=slow|failed|partial`) for `endpoints`.
///
/// ```
/// # use orchestrate_runtime::Runtime;
/// let runtime = Runtime::builder(&[]).read_env(false).build().unwrap();
/// let routes: axum::Router = orchestrate_runtime::ops::requests::routes(&runtime, &[]);
/// # let _ = routes;
/// ```
pub fn routes(runtime: &Runtime, endpoints: &[&'static EndpointSpec]) -> axum::Router {
    let runtime = runtime.clone();
    let endpoints: Arc<[&'static EndpointSpec]> = endpoints.into();
    axum::Router::new().route(
        "/_orchestrate/requests.json",
        get(move |RawQuery(query): RawQuery| {
            let body = json(&runtime, &endpoints, shown(query.as_deref()));
            async move {
                ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body)
                    .into_response()
            }
        }),
    )
}

/// The filter a query string asks for: `show=slow`, `show=failed`, `show=partial` (anything else
/// shows every kept request).
///
/// ```
/// use orchestrate_runtime::ops::requests::shown;
/// use orchestrate_runtime::recent::Filter;
/// assert_eq!(shown(Some("x=1&show=failed")), Filter::Failed);
/// assert_eq!(shown(Some("show=everything")), Filter::All);
/// assert_eq!(shown(None), Filter::All);
/// ```
pub fn shown(query: Option<&str>) -> Filter {
    query
        .into_iter()
        .flat_map(|q| form_urlencoded::parse(q.as_bytes()))
        .find(|(key, _)| key == "show")
        .and_then(|(_, value)| Filter::parse(&value))
        .unwrap_or_default()
}

/// What one endpoint's part of the views shows: its kept requests (filtered), how many each
/// filter would show, and the analysis of each shown request.
struct Shown {
    requests: Vec<(RecentRequest, Analysis)>,
    counts: [(Filter, usize); 4],
    recorded: u64,
    now: Instant,
}

fn shown_of(runtime: &Runtime, spec: &'static EndpointSpec, show: Filter) -> Shown {
    let recent = runtime.recent();
    let now = Instant::now();
    let kept = recent.requests(spec, now);
    let counts = [Filter::All, Filter::Slow, Filter::Failed, Filter::Partial]
        .map(|f| (f, kept.iter().filter(|r| f.shows(spec, r)).count()));
    let requests = filter(spec, kept, show)
        .into_iter()
        .map(|request| {
            let analysis = analyse(spec, &request);
            (request, analysis)
        })
        .collect();
    Shown { requests, counts, recorded: recent.recorded(spec), now }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    recording: bool,
    kept: crate::recent::RecentRequests,
    show: &'static str,
    endpoints: Vec<EndpointView<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EndpointView<'a> {
    name: &'a str,
    method: &'a str,
    route: &'a str,
    target: TargetView,
    recorded: u64,
    entry_bytes: usize,
    store_bytes: usize,
    requests: Vec<RequestView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TargetView {
    ms: f64,
    source: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestView {
    request_id: String,
    trace_id: String,
    started_at: String,
    age_ms: f64,
    status: u16,
    partial: bool,
    failed: bool,
    duration_ms: f64,
    graph_ms: f64,
    kept: Vec<&'static str>,
    critical_path: Vec<&'static str>,
    critical_path_ms: f64,
    critical_path_share: f64,
    missed_target: bool,
    missed_during: Option<&'static str>,
    calls: Vec<CallView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CallView {
    call: &'static str,
    service: &'static str,
    required: bool,
    start_ms: f64,
    end_ms: f64,
    duration_ms: f64,
    /// The call's time as a share of the request's graph time.
    share: f64,
    attempts: u32,
    attempt_times: Vec<AttemptView>,
    outcome: &'static str,
    error: Option<&'static str>,
    status: Option<u16>,
    breaker: Option<&'static str>,
    instance: Option<u16>,
    critical: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AttemptView {
    start_ms: f64,
    end_ms: f64,
}

fn request_view(request: &RecentRequest, analysis: &Analysis, now: Instant) -> RequestView {
    let kept = [(request.kept.last, "last"), (request.kept.slowest, "slowest"), (request.kept.failed, "failed")];
    RequestView {
        request_id: request.request_id.clone(),
        trace_id: request.trace_id.to_string(),
        started_at: rfc3339(wall_clock(request.started, now)),
        age_ms: ms(request.age(now)),
        status: request.status,
        partial: request.partial,
        failed: request.failed(),
        duration_ms: ms(request.duration),
        graph_ms: ms(request.graph),
        kept: kept.into_iter().filter_map(|(on, name)| on.then_some(name)).collect(),
        critical_path: analysis.critical_path.iter().map(|&i| request.calls[i].call).collect(),
        critical_path_ms: ms(analysis.critical_time),
        critical_path_share: (analysis.critical_share * 1000.0).round() / 1000.0,
        missed_target: analysis.missed,
        missed_during: analysis.missed_during.map(|i| request.calls[i].call),
        calls: request
            .calls
            .iter()
            .enumerate()
            .map(|(i, call)| CallView {
                call: call.call,
                service: call.service,
                required: call.required,
                start_ms: ms(call.start),
                end_ms: ms(call.end),
                duration_ms: ms(call.duration()),
                share: share(call.duration(), request.graph),
                attempts: call.attempts,
                attempt_times: call
                    .attempt_times
                    .iter()
                    .map(|(start, end)| AttemptView { start_ms: ms(start), end_ms: ms(end) })
                    .collect(),
                outcome: call.ending.as_str(),
                error: call.error.map(|e| e.as_str()),
                status: call.status,
                breaker: call.breaker.map(|b| b.as_str()),
                instance: call.instance,
                critical: analysis.critical_path.contains(&i),
            })
            .collect(),
    }
}

/// The body of `/_orchestrate/requests.json`: `{"recording","kept","show","endpoints":[..]}`,
/// each endpoint with its target, how many requests it recorded, the bytes of its store and
/// its kept requests as `filter` shows them: ids, start (RFC 3339, UTC), status, durations, the
/// sets keeping it, the critical path and its share, whether and during which call it missed
/// its target, and every call's record.
///
/// ```
/// # use orchestrate_runtime::Runtime;
/// # use orchestrate_runtime::recent::Filter;
/// let runtime = Runtime::builder(&[]).read_env(false).build().unwrap();
/// let json = orchestrate_runtime::ops::requests::json(&runtime, &[], Filter::Failed);
/// assert!(json.contains("\"show\": \"failed\""));
/// ```
pub fn json(runtime: &Runtime, endpoints: &[&'static EndpointSpec], show: Filter) -> String {
    let recent = runtime.recent();
    let document = Document {
        recording: recent.is_recording(),
        kept: recent.settings(),
        show: show.as_str(),
        endpoints: endpoints
            .iter()
            .map(|&spec| {
                let shown = shown_of(runtime, spec, show);
                let target = crate::recent::target(spec);
                EndpointView {
                    name: spec.name,
                    method: spec.method.as_str(),
                    route: spec.route,
                    target: TargetView { ms: ms(target.limit), source: target.source.as_str() },
                    recorded: shown.recorded,
                    entry_bytes: crate::recent::Recent::entry_bytes(spec),
                    store_bytes: recent.store_bytes(spec),
                    requests: shown.requests.iter().map(|(r, a)| request_view(r, a, shown.now)).collect(),
                }
            })
            .collect(),
    };
    // Plain data with string keys: serializing cannot fail.
    serde_json::to_string_pretty(&document).unwrap_or_default()
}

/// `part` of `whole` to three decimals (0 for a zero `whole`).
fn share(part: Duration, whole: Duration) -> f64 {
    if whole.is_zero() { 0.0 } else { (part.as_secs_f64() / whole.as_secs_f64() * 1000.0).round() / 1000.0 }
}

/// Milliseconds to a tenth, as `Server-Timing` shows them.
fn ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10_000.0).round() / 10.0
}

/// The wall-clock time of `at`, a monotonic instant, seen at `now`.
fn wall_clock(at: Instant, now: Instant) -> SystemTime {
    let ago = now.saturating_duration_since(at);
    SystemTime::now().checked_sub(ago).unwrap_or(UNIX_EPOCH)
}

/// `2025-01-31T12:04:05.123Z`.
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (date, clock) = civil(since);
    format!("{date}T{clock}Z")
}

/// The UTC date (`2025-01-31`) and time of day (`12:04:05.123`) of a time since the epoch.
fn civil(since: Duration) -> (String, String) {
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let clock = format!("{:02}:{:02}:{:02}.{:03}", rest / 3600, rest % 3600 / 60, rest % 60, since.subsec_millis());
    (format!("{year:04}-{month:02}-{day:02}"), clock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc() {
        let at = UNIX_EPOCH + Duration::from_millis(1_738_325_045_123);
        assert_eq!(rfc3339(at), "2025-01-31T12:04:05.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}

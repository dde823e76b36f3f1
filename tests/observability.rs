//! What an operator sees, over real HTTP on loopback: the W3C trace context and request id carried
//! to every downstream service and back, `Server-Timing` agreeing with the request's graph, and
//! `/health` following a required service's circuit breaker. (`/metrics` has its own test binary,
//! `tests/metrics.rs`, because the Prometheus recorder is process-wide.)

mod support;

#[path = "../examples/checkout/app.rs"]
mod app;

use orchestrate::Runtime;
use orchestrate::telemetry::TraceContext;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;
use support::mocks::{Fault, Mocks};

const CLIENT_TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

struct Bff {
    url: String,
    mocks: Mocks,
    http: reqwest::Client,
}

/// The checkout BFF in front of mocks with the template's latencies times `scale`.
async fn start(scale: f64, server_timing: bool) -> Bff {
    let mocks = Mocks::start(scale).await.unwrap();
    let builder = mocks.runtime(app::services::ALL).server_timing(server_timing);
    let runtime = builder.build().unwrap();
    let url = support::serve(orchestrate::router::app(app::checkout::router(&runtime))).await;
    Bff { url, mocks, http: reqwest::Client::new() }
}

impl Bff {
    async fn summary(&self, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/checkout/summary", self.url))
            .header("content-type", "application/json")
            .body(json!({"cartId": "c1", "userId": "u1"}).to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    /// The `traceparent` each service received (one request each), parsed.
    fn downstream_traces(&self) -> Vec<(&'static str, TraceContext)> {
        self.mocks
            .all()
            .map(|mock| {
                let seen = mock.seen();
                assert_eq!(seen.len(), 1, "{}", mock.name);
                let value =
                    seen[0].headers.get("traceparent").unwrap_or_else(|| panic!("{}: no traceparent", mock.name));
                let parsed = TraceContext::parse(value.to_str().unwrap());
                (mock.name, parsed.unwrap_or_else(|| panic!("{}: invalid traceparent {value:?}", mock.name)))
            })
            .collect()
    }

    fn downstream_request_ids(&self) -> Vec<String> {
        self.mocks.all().map(|mock| mock.seen()[0].headers["x-request-id"].to_str().unwrap().to_owned()).collect()
    }
}

#[tokio::test]
async fn every_downstream_call_continues_the_clients_trace_and_request_id() {
    let bff = start(0.0, false).await;
    let response = bff
        .summary(&[
            ("traceparent", CLIENT_TRACEPARENT),
            ("tracestate", "congo=t61rcWkgMzE"),
            ("x-request-id", "req-42"),
        ])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "req-42");

    let client = TraceContext::parse(CLIENT_TRACEPARENT).unwrap();
    let traces = bff.downstream_traces();
    let mut parents = HashSet::new();
    for (service, trace) in &traces {
        assert_eq!(trace.trace_id(), client.trace_id(), "{service} is not in the client's trace");
        assert_ne!(trace.parent_id(), client.parent_id(), "{service} got the client's span as its parent");
        assert!(trace.sampled(), "{service}: the client's sampled flag was lost");
        parents.insert(trace.parent_id());
    }
    assert_eq!(parents.len(), traces.len(), "each call has its own parent id: {traces:?}");
    for mock in bff.mocks.all() {
        assert_eq!(mock.seen()[0].headers["tracestate"], "congo=t61rcWkgMzE", "{}", mock.name);
    }
    assert!(bff.downstream_request_ids().iter().all(|id| id == "req-42"));
}

#[tokio::test]
async fn a_request_without_ids_gets_a_generated_request_id_and_a_new_trace() {
    let bff = start(0.0, false).await;
    for inbound in [vec![], vec![("traceparent", "00-not-a-trace"), ("tracestate", "stale=1"), ("x-request-id", "")]] {
        bff.mocks.reset();
        let response = bff.summary(&inbound).await;
        assert_eq!(response.status(), 200);
        let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(request_id.len(), 36, "a UUID: {request_id}");
        assert!(bff.downstream_request_ids().iter().all(|id| *id == request_id), "{inbound:?}");

        let traces = bff.downstream_traces();
        let trace_id = traces[0].1.trace_id();
        for (service, trace) in &traces {
            assert_eq!(trace.trace_id(), trace_id, "{service}: every call is in the one new trace");
        }
        assert_ne!(trace_id, TraceContext::parse(CLIENT_TRACEPARENT).unwrap().trace_id());
        for mock in bff.mocks.all() {
            assert!(
                mock.seen()[0].headers.get("tracestate").is_none(),
                "{}: tracestate without its traceparent",
                mock.name
            );
        }
    }
    // Two requests, two request ids.
    let first = bff.summary(&[]).await.headers()["x-request-id"].clone();
    let second = bff.summary(&[]).await.headers()["x-request-id"].clone();
    assert_ne!(first, second);
}

/// `name → (start ms, dur ms, desc)` of a `Server-Timing` header.
fn server_timing(response: &reqwest::Response) -> Vec<(String, f64, f64, String)> {
    let header = response.headers().get("server-timing").expect("a Server-Timing header").to_str().unwrap();
    header
        .split(", ")
        .map(|metric| {
            let mut parts = metric.split(';');
            let name = parts.next().unwrap().to_owned();
            let (mut dur, mut desc) = (None, String::new());
            for param in parts {
                match param.split_once('=') {
                    Some(("dur", value)) => dur = Some(value.parse::<f64>().unwrap()),
                    Some(("desc", value)) => desc = value.trim_matches('"').to_owned(),
                    other => panic!("unexpected parameter {other:?} in {header}"),
                }
            }
            // desc: "<service> +<start>ms[ <outcome>]"
            let start = desc
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.strip_prefix('+')?.strip_suffix("ms")?.parse().ok())
                .unwrap_or(0.0);
            (name, start, dur.unwrap_or_else(|| panic!("no dur in {metric}")), desc)
        })
        .collect()
}

#[tokio::test]
async fn server_timing_lists_every_call_with_durations_that_follow_the_graph() {
    let bff = start(1.0, true).await;
    let response = bff.summary(&[]).await;
    assert_eq!(response.status(), 200);
    let timing = server_timing(&response);
    let names: Vec<&str> = timing.iter().map(|(name, ..)| name.as_str()).collect();
    let mut calls: Vec<&str> = names[..names.len() - 1].to_vec();
    calls.sort_unstable();
    assert_eq!(calls, ["availability", "cart", "pricing", "shipping", "tax"], "{timing:?}");
    assert_eq!(names.last(), Some(&"total"));
    let get = |name: &str| timing.iter().find(|t| t.0 == name).unwrap().clone();
    let end = |name: &str| get(name).1 + get(name).2;
    // Every call took at least its service's latency (values are rounded to 0.1 ms).
    for (call, service) in [
        ("cart", "cart"),
        ("availability", "inventory"),
        ("pricing", "pricing"),
        ("shipping", "shipping"),
        ("tax", "tax"),
    ] {
        let (_, _, dur, desc) = get(call);
        let latency = support::contract::latency(service).as_secs_f64() * 1000.0;
        assert!(dur >= latency - 0.1, "{call}: {dur} ms < {latency} ms");
        assert!(desc.starts_with(&format!("{service} +")), "{call}: {desc}");
    }
    // Starts follow the dependencies of the recorded timeline: cart, then its dependents, tax
    // after pricing; the total covers every call.
    assert!(get("cart").1 < 5.0, "{timing:?}");
    for dependent in ["availability", "pricing", "shipping"] {
        assert!(get(dependent).1 >= end("cart") - 0.2, "{dependent} started before cart ended: {timing:?}");
    }
    assert!(get("tax").1 >= end("pricing") - 0.2, "{timing:?}");
    let total = get("total").2;
    for call in &calls {
        assert!(total >= end(call) - 0.2, "total {total} < end of {call}: {timing:?}");
    }

    // A failed optional call and a failed request carry their timing too.
    bff.mocks.get("shipping").set_fault(Fault::Status(503));
    let response = bff.summary(&[]).await;
    assert_eq!(response.status(), 200);
    assert!(server_timing(&response).iter().any(|(name, .., desc)| name == "shipping" && desc.ends_with(" failed")));
    bff.mocks.get("tax").set_fault(Fault::Status(500));
    let response = bff.summary(&[]).await;
    assert_eq!(response.status(), 502);
    let timing = server_timing(&response);
    assert!(timing.iter().any(|(name, .., desc)| name == "tax" && desc.ends_with(" failed")), "{timing:?}");
    assert!(timing.iter().any(|(name, ..)| name == "total"));

    // Off: no header.
    let quiet = start(0.0, false).await;
    assert!(quiet.summary(&[]).await.headers().get("server-timing").is_none());
}

mod health {
    //! `/health` follows the breakers: a required service's open breaker makes it 503, an
    //! optional one's only `degraded`.
    use super::*;
    use orchestrate::prelude::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU16, Ordering};

    orchestrate::services! {
        stock:  "http://stock.internal"  { breaker(failures = 2, within = "10s", open_for = "300ms", probes = 1) },
        promos: "http://promos.internal" { breaker(failures = 1, within = "10s", open_for = "60s", probes = 1) },
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub struct Level {
        level: u32,
    }

    #[orchestrate::api]
    pub mod api {
        use super::*;

        #[endpoint(GET "/product", timeout = "1s")]
        #[derive(Debug, Serialize)]
        pub struct Product {
            #[call(service = "stock", timeout = "300ms", required, get = "/level")]
            stock: Level,
            #[call(service = "promos", timeout = "300ms", get = "/level")]
            promos: Option<Level>,
        }
    }

    /// A downstream answering `{"level":1}`, or the status in `fail` when it is not 0.
    async fn downstream(fail: Arc<AtomicU16>) -> String {
        support::serve(axum::Router::new().fallback(move || {
            let status = fail.load(Ordering::SeqCst);
            async move {
                match status {
                    0 => (http::StatusCode::OK, axum::Json(json!({"level": 1}))),
                    status => (http::StatusCode::from_u16(status).unwrap(), axum::Json(json!({}))),
                }
            }
        }))
        .await
    }

    async fn health(http: &reqwest::Client, url: &str) -> (u16, Value) {
        let response = http.get(format!("{url}/health")).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    fn service<'a>(report: &'a Value, name: &str) -> &'a Value {
        report["services"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()
    }

    #[tokio::test]
    async fn health_turns_503_while_a_required_services_breaker_is_open() {
        let (stock_fails, promos_fails) = (Arc::new(AtomicU16::new(0)), Arc::new(AtomicU16::new(0)));
        let runtime = Runtime::builder(services::ALL)
            .read_env(false)
            .base_url("stock", downstream(stock_fails.clone()).await)
            .base_url("promos", downstream(promos_fails.clone()).await)
            .build()
            .unwrap();
        let app = api::router(&runtime).merge(orchestrate::ops::router(&runtime, api::ENDPOINTS));
        let url = support::serve(orchestrate::router::app(app)).await;
        let http = reqwest::Client::new();
        let product = || async { http.get(format!("{url}/product")).send().await.unwrap().status().as_u16() };

        assert_eq!(product().await, 200);
        let (status, report) = health(&http, &url).await;
        assert_eq!((status, &report["status"]), (200, &json!("ok")), "{report}");
        let stock = service(&report, "stock");
        assert_eq!(
            (&stock["required"], &stock["usable"], &stock["breaker"]),
            (&json!(true), &json!(true), &json!("closed"))
        );
        assert_eq!(stock["recentAttempts"], 1);
        assert!(stock["lastSuccess"].is_string() && stock["lastSuccessSecondsAgo"].is_number(), "{stock}");
        assert_eq!(service(&report, "promos")["required"], false);

        // The optional service's breaker opens: still 200, degraded.
        promos_fails.store(500, Ordering::SeqCst);
        assert_eq!(product().await, 200);
        let (status, report) = health(&http, &url).await;
        assert_eq!((status, &report["status"]), (200, &json!("degraded")), "{report}");
        assert_eq!(service(&report, "promos")["breaker"], "open");
        assert_eq!(service(&report, "promos")["usable"], false);

        // The required service fails twice: its breaker opens and health is 503.
        stock_fails.store(503, Ordering::SeqCst);
        assert_eq!(product().await, 502);
        assert_eq!(product().await, 502);
        let (status, report) = health(&http, &url).await;
        assert_eq!((status, &report["status"]), (503, &json!("unavailable")), "{report}");
        let stock = service(&report, "stock");
        assert_eq!((&stock["breaker"], &stock["usable"]), (&json!("open"), &json!(false)), "{report}");
        // Liveness does not follow the downstreams: restarting the BFF would not mend `stock`.
        let live = http.get(format!("{url}/health/live")).send().await.unwrap();
        assert_eq!(live.status(), 200);
        assert_eq!(live.json::<Value>().await.unwrap(), json!({"status": "ok"}));
        // One success before, one while promos failed, then the two failures.
        assert_eq!((stock["recentAttempts"].as_u64(), stock["errorRate"].as_f64()), (Some(4), Some(0.5)), "{stock}");

        // It recovers; after `open_for` the breaker lets a probe through (half-open counts as
        // usable, or no traffic would ever close it), and the probe's success closes it.
        stock_fails.store(0, Ordering::SeqCst);
        let half_open = tokio::time::Instant::now();
        loop {
            let (status, report) = health(&http, &url).await;
            if service(&report, "stock")["breaker"] == "half_open" {
                assert_eq!(status, 200, "{report}");
                break;
            }
            assert_eq!(status, 503, "{report}");
            assert!(half_open.elapsed() < Duration::from_secs(5), "the breaker never turned half-open");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(product().await, 200);
        let (status, report) = health(&http, &url).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(service(&report, "stock")["breaker"], "closed", "{report}");
        assert_eq!(report["status"], "degraded", "promos is still open: {report}");
    }
}

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap().lines().map(str::to_owned).collect()
    }
}

// A current-thread runtime: the BFF's tasks run on this thread, under its default subscriber.
#[tokio::test(flavor = "current_thread")]
async fn spans_describe_the_request_and_each_call() {
    use tracing_subscriber::fmt::format::FmtSpan;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_span_events(FmtSpan::CLOSE)
        .with_env_filter("orchestrate_runtime=info")
        .finish();
    let _default = tracing_subscriber::util::SubscriberInitExt::set_default(subscriber);
    // Other tests of this binary hit the same callsites on their threads; one that was being
    // registered while this subscriber was set would keep its "nobody is interested" cache.
    tracing::callsite::rebuild_interest_cache();

    let bff = start(0.0, false).await;
    tracing::callsite::rebuild_interest_cache();
    bff.mocks.get("shipping").set_fault(Fault::Status(503));
    assert_eq!(bff.summary(&[("x-request-id", "req-7"), ("traceparent", CLIENT_TRACEPARENT)]).await.status(), 200);
    bff.mocks.get("cart").set_fault(Fault::Status(503));
    assert_eq!(bff.summary(&[("x-request-id", "req-8")]).await.status(), 502);

    let lines = captured.lines();
    let closed = |request_id: &str, span: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| {
                l.contains(&format!("request_id=\"{request_id}\"")) && l.contains(span) && l.contains(" close ")
            })
            .cloned()
            .collect()
    };
    // One request span, with the route template, the client's trace and how it ended.
    let request = closed("req-7", "router");
    assert_eq!(request.len(), 1, "{lines:#?}");
    for field in [
        "method=\"POST\"",
        "route=\"/checkout/summary\"",
        "endpoint=\"Summary\"",
        "trace_id=0af7651916cd43dd8448eb211c80319c",
        "status=200",
        "partial=true",
    ] {
        assert!(request[0].contains(field), "{field} missing: {}", request[0]);
    }
    // One call span per call, inside it.
    let calls = closed("req-7", "call{");
    assert_eq!(calls.len(), 5, "{calls:#?}");
    let shipping = calls.iter().find(|l| l.contains("service=\"shipping\"")).unwrap();
    for field in [
        "call=\"shipping\"",
        "attempts=1",
        "status=503",
        "outcome=\"failed\"",
        "error=\"status\"",
        "breaker=\"closed\"",
        "duration_ms=",
    ] {
        assert!(shipping.contains(field), "{field} missing: {shipping}");
    }
    // A retried call says why; the request it failed says so too.
    let cart = closed("req-8", "call{");
    assert_eq!(cart.len(), 1, "only cart ran: {cart:#?}");
    for field in ["service=\"cart\"", "attempts=3", "retry_reason=\"status\"", "outcome=\"failed\""] {
        assert!(cart[0].contains(field), "{field} missing: {}", cart[0]);
    }
    assert!(closed("req-8", "router")[0].contains("status=502"));
}

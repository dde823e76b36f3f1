//! The in-process cost of one checkout request: the executor `#[endpoint]` generates for the
//! checkout graph against the same graph written by hand with `tokio::try_join!`.
//!
//! Both variants do the same work through the same downstream [`Transport`]s: build each request
//! (percent-encoded path, JSON body, `accept`/`content-type` headers), send it within its timeout,
//! check the status and decode the JSON answer as the field's type; cart first, then inventory,
//! pricing and shipping (optional: a failure becomes `None`) together, tax the moment pricing is
//! done, under the endpoint's 2 s deadline. The transports answer the contract from memory with no
//! latency (each answer is encoded once, up front), so what is measured is orchestration: the
//! executor, the client and its policies (breaker, bulkhead, retry budget, statistics), the
//! trace context and the forwarded headers (the generated graph runs in the context the router
//! gives a served request) against the hand-written minimum.
//!
//! ```text
//! cargo bench --bench checkout                 # figures (BENCHMARKS.md)
//! cargo bench --bench checkout -- --test       # smoke run: each variant once, results checked
//! CHECKOUT_PROFILE=generated cargo bench --bench checkout   # or `hand`: 1000 runs of one, for a profiler
//! CHECKOUT_RATIO=401 cargo bench --bench checkout           # the variants in alternation: same-run ratio
//! ```
//!
//! Besides criterion's timings it prints the heap allocations (count and bytes) per request of
//! each variant, counted by the global allocator below.
//!
//! A second group measures what serving adds and what keeping the recent requests for
//! `/_orchestrate` costs: the same request through the checkout router (`router::serve`: inputs
//! read, graph run, response and headers built, metrics, the request recorded), in process with
//! `tower::ServiceExt::oneshot`, with recording on and off; and `Recent::record` alone for a
//! checkout request's timeline.

#[path = "../examples/checkout/app.rs"]
mod app;
#[path = "../examples/checkout/contract.rs"]
mod contract;

use app::checkout::{Summary, SummaryInputs};
use app::{Availability, Cart, Items, Pricing, Shipping, SummaryRequest, Tax, TaxInput};
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use orchestrate::recent::{Recent, RecentRequests, Served};
use orchestrate::telemetry::{TraceContext, TraceId};
use orchestrate::{CallError, CallErrorKind, Endpoint, RequestContext, Runtime, Transport};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tower::ServiceExt;

/// The base URL every in-memory service pretends to live at.
const BASE: &str = "http://127.0.0.1:9";

/// A transport for `service` answering the checkout contract from memory, at once.
///
/// The answers to the fixture cart `c1` are encoded once; a request the contract does not know
/// gets a 404, so a wrong path or method shows up as a failed run (checked before measuring).
fn in_memory(service: &'static str) -> Transport {
    let body = serde_json::to_value(app::Items { items: &fixture_cart().items }).unwrap_or_default();
    let (method, path, request_body) = match service {
        "cart" => ("GET", "/carts/c1", serde_json::Value::Null),
        "inventory" => ("POST", "/check-availability", body),
        "pricing" => ("POST", "/calculate", body),
        "shipping" => ("POST", "/estimate", body),
        "tax" => ("POST", "/calculate", serde_json::json!({"subtotal": 14997})),
        // Not called by the summary (payment is the place-order step): everything is a 404.
        _ => {
            return Transport::new(tower::service_fn(|_: http::Request<Bytes>| {
                let mut response = http::Response::new(Bytes::new());
                *response.status_mut() = http::StatusCode::NOT_FOUND;
                std::future::ready(Ok::<_, CallError>(response))
            }));
        }
    };
    let (status, answer) = contract::answer(service, method, path, &request_body);
    assert_eq!(status, 200, "the contract answers {service} {method} {path}");
    let answer = Bytes::from(serde_json::to_vec(&answer).unwrap_or_default());
    Transport::new(tower::service_fn(move |request: http::Request<Bytes>| {
        let known = request.method().as_str() == method && request.uri().path() == path;
        let mut response = http::Response::new(if known { answer.clone() } else { Bytes::new() });
        if !known {
            *response.status_mut() = http::StatusCode::NOT_FOUND;
        }
        std::future::ready(Ok::<_, CallError>(response))
    }))
}

fn fixture_cart() -> Cart {
    serde_json::from_value(contract::cart("c1")).unwrap_or_else(|e| panic!("the fixture cart decodes: {e}"))
}

fn request() -> SummaryRequest {
    SummaryRequest { cart_id: "c1".to_owned(), user_id: "u1".to_owned() }
}

/// What the router hands the graph of a served checkout request: the inbound headers of
/// [`summary_request`] and a new trace (none came in), so that every call looks at what to
/// forward and carries its `traceparent`, as it does when served. Made per run, as the router
/// makes it per request.
fn served_context() -> RequestContext {
    untraced_context().with_trace(TraceContext::new_root())
}

/// The context of a request without a trace: no call carries a `traceparent`.
fn untraced_context() -> RequestContext {
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    RequestContext::from_headers(headers)
}

/// Whether this run measures the lean executor (`CHECKOUT_LEAN=1`): the same graph with the
/// per-call features that can be switched off switched off (see [`lean_services`]).
fn lean() -> bool {
    static LEAN: std::sync::LazyLock<bool> =
        std::sync::LazyLock::new(|| std::env::var("CHECKOUT_LEAN").is_ok_and(|v| v == "1"));
    *LEAN
}

/// The checkout services with none of their policies: no retries, no breaker, a fixed
/// concurrency limit no run reaches (in place of the adaptive one). With [`untraced_context`],
/// and no metrics recorder, what remains per call is what the executor and client always do
/// (request built, bulkhead, retry budget's count, health statistics, timeline): the floor of
/// the generated code.
fn lean_services() -> &'static [orchestrate::ServiceSpec] {
    let lean = app::services::ALL
        .iter()
        .map(|spec| orchestrate::ServiceSpec::new(spec.name, spec.base_url).with_max_in_flight(1 << 20));
    Vec::leak(lean.collect())
}

/// One run of the generated executor, in the context a served request has (or, lean, without
/// a trace).
async fn generated(runtime: &Runtime) -> bool {
    let context = if lean() { untraced_context() } else { served_context() };
    Summary::execute(runtime, SummaryInputs { req: request() }, context).await.is_ok()
}

// ---- the hand-written graph ------------------------------------------------------------------

/// The clients of the hand-written version: one transport per service (all at [`BASE`]).
struct Downstream {
    cart: Transport,
    inventory: Transport,
    pricing: Transport,
    shipping: Transport,
    tax: Transport,
}

/// What the hand-written version assembles: the endpoint's fields, `partialData` and the names of
/// the failed optional services.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct HandSummary {
    cart: Cart,
    #[serde(skip)]
    #[allow(dead_code)] // kept, not shown, like the endpoint's field
    availability: Availability,
    pricing: Pricing,
    shipping: Option<Shipping>,
    tax: Tax,
    total: u64,
    availability_confirmed: bool,
    partial_data: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failed_services: Vec<&'static str>,
}

/// Why the hand-written run failed: the service at fault and the error.
#[derive(Debug)]
struct HandFailure {
    #[allow(dead_code)]
    service: &'static str,
    #[allow(dead_code)]
    error: CallError,
}

/// One call: the request `ServiceClient` would build, sent within `timeout`, answer decoded.
async fn call<T: DeserializeOwned>(
    service: &'static str,
    transport: &Transport,
    method: http::Method,
    path: &str,
    body: Option<&dyn erased::Json>,
    timeout: Duration,
) -> Result<T, HandFailure> {
    let fail = |error| HandFailure { service, error };
    let mut url = String::with_capacity(BASE.len() + path.len());
    url.push_str(BASE);
    url.push_str(path);
    let uri: http::Uri = url.parse().map_err(|e| fail(CallError::with_source(CallErrorKind::InvalidInput, e)))?;
    let body = match body {
        Some(body) => Some(body.to_vec().map_err(|e| fail(CallError::with_source(CallErrorKind::Encode, e)))?),
        None => None,
    };
    let mut builder = http::Request::builder().method(method).uri(uri).header(http::header::ACCEPT, "application/json");
    if body.is_some() {
        builder = builder.header(http::header::CONTENT_TYPE, "application/json");
    }
    let request = builder
        .body(body.map(Bytes::from).unwrap_or_default())
        .map_err(|e| fail(CallError::with_source(CallErrorKind::InvalidInput, e)))?;
    let response = match tokio::time::timeout(timeout, transport.clone().oneshot(request)).await {
        Err(_elapsed) => return Err(fail(CallError::new(CallErrorKind::Timeout))),
        Ok(Err(error)) => return Err(fail(error)),
        Ok(Ok(response)) => response,
    };
    if !response.status().is_success() {
        return Err(fail(CallError::status(response.status(), None)));
    }
    serde_json::from_slice(response.body()).map_err(|e| fail(CallError::with_source(CallErrorKind::Decode, e)))
}

/// JSON bodies behind `dyn`, so `call` is not generic over the body type (as `Outgoing::json`
/// encodes before the request is sent).
mod erased {
    pub(crate) trait Json: Sync {
        fn to_vec(&self) -> serde_json::Result<Vec<u8>>;
    }

    impl<T: serde::Serialize + Sync> Json for T {
        fn to_vec(&self) -> serde_json::Result<Vec<u8>> {
            serde_json::to_vec(self)
        }
    }
}

/// The checkout graph by hand: cart; then inventory, pricing → tax, and optional shipping together.
async fn hand_written(downstream: &Downstream, req: SummaryRequest) -> Result<HandSummary, HandFailure> {
    let graph = async {
        let path = format!("/carts/{}", utf8_percent_encode(&req.cart_id, NON_ALPHANUMERIC));
        let cart: Cart =
            call("cart", &downstream.cart, http::Method::GET, &path, None, Duration::from_millis(200)).await?;
        let items = Items::of(&cart);
        let inventory = call::<Availability>(
            "inventory",
            &downstream.inventory,
            http::Method::POST,
            "/check-availability",
            Some(&items),
            Duration::from_millis(400),
        );
        let pricing_then_tax = async {
            let pricing: Pricing = call(
                "pricing",
                &downstream.pricing,
                http::Method::POST,
                "/calculate",
                Some(&items),
                Duration::from_millis(200),
            )
            .await?;
            let tax: Tax = call(
                "tax",
                &downstream.tax,
                http::Method::POST,
                "/calculate",
                Some(&TaxInput::new(&cart, &pricing)),
                Duration::from_millis(300),
            )
            .await?;
            Ok((pricing, tax))
        };
        let shipping = async {
            Ok(call::<Shipping>(
                "shipping",
                &downstream.shipping,
                http::Method::POST,
                "/estimate",
                Some(&items),
                Duration::from_millis(500),
            )
            .await
            .ok())
        };
        let (availability, (pricing, tax), shipping) = tokio::try_join!(inventory, pricing_then_tax, shipping)?;
        let failed_services = if shipping.is_none() { vec!["shipping"] } else { Vec::new() };
        Ok(HandSummary {
            total: pricing.subtotal + tax.amount,
            availability_confirmed: availability.available,
            partial_data: !failed_services.is_empty(),
            cart,
            availability,
            pricing,
            shipping,
            tax,
            failed_services,
        })
    };
    match tokio::time::timeout(Duration::from_millis(2000), graph).await {
        Ok(result) => result,
        Err(_elapsed) => Err(HandFailure { service: "", error: CallError::new(CallErrorKind::DeadlineExceeded) }),
    }
}

// ---- counting allocator ----------------------------------------------------------------------

/// The system allocator, counting allocations and bytes.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations and bytes per run of `f`, averaged over `runs`.
fn allocations_per_run(tokio: &tokio::runtime::Runtime, runs: u64, mut f: impl AsyncFnMut()) -> (f64, f64) {
    tokio.block_on(f()); // warm up lazily initialised state
    let (count, bytes) = (ALLOCATIONS.load(Ordering::Relaxed), BYTES.load(Ordering::Relaxed));
    tokio.block_on(async {
        for _ in 0..runs {
            f().await;
        }
    });
    let count = ALLOCATIONS.load(Ordering::Relaxed) - count;
    let bytes = BYTES.load(Ordering::Relaxed) - bytes;
    (count as f64 / runs as f64, bytes as f64 / runs as f64)
}

/// Runs `f` `runs` times (the checks before it ran each variant once, so lazily initialised
/// state is warm). With `CHECKOUT_PROFILE` set the bench does only this and exits, so that an
/// instruction profiler counts exactly these runs (`--toggle-collect='checkout::profile_runs*'`,
/// then divide by `runs`, `CHECKOUT_RUNS` or 1000; see BENCHMARKS.md).
#[inline(never)]
fn profile_runs(tokio: &tokio::runtime::Runtime, runs: u64, mut f: impl AsyncFnMut()) {
    tokio.block_on(async {
        for _ in 0..runs {
            f().await;
        }
    });
}

/// The two variants timed in alternation, `rounds` rounds of 200 runs of each (the one that goes
/// first alternating too). On a machine whose speed drifts (a shared virtual machine)
/// back-to-back criterion runs of each variant can differ by more than the gap measured; a
/// round's two halves run within milliseconds of each other. Prints the median of the rounds'
/// ratios with their range, and the ratio of the two variants' fastest-tenth rounds, which a
/// neighbour's load disturbs least (it only ever slows a round down): the same-run figures
/// BENCHMARKS.md reports.
fn interleaved(tokio: &tokio::runtime::Runtime, rounds: usize, runtime: &Runtime, downstream: &Downstream) {
    const RUNS: u32 = 200;
    let time = |generated_variant: bool| {
        let started = std::time::Instant::now();
        tokio.block_on(async {
            for _ in 0..RUNS {
                if generated_variant {
                    black_box(generated(runtime).await);
                } else {
                    black_box(hand_written(downstream, request()).await.is_ok());
                }
            }
        });
        started.elapsed().as_secs_f64() * 1e6 / f64::from(RUNS)
    };
    // The value a fraction `at` of the way up the sorted values.
    let quantile = |values: &[f64], at: f64| {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[((sorted.len() - 1) as f64 * at) as usize]
    };
    let (mut generated_us, mut hand_us, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds.max(1) {
        let (g, h) = if round % 2 == 0 {
            let g = time(true);
            (g, time(false))
        } else {
            let h = time(false);
            (time(true), h)
        };
        generated_us.push(g);
        hand_us.push(h);
        ratios.push(g / h);
    }
    let (gf, hf) = (quantile(&generated_us, 0.1), quantile(&hand_us, 0.1));
    println!("fastest tenth: generated {gf:.2} µs, hand {hf:.2} µs, ratio {:.3}", gf / hf);
    println!(
        "interleaved, {} rounds of {RUNS} runs each: generated executor {:.2} µs, hand-written {:.2} µs (medians); \
         ratio median {:.3} (range {:.3}–{:.3})",
        ratios.len(),
        quantile(&generated_us, 0.5),
        quantile(&hand_us, 0.5),
        quantile(&ratios, 0.5),
        quantile(&ratios, 0.0),
        quantile(&ratios, 1.0),
    );
}

// ---- the benchmark ---------------------------------------------------------------------------

fn checkout(c: &mut Criterion) {
    // One thread, as one request's graph runs on one task; the time driver for the timeouts.
    let tokio = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a tokio runtime");
    let services = if lean() {
        println!(
            "CHECKOUT_LEAN=1: the generated executor with no metrics, trace context, retries, breaker or adaptive limit"
        );
        lean_services()
    } else {
        // The metrics the example serves on `/metrics`, recorded as it records them.
        orchestrate::ops::metrics::install().expect("the Prometheus recorder installs");
        app::services::ALL
    };
    let mut builder = Runtime::builder(services).read_env(false);
    for service in contract::LATENCIES.map(|(service, _)| service) {
        builder = builder.base_url(service, BASE).transport(service, in_memory(service));
    }
    let runtime = builder.build().expect("the checkout runtime");
    let downstream = Downstream {
        cart: in_memory("cart"),
        inventory: in_memory("inventory"),
        pricing: in_memory("pricing"),
        shipping: in_memory("shipping"),
        tax: in_memory("tax"),
    };

    // Both variants answer the contract, identically, before anything is measured.
    let expected = contract::expected_summary();
    let outcome = tokio
        .block_on(Summary::execute(&runtime, SummaryInputs { req: request() }, served_context()))
        .expect("Summary runs");
    assert_eq!(serde_json::to_value(outcome.body()).ok(), Some(expected.clone()), "the generated executor");
    let by_hand = tokio.block_on(hand_written(&downstream, request())).expect("the hand-written graph runs");
    assert_eq!(serde_json::to_value(&by_hand).ok(), Some(expected), "the hand-written graph");

    if let Ok(variant) = std::env::var("CHECKOUT_PROFILE") {
        let runs = std::env::var("CHECKOUT_RUNS").ok().and_then(|n| n.parse().ok()).unwrap_or(1000);
        match variant.as_str() {
            "generated" => profile_runs(&tokio, runs, async || {
                black_box(generated(&runtime).await);
            }),
            "hand" => profile_runs(&tokio, runs, async || {
                black_box(hand_written(&downstream, request()).await.is_ok());
            }),
            other => panic!("CHECKOUT_PROFILE is `generated` or `hand`, not `{other}`"),
        }
        std::process::exit(0);
    }
    if let Some(rounds) = std::env::var("CHECKOUT_RATIO").ok().and_then(|n| n.parse().ok()) {
        interleaved(&tokio, rounds, &runtime, &downstream);
        std::process::exit(0);
    }

    let (generated_allocs, generated_bytes) = allocations_per_run(&tokio, 1000, async || {
        black_box(generated(&runtime).await);
    });
    let (hand_allocs, hand_bytes) = allocations_per_run(&tokio, 1000, async || {
        black_box(hand_written(&downstream, request()).await.is_ok());
    });
    println!(
        "heap per request: generated executor {generated_allocs:.1} allocations / {generated_bytes:.0} B, \
         hand-written {hand_allocs:.1} allocations / {hand_bytes:.0} B"
    );
    // What each variant's future moves (and the cache holds) while a request runs.
    let generated_future = size_of_val(&Summary::execute(&runtime, SummaryInputs { req: request() }, served_context()));
    let hand_future = size_of_val(&hand_written(&downstream, request()));
    println!("future per request: generated executor {generated_future} B, hand-written {hand_future} B");

    let mut group = c.benchmark_group("checkout");
    group.bench_function("generated executor (Summary::execute)", |b| {
        b.to_async(&tokio).iter(|| generated(&runtime));
    });
    group.bench_function("hand-written (tokio::try_join!)", |b| {
        b.to_async(&tokio).iter(|| hand_written(&downstream, request()));
    });
    group.finish();
}

// ---- serving, with the recent requests on and off ---------------------------------------------

/// The checkout runtime over the in-memory transports, recording recent requests or not.
fn runtime_with(recent: RecentRequests) -> Runtime {
    let mut builder = Runtime::builder(app::services::ALL).read_env(false).server_timing(false).recent_requests(recent);
    for service in contract::LATENCIES.map(|(service, _)| service) {
        builder = builder.base_url(service, BASE).transport(service, in_memory(service));
    }
    builder.build().expect("the checkout runtime")
}

/// `POST /checkout/summary` as a client sends it.
fn summary_request() -> http::Request<axum::body::Body> {
    http::Request::post("/checkout/summary")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(r#"{"cartId":"c1","userId":"u1"}"#))
        .unwrap_or_default()
}

async fn serve_once(router: &axum::Router) -> bool {
    router.clone().oneshot(summary_request()).await.is_ok_and(|r| r.status() == http::StatusCode::OK)
}

fn serving(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a tokio runtime");
    let on = runtime_with(RecentRequests::DEFAULT);
    let off = runtime_with(RecentRequests::OFF);
    let (router_on, router_off) = (app::checkout::router(&on), app::checkout::router(&off));
    assert!(tokio.block_on(serve_once(&router_on)) && tokio.block_on(serve_once(&router_off)), "both serve 200");
    assert_eq!(on.recent().recorded(Summary::SPEC), 1, "recording is on");

    let (on_allocs, on_bytes) = allocations_per_run(&tokio, 1000, async || {
        black_box(serve_once(&router_on).await);
    });
    let (off_allocs, off_bytes) = allocations_per_run(&tokio, 1000, async || {
        black_box(serve_once(&router_off).await);
    });
    println!(
        "heap per served request: recent requests on {on_allocs:.1} allocations / {on_bytes:.0} B, \
         off {off_allocs:.1} allocations / {off_bytes:.0} B; store of the endpoint: {} B ({} B per kept request)",
        on.recent().store_bytes(Summary::SPEC),
        orchestrate::recent::Recent::entry_bytes(Summary::SPEC),
    );

    // A checkout request's timeline, as `serve` hands it over.
    let outcome = tokio.block_on(Summary::run(&on, SummaryInputs { req: request() })).expect("Summary runs");
    let timeline = outcome.timeline;
    let recent = Recent::new(RecentRequests::DEFAULT);
    let started = tokio::time::Instant::now();
    let trace = TraceId([7; 16]);
    let id = b"4bf92f35-77b3-4da6-a3ce-929d0e0e4736";

    let mut group = c.benchmark_group("serving");
    group.bench_function("served request, recent requests on", |b| {
        b.to_async(&tokio).iter(|| serve_once(&router_on));
    });
    group.bench_function("served request, recent requests off", |b| {
        b.to_async(&tokio).iter(|| serve_once(&router_off));
    });
    group.bench_function("Recent::record (checkout timeline)", |b| {
        b.iter(|| {
            let served = Served::new(&timeline, 200, id, trace, started, Duration::from_micros(900));
            recent.record(Summary::SPEC, black_box(&served), started);
        });
    });
    group.finish();
}

criterion_group!(benches, checkout, serving);
criterion_main!(benches);

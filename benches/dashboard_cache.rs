//! The dashboard endpoint with its cache warm against cold: what a hit saves.
//!
//! The dashboard example's router served in process (`tower::ServiceExt::oneshot`, as
//! `benches/checkout.rs` does), its seven downstream calls answered by the example's own mock
//! services in memory with no latency: the cold path's cost is the graph's CPU work only, so the
//! ratio is the smallest it can be (with real downstream latencies a miss waits for them too).
//!
//! - **cold**: a new user each request, so every request misses, runs the graph and stores its
//!   answer;
//! - **warm**: the same user each request: a fresh entry, no call;
//! - **warm, shared store**: the same against a real `redis-server` on loopback (started here when
//!   it is installed; the run says so when it is not).
//!
//! ```text
//! cargo bench --bench dashboard_cache                 # figures (BENCHMARKS.md)
//! cargo bench --bench dashboard_cache -- --test       # smoke run
//!
//! The dashboard requires a JWT: every request carries its user's development token (signed once
//! per user), so each figure includes verifying it (Ed25519).
//! ```
//!
//! Besides criterion's timings it prints the p50 and p99 of 5 000 single requests of each
//! variant, one after another.

#[path = "../examples/dashboard/app.rs"]
mod app;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use orchestrate::{CallError, CallErrorKind, Runtime, Transport};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// The example's mock services as one in-memory transport (no socket, no latency).
fn mocks() -> Transport {
    let mocks = app::mock_services(app::CallLog::default(), 0.0);
    Transport::new(tower::service_fn(move |request: http::Request<Bytes>| {
        let mocks = mocks.clone();
        async move {
            let (parts, body) = request.into_parts();
            let response = mocks
                .oneshot(http::Request::from_parts(parts, axum::body::Body::from(body)))
                .await
                .map_err(|e| CallError::with_source(CallErrorKind::Transport, e))?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| CallError::with_source(CallErrorKind::Transport, e))?;
            Ok::<_, CallError>(http::Response::from_parts(parts, body.to_bytes()))
        }
    }))
}

fn router(redis: Option<&str>) -> axum::Router {
    // The development key as a static key: in process, nothing serves the JWK Set.
    let key =
        orchestrate::auth::StaticKey::pem(orchestrate::auth::Algorithm::EdDsa, app::DEV_PUBLIC_KEY).with_kid("dev-1");
    let auth = orchestrate::auth::AuthSettings::default()
        .with_issuer(app::DEV_ISSUER)
        .with_audience(app::AUDIENCE)
        .with_key(key);
    // The cache is measured, not the example's rate limits.
    let no_limits = "[rate_limit]\nper_user = \"off\"\nper_ip = \"off\"\nper_endpoint = \"off\"\nglobal = \"off\"\n";
    let mut builder =
        Runtime::builder(app::services::ALL).read_env(false).server_timing(false).auth(auth).config_str(no_limits);
    for service in app::services::ALL {
        builder = builder.transport(service.name, mocks());
    }
    if let Some(url) = redis {
        builder = builder.redis_url(url);
    }
    let runtime = builder.build().expect("the dashboard runtime");
    app::dashboard::router(&runtime)
}

async fn get(router: &axum::Router, user: impl std::fmt::Display) -> http::StatusCode {
    thread_local! {
        /// One token per user, signed once: the same token each time keeps the warm path warm
        /// (the key includes `authorization`) and keeps signing out of the figures.
        static TOKENS: std::cell::RefCell<std::collections::HashMap<String, String>> = Default::default();
    }
    let user = user.to_string();
    let token = TOKENS.with(|t| t.borrow_mut().entry(user.clone()).or_insert_with(|| app::dev_token(&user)).clone());
    let request = http::Request::get("/dashboard")
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .expect("a request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let _ = response.into_body().collect().await;
    status
}

/// p50 and p99 of `n` requests one after another.
fn percentiles(
    tokio: &tokio::runtime::Runtime,
    n: usize,
    mut next: impl FnMut() -> String,
    router: &axum::Router,
) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let user = next();
            let start = Instant::now();
            let status = tokio.block_on(get(router, user));
            assert_eq!(status, http::StatusCode::OK);
            start.elapsed()
        })
        .collect();
    times.sort_unstable();
    (times[n / 2], times[n * 99 / 100])
}

/// A `redis-server` on a free loopback port for the run, killed when dropped.
struct Redis(Child, u16);

impl Redis {
    fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self(child, port))
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.1)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cache(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    let memory = router(None);
    let counter = AtomicU64::new(0);
    let fresh_user = || format!("u{}", counter.fetch_add(1, Ordering::Relaxed));
    assert_eq!(tokio.block_on(get(&memory, "warm")), http::StatusCode::OK, "the dashboard serves");

    let redis = Redis::start();
    let shared = redis.as_ref().map(|r| router(Some(&r.url())));
    if let Some(shared) = &shared {
        assert_eq!(tokio.block_on(get(shared, "warm")), http::StatusCode::OK);
    } else {
        println!("redis-server is not installed: no shared-store figures");
    }

    let (cold50, cold99) = percentiles(&tokio, 5000, fresh_user, &memory);
    let (warm50, warm99) = percentiles(&tokio, 5000, || "warm".to_owned(), &memory);
    println!("cold (miss, graph, store):   p50 {cold50:?}  p99 {cold99:?}");
    println!("warm (memory hit):           p50 {warm50:?}  p99 {warm99:?}");
    if let Some(shared) = &shared {
        let (s50, s99) = percentiles(&tokio, 5000, || "warm".to_owned(), shared);
        println!("warm (Redis hit, loopback):  p50 {s50:?}  p99 {s99:?}");
    }

    let mut group = c.benchmark_group("dashboard");
    group.bench_function("cold: a new user each request", |b| {
        b.to_async(&tokio).iter(|| get(&memory, fresh_user()));
    });
    group.bench_function("warm: in memory", |b| b.to_async(&tokio).iter(|| get(&memory, "warm")));
    if let Some(shared) = &shared {
        group.bench_function("warm: shared store (Redis on loopback)", |b| {
            b.to_async(&tokio).iter(|| get(shared, "warm"))
        });
    }
    group.finish();
}

criterion_group!(benches, cache);
criterion_main!(benches);

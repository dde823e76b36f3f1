//! The tail latency of a call to a sometimes-slow service, with and without `hedge(..)`, over
//! real HTTP on loopback: a mock service (axum) answers every tenth request after 200 ms and the
//! others after 5 ms; the same GET is called 500 times one after the other through an endpoint
//! without hedging and through one hedged after 20 ms. Prints p50, p99, the maximum, the requests
//! the service received and the hedges sent.
//!
//! `cargo bench --bench hedging` (`cargo test --bench hedging`: the same with 20 calls each)

use orchestrate::{Endpoint, Runtime};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

orchestrate::services! {
    catalog: "http://127.0.0.1:9",
}

#[derive(Debug, serde::Deserialize, serde::Serialize)]
pub struct Price {
    cents: u64,
}

#[orchestrate::endpoint(GET "/price", timeout = "2s")]
#[derive(Debug, serde::Serialize)]
pub struct Unhedged {
    #[call(service = "catalog", timeout = "1s", required, get = "/prices/1")]
    pub price: Price,
}

#[orchestrate::endpoint(GET "/price-hedged", timeout = "2s")]
#[derive(Debug, serde::Serialize)]
pub struct Hedged {
    #[call(service = "catalog", timeout = "1s", required, get = "/prices/1", hedge(after = "20ms"))]
    pub price: Price,
}

/// The mock: every tenth request it receives is slow.
async fn mock(received: Arc<AtomicUsize>) -> String {
    let app = axum::Router::new().route(
        "/prices/1",
        axum::routing::get(move || {
            let received = received.clone();
            async move {
                let n = received.fetch_add(1, Ordering::SeqCst);
                let latency = if n.is_multiple_of(10) { 200 } else { 5 };
                tokio::time::sleep(Duration::from_millis(latency)).await;
                axum::Json(serde_json::json!({ "cents": 250 }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(name: &str, mut latencies: Vec<Duration>, received: usize, hedges: u32) {
    latencies.sort();
    let at = |q: usize| latencies[(latencies.len() * q).div_ceil(100) - 1];
    println!(
        "{name:<10} p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms  requests {received:>4}  hedges {hedges:>3}",
        millis(at(50)),
        millis(at(99)),
        millis(latencies[latencies.len() - 1]),
    );
}

async fn run<E: Endpoint>(name: &str, calls: usize, inputs: impl Fn() -> E::Inputs) {
    let received = Arc::new(AtomicUsize::new(0));
    let url = mock(received.clone()).await;
    let rt = Runtime::builder(services::ALL).read_env(false).base_url("catalog", url).build().unwrap();
    let (mut latencies, mut hedges) = (Vec::with_capacity(calls), 0);
    for _ in 0..calls {
        let started = Instant::now();
        let outcome = E::run(&rt, inputs()).await.expect("the call succeeds");
        latencies.push(started.elapsed());
        hedges += outcome.timeline.calls[0].hedges;
    }
    report(name, latencies, received.load(Ordering::SeqCst), hedges);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: a smoke run of 20 calls.
    let calls = if std::env::args().any(|a| a == "--bench") { 500 } else { 20 };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        run::<Unhedged>("unhedged", calls, || UnhedgedInputs {}).await;
        run::<Hedged>("hedged", calls, || HedgedInputs {}).await;
    });
}

//! Hedged reads (`#[call(.., hedge(after = "50ms"))]`) in virtual time over in-memory services:
//! the tail latency of a call to a sometimes-slow service falls to the hedge delay plus the fast
//! latency, the hedge budget caps the hedges of a service that is slow for everyone, the losing
//! request is cancelled, a failure does not beat a request still running, the hedge goes to
//! another instance, and a budget of 0% sends none (counted in `orchestrate_hedges_total`).

use bytes::Bytes;
use orchestrate::{CallError, Endpoint, Runtime, Transport};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

orchestrate::services! {
    catalog: "http://catalog.internal" { max_in_flight = 4096 },
    replicas: "http://a.internal, http://b.internal",
    quiet: "http://quiet.internal" { hedge_budget = "0%" },
}

#[derive(Debug, serde::Deserialize, serde::Serialize)]
pub struct Price {
    cents: u64,
}

/// Hedged after 50 ms.
#[orchestrate::endpoint(GET "/price", timeout = "2s")]
#[derive(Debug, serde::Serialize)]
pub struct Hedged {
    #[call(service = "catalog", timeout = "1500ms", required, get = "/prices/1", hedge(after = "50ms"))]
    pub price: Price,
}

/// The same call without hedging.
#[orchestrate::endpoint(GET "/price-unhedged", timeout = "2s")]
#[derive(Debug, serde::Serialize)]
pub struct Unhedged {
    #[call(service = "catalog", timeout = "1500ms", required, get = "/prices/1")]
    pub price: Price,
}

/// Hedged over two instances.
#[orchestrate::endpoint(GET "/replicated", timeout = "2s")]
#[derive(Debug, serde::Serialize)]
pub struct Replicated {
    #[call(service = "replicas", timeout = "1500ms", required, get = "/prices/1", hedge(after = "50ms"))]
    pub price: Price,
}

/// Hedged, on a service whose hedge budget is 0%.
#[orchestrate::endpoint(GET "/quiet", timeout = "2s")]
#[derive(Debug, serde::Serialize)]
pub struct Quiet {
    #[call(service = "quiet", timeout = "1500ms", required, get = "/prices/1", hedge(after = "50ms"))]
    pub price: Price,
}

/// How the in-memory service answers its `n`-th request (from 0): latency and status.
type Behaviour = Arc<dyn Fn(usize) -> (Duration, u16) + Send + Sync>;

/// An in-memory service that counts the requests it got, those still in flight and those that
/// ran to their end, and remembers each request's host.
#[derive(Clone)]
struct Mock {
    behaviour: Behaviour,
    received: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
    hosts: Arc<Mutex<Vec<String>>>,
}

/// Decrements the in-flight count when the request's future ends or is dropped.
struct Flight(Arc<AtomicUsize>);

impl Drop for Flight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Mock {
    fn new(behaviour: impl Fn(usize) -> (Duration, u16) + Send + Sync + 'static) -> Self {
        Self {
            behaviour: Arc::new(behaviour),
            received: Arc::default(),
            in_flight: Arc::default(),
            finished: Arc::default(),
            hosts: Arc::default(),
        }
    }

    fn transport(&self) -> Transport {
        let this = self.clone();
        Transport::new(tower::service_fn(move |request: http::Request<Bytes>| {
            let this = this.clone();
            async move {
                let n = this.received.fetch_add(1, Ordering::SeqCst);
                this.hosts.lock().unwrap().push(request.uri().host().unwrap_or("").to_owned());
                this.in_flight.fetch_add(1, Ordering::SeqCst);
                let _flight = Flight(this.in_flight.clone());
                let (latency, status) = (this.behaviour)(n);
                tokio::time::sleep(latency).await;
                this.finished.fetch_add(1, Ordering::SeqCst);
                let mut response = http::Response::new(Bytes::from_static(br#"{"cents":250}"#));
                *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                Ok::<_, CallError>(response)
            }
        }))
    }

    fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }
}

fn runtime(service: &str, mock: &Mock) -> Runtime {
    Runtime::builder(services::ALL).read_env(false).transport(service, mock.transport()).build().unwrap()
}

/// The 99th percentile of `latencies` (nearest rank).
fn p99(mut latencies: Vec<Duration>) -> Duration {
    latencies.sort();
    let rank = (latencies.len() * 99).div_ceil(100);
    latencies[rank - 1]
}

#[tokio::test(start_paused = true)]
async fn one_slow_request_in_ten_no_longer_sets_the_p99_once_hedged() {
    // Every tenth request the service gets takes a second, the rest 10 ms.
    let slow_one_in_ten = |n: usize| if n.is_multiple_of(10) { (ms(1000), 200) } else { (ms(10), 200) };
    let mock = Mock::new(slow_one_in_ten);
    let rt = runtime("catalog", &mock);
    let mut plain = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        Unhedged::run(&rt, UnhedgedInputs {}).await.unwrap();
        plain.push(started.elapsed());
    }
    assert_eq!(p99(plain), ms(1000), "without hedging the slow tenth is the tail");

    let mock = Mock::new(slow_one_in_ten);
    let rt = runtime("catalog", &mock);
    let (mut hedged, mut hedges) = (Vec::new(), 0);
    for _ in 0..200 {
        let started = Instant::now();
        let outcome = Hedged::run(&rt, HedgedInputs {}).await.unwrap();
        hedged.push(started.elapsed());
        hedges += outcome.timeline.calls[0].hedges;
    }
    // A slow first request is hedged at 50 ms; the hedge answers 10 ms later.
    assert_eq!(p99(hedged.clone()), ms(60));
    assert_eq!(hedged.iter().max(), Some(&ms(60)));
    assert!(hedged.iter().all(|&d| d == ms(10) || d == ms(60)), "{hedged:?}");
    // Only the slow ones were hedged, once each: about a tenth of the 200 calls plus their
    // hedges (which take their turn in the service's one-in-ten).
    assert_eq!(hedges as usize, hedged.iter().filter(|&&d| d == ms(60)).count());
    assert!((20..=25).contains(&hedges), "{hedges} hedges");
    assert_eq!(mock.received(), 200 + hedges as usize);
}

#[tokio::test(start_paused = true)]
async fn the_hedge_budget_holds_when_the_service_is_slow_for_everyone() {
    // Every request takes a second (the hedges too): each call would want a hedge.
    let mock = Mock::new(|_| (ms(1000), 200));
    let rt = Arc::new(runtime("catalog", &mock));
    // 1000 calls over 5 s (20 every 100 ms), all inside one budget window.
    let mut calls = Vec::new();
    for _ in 0..50 {
        for _ in 0..20 {
            let rt = rt.clone();
            calls.push(tokio::spawn(async move { Hedged::run(&rt, HedgedInputs {}).await.unwrap() }));
        }
        tokio::time::sleep(ms(100)).await;
    }
    let mut hedges = Vec::new();
    for call in calls {
        hedges.push(call.await.unwrap().timeline.calls[0].hedges);
    }
    let sent: u32 = hedges.iter().sum();
    // 10% of the 1000 hedged attempts, plus the floor of 10 per window.
    assert!(sent <= 1000 / 10 + 10, "{sent} hedges");
    assert!(sent >= 100, "the budget is used, not starved: {sent} hedges");
    assert_eq!(mock.received(), 1000 + sent as usize, "a hedge not in the budget is not sent");
    assert!(hedges.iter().filter(|&&h| h == 0).count() >= 890);
}

#[tokio::test(start_paused = true)]
async fn the_losing_request_is_cancelled_and_the_call_shows_it_was_hedged() {
    // The first request would take a second; the hedge answers after 10 ms.
    let mock = Mock::new(|n| if n == 0 { (ms(1000), 200) } else { (ms(10), 200) });
    let rt = runtime("catalog", &mock);
    let started = Instant::now();
    let outcome = Hedged::run(&rt, HedgedInputs {}).await.unwrap();
    assert_eq!(started.elapsed(), ms(60));
    assert_eq!(outcome.value.price.cents, 250);
    // Both requests were received; only the hedge ran to its end, and nothing is in flight.
    assert_eq!(mock.received(), 2);
    assert_eq!(mock.finished.load(Ordering::SeqCst), 1);
    assert_eq!(mock.in_flight.load(Ordering::SeqCst), 0, "the slow request was dropped");
    let record = &outcome.timeline.calls[0];
    assert_eq!((record.attempts, record.hedges), (1, 1));
    let timing = orchestrate_runtime::telemetry::server_timing(&outcome.timeline);
    assert!(timing.to_str().unwrap().starts_with("price;dur=60.0;desc=\"catalog +0.0ms hedged\""), "{timing:?}");
    // A fast call sends no hedge.
    let outcome = Hedged::run(&rt, HedgedInputs {}).await.unwrap();
    assert_eq!((outcome.timeline.calls[0].hedges, mock.received()), (0, 3));
}

#[tokio::test(start_paused = true)]
async fn a_failure_does_not_win_over_a_request_still_running() {
    // The first request fails at 70 ms, after the hedge went out at 50 ms; the hedge answers at 80.
    let mock = Mock::new(|n| if n == 0 { (ms(70), 503) } else { (ms(30), 200) });
    let rt = runtime("catalog", &mock);
    let started = Instant::now();
    let outcome = Hedged::run(&rt, HedgedInputs {}).await.unwrap();
    assert_eq!(started.elapsed(), ms(80));
    assert_eq!(outcome.timeline.calls[0].status, Some(200));

    // When every request fails, the call fails with the last failure, at its time.
    let mock = Mock::new(|n| if n == 0 { (ms(70), 503) } else { (ms(30), 502) });
    let rt = runtime("catalog", &mock);
    let started = Instant::now();
    let failure = Hedged::run(&rt, HedgedInputs {}).await.unwrap_err();
    assert_eq!(started.elapsed(), ms(80));
    assert_eq!(failure.failed_services(), ["catalog"]);
    assert_eq!(mock.received(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_hedge_goes_to_another_instance_and_ends_with_the_first_requests_timeout() {
    let mock = Mock::new(|n| if n == 0 { (ms(1000), 200) } else { (ms(10), 200) });
    let rt = runtime("replicas", &mock);
    let outcome = Replicated::run(&rt, ReplicatedInputs {}).await.unwrap();
    let hosts = mock.hosts.lock().unwrap().clone();
    assert_eq!(hosts.len(), 2);
    assert_ne!(hosts[0], hosts[1], "the hedge avoids the instance of the first request");
    let answered = outcome.timeline.calls[0].instance.unwrap();
    assert_eq!(["a.internal", "b.internal"][usize::from(answered)], hosts[1], "the hedge's instance answered");

    // Both requests hang: the call ends at the first one's timeout (1.5 s), not 50 ms later.
    let mock = Mock::new(|_| (ms(10_000), 200));
    let rt = runtime("catalog", &mock);
    let started = Instant::now();
    let failure = Hedged::run(&rt, HedgedInputs {}).await.unwrap_err();
    assert_eq!(started.elapsed(), ms(1500));
    assert_eq!(failure.status(), http::StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(mock.received(), 2);
}

/// The value of `orchestrate_hedges_total{service, outcome}` in `text` (0 when absent).
fn hedges_total(text: &str, service: &str, outcome: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with("orchestrate_hedges_total{"))
        .filter(|line| {
            line.contains(&format!("service=\"{service}\"")) && line.contains(&format!("outcome=\"{outcome}\""))
        })
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test(start_paused = true)]
async fn a_service_with_a_budget_of_zero_is_never_hedged_and_the_refusals_are_counted() {
    // Only this test calls `quiet`, so its counters move by what it does alone.
    let metrics = orchestrate_runtime::ops::metrics::install().unwrap();
    let mock = Mock::new(|_| (ms(100), 200));
    let rt = runtime("quiet", &mock);
    for _ in 0..3 {
        let started = Instant::now();
        let outcome = Quiet::run(&rt, QuietInputs {}).await.unwrap();
        assert_eq!((started.elapsed(), outcome.timeline.calls[0].hedges), (ms(100), 0));
    }
    assert_eq!(mock.received(), 3);
    let text = metrics.render();
    assert_eq!(hedges_total(&text, "quiet", "budget_exhausted"), 3.0, "{text}");
    assert_eq!(hedges_total(&text, "quiet", "sent") + hedges_total(&text, "quiet", "won"), 0.0);
}

//! The per-service policies in virtual time, as a caller sees them: circuit breaker, retries with
//! backoff inside the deadline, the retry budget, the bulkhead, idempotency keys, and start-up
//! configuration errors. Every downstream is an in-memory service that counts its requests.

#[path = "../examples/checkout/app.rs"]
mod app;

use bytes::Bytes;
use orchestrate::client::Sent;
use orchestrate::prelude::*;
use orchestrate::{
    BreakerPolicy, BreakerState, CallErrorKind, CallPolicy, Outgoing, RequestContext, RetryBudget, RetryOn,
    RetryPolicy, ServiceClient, ServiceSpec, Transport,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What the in-memory service does with its `n`-th request (from 0).
#[derive(Clone, Copy, Debug)]
enum Reply {
    /// 200 `{"id":"ch_1"}`.
    Ok,
    /// This status, with this `Retry-After` if any.
    Status(u16, Option<&'static str>),
    /// Never answers.
    Hang,
}

/// One request the service received.
#[derive(Clone, Debug)]
struct Seen {
    start: Duration,
    method: http::Method,
    idempotency_key: Option<String>,
}

/// A downstream service answering after `latency` as `script` says, logging every request.
#[derive(Clone)]
struct Downstream {
    start: Instant,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Downstream {
    fn new(latency: Duration, script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> (Self, Transport) {
        let this = Self { start: Instant::now(), seen: Arc::default() };
        let script = Arc::new(script);
        let log = this.clone();
        let transport = Transport::new(tower::service_fn(move |request: http::Request<Bytes>| {
            let (log, script) = (log.clone(), script.clone());
            async move {
                let n = {
                    let mut seen = log.seen.lock().unwrap();
                    seen.push(Seen {
                        start: log.start.elapsed(),
                        method: request.method().clone(),
                        idempotency_key: request
                            .headers()
                            .get("idempotency-key")
                            .map(|v| v.to_str().unwrap().to_owned()),
                    });
                    seen.len() - 1
                };
                let reply = script(n);
                if let Reply::Hang = reply {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(latency).await;
                let mut response = http::Response::new(Bytes::from_static(br#"{"id":"ch_1"}"#));
                if let Reply::Status(status, retry_after) = reply {
                    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                    if let Some(value) = retry_after {
                        response.headers_mut().insert("retry-after", http::HeaderValue::from_static(value));
                    }
                }
                Ok::<_, CallError>(response)
            }
        }));
        (this, transport)
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn starts(&self) -> Vec<Duration> {
        self.seen.lock().unwrap().iter().map(|s| s.start).collect()
    }
}

const BREAKER: BreakerPolicy = BreakerPolicy::new(5, Duration::from_secs(60), Duration::from_secs(30), 3);

fn get() -> Outgoing {
    Outgoing::new(http::Method::GET, "/carts/c1".into())
}

fn policy(timeout: Duration, retry: RetryPolicy) -> CallPolicy {
    CallPolicy { timeout, retry, retryable: true }
}

async fn send(client: &ServiceClient, policy: &CallPolicy, deadline: Duration) -> Sent {
    client.send(policy, &RequestContext::default(), Instant::now() + deadline, get()).await
}

fn kind(sent: &Sent) -> Option<CallErrorKind> {
    sent.result.as_ref().err().map(CallError::kind)
}

// ---------------------------------------------------------------------------------------------
// Circuit breaker

/// A cart service with the design's breaker that fails (or answers) as told by `failing`.
fn breaker_cart(failing: Arc<Mutex<bool>>) -> (Downstream, ServiceClient) {
    let (down, transport) =
        Downstream::new(ms(10), move |_| if *failing.lock().unwrap() { Reply::Status(500, None) } else { Reply::Ok });
    let spec = ServiceSpec::new("cart", "http://cart.test").with_breaker(BREAKER);
    (down, ServiceClient::new(spec, "http://cart.test", transport))
}

async fn open_the_breaker(client: &ServiceClient) {
    let once = policy(ms(200), RetryPolicy::NONE);
    for _ in 0..5 {
        send(client, &once, ms(1000)).await;
        tokio::time::advance(Duration::from_secs(10)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_fifth_failure_within_60s_opens_the_breaker_and_the_sixth_call_makes_no_request() {
    let failing = Arc::new(Mutex::new(true));
    let (down, client) = breaker_cart(failing);
    let once = policy(ms(200), RetryPolicy::NONE);
    for n in 1..=4 {
        let sent = send(&client, &once, ms(1000)).await;
        assert_eq!((kind(&sent), sent.attempts), (Some(CallErrorKind::Status), 1));
        assert_eq!(client.breaker_state(), BreakerState::Closed, "after failure {n}");
        tokio::time::advance(Duration::from_secs(10)).await;
    }
    // t = 40 s: the fifth failure within 60 s.
    send(&client, &once, ms(1000)).await;
    assert_eq!(client.breaker_state(), BreakerState::Open);
    assert_eq!(down.requests(), 5);

    let started = Instant::now();
    let sent = send(&client, &once, ms(1000)).await;
    assert_eq!(kind(&sent), Some(CallErrorKind::BreakerOpen));
    assert_eq!(sent.attempts, 0);
    assert_eq!(started.elapsed(), Duration::ZERO, "an open breaker fails at once");
    assert_eq!(down.requests(), 5, "the sixth call made no request");
    let health = client.health();
    assert_eq!((health.breaker, health.recent_attempts, health.recent_failures), (BreakerState::Open, 5, 5));
}

#[tokio::test(start_paused = true)]
async fn failures_spread_over_more_than_the_window_do_not_open_it() {
    let (down, client) = breaker_cart(Arc::new(Mutex::new(true)));
    let once = policy(ms(200), RetryPolicy::NONE);
    for _ in 0..8 {
        send(&client, &once, ms(1000)).await;
        // Five failures span 4 × 15 s = 60 s: the oldest is always out of the window.
        tokio::time::advance(Duration::from_secs(15)).await;
    }
    assert_eq!(client.breaker_state(), BreakerState::Closed);
    assert_eq!(down.requests(), 8);
}

#[tokio::test(start_paused = true)]
async fn after_30s_exactly_3_probes_pass_and_their_success_closes_the_breaker() {
    let failing = Arc::new(Mutex::new(true));
    let (down, client) = breaker_cart(failing.clone());
    open_the_breaker(&client).await;
    // Opened at 40 s; the loop left the clock at 50 s. Just before 30 s have passed it is open.
    tokio::time::advance(Duration::from_millis(19_990)).await;
    assert_eq!(client.breaker_state(), BreakerState::Open);
    let once = policy(ms(200), RetryPolicy::NONE);
    assert_eq!(kind(&send(&client, &once, ms(1000)).await), Some(CallErrorKind::BreakerOpen));
    tokio::time::advance(ms(10)).await;
    assert_eq!(client.breaker_state(), BreakerState::HalfOpen);

    *failing.lock().unwrap() = false;
    let before = down.requests();
    let timed = |client: ServiceClient, once: CallPolicy| async move {
        let sent = send(&client, &once, ms(1000)).await;
        (sent, Instant::now())
    };
    let start = Instant::now();
    let (a, b, c, d) = tokio::join!(
        timed(client.clone(), once),
        timed(client.clone(), once),
        timed(client.clone(), once),
        timed(client.clone(), once),
    );
    let results = [&a, &b, &c, &d];
    let passed = results.iter().filter(|(s, _)| s.result.is_ok()).count();
    assert_eq!(passed, 3, "exactly three probes pass");
    let refused: Vec<_> = results.iter().filter(|(s, _)| kind(s) == Some(CallErrorKind::BreakerOpen)).collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].1, start, "the fourth call fails fast, without waiting for the probes");
    assert_eq!(down.requests() - before, 3);
    assert_eq!(client.breaker_state(), BreakerState::Closed, "three successful probes close it");

    let sent = send(&client, &once, ms(1000)).await;
    assert!(sent.result.is_ok());
    assert!(client.health().last_success.is_some());
}

#[tokio::test(start_paused = true)]
async fn a_probe_failure_opens_the_breaker_again_for_another_30s() {
    let (down, client) = breaker_cart(Arc::new(Mutex::new(true)));
    open_the_breaker(&client).await;
    tokio::time::advance(Duration::from_secs(20)).await; // 30 s after opening
    let once = policy(ms(200), RetryPolicy::NONE);
    let before = down.requests();
    let sent = send(&client, &once, ms(1000)).await;
    assert_eq!((kind(&sent), sent.attempts), (Some(CallErrorKind::Status), 1), "the probe went through");
    assert_eq!(client.breaker_state(), BreakerState::Open);
    assert_eq!(kind(&send(&client, &once, ms(1000)).await), Some(CallErrorKind::BreakerOpen));
    assert_eq!(down.requests(), before + 1);
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(client.breaker_state(), BreakerState::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn four_xx_answers_never_open_the_breaker() {
    let (_down, transport) = Downstream::new(ms(10), |_| Reply::Status(404, None));
    let client = ServiceClient::new(
        ServiceSpec::new("cart", "http://cart.test").with_breaker(BREAKER),
        "http://cart.test",
        transport,
    );
    for _ in 0..20 {
        send(&client, &policy(ms(200), RetryPolicy::NONE), ms(1000)).await;
    }
    assert_eq!(client.breaker_state(), BreakerState::Closed);
}

// ---------------------------------------------------------------------------------------------
// Retries

#[tokio::test(start_paused = true)]
async fn retries_wait_a_jittered_backoff_that_doubles_per_attempt() {
    let (down, transport) = Downstream::new(ms(20), |_| Reply::Status(503, None));
    // A budget that never runs out here: 20 calls, 40 retries.
    let budget = RetryBudget::new(100, Duration::from_secs(10), 100);
    let spec = ServiceSpec::new("cart", "http://cart.test").with_retry_budget(budget);
    let client = ServiceClient::new(spec, "http://cart.test", transport);
    let retry = RetryPolicy::new(3, ms(100)).with_max_backoff(ms(150));
    let mut waits = Vec::new();
    for _ in 0..20 {
        let first = down.requests();
        let sent = send(&client, &policy(ms(200), retry), Duration::from_secs(5)).await;
        assert_eq!((kind(&sent), sent.attempts, sent.status), (Some(CallErrorKind::Status), 3, Some(503)));
        let starts = &down.starts()[first..];
        assert_eq!(starts.len(), 3);
        // Each attempt takes 20 ms; the wait before attempt 2 is in [0, 100 ms], before attempt 3
        // in [0, min(200 ms, max_backoff 150 ms)].
        let wait2 = starts[1] - starts[0] - ms(20);
        let wait3 = starts[2] - starts[1] - ms(20);
        assert!(wait2 <= ms(100), "{wait2:?}");
        assert!(wait3 <= ms(150), "{wait3:?}");
        waits.push((wait2, wait3));
    }
    // Full jitter: the waits are spread over the range, not fixed.
    let distinct: std::collections::HashSet<_> = waits.iter().map(|w| w.0).collect();
    assert!(distinct.len() > 10, "{waits:?}");
    assert!(waits.iter().any(|w| w.1 > ms(100)), "the second wait may exceed the first cap: {waits:?}");
}

#[tokio::test(start_paused = true)]
async fn retries_and_backoff_never_outlive_the_deadline() {
    for _ in 0..20 {
        let (down, transport) = Downstream::new(ms(20), |_| Reply::Hang);
        let client = ServiceClient::new(ServiceSpec::new("cart", "http://cart.test"), "http://cart.test", transport);
        let started = Instant::now();
        // Attempts time out after 100 ms; waits up to 100/200/400 ms; 250 ms in all.
        let sent = send(&client, &policy(ms(100), RetryPolicy::new(5, ms(100))), ms(250)).await;
        let took = started.elapsed();
        assert!(took <= ms(250), "{took:?}");
        assert!(matches!(kind(&sent), Some(CallErrorKind::Timeout | CallErrorKind::DeadlineExceeded)));
        assert_eq!(sent.attempts as usize, down.requests());
        assert!((2..=3).contains(&sent.attempts), "{}", sent.attempts);
        assert!(down.starts().iter().all(|s| *s < ms(250)));
        if kind(&sent) == Some(CallErrorKind::DeadlineExceeded) {
            assert_eq!(took, ms(250), "the last attempt was cut by the deadline");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_backoff_that_would_pass_the_deadline_is_not_taken() {
    // Retry-After asks for 1 s; with 500 ms left the call ends with the 429 at once.
    let (down, transport) = Downstream::new(ms(10), |_| Reply::Status(429, Some("1")));
    let client = ServiceClient::new(ServiceSpec::new("cart", "http://cart.test"), "http://cart.test", transport);
    let on_429 = RetryOn::DEFAULT.with_too_many_requests(true);
    let retry = RetryPolicy::new(3, ms(100)).with_retry_on(on_429);
    let started = Instant::now();
    let sent = send(&client, &policy(ms(200), retry), ms(500)).await;
    assert_eq!((sent.status, sent.attempts, started.elapsed()), (Some(429), 1, ms(10)));
    let error = sent.result.unwrap_err();
    assert_eq!(error.retry_after().unwrap(), "1", "the caller can pass the Retry-After on");
    assert_eq!(down.requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_429_is_retried_after_its_retry_after_only_when_configured() {
    let (down, transport) = Downstream::new(ms(10), |n| if n == 0 { Reply::Status(429, Some("1")) } else { Reply::Ok });
    let client = ServiceClient::new(ServiceSpec::new("cart", "http://cart.test"), "http://cart.test", transport);
    // Default retry conditions: a 429 is the caller's answer.
    let sent = send(&client, &policy(ms(200), RetryPolicy::new(3, ms(100))), Duration::from_secs(5)).await;
    assert_eq!((sent.status, sent.attempts), (Some(429), 1));

    let (down2, transport) =
        Downstream::new(ms(10), |n| if n == 0 { Reply::Status(429, Some("1")) } else { Reply::Ok });
    let client = ServiceClient::new(ServiceSpec::new("cart", "http://cart.test"), "http://cart.test", transport);
    let retry = RetryPolicy::new(3, ms(100)).with_retry_on(RetryOn::DEFAULT.with_too_many_requests(true));
    let sent = send(&client, &policy(ms(200), retry), Duration::from_secs(5)).await;
    assert_eq!((sent.status, sent.attempts), (Some(200), 2));
    let starts = down2.starts();
    // At least the 1 s asked for after the 429 ended at 10 ms, at most the jitter cap on top.
    assert!(starts[1] >= ms(1010) && starts[1] <= ms(1110), "{starts:?}");
    assert_eq!(down.requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_call_that_is_not_retryable_is_sent_once_whatever_its_policy() {
    let (down, transport) = Downstream::new(ms(10), |_| Reply::Status(503, None));
    let client = ServiceClient::new(ServiceSpec::new("cart", "http://cart.test"), "http://cart.test", transport);
    let post = CallPolicy { timeout: ms(200), retry: RetryPolicy::new(3, ms(100)), retryable: false };
    let sent = client
        .send(
            &post,
            &RequestContext::default(),
            Instant::now() + Duration::from_secs(5),
            Outgoing::new(http::Method::POST, "/orders".into()),
        )
        .await;
    assert_eq!((sent.status, sent.attempts, down.requests()), (Some(503), 1, 1));
}

// ---------------------------------------------------------------------------------------------
// Retry budget

#[tokio::test(start_paused = true)]
async fn the_retry_budget_stops_retries_once_spent_and_refills_with_the_window() {
    let (down, transport) = Downstream::new(ms(10), |_| Reply::Status(503, None));
    let spec = ServiceSpec::new("cart", "http://cart.test").with_retry_budget(RetryBudget::new(
        50,
        Duration::from_secs(10),
        0,
    ));
    let client = ServiceClient::new(spec, "http://cart.test", transport);
    let retrying = policy(ms(200), RetryPolicy::new(3, ms(1)));
    let mut attempts = Vec::new();
    for _ in 0..6 {
        attempts.push(send(&client, &retrying, Duration::from_secs(1)).await.attempts);
    }
    // Retries may be at most half the calls: 6 calls, 3 retries, instead of 6 × 3 = 18 requests.
    assert_eq!(attempts, [2, 1, 2, 1, 2, 1]);
    assert_eq!(down.requests(), 9);

    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(send(&client, &retrying, Duration::from_secs(1)).await.attempts, 2, "a new window, a new budget");
}

#[tokio::test(start_paused = true)]
async fn a_call_its_retry_rescued_is_a_success_for_the_breaker() {
    // Opens at the first failed call; every first attempt fails, every retry succeeds.
    let breaker = BreakerPolicy::new(1, Duration::from_secs(60), Duration::from_secs(30), 1);
    let (down, transport) = Downstream::new(ms(10), |n| if n % 2 == 0 { Reply::Status(503, None) } else { Reply::Ok });
    let client = ServiceClient::new(
        ServiceSpec::new("cart", "http://cart.test").with_breaker(breaker),
        "http://cart.test",
        transport,
    );
    let retrying = policy(ms(200), RetryPolicy::new(2, ms(1)));
    for _ in 0..10 {
        let sent = send(&client, &retrying, ms(1000)).await;
        assert_eq!((sent.attempts, sent.status), (2, Some(200)));
    }
    assert_eq!(client.breaker_state(), BreakerState::Closed, "ten rescued calls are ten successes");
    assert_eq!(down.requests(), 20);
    // A call that fails even after its retry is one failed call: the breaker opens.
    let once = policy(ms(200), RetryPolicy::NONE);
    assert_eq!(kind(&send(&client, &once, ms(1000)).await), Some(CallErrorKind::Status));
    assert_eq!(client.breaker_state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn a_rate_breaker_opens_on_a_service_that_is_really_down() {
    let breaker = BreakerPolicy::rate(50, 20, Duration::from_secs(10), Duration::from_secs(30), 3);
    let (down, transport) = Downstream::new(ms(10), |_| Reply::Status(500, None));
    let client = ServiceClient::new(
        ServiceSpec::new("cart", "http://cart.test").with_breaker(breaker),
        "http://cart.test",
        transport,
    );
    let retrying = policy(ms(200), RetryPolicy::new(3, ms(1)));
    for n in 1..=20 {
        send(&client, &retrying, ms(1000)).await;
        let expected = if n < 20 { BreakerState::Closed } else { BreakerState::Open };
        assert_eq!(client.breaker_state(), expected, "after call {n}");
    }
    let requests = down.requests();
    assert_eq!(kind(&send(&client, &retrying, ms(1000)).await), Some(CallErrorKind::BreakerOpen));
    assert_eq!(down.requests(), requests, "an open breaker sends nothing");
}

// ---------------------------------------------------------------------------------------------
// Bulkhead

#[tokio::test(start_paused = true)]
async fn the_bulkhead_fails_the_excess_at_once() {
    let (down, transport) = Downstream::new(ms(100), |_| Reply::Ok);
    let client = ServiceClient::new(
        ServiceSpec::new("cart", "http://cart.test").with_max_in_flight(2),
        "http://cart.test",
        transport,
    );
    let once = policy(ms(200), RetryPolicy::NONE);
    let start = Instant::now();
    let timed = |client: ServiceClient| async move {
        let sent = send(&client, &once, ms(1000)).await;
        (sent, start.elapsed())
    };
    let (a, b, c) = tokio::join!(timed(client.clone()), timed(client.clone()), timed(client.clone()));
    assert!(a.0.result.is_ok() && b.0.result.is_ok());
    assert_eq!((kind(&c.0), c.0.attempts, c.1), (Some(CallErrorKind::BulkheadFull), 0, Duration::ZERO));
    assert_eq!((a.1, b.1), (ms(100), ms(100)));
    assert_eq!(down.requests(), 2);
    assert_eq!(client.in_flight(), 0);
    assert!(send(&client, &once, ms(1000)).await.result.is_ok(), "places are returned");
}

#[tokio::test(start_paused = true)]
async fn a_call_keeps_its_bulkhead_place_through_its_retries() {
    let (down, transport) = Downstream::new(ms(10), |n| if n == 0 { Reply::Status(503, None) } else { Reply::Ok });
    let client = ServiceClient::new(
        ServiceSpec::new("cart", "http://cart.test").with_max_in_flight(1),
        "http://cart.test",
        transport,
    );
    let retrying = policy(ms(200), RetryPolicy::new(2, ms(100)));
    let first = send(&client, &retrying, ms(1000));
    let second = async {
        // While the first call waits to retry.
        tokio::time::sleep(ms(10)).await;
        (send(&client, &retrying, ms(1000)).await, client.in_flight())
    };
    let (first, (second, in_flight)) = tokio::join!(first, second);
    assert_eq!((first.attempts, first.status), (2, Some(200)));
    assert_eq!(kind(&second), Some(CallErrorKind::BulkheadFull));
    assert_eq!(in_flight, 1);
    assert_eq!(down.requests(), 2);
}

mod shedding {
    //! A call the bulkhead refuses is shed: 503 `OVERLOADED` with `Retry-After`, its service not
    //! named as failed, its breaker not told.

    // Not `use super::*`: this module declares its own `services`.
    use super::{Downstream, Reply, ms};
    use orchestrate::prelude::*;
    use orchestrate::{BreakerState, CallErrorKind};

    orchestrate::services! {
        stock: "http://stock.test" { max_in_flight = 1, breaker(failures = 1, within = "60s", open_for = "30s", probes = 1) },
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub struct Stock {
        id: String,
    }

    #[endpoint(GET "/stock", timeout = "2s")]
    #[derive(Debug, Serialize)]
    pub struct Show {
        #[call(service = "stock", timeout = "500ms", required, get = "/stock")]
        stock: Stock,
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_bulkhead_sheds_the_call_without_blaming_its_service() {
        let (down, transport) = Downstream::new(ms(100), |_| Reply::Ok);
        let runtime = Runtime::builder(services::ALL).read_env(false).transport("stock", transport).build().unwrap();
        let (first, second) = tokio::join!(Show::run(&runtime, ShowInputs {}), async {
            tokio::time::sleep(ms(10)).await;
            Show::run(&runtime, ShowInputs {}).await
        });
        assert!(first.is_ok(), "the first call had the place");
        let failure = second.unwrap_err();
        assert_eq!((failure.status(), failure.code()), (http::StatusCode::SERVICE_UNAVAILABLE, "OVERLOADED"));
        assert!(failure.failed_services().is_empty(), "{:?}", failure.failed_services());
        assert_eq!(failure.failed_call().map(|c| c.kind), Some(CallErrorKind::BulkheadFull));
        assert_eq!(failure.timeline().get("stock").unwrap().outcome_label(), "shed");
        let response = axum::response::IntoResponse::into_response(failure);
        assert_eq!(response.headers()["retry-after"], "1");
        let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "OVERLOADED");
        assert_eq!(body["error"]["failedServices"], serde_json::json!([]));
        assert_eq!(down.requests(), 1, "no request for the shed call");
        let stock = runtime.service("stock").unwrap();
        assert_eq!(stock.breaker_state(), BreakerState::Closed, "shedding is not a failure of the service");
    }
}

// ---------------------------------------------------------------------------------------------
// Idempotency keys, through generated endpoints

orchestrate::services! {
    payments: "http://payments.test" { retry(attempts = 3, backoff = "50ms") },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayRequest {
    order_id: String,
    amount: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Charge {
    id: String,
}

/// A POST with an idempotency key: retried under the service's policy.
#[endpoint(POST "/pay", timeout = "2s")]
#[derive(Serialize)]
pub struct Pay {
    #[input(body)]
    #[serde(skip)]
    req: PayRequest,

    #[call(service = "payments", timeout = "200ms", required, post = "/charges", body = &req, idempotency_key = format!("order-{}", req.order_id))]
    charge: Charge,
}

/// A POST without a key opts out of the service's retries with `retry(attempts = 1)` (without it,
/// the service's retry policy would make this a compile error).
#[endpoint(POST "/notify", timeout = "2s")]
#[derive(Debug, Serialize)]
pub struct Notify {
    #[input(body)]
    #[serde(skip)]
    req: PayRequest,

    #[call(service = "payments", timeout = "200ms", required, post = "/notifications", body = &req, retry(attempts = 1))]
    receipt: Charge,
}

fn payments(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> (Downstream, Runtime) {
    let (down, transport) = Downstream::new(ms(10), script);
    let runtime = Runtime::builder(services::ALL).read_env(false).transport("payments", transport).build().unwrap();
    (down, runtime)
}

fn order() -> PayRequest {
    PayRequest { order_id: "7".into(), amount: 4200 }
}

#[tokio::test(start_paused = true)]
async fn a_post_with_an_idempotency_key_sends_the_same_key_on_every_attempt() {
    let (down, runtime) = payments(|n| if n < 2 { Reply::Status(503, None) } else { Reply::Ok });
    let outcome = Pay::run(&runtime, PayInputs { req: order() }).await.unwrap();
    assert_eq!(outcome.value.charge.id, "ch_1");
    assert_eq!(outcome.timeline.get("charge").unwrap().attempts, 3);
    let seen = down.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    for attempt in &seen {
        assert_eq!(attempt.method, http::Method::POST);
        assert_eq!(attempt.idempotency_key.as_deref(), Some("order-7"));
    }
}

#[tokio::test(start_paused = true)]
async fn a_post_that_opts_out_of_its_services_retries_is_sent_once() {
    let (down, runtime) = payments(|_| Reply::Status(503, None));
    let failure = Notify::run(&runtime, NotifyInputs { req: order() }).await.unwrap_err();
    assert_eq!(failure.status(), http::StatusCode::BAD_GATEWAY);
    assert_eq!(failure.failed_services(), ["payments"]);
    assert_eq!(down.requests(), 1);
    assert_eq!(down.seen.lock().unwrap()[0].idempotency_key, None);
}

// ---------------------------------------------------------------------------------------------
// Start-up configuration

#[test]
fn a_config_file_overrides_policies_and_urls_below_the_environment() {
    let dir = std::env::temp_dir().join(format!("orchestrate-policies-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("orchestrate.toml");
    std::fs::write(
        &path,
        "[services.cart]\nurl = \"http://10.1.2.3:8080\"\nmax_in_flight = 8\n\n[services.shipping.breaker]\nopen_for = \"2m\"\n",
    )
    .unwrap();
    let runtime = Runtime::builder(app::services::ALL).read_env(false).config_file(&path).build().unwrap();
    let cart = runtime.service("cart").unwrap();
    assert_eq!((cart.base_url(), cart.spec().max_in_flight.fixed()), ("http://10.1.2.3:8080", Some(8)));
    assert_eq!(cart.spec().retry.attempts, 3, "what the file does not name stays as declared");
    let shipping = runtime.service("shipping").unwrap().spec().breaker.unwrap();
    assert_eq!((shipping.open_for, shipping.probes), (Duration::from_secs(120), 2));
    assert!(matches!(shipping.trip, orchestrate::Trip::Rate { failure_percent: 50, min_calls: 20, .. }));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_mistakes_stop_the_start_with_the_place_and_the_fix() {
    let err = Runtime::builder(app::services::ALL)
        .read_env(false)
        .config_str("[services.carts]\nurl = \"http://x:1\"\n")
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`services.carts` (from <config>:1:11): unknown service `carts`; did you mean `cart`? declared services are: cart, inventory, pricing, shipping, tax, payment"
    );

    let err = Runtime::builder(app::services::ALL)
        .read_env(false)
        .config_str(
            "[services.cart]\nretry = { attempts = 3, backoff = \"100 ms\" }\nbreaker = { open_for = \"30\" }\n",
        )
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "2 configuration errors:\n  \
         - `retry.backoff` of service `cart` (from <config>:2:35): invalid `backoff`: durations have no spaces; write \"100ms\"\n  \
         - `breaker.open_for` of service `cart` (from <config>:3:24): invalid `open_for`: `30` has no unit; write \"30ms\" or \"30s\""
    );

    let err = Runtime::builder(app::services::ALL)
        .read_env(false)
        .config_file("/nonexistent/orchestrate.toml")
        .build()
        .unwrap_err();
    assert!(
        err.to_string().starts_with("cannot read the configuration file `/nonexistent/orchestrate.toml`: "),
        "{err}"
    );

    let err =
        Runtime::builder(app::services::ALL).read_env(false).config_str("[services.cart]\nurl = ").build().unwrap_err();
    assert!(err.to_string().starts_with("the configuration at <config>:2:"), "{err}");
}

#[test]
fn retries_configured_past_an_endpoints_deadline_are_refused_at_start_up() {
    let endpoints = [<app::checkout::Summary as Endpoint>::SPEC];
    // The declared policies fit (the macro checked them at compile time).
    assert!(Runtime::builder(app::services::ALL).read_env(false).endpoints(&endpoints).build().is_ok());
    let err = Runtime::builder(app::services::ALL)
        .read_env(false)
        .config_str("[services.cart.retry]\nattempts = 5\nbackoff = \"200ms\"\n")
        .endpoints(&endpoints)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "endpoint `Summary` cannot run under the start-up configuration: \
         the worst case of `Summary` exceeds its timeout of 2000ms: \
         cart (200ms × 5 attempts + 3000ms backoff = 4000ms) → pricing (200ms) → tax (300ms) = 4500ms; \
         raise the endpoint's `timeout`, or lower the timeouts or retries of the calls on this path"
    );
    // Endpoints checked against a runtime of other services: every call names what is missing.
    let err = Runtime::builder(services::ALL).read_env(false).endpoints(&endpoints).build().unwrap_err();
    assert!(
        err.to_string().contains(
            "endpoint `Summary` cannot run under the start-up configuration: its call `cart` goes to service `cart`, \
             which this runtime does not declare"
        ),
        "{err}"
    );
}

#[test]
fn the_environment_names_the_config_file_and_overrides_its_urls_with_one_or_several_instances() {
    const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("policies-env-test", "http://a.internal:1")];
    let dir = std::env::temp_dir().join(format!("orchestrate-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("app.toml");
    std::fs::write(
        &path,
        "[services.policies-env-test]\nurl = \"http://b.internal:2\"\nmax_in_flight = 3\n\n[store]\nredis_url = \"redis://file.internal:6379\"\n",
    )
    .unwrap();
    // SAFETY: no other test of this binary reads these variables or calls into C code that reads
    // the environment; every other runtime here is built with `read_env(false)`.
    unsafe { std::env::set_var("ORCHESTRATE_CONFIG", &path) };
    let from_file = Runtime::builder(SERVICES).redis_url("redis://builder.internal:6379").build().unwrap();
    assert_eq!(from_file.service("policies-env-test").unwrap().base_url(), "http://b.internal:2");
    assert_eq!(from_file.store().redis().unwrap().target(), "redis://file.internal:6379");
    unsafe { std::env::set_var("ORCHESTRATE_REDIS_URL", "redis://env.internal:6379") };
    let from_env = Runtime::builder(SERVICES).redis_url("redis://builder.internal:6379").build().unwrap();
    assert_eq!(from_env.store().redis().unwrap().target(), "redis://env.internal:6379");
    unsafe { std::env::set_var("ORCHESTRATE_POLICIES_ENV_TEST_URL", "http://c.internal:3") };
    let from_env = Runtime::builder(SERVICES).build().unwrap();
    let client = from_env.service("policies-env-test").unwrap();
    assert_eq!((client.base_url(), client.spec().max_in_flight.fixed()), ("http://c.internal:3", Some(3)));
    // A comma-separated list is the service's instances, balanced (spaces around commas allowed).
    unsafe {
        std::env::set_var(
            "ORCHESTRATE_POLICIES_ENV_TEST_URL",
            "http://c1.internal:3, http://c2.internal:4,http://c3.internal:5",
        )
    };
    let listed = Runtime::builder(SERVICES).build().unwrap();
    let hosts: Vec<String> =
        listed.service("policies-env-test").unwrap().instances().into_iter().map(|i| i.host).collect();
    assert_eq!(hosts, ["c1.internal:3", "c2.internal:4", "c3.internal:5"]);
    let health = orchestrate::ops::health::HealthReport::of(&listed, &[]);
    assert_eq!(health.services[0].instances.len(), 3);
    unsafe { std::env::set_var("ORCHESTRATE_POLICIES_ENV_TEST_URL", "http://c1.internal:3,c2.internal") };
    let err = Runtime::builder(SERVICES).build().unwrap_err().to_string();
    assert!(err.contains("(from ORCHESTRATE_POLICIES_ENV_TEST_URL)") && err.contains("c2.internal"), "{err}");
    unsafe { std::env::set_var("ORCHESTRATE_POLICIES_ENV_TEST_URL", "c.internal") };
    let err = Runtime::builder(SERVICES).build().unwrap_err();
    assert_eq!(
        err.to_string(),
        "base URL `c.internal` of service `policies-env-test` (from ORCHESTRATE_POLICIES_ENV_TEST_URL) must start with `http://` or `https://`"
    );
    unsafe {
        std::env::remove_var("ORCHESTRATE_CONFIG");
        std::env::remove_var("ORCHESTRATE_REDIS_URL");
        std::env::remove_var("ORCHESTRATE_POLICIES_ENV_TEST_URL");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Connection pool: HTTP/2 where the service speaks it (real HTTP on loopback)

#[tokio::test]
async fn a_service_declared_http2_is_spoken_to_in_h2c_and_the_others_in_http1() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/version", axum::routing::get(|version: http::Version| async move { format!("\"{version:?}\"") }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    const SERVICES: &[ServiceSpec] = &[
        ServiceSpec::new("pricing", "http://127.0.0.1:9").with_http2(true),
        ServiceSpec::new("tax", "http://127.0.0.1:9"),
    ];
    let runtime =
        Runtime::builder(SERVICES).read_env(false).base_url("pricing", &url).base_url("tax", &url).build().unwrap();
    for (service, version) in [("pricing", "HTTP/2.0"), ("tax", "HTTP/1.1")] {
        let client = runtime.service(service).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let request = Outgoing::new(http::Method::GET, "/version".into());
        let sent = client
            .send(&policy(Duration::from_secs(2), RetryPolicy::NONE), &RequestContext::default(), deadline, request)
            .await;
        let response = sent.result.unwrap();
        assert_eq!(response.body(), format!("\"{version}\"").as_bytes(), "{service}");
    }
    server.abort();
}

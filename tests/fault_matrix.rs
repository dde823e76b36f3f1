//! The failure table of the design, end to end over real HTTP on loopback: every checkout service
//! × {500, hang past its timeout, connection reset, malformed JSON, 401, 404, 429 with
//! Retry-After} gives the designed status, body and `failedServices`, no downstream request starts
//! after the client has its answer, and error bodies never show an internal URL.

mod support;

#[path = "../examples/checkout/app.rs"]
mod app;

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::mocks::{Fault, Mocks};

const FAULTS: [Fault; 7] = [
    Fault::Status(500),
    Fault::Hang,
    Fault::Reset,
    Fault::Malformed,
    Fault::Status(401),
    Fault::Status(404),
    Fault::TooManyRequests { retry_after_secs: 7 },
];

/// What the client must get for `fault` on `service`.
struct Expected {
    status: u16,
    code: Option<&'static str>,
    /// Requests the faulty service receives (its retries included).
    requests: u64,
}

fn expected(service: &str, fault: &Fault) -> Expected {
    if service == "shipping" {
        // Optional: every failure is a partial success. Shipping has no retries.
        return Expected { status: 200, code: None, requests: 1 };
    }
    // Cart is a GET with `retry(attempts = 3)`: 5xx, timeouts and broken connections are retried.
    // The others are POSTs without an idempotency key: never retried.
    let retried = service == "cart";
    let attempts = |retryable: bool| if retried && retryable { 3 } else { 1 };
    match fault {
        Fault::Status(500) => Expected { status: 502, code: Some("DOWNSTREAM_FAILURE"), requests: attempts(true) },
        Fault::Hang => Expected { status: 504, code: Some("GATEWAY_TIMEOUT"), requests: attempts(true) },
        Fault::Reset => Expected { status: 502, code: Some("DOWNSTREAM_FAILURE"), requests: attempts(true) },
        Fault::Malformed => Expected { status: 502, code: Some("DOWNSTREAM_FAILURE"), requests: 1 },
        Fault::Status(401) => Expected { status: 401, code: Some("UNAUTHORIZED"), requests: 1 },
        Fault::Status(404) => Expected { status: 404, code: Some("NOT_FOUND"), requests: 1 },
        Fault::TooManyRequests { .. } => Expected { status: 429, code: Some("RATE_LIMITED"), requests: 1 },
        other => unreachable!("no expectation for {other:?}"),
    }
}

/// Runs every fault against `service`, each with a fresh runtime (so breakers and retry budgets
/// start closed and full) against the same mocks.
async fn matrix(service: &'static str) {
    let mocks = Mocks::start(0.2).await.unwrap();
    let mut http: Option<reqwest::Client> = None;
    for fault in FAULTS {
        mocks.reset();
        mocks.get(service).set_fault(fault.clone());
        let builder = mocks.runtime(app::services::ALL);
        let runtime = builder.build().unwrap();
        let url = support::serve(orchestrate::router::app(app::checkout::router(&runtime))).await;
        // Built after the first runtime, which installs the TLS crypto provider reqwest needs.
        let http = http.get_or_insert_with(reqwest::Client::new);

        let response = http
            .post(format!("{url}/checkout/summary"))
            .header("content-type", "application/json")
            .body(json!({"cartId": "c1", "userId": "u1"}).to_string())
            .send()
            .await
            .unwrap();
        let answered = Instant::now();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{service} {fault:?}: not JSON ({e}): {text}"));
        let case = format!("{service} × {fault:?}: {status} {text}");
        let want = expected(service, &fault);

        assert_eq!(status, want.status, "{case}");
        match want.code {
            Some(code) => {
                assert_eq!(body["error"]["code"], code, "{case}");
                assert_eq!(body["error"]["failedServices"], json!([service]), "{case}");
                assert_eq!(body["error"]["partialData"], false, "{case}");
                assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains(service)), "{case}");
            }
            None => {
                assert_eq!(body["shipping"], Value::Null, "{case}");
                assert_eq!(body["partialData"], true, "{case}");
                assert_eq!(body["failedServices"], json!(["shipping"]), "{case}");
                assert_eq!(body["total"], 16234, "{case}");
                assert_eq!(headers["x-partial-data"], "true", "{case}");
            }
        }
        if let Fault::TooManyRequests { retry_after_secs } = fault
            && service != "shipping"
        {
            assert_eq!(headers["retry-after"], retry_after_secs.to_string().as_str(), "{case}");
        }
        assert!(!text.contains("127.0.0.1") && !text.contains("http://"), "an internal URL leaked: {case}");
        assert_eq!(mocks.get(service).requests(), want.requests, "requests to {service}: {case}");

        // Services that need a failed required call's value were never called.
        let not_called: &[&str] = match (service, want.code.is_some()) {
            ("cart", true) => &["inventory", "pricing", "shipping", "tax"],
            ("pricing", true) => &["tax"],
            _ => &[],
        };
        for other in not_called {
            assert_eq!(mocks.get(other).requests(), 0, "{other} was called: {case}");
        }

        // Nothing reaches a service after the client got its answer, not even later.
        tokio::time::sleep(Duration::from_millis(250)).await;
        for mock in mocks.all() {
            for seen in mock.seen() {
                assert!(seen.start <= answered, "{} got {} after the answer: {case}", mock.name, seen.path);
            }
        }
    }
}

#[tokio::test]
async fn cart_faults() {
    matrix("cart").await;
}

#[tokio::test]
async fn inventory_faults() {
    matrix("inventory").await;
}

#[tokio::test]
async fn pricing_faults() {
    matrix("pricing").await;
}

#[tokio::test]
async fn shipping_faults() {
    matrix("shipping").await;
}

#[tokio::test]
async fn tax_faults() {
    matrix("tax").await;
}

#[tokio::test]
async fn a_required_failure_cancels_the_calls_in_flight() {
    // Inventory fails at once while shipping (slowed to 400 ms) is in flight: the client gets its
    // 502 without waiting, and shipping's request is abandoned, never answered.
    let mocks = Mocks::start(1.0).await.unwrap();
    mocks.get("inventory").set_fault(Fault::Status(500));
    mocks.get("inventory").set_latency(Duration::ZERO);
    mocks.get("shipping").set_latency(Duration::from_millis(400));
    let builder = mocks.runtime(app::services::ALL);
    let runtime = builder.build().unwrap();
    let url = support::serve(orchestrate::router::app(app::checkout::router(&runtime))).await;
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{url}/checkout/summary"))
        .header("content-type", "application/json")
        .body(r#"{"cartId":"c1","userId":"u1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert!(started.elapsed() < Duration::from_millis(300), "the 502 waited for shipping: {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_millis(600)).await;
    let shipping = mocks.get("shipping").seen();
    assert_eq!(shipping.len(), 1);
    assert!(shipping[0].end.is_none(), "shipping's request ran to completion instead of being cancelled");
}

#[tokio::test]
async fn a_burst_over_a_fixed_limit_is_shed_with_503_and_the_rest_answered() {
    // Cart (required) may have two calls in flight; eight requests arrive while the first two
    // wait 150 ms for it. The excess is shed by the BFF itself: 503 OVERLOADED with Retry-After,
    // no request to cart, cart not named as failed.
    let mocks = Mocks::start(0.0).await.unwrap();
    mocks.get("cart").set_latency(Duration::from_millis(150));
    let runtime = mocks.runtime(app::services::ALL).config_str("[services.cart]\nmax_in_flight = 2\n").build().unwrap();
    let url = support::serve(orchestrate::router::app(app::checkout::router(&runtime))).await;
    let http = reqwest::Client::new();
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (http, url) = (http.clone(), url.clone());
        burst.spawn(async move {
            let response = http
                .post(format!("{url}/checkout/summary"))
                .header("content-type", "application/json")
                .body(r#"{"cartId":"c1","userId":"u1"}"#)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            let body: Value = response.json().await.unwrap();
            (status, retry_after, body)
        });
    }
    let (mut answered, mut shed) = (0, 0);
    while let Some(result) = burst.join_next().await {
        let (status, retry_after, body) = result.unwrap();
        match status {
            200 => {
                answered += 1;
                assert_eq!(body["partialData"], false, "{body}");
            }
            503 => {
                shed += 1;
                assert_eq!(retry_after.as_deref(), Some("1"));
                assert_eq!(body["error"]["code"], "OVERLOADED", "{body}");
                assert_eq!(body["error"]["failedServices"], json!([]), "{body}");
            }
            other => panic!("only 200 or 503 are designed here, got {other}: {body}"),
        }
    }
    assert_eq!(answered + shed, 8);
    assert!(answered >= 2, "the limit admits two at a time: {answered} answered");
    assert!(shed >= 1, "eight at once over a limit of two: none shed");
    assert_eq!(mocks.get("cart").requests() as usize, answered, "a shed call sends nothing");
    let cart = runtime.service("cart").unwrap();
    assert_eq!(cart.breaker_state(), orchestrate::BreakerState::Closed);
}

//! `/metrics` after a fault scenario, over real HTTP on loopback.
//!
//! The Prometheus recorder is process-wide, so this binary holds the only test that reads counter
//! deltas: no other test in the process can move them.

mod support;

#[path = "../examples/checkout/app.rs"]
mod app;

use serde_json::json;
use std::collections::BTreeMap;
use support::mocks::{Fault, Mocks};

/// One sample of the text format: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap();
                    (key.to_owned(), value.trim_matches('"').to_owned())
                })
                .collect();
            Sample { name: name.to_owned(), labels, value: value.parse().unwrap() }
        })
        .collect()
}

/// The sum of the samples named `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).is_some_and(|have| have == v)))
        .map(|s| s.value)
        .sum()
}

async fn scrape(http: &reqwest::Client, url: &str) -> Vec<Sample> {
    let response = http.get(format!("{url}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    parse(&response.text().await.unwrap())
}

fn calls(samples: &[Sample], service: &str, outcome: &str) -> f64 {
    let labels = [("endpoint", "Summary"), ("service", service), ("outcome", outcome)];
    value(samples, "orchestrate_calls_total", &labels)
}

#[tokio::test]
async fn metrics_count_each_call_outcome_and_show_the_breaker_opening() {
    orchestrate::ops::metrics::install().unwrap();
    let mocks = Mocks::start(0.0).await.unwrap();
    let builder = mocks.runtime(app::services::ALL);
    let runtime = builder.build().unwrap();
    let app = app::checkout::router(&runtime).merge(orchestrate::ops::router(&runtime, app::checkout::ENDPOINTS));
    let url = support::serve(orchestrate::router::app(app)).await;
    let http = reqwest::Client::new();
    let summary = || async {
        let response = http
            .post(format!("{url}/checkout/summary"))
            .header("content-type", "application/json")
            .body(json!({"cartId": "c1", "userId": "u1"}).to_string())
            .send()
            .await
            .unwrap();
        response.status().as_u16()
    };

    let before = scrape(&http, &url).await;
    assert_eq!(value(&before, "orchestrate_breaker_state", &[("service", "shipping")]), 0.0);

    // Shipping (optional; breaker: 50% failed calls once 20 were made within 10 s) fails:
    // twenty-five partial answers.
    mocks.get("shipping").set_fault(Fault::Status(503));
    for _ in 0..25 {
        assert_eq!(summary().await, 200);
    }
    let after = scrape(&http, &url).await;
    let delta = |f: &dyn Fn(&[Sample]) -> f64| f(&after) - f(&before);
    assert_eq!(delta(&|s| calls(s, "shipping", "failed")), 25.0, "every shipping call failed");
    assert_eq!(mocks.get("shipping").requests(), 20, "the breaker opened at 20 calls and refused the last five");
    assert_eq!(value(&after, "orchestrate_breaker_state", &[("service", "shipping")]), 2.0, "open");
    for service in ["cart", "inventory", "pricing", "tax"] {
        assert_eq!(delta(&|s| calls(s, service, "ok")), 25.0, "{service}");
        assert_eq!(value(&after, "orchestrate_breaker_state", &[("service", service)]), 0.0, "{service}");
    }
    let request = [("method", "POST"), ("route", "/checkout/summary"), ("status", "200")];
    assert_eq!(delta(&|s| value(s, "orchestrate_request_duration_seconds_count", &request)), 25.0);
    // Real histograms (buckets, aggregatable across instances), not summaries.
    let inf = [("method", "POST"), ("route", "/checkout/summary"), ("status", "200"), ("le", "+Inf")];
    assert_eq!(delta(&|s| value(s, "orchestrate_request_duration_seconds_bucket", &inf)), 25.0);
    assert!(after.iter().any(|s| s.name == "orchestrate_call_duration_seconds_bucket" && s.labels["le"] == "0.1"));
    assert!(!after.iter().any(|s| s.labels.contains_key("quantile")), "summaries instead of histograms");
    // Nothing left in flight.
    assert_eq!(value(&after, "orchestrate_requests_in_flight", &[("route", "/checkout/summary")]), 0.0);
    assert_eq!(value(&after, "orchestrate_calls_in_flight", &[]), 0.0);

    // Cart (required; 3 attempts) answers 503: two retries, one failed call, a 502, and the
    // calls that depend on it never start.
    let before = after;
    mocks.get("cart").set_fault(Fault::Status(503));
    assert_eq!(summary().await, 502);
    let after = scrape(&http, &url).await;
    let delta = |f: &dyn Fn(&[Sample]) -> f64| f(&after) - f(&before);
    assert_eq!(delta(&|s| value(s, "orchestrate_retries_total", &[("service", "cart"), ("reason", "status")])), 2.0);
    assert_eq!(delta(&|s| calls(s, "cart", "failed")), 1.0);
    assert_eq!(delta(&|s| calls(s, "pricing", "ok") + calls(s, "pricing", "failed")), 0.0);
    let failed = [("method", "POST"), ("route", "/checkout/summary"), ("status", "502")];
    assert_eq!(delta(&|s| value(s, "orchestrate_request_duration_seconds_count", &failed)), 1.0);

    // Placing an order while shipping fails (its breaker is open by now): the charge and the
    // reservation are compensated, each counted once.
    let before = after;
    mocks.get("cart").set_fault(Fault::None);
    let response = http
        .post(format!("{url}/checkout/place-order"))
        .json(&json!({"cartId": "c1", "userId": "u1", "paymentMethod": "card"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let after = scrape(&http, &url).await;
    let compensations = |s: &[Sample], call: &str, outcome: &str| {
        let labels = [("endpoint", "PlaceOrder"), ("call", call), ("outcome", outcome)];
        value(s, "orchestrate_compensations_total", &labels)
    };
    for call in ["payment", "reservation"] {
        assert_eq!(compensations(&after, call, "compensated") - compensations(&before, call, "compensated"), 1.0);
        assert_eq!(compensations(&after, call, "failed"), 0.0);
    }
}

//! Idempotent replay of client retries over real HTTP on loopback: a retry with the same
//! `Idempotency-Key` and body gets the first response without any downstream call; another body
//! with the key is 422; a retry while the first runs is 409; two instances sharing a real Redis
//! replay each other's responses.

mod support;

use bytes::Bytes;
use orchestrate::prelude::*;
use orchestrate::{CallError, Runtime, Transport};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

orchestrate::services! {
    payment: "http://payment.internal",
}

/// The request body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    pub order: String,
    pub amount: u64,
}

/// The payment service's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Charge {
    pub id: String,
}

#[orchestrate::api]
pub mod orders {
    use super::*;

    /// A POST with a side effect: replay is on by default.
    #[endpoint(POST "/orders", timeout = "2s")]
    #[derive(Debug, Serialize)]
    pub struct Place {
        #[input(body)]
        #[serde(skip)]
        pub req: Order,

        #[call(service = "payment", timeout = "1s", required, post = "/charges", body = req, idempotency_key = req.order)]
        pub charge: Charge,
    }

    /// A retry while the first runs waits up to 2 s for its response instead of a 409.
    #[endpoint(POST "/patient-orders", timeout = "2s", idempotent_requests(wait = "2s"))]
    #[derive(Debug, Serialize)]
    pub struct PatientPlace {
        #[input(body)]
        #[serde(skip)]
        pub req: Order,

        #[call(service = "payment", timeout = "1s", required, post = "/charges", body = req, idempotency_key = req.order)]
        pub charge: Charge,
    }

    /// The same, waiting less than the payment takes.
    #[endpoint(POST "/hasty-orders", timeout = "2s", idempotent_requests(wait = "50ms"))]
    #[derive(Debug, Serialize)]
    pub struct HastyPlace {
        #[input(body)]
        #[serde(skip)]
        pub req: Order,

        #[call(service = "payment", timeout = "1s", required, post = "/charges", body = req, idempotency_key = req.order)]
        pub charge: Charge,
    }

    /// The same, turned off.
    #[endpoint(POST "/quotes", timeout = "2s", idempotent_requests = false)]
    #[derive(Debug, Serialize)]
    pub struct Quote {
        #[input(body)]
        #[serde(skip)]
        pub req: Order,

        #[call(service = "payment", timeout = "1s", required, post = "/charges", body = req, idempotency_key = req.order)]
        pub charge: Charge,
    }
}

/// A payment service answering after `latency` with a fresh charge id each time, counting.
fn payment(latency: Duration, count: Arc<AtomicUsize>) -> Transport {
    Transport::new(tower::service_fn(move |_request: http::Request<Bytes>| {
        let count = count.clone();
        async move {
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(latency).await;
            Ok::<_, CallError>(http::Response::new(Bytes::from(format!(r#"{{"id":"ch_{n}"}}"#))))
        }
    }))
}

async fn instance(latency: Duration, count: Arc<AtomicUsize>, redis: Option<String>) -> String {
    let mut builder = Runtime::builder(services::ALL).read_env(false).transport("payment", payment(latency, count));
    if let Some(url) = redis {
        builder = builder.redis_url(url);
    }
    let runtime = builder.build().unwrap();
    support::serve(orchestrate::router::app(orders::router(&runtime))).await
}

async fn post(url: &str, path: &str, key: &str, body: serde_json::Value) -> reqwest::Response {
    reqwest::Client::new().post(format!("{url}{path}")).header("idempotency-key", key).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn a_retry_gets_the_first_response_and_nothing_runs_again() {
    let count = Arc::new(AtomicUsize::new(0));
    let url = instance(Duration::ZERO, count.clone(), None).await;
    let body = serde_json::json!({"order": "o1", "amount": 100});
    let first = post(&url, "/orders", "k1", body.clone()).await;
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body = first.text().await.unwrap();
    assert_eq!(first_body, r#"{"charge":{"id":"ch_1"},"partialData":false}"#);

    let retry = post(&url, "/orders", "k1", body.clone()).await;
    assert_eq!(retry.status(), 200);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.headers()["content-type"], "application/json");
    assert_eq!(retry.text().await.unwrap(), first_body, "the same charge, not a second one");
    assert_eq!(count.load(Ordering::SeqCst), 1, "the payment service was called once");

    // Another key runs; no key runs every time.
    assert_eq!(post(&url, "/orders", "k2", body.clone()).await.status(), 200);
    let http = reqwest::Client::new();
    for _ in 0..2 {
        assert_eq!(http.post(format!("{url}/orders")).json(&body).send().await.unwrap().status(), 200);
    }
    assert_eq!(count.load(Ordering::SeqCst), 4);
    // An endpoint with replay off ignores the key.
    for _ in 0..2 {
        assert_eq!(post(&url, "/quotes", "k3", body.clone()).await.status(), 200);
    }
    assert_eq!(count.load(Ordering::SeqCst), 6);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused() {
    let count = Arc::new(AtomicUsize::new(0));
    let url = instance(Duration::ZERO, count.clone(), None).await;
    assert_eq!(post(&url, "/orders", "k1", serde_json::json!({"order": "o1", "amount": 100})).await.status(), 200);
    let reused = post(&url, "/orders", "k1", serde_json::json!({"order": "o1", "amount": 999})).await;
    assert_eq!(reused.status(), 422);
    let body: serde_json::Value = reused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(count.load(Ordering::SeqCst), 1);
    let bad = post(&url, "/orders", "", serde_json::json!({"order": "o1", "amount": 100})).await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_retry_while_the_first_runs_is_a_conflict() {
    let count = Arc::new(AtomicUsize::new(0));
    let url = instance(Duration::from_millis(300), count.clone(), None).await;
    let body = serde_json::json!({"order": "o1", "amount": 100});
    let first = tokio::spawn({
        let (url, body) = (url.clone(), body.clone());
        async move { post(&url, "/orders", "k1", body).await }
    });
    // The first has reached the payment service.
    while count.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let duplicate = post(&url, "/orders", "k1", body.clone()).await;
    assert_eq!(duplicate.status(), 409);
    let error: serde_json::Value = duplicate.json().await.unwrap();
    assert_eq!(error["error"]["code"], "REQUEST_IN_PROGRESS");
    assert_eq!(first.await.unwrap().status(), 200);
    assert_eq!(post(&url, "/orders", "k1", body).await.headers()["idempotent-replayed"], "true");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn two_instances_sharing_redis_replay_each_others_responses() {
    let Some(redis) = support::redis::RedisServer::start() else { return };
    let count = Arc::new(AtomicUsize::new(0));
    let a = instance(Duration::from_millis(300), count.clone(), Some(redis.url())).await;
    let b = instance(Duration::from_millis(300), count.clone(), Some(redis.url())).await;
    let body = serde_json::json!({"order": "o1", "amount": 100});

    let first = tokio::spawn({
        let (a, body) = (a.clone(), body.clone());
        async move { post(&a, "/orders", "k1", body).await }
    });
    while count.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(post(&b, "/orders", "k1", body.clone()).await.status(), 409, "b sees a's claim");
    let first = first.await.unwrap();
    assert_eq!(first.status(), 200);
    let first_body = first.text().await.unwrap();

    let replayed = post(&b, "/orders", "k1", body.clone()).await;
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    assert_eq!(replayed.text().await.unwrap(), first_body);
    assert_eq!(post(&b, "/orders", "k1", serde_json::json!({"order": "o1", "amount": 5})).await.status(), 422);
    assert_eq!(count.load(Ordering::SeqCst), 1, "one charge across both instances");
}

/// Sends the first request with `key` to `first` and, once the payment service has it, the retry
/// to `retry`; returns both responses (status, replayed header, body).
async fn first_and_retry(
    first: &str,
    retry: &str,
    path: &'static str,
    key: &'static str,
    count: &Arc<AtomicUsize>,
) -> [(u16, bool, String); 2] {
    let body = serde_json::json!({"order": key, "amount": 100});
    let before = count.load(Ordering::SeqCst);
    let running = tokio::spawn({
        let (first, body) = (first.to_owned(), body.clone());
        async move { post(&first, path, key, body).await }
    });
    while count.load(Ordering::SeqCst) == before {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let read = |r: reqwest::Response| async move {
        let replayed = r.headers().get("idempotent-replayed").is_some();
        (r.status().as_u16(), replayed, r.text().await.unwrap())
    };
    let second = read(post(retry, path, key, body).await).await;
    [read(running.await.unwrap()).await, second]
}

#[tokio::test]
async fn with_a_wait_a_retry_while_the_first_runs_gets_its_response_or_409_after_the_wait() {
    let count = Arc::new(AtomicUsize::new(0));
    let url = instance(Duration::from_millis(300), count.clone(), None).await;
    let [first, retry] = first_and_retry(&url, &url, "/patient-orders", "w1", &count).await;
    assert_eq!((first.0, first.1), (200, false));
    assert_eq!(retry, (200, true, first.2.clone()), "the retry waited and got the first response");
    assert_eq!(count.load(Ordering::SeqCst), 1, "one charge");

    let [first, retry] = first_and_retry(&url, &url, "/hasty-orders", "w2", &count).await;
    assert_eq!(first.0, 200);
    assert_eq!(retry.0, 409, "the first outlasted the 50 ms wait: {retry:?}");
    assert!(retry.2.contains("REQUEST_IN_PROGRESS"), "{retry:?}");
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn with_a_wait_an_instance_gets_the_response_of_the_first_request_another_instance_runs() {
    let Some(redis) = support::redis::RedisServer::start() else { return };
    let count = Arc::new(AtomicUsize::new(0));
    let a = instance(Duration::from_millis(300), count.clone(), Some(redis.url())).await;
    let b = instance(Duration::from_millis(300), count.clone(), Some(redis.url())).await;
    let [first, retry] = first_and_retry(&a, &b, "/patient-orders", "w1", &count).await;
    assert_eq!((first.0, first.1), (200, false));
    assert_eq!(retry, (200, true, first.2.clone()), "b waited for a's response");
    assert_eq!(count.load(Ordering::SeqCst), 1, "one charge across both instances");

    let [first, retry] = first_and_retry(&a, &b, "/hasty-orders", "w2", &count).await;
    assert_eq!((first.0, retry.0), (200, 409));
}

#[tokio::test]
async fn the_wait_is_in_the_spec_and_on_the_operations_page() {
    use orchestrate::Endpoint;
    assert_eq!(orders::PatientPlace::SPEC.idempotent_wait, Some(Duration::from_secs(2)));
    assert_eq!(orders::Place::SPEC.idempotent_wait, None);
    let runtime = Runtime::builder(services::ALL).read_env(false).build().unwrap();
    let url = support::serve(orchestrate::ops::router(&runtime, orders::ENDPOINTS)).await;
    let page = reqwest::get(format!("{url}/_orchestrate")).await.unwrap().text().await.unwrap();
    assert!(page.contains("waiting up to 2000ms for a first still running"), "{page}");
    let json: serde_json::Value = reqwest::get(format!("{url}/_orchestrate.json")).await.unwrap().json().await.unwrap();
    let waits: Vec<&serde_json::Value> =
        json["endpoints"].as_array().unwrap().iter().map(|e| &e["idempotentWaitMs"]).collect();
    assert!(waits.contains(&&serde_json::json!(2000)) && waits.contains(&&serde_json::json!(50)), "{waits:?}");
}

//! The executor on the checkout graph, in virtual time: dependency-driven start times, the
//! failure policy, cancellation of in-flight calls and the endpoint deadline.

mod support;

#[path = "../examples/checkout/app.rs"]
mod app;

use app::checkout::{Summary, SummaryInputs};
// Not `services` by name: the modules below declare their own, and a glob import of another
// `services` beside a module's own `services!` is ambiguous to the endpoints' service lookup.
use app::SummaryRequest;
use orchestrate::{CallErrorKind, CallOutcome, Endpoint, FailureCause, Runtime};
use std::time::Duration;
use support::{Behaviour, Log, contract::latency};

const SERVICES: [&str; 5] = ["cart", "inventory", "pricing", "shipping", "tax"];

fn runtime(log: &Log, behaviour: impl Fn(&str) -> Behaviour) -> Runtime {
    let mut builder = Runtime::builder(app::services::ALL).read_env(false);
    for name in SERVICES {
        builder = builder.transport(name, support::service(name, latency(name), behaviour(name), log));
    }
    builder.build().unwrap()
}

fn inputs() -> SummaryInputs {
    SummaryInputs { req: SummaryRequest { cart_id: "c1".into(), user_id: "u1".into() } }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn checkout_finishes_on_the_critical_path_with_tax_starting_when_pricing_ends() {
    let log = Log::new();
    let rt = runtime(&log, |_| Behaviour::Answer);
    let started = tokio::time::Instant::now();
    let outcome = Summary::run(&rt, inputs()).await.unwrap();

    // cart 45 → pricing 35 → tax 60 = 140; cart 45 → shipping 120 = 165 is the critical path.
    assert_eq!(started.elapsed(), ms(165));
    let start_of = |s: &str| log.of(s)[0].start;
    assert_eq!(start_of("cart"), ms(0));
    assert_eq!(start_of("inventory"), ms(45));
    assert_eq!(start_of("pricing"), ms(45));
    assert_eq!(start_of("shipping"), ms(45));
    assert_eq!(start_of("tax"), ms(80), "tax starts when pricing ends, not after shipping");
    assert_eq!(log.of("tax")[0].end, Some(ms(140)));

    let summary = outcome.value;
    assert_eq!(summary.pricing.subtotal, 14997);
    assert_eq!(summary.tax.amount, 1237);
    assert_eq!(summary.total, 16234);
    assert!(summary.availability_confirmed);
    assert_eq!(summary.shipping.as_ref().map(|s| s.options.len()), Some(2));
    assert!(!outcome.failed.iter().any(|_| true));

    // The timeline the executor recorded agrees with what the services saw.
    let tax = outcome.timeline.get("tax").unwrap();
    assert_eq!((tax.start, tax.end, tax.attempts, tax.outcome), (ms(80), ms(140), 1, CallOutcome::Ok));
    assert_eq!(outcome.timeline.total, ms(165));
    assert_eq!(outcome.timeline.calls.len(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_required_failure_cancels_every_call_in_flight() {
    let log = Log::new();
    // Inventory answers 500 at 45 + 80 = 125 ms, while shipping (until 165) is still in flight.
    let rt = runtime(&log, |s| if s == "inventory" { Behaviour::Status(500) } else { Behaviour::Answer });
    let started = tokio::time::Instant::now();
    let failure = Summary::run(&rt, inputs()).await.unwrap_err();

    assert_eq!(started.elapsed(), ms(125), "the run ends the moment the required call fails");
    assert_eq!(failure.status(), http::StatusCode::BAD_GATEWAY);
    assert_eq!(failure.code(), "DOWNSTREAM_FAILURE");
    assert_eq!(failure.failed_services(), ["inventory"]);
    assert!(matches!(failure.cause(), FailureCause::Required(_)));

    let shipping = &log.of("shipping")[0];
    assert!(shipping.cancelled, "the shipping request was dropped, not left running: {shipping:?}");
    assert_eq!(shipping.end, Some(ms(125)));
    let record = failure.timeline().get("shipping").unwrap();
    assert_eq!(record.outcome, CallOutcome::Cancelled);
    // Tax had already finished at 140? No: it started at 80 and would end at 140, so it is cut too.
    assert!(log.of("tax")[0].cancelled);
    // Nothing was sent after the failure.
    assert!(log.events().iter().all(|e| e.start <= ms(125)));
}

#[tokio::test(start_paused = true)]
async fn an_optional_failure_gives_none_and_a_partial_success() {
    let log = Log::new();
    let rt = runtime(&log, |s| if s == "shipping" { Behaviour::Status(503) } else { Behaviour::Answer });
    let outcome = Summary::run(&rt, inputs()).await.unwrap();
    assert!(outcome.value.shipping.is_none());
    assert_eq!(outcome.value.total, 16234);
    assert!(outcome.is_partial());
    assert_eq!(outcome.failed_services(), ["shipping"]);
    let record = outcome.timeline.get("shipping").unwrap();
    assert_eq!(record.outcome, CallOutcome::Failed(CallErrorKind::Status));
    assert_eq!(record.status, Some(503));

    let body = serde_json::to_value(outcome.body()).unwrap();
    assert_eq!(body["shipping"], serde_json::Value::Null);
    assert_eq!(body["partialData"], true);
    assert_eq!(body["failedServices"], serde_json::json!(["shipping"]));
}

#[tokio::test(start_paused = true)]
async fn a_hanging_optional_call_is_cut_by_its_own_timeout() {
    let log = Log::new();
    let rt = runtime(&log, |s| if s == "shipping" { Behaviour::Hang } else { Behaviour::Answer });
    let started = tokio::time::Instant::now();
    let outcome = Summary::run(&rt, inputs()).await.unwrap();
    // Shipping starts at 45 with a 500 ms timeout.
    assert_eq!(started.elapsed(), ms(545));
    assert_eq!(outcome.timeline.get("shipping").unwrap().outcome, CallOutcome::Failed(CallErrorKind::Timeout));
    assert!(log.of("shipping")[0].cancelled);
}

#[tokio::test(start_paused = true)]
async fn a_downstream_answer_of_the_wrong_shape_is_that_calls_failure() {
    let log = Log::new();
    let rt = runtime(&log, |s| if s == "pricing" { Behaviour::WrongShape } else { Behaviour::Answer });
    let failure = Summary::run(&rt, inputs()).await.unwrap_err();
    assert_eq!(failure.failed_call().unwrap().kind, CallErrorKind::Decode);
    assert_eq!(failure.failed_services(), ["pricing"]);
    assert_eq!(failure.status(), http::StatusCode::BAD_GATEWAY);
    // Tax needs pricing: it was never attempted.
    assert!(log.of("tax").is_empty());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_request_future_cancels_its_calls() {
    let log = Log::new();
    let rt = runtime(&log, |_| Behaviour::Answer);
    let run = Summary::run(&rt, inputs());
    // Run for 50 ms of virtual time (cart done, inventory/pricing/shipping in flight), then drop.
    let _ = tokio::time::timeout(ms(50), run).await;
    let in_flight: Vec<_> = log.events().into_iter().filter(|e| e.service != "cart").collect();
    assert_eq!(in_flight.len(), 3);
    assert!(in_flight.iter().all(|e| e.cancelled && e.end == Some(ms(50))), "{in_flight:?}");
    // And nothing starts later.
    tokio::time::sleep(ms(1_000)).await;
    assert_eq!(log.events().len(), 4);
}

mod deadline {
    //! A custom call that keeps polling a hanging service is cut by the endpoint's deadline.
    use super::*;
    use orchestrate::{CallClient, CallError};

    orchestrate::services! {
        jobs: "http://jobs.internal",
    }

    #[derive(Debug, serde::Deserialize, serde::Serialize)]
    pub struct Status {
        done: bool,
    }

    /// Asks for the job's status until it is done, asking again after a timeout.
    async fn wait_for_job(client: CallClient<'_>) -> Result<Status, CallError> {
        loop {
            match client.get("/jobs/1").send::<Status>().await {
                Ok(status) if status.done => return Ok(status),
                Ok(_) => {}
                Err(e) if e.kind() == CallErrorKind::Timeout => {}
                Err(e) => return Err(e),
            }
        }
    }

    #[orchestrate::endpoint(GET "/job", timeout = "500ms")]
    #[derive(Debug, serde::Serialize)]
    pub struct Job {
        #[call(service = "jobs", timeout = "200ms", required, with = wait_for_job())]
        status: Status,
    }

    #[tokio::test(start_paused = true)]
    async fn the_endpoint_deadline_cuts_a_hanging_call() {
        let log = Log::new();
        let rt = Runtime::builder(services::ALL)
            .read_env(false)
            .transport("jobs", support::service("jobs", ms(10), Behaviour::Hang, &log))
            .build()
            .unwrap();
        let started = tokio::time::Instant::now();
        let failure = Job::run(&rt, JobInputs {}).await.unwrap_err();
        assert_eq!(started.elapsed(), ms(500));
        assert_eq!(failure.status(), http::StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(failure.code(), "GATEWAY_TIMEOUT");
        assert_eq!(failure.failed_services(), ["jobs"]);
        // Attempts at 0 and 200 timed out after 200 ms each; the third got the 100 ms left.
        let starts: Vec<Duration> = log.events().iter().map(|e| e.start).collect();
        assert_eq!(starts, [ms(0), ms(200), ms(400)]);
        assert!(log.events().iter().all(|e| e.cancelled));
    }
}

mod fan_out {
    //! `for_each`: one request per item, at most `concurrency` in flight, answers in item order.
    use super::*;
    use std::sync::{Arc, Mutex};

    orchestrate::services! {
        catalog: "http://catalog.internal",
    }

    #[derive(Debug, serde::Deserialize)]
    pub struct Basket {
        skus: Vec<String>,
    }

    #[derive(Debug, PartialEq, serde::Deserialize, serde::Serialize)]
    pub struct Product {
        sku: String,
    }

    #[orchestrate::endpoint(POST "/products", timeout = "1s")]
    #[derive(Debug, serde::Serialize)]
    pub struct Products {
        #[input(body)]
        #[serde(skip)]
        pub basket: Basket,
        #[call(service = "catalog", timeout = "100ms", required, get = "/products/{sku}", for_each = sku in &basket.skus, concurrency = 2)]
        pub products: Vec<Product>,
    }

    #[tokio::test(start_paused = true)]
    async fn a_fan_out_sends_one_request_per_item_within_its_concurrency() {
        let origin = tokio::time::Instant::now();
        let starts: Arc<Mutex<Vec<(String, Duration)>>> = Arc::default();
        let seen = starts.clone();
        let transport = orchestrate::Transport::new(tower::service_fn(move |request: http::Request<bytes::Bytes>| {
            let seen = seen.clone();
            async move {
                let sku = request.uri().path().trim_start_matches("/products/").to_owned();
                seen.lock().unwrap().push((sku.clone(), origin.elapsed()));
                // Later items answer sooner: the result must still follow the items' order.
                let latency = if sku == "a" { 20 } else { 10 };
                tokio::time::sleep(ms(latency)).await;
                let body = serde_json::to_vec(&serde_json::json!({ "sku": sku })).unwrap();
                Ok::<_, orchestrate::CallError>(http::Response::new(bytes::Bytes::from(body)))
            }
        }));
        let rt = Runtime::builder(services::ALL).read_env(false).transport("catalog", transport).build().unwrap();
        let skus: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        let outcome = Products::run(&rt, ProductsInputs { basket: Basket { skus } }).await.unwrap();

        let got: Vec<&str> = outcome.value.products.iter().map(|p| p.sku.as_str()).collect();
        assert_eq!(got, ["a", "b", "c", "d", "e"]);
        assert_eq!(outcome.value.basket.skus.len(), 5);
        let starts = starts.lock().unwrap().clone();
        assert_eq!(starts.len(), 5);
        assert!(starts[..2].iter().all(|(_, at)| *at == ms(0)), "two start at once: {starts:?}");
        assert!(starts[2..].iter().all(|(_, at)| *at >= ms(10)), "the rest wait for a free slot: {starts:?}");
    }
}

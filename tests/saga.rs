//! Sagas in virtual time: when a required step fails after others committed, the committed
//! steps' compensations run in reverse dependency order, each with its own retries, and finish
//! when the client has gone and after the request's deadline. Every downstream is an in-memory
//! service that logs each request.

use bytes::Bytes;
use orchestrate::prelude::*;
use orchestrate::{CallError, Endpoint, FailureCause, Runtime, Transport};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

orchestrate::services! {
    inventory: "http://inventory.internal",
    payment: "http://payment.internal",
    loyalty: "http://loyalty.internal",
    shipping: "http://shipping.internal",
    notify: "http://notify.internal",
}

/// The request body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    pub order: String,
}

/// Every step answers `{"id": ..}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Done {
    pub id: String,
}

#[orchestrate::api]
pub mod place {
    use super::*;

    /// A diamond of committed steps: reserve → {charge, points} → ship → confirm.
    #[endpoint(POST "/orders", timeout = "2500ms", saga)]
    #[derive(Debug, Serialize)]
    pub struct Place {
        #[input(body)]
        #[serde(skip)]
        pub req: Order,

        #[call(service = "inventory", timeout = "500ms", required, post = "/reservations", body = req,
               idempotency_key = format!("{}-reserve", req.order),
               compensate = delete("/reservations/{reservation.id}"))]
        pub reservation: Done,

        #[call(service = "payment", timeout = "500ms", required, post = "/charges", body = reservation,
               idempotency_key = format!("{}-charge", req.order),
               compensate = post("/charges/{charge.id}/refund", body = charge, idempotency_key = format!("{}-refund", req.order),
                                 timeout = "300ms", retry(attempts = 3, backoff = "50ms")))]
        pub charge: Done,

        #[call(service = "loyalty", timeout = "500ms", required, post = "/points", body = reservation,
               idempotency_key = format!("{}-points", req.order),
               compensate = delete("/points/{points.id}"))]
        pub points: Done,

        #[call(service = "shipping", timeout = "500ms", required, post = "/shipments", body = (&charge, &points),
               idempotency_key = format!("{}-ship", req.order),
               compensate = post("/shipments/{shipment.id}/cancel", idempotency_key = format!("{}-cancel", shipment.id)))]
        pub shipment: Done,

        #[call(service = "notify", timeout = "500ms", required, post = "/confirmations", body = shipment,
               idempotency_key = format!("{}-confirm", req.order))]
        pub confirmation: Done,
    }
}

use place::{Place, PlaceInputs};

/// What a service does with a request.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reply {
    Ok,
    Status(u16),
    Hang,
}

/// One request a service received.
#[derive(Clone, Debug)]
struct Seen {
    service: &'static str,
    method: http::Method,
    path: String,
    idempotency_key: Option<String>,
    start: Duration,
    end: Option<Duration>,
    finished: bool,
}

type Script = Arc<dyn Fn(&str, &http::Method, &str, usize) -> Reply + Send + Sync>;

#[derive(Clone)]
struct Log {
    start: Instant,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Log {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The compensations' requests, in order.
    fn compensations(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(is_compensation).collect()
    }
}

fn is_compensation(s: &Seen) -> bool {
    s.method == http::Method::DELETE || s.path.ends_with("/refund") || s.path.ends_with("/cancel")
}

/// Marks a request ended (and whether it finished) when its future ends or is dropped.
struct Guard {
    log: Log,
    index: usize,
    finished: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let now = self.log.start.elapsed();
        let mut seen = self.log.seen.lock().unwrap();
        seen[self.index].end = Some(now);
        seen[self.index].finished = self.finished;
    }
}

/// Every service answers after 100 ms as `script` says (given service, method, path and how many
/// requests with that method and path came before).
fn runtime(script: impl Fn(&str, &http::Method, &str, usize) -> Reply + Send + Sync + 'static) -> (Runtime, Log) {
    runtime_on(Runtime::builder(services::ALL).read_env(false), script)
}

/// As [`runtime`], from `builder`.
fn runtime_on(
    mut builder: orchestrate::RuntimeBuilder,
    script: impl Fn(&str, &http::Method, &str, usize) -> Reply + Send + Sync + 'static,
) -> (Runtime, Log) {
    let log = Log { start: Instant::now(), seen: Arc::default() };
    let script: Script = Arc::new(script);
    for service in ["inventory", "payment", "loyalty", "shipping", "notify"] {
        let (log, script) = (log.clone(), script.clone());
        let transport = Transport::new(tower::service_fn(move |request: http::Request<Bytes>| {
            let (log, script) = (log.clone(), script.clone());
            async move {
                let path = request.uri().path().to_owned();
                let method = request.method().clone();
                let (index, nth) = {
                    let mut seen = log.seen.lock().unwrap();
                    let nth =
                        seen.iter().filter(|s| s.service == service && s.path == path && s.method == method).count();
                    seen.push(Seen {
                        service,
                        method: method.clone(),
                        path: path.clone(),
                        idempotency_key: request
                            .headers()
                            .get("idempotency-key")
                            .map(|v| v.to_str().unwrap().to_owned()),
                        start: log.start.elapsed(),
                        end: None,
                        finished: false,
                    });
                    (seen.len() - 1, nth)
                };
                let mut guard = Guard { log: log.clone(), index, finished: false };
                let reply = script(service, &method, &path, nth);
                if reply == Reply::Hang {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                guard.finished = true;
                let id = format!("{service}-1");
                let mut response = http::Response::new(Bytes::from(format!(r#"{{"id":"{id}"}}"#)));
                if let Reply::Status(status) = reply {
                    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                }
                Ok::<_, CallError>(response)
            }
        }));
        builder = builder.transport(service, transport);
    }
    (builder.build().unwrap(), log)
}

fn inputs() -> PlaceInputs {
    PlaceInputs { req: Order { order: "o1".into() } }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Confirmation fails: every other step committed.
fn confirm_fails(service: &str, _: &http::Method, _: &str, _: usize) -> Reply {
    if service == "notify" { Reply::Status(500) } else { Reply::Ok }
}

async fn body_of(failure: orchestrate::Failure) -> serde_json::Value {
    let response = axum::response::IntoResponse::into_response(failure);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_diamond_of_committed_steps_is_undone_dependents_first_one_after_the_other() {
    let (rt, log) = runtime(confirm_fails);
    let started = Instant::now();
    let failure = Place::run(&rt, inputs()).await.unwrap_err();

    // reserve 100 → charge, points 200 → ship 300 → confirm fails at 400; then four
    // compensations of 100 ms each, one after the other.
    assert_eq!(started.elapsed(), ms(800));
    assert!(matches!(failure.cause(), FailureCause::Required(_)));
    assert_eq!(failure.status(), http::StatusCode::BAD_GATEWAY);
    let undone: Vec<(&str, String)> =
        log.compensations().iter().map(|s| (s.service, format!("{} {}", s.method, s.path))).collect();
    assert_eq!(
        undone,
        [
            ("shipping", "POST /shipments/shipping-1/cancel".to_owned()),
            ("loyalty", "DELETE /points/loyalty-1".to_owned()),
            ("payment", "POST /charges/payment-1/refund".to_owned()),
            ("inventory", "DELETE /reservations/inventory-1".to_owned()),
        ],
        "the shipment first (it used charge and points), the reservation last (everything used it)"
    );
    let starts: Vec<Duration> = log.compensations().iter().map(|s| s.start).collect();
    assert_eq!(starts, [ms(400), ms(500), ms(600), ms(700)], "each starts when the one before it ended");
    assert!(log.compensations().iter().all(|s| s.finished));
    let keys: Vec<Option<String>> = log.compensations().iter().map(|s| s.idempotency_key.clone()).collect();
    assert_eq!(keys, [Some("shipping-1-cancel".into()), None, Some("o1-refund".into()), None]);

    assert_eq!(failure.compensated(), ["shipping", "loyalty", "payment", "inventory"]);
    assert!(failure.not_compensated().is_empty());
    let body = body_of(failure).await;
    assert_eq!(body["error"]["code"], "DOWNSTREAM_FAILURE");
    assert_eq!(body["error"]["failedServices"], serde_json::json!(["notify"]));
    assert_eq!(body["error"]["compensated"], serde_json::json!(["shipping", "loyalty", "payment", "inventory"]));
    assert!(body["error"].get("notCompensated").is_none());
}

#[tokio::test(start_paused = true)]
async fn a_failing_compensation_is_retried_with_its_own_policy_and_the_same_key() {
    // The refund fails twice, then succeeds (its policy: 3 attempts).
    let (rt, log) = runtime(|service, method, path, nth| match (service, method.as_str(), path.ends_with("/refund")) {
        ("notify", _, _) => Reply::Status(500),
        ("payment", "POST", true) if nth < 2 => Reply::Status(503),
        _ => Reply::Ok,
    });
    let failure = Place::run(&rt, inputs()).await.unwrap_err();
    let refunds: Vec<Seen> = log.compensations().into_iter().filter(|s| s.service == "payment").collect();
    assert_eq!(refunds.len(), 3, "{refunds:?}");
    assert!(refunds.iter().all(|s| s.idempotency_key.as_deref() == Some("o1-refund")));
    assert_eq!(failure.compensated(), ["shipping", "loyalty", "payment", "inventory"]);
    let payment = failure.compensations().iter().find(|c| c.call == "charge").unwrap();
    assert_eq!((payment.done, payment.attempts), (true, 3));
}

#[tokio::test(start_paused = true)]
async fn a_compensation_that_never_succeeds_is_reported_and_the_others_still_run() {
    let (rt, log) = runtime(|service, method, path, _| match (service, method.as_str(), path.ends_with("/refund")) {
        ("notify", _, _) => Reply::Status(500),
        ("payment", "POST", true) => Reply::Status(500),
        _ => Reply::Ok,
    });
    let failure = Place::run(&rt, inputs()).await.unwrap_err();
    assert_eq!(log.compensations().iter().filter(|s| s.service == "payment").count(), 3);
    assert_eq!(failure.compensated(), ["shipping", "loyalty", "inventory"]);
    assert_eq!(failure.not_compensated(), ["payment"]);
    let body = body_of(failure).await;
    assert_eq!(body["error"]["notCompensated"], serde_json::json!(["payment"]));
    assert_eq!(body["error"]["compensated"], serde_json::json!(["shipping", "loyalty", "inventory"]));
}

#[tokio::test(start_paused = true)]
async fn compensations_finish_after_the_client_has_gone() {
    let (rt, log) = runtime(confirm_fails);
    // The client goes away 50 ms after the failure, during the first compensation.
    let gone = tokio::time::timeout(ms(450), Place::run(&rt, inputs())).await;
    assert!(gone.is_err(), "the request was dropped before it answered");
    assert_eq!(log.compensations().len(), 1, "the first compensation is under way");
    tokio::time::sleep(ms(1000)).await;
    let undone = log.compensations();
    assert_eq!(undone.len(), 4, "{undone:?}");
    assert!(undone.iter().all(|s| s.finished), "none was cut short: {undone:?}");
    assert_eq!(undone.last().map(|s| s.service), Some("inventory"));
}

#[tokio::test(start_paused = true)]
async fn compensations_run_past_the_request_deadline_under_their_own_budget() {
    // Confirmation never answers (its 500 ms timeout fails the request at 900 ms); the first
    // attempt to cancel the shipment hangs for the compensation's 2 s timeout, so the others run
    // after the request's 2.5 s deadline.
    let (rt, log) = runtime(|service, _, path, nth| match service {
        "notify" => Reply::Hang,
        "shipping" if path.ends_with("/cancel") && nth == 0 => Reply::Hang,
        _ => Reply::Ok,
    });
    let started = Instant::now();
    let failure = Place::run(&rt, inputs()).await.unwrap_err();
    assert_eq!(failure.status(), http::StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(failure.compensated(), ["shipping", "loyalty", "payment", "inventory"]);
    let deadline = ms(2500);
    assert!(started.elapsed() > deadline + ms(300));
    let undone = log.compensations();
    assert_eq!(undone.len(), 5, "the cancel twice, then the other three: {undone:?}");
    assert!(!undone[0].finished, "the first cancel was cut by its own timeout");
    assert!(undone[1..].iter().all(|s| s.finished && s.start > deadline), "{undone:?}");
}

#[tokio::test(start_paused = true)]
async fn a_success_compensates_nothing_and_a_failure_before_any_commit_neither() {
    let (rt, log) = runtime(|_, _, _, _| Reply::Ok);
    let outcome = Place::run(&rt, inputs()).await.unwrap();
    assert_eq!(outcome.value.confirmation.id, "notify-1");
    assert!(log.compensations().is_empty());

    let (rt, log) = runtime(|service, _, _, _| if service == "inventory" { Reply::Status(500) } else { Reply::Ok });
    let failure = Place::run(&rt, inputs()).await.unwrap_err();
    assert!(log.compensations().is_empty());
    assert!(failure.compensations().is_empty());
    assert!(body_of(failure).await["error"].get("compensated").is_none());
}

#[test]
fn the_spec_describes_each_compensation() {
    let charge = Place::SPEC.nodes.iter().find(|n| n.name == "charge").unwrap();
    let orchestrate::NodeKind::Call(call) = &charge.kind else { panic!() };
    let compensation = call.compensation.unwrap();
    assert_eq!((compensation.method, compensation.path), (orchestrate::Method::Post, "/charges/{charge.id}/refund"));
    assert_eq!(compensation.policy.retry.attempts, 3);
    assert_eq!(compensation.policy.timeout, ms(300));
    assert!(compensation.idempotency_key);
}

// ---------------------------------------------------------------------------------------------
// The checkout example's place-order saga, end to end over real HTTP against its mocks.

mod support;

#[path = "../examples/checkout/app.rs"]
mod app;

#[tokio::test(start_paused = true)]
async fn a_journal_that_cannot_be_reached_degrades_and_the_saga_still_runs() {
    // Nothing listens on port 1: every journal write fails (and is logged and counted).
    let builder = Runtime::builder(services::ALL).read_env(false).redis_url("redis://127.0.0.1:1/0");
    let (rt, log) = runtime_on(builder, confirm_fails);
    let failure = run_as(&rt, "order-1").await.unwrap_err();
    assert_eq!(failure.status(), http::StatusCode::BAD_GATEWAY, "the failure's own status, no 5xx of the journal");
    assert_eq!(failure.compensated(), ["shipping", "loyalty", "payment", "inventory"]);
    assert_eq!(log.compensations().len(), 4);
    assert!(rt.journal().get("order-1").await.is_err(), "the journal really was unreachable");
    let (rt, _log) =
        runtime_on(Runtime::builder(services::ALL).read_env(false).redis_url("redis://127.0.0.1:1/0"), |_, _, _, _| {
            Reply::Ok
        });
    assert!(run_as(&rt, "order-2").await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_run_dropped_midway_is_resumed_once_its_lease_expired() {
    let (rt, log) = runtime(|service, _, _, _| if service == "notify" { Reply::Hang } else { Reply::Ok });
    // The client goes away while the confirmation hangs: four steps had committed.
    assert!(tokio::time::timeout(ms(350), run_as(&rt, "order-1")).await.is_err());
    assert!(log.compensations().is_empty(), "nothing undone by the dropped run itself");
    let record = rt.journal().get("order-1").await.unwrap().unwrap();
    assert_eq!(record.state, orchestrate::journal::SagaState::Running);

    let resumed = orchestrate::saga::resume(&rt).await;
    assert_eq!((resumed.compensated, resumed.held), (0, 1), "its lease still runs");
    tokio::time::sleep(rt.journal().settings().lease).await;
    let resumed = orchestrate::saga::resume(&rt).await;
    assert_eq!((resumed.compensated, resumed.request_ids), (1, vec!["order-1".to_owned()]));
    let undone: Vec<&str> = log.compensations().iter().map(|s| s.service).collect();
    assert_eq!(undone.len(), 4, "{undone:?}");
    assert_eq!((undone[0], undone[3]), ("shipping", "inventory"), "later steps first: {undone:?}");
    let record = rt.journal().get("order-1").await.unwrap().unwrap();
    assert_eq!(record.state, orchestrate::journal::SagaState::Compensated);
    assert_eq!(orchestrate::saga::resume(&rt).await, orchestrate::saga::Resumed::default());
}

#[tokio::test]
async fn the_operations_page_points_a_saga_endpoint_at_its_journal() {
    use tower::ServiceExt;
    let (rt, _log) = runtime(|_, _, _, _| Reply::Ok);
    let app = orchestrate::ops::router(&rt, place::ENDPOINTS);
    let request = http::Request::get("/_orchestrate").body(axum::body::Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let page = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(page.contains("a saga: each request's journal record at <code>/_orchestrate/sagas/{request_id}</code>"));
    assert!(page.contains("client retries replayed by <code>Idempotency-Key</code>"));
}

/// Runs `Place` as the router would for a request with `x-request-id: <id>`.
async fn run_as(rt: &Runtime, id: &str) -> Result<orchestrate::Outcome<Place>, orchestrate::Failure> {
    let context = orchestrate::RequestContext::default().with_header("x-request-id", id);
    Place::execute(rt, inputs(), context).await
}

async fn ops_get(rt: &Runtime, path: &str) -> (http::StatusCode, serde_json::Value) {
    use tower::ServiceExt;
    let app = orchestrate::ops::router(rt, &[]);
    let request = http::Request::get(path).body(axum::body::Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test(start_paused = true)]
async fn the_journal_keeps_every_step_and_compensation_and_the_operations_route_shows_it() {
    let (rt, _log) = runtime(confirm_fails);
    run_as(&rt, "order-1").await.unwrap_err();
    let (status, record) = ops_get(&rt, "/_orchestrate/sagas/order-1").await;
    assert_eq!(status, http::StatusCode::OK, "{record}");
    assert_eq!(record["requestId"], "order-1");
    assert_eq!(record["endpoint"], "Place");
    assert_eq!(record["state"], "compensated");
    let steps: Vec<(String, String, String, String)> = record["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
            (text(&s["call"]), text(&s["idempotencyKey"]), text(&s["outcome"]), text(&s["compensation"]["state"]))
        })
        .collect();
    let step = |call: &str, key: &str, outcome: &str, undo: &str| {
        (call.to_owned(), key.to_owned(), outcome.to_owned(), undo.to_owned())
    };
    assert_eq!(steps.len(), 5, "{record}");
    assert_eq!(steps[0], step("reservation", "o1-reserve", "committed", "done"));
    assert!(steps.contains(&step("charge", "o1-charge", "committed", "done")), "{record}");
    assert!(steps.contains(&step("points", "o1-points", "committed", "done")), "{record}");
    assert_eq!(steps[3], step("shipment", "o1-ship", "committed", "done"));
    assert_eq!(steps[4], step("confirmation", "o1-confirm", "failed", "-"));
    // The compensation's whole request is kept, to be sent again from another process.
    let refund = record["steps"].as_array().unwrap().iter().find(|s| s["call"] == "charge").unwrap();
    let request = &refund["compensation"]["request"];
    assert_eq!(
        (request["method"].as_str(), request["path"].as_str()),
        (Some("POST"), Some("/charges/payment-1/refund"))
    );
    assert_eq!(request["body"], r#"{"id":"payment-1"}"#);
    let headers = request["headers"].as_array().unwrap();
    assert!(headers.contains(&serde_json::json!(["idempotency-key", "o1-refund"])), "{headers:?}");
    assert_eq!(refund["compensation"]["sent"], 1);

    let (status, body) = ops_get(&rt, "/_orchestrate/sagas/order-2").await;
    assert_eq!(status, http::StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "SAGA_NOT_FOUND");
}

#[tokio::test(start_paused = true)]
async fn a_run_that_succeeds_is_finished_in_the_journal_with_nothing_compensated() {
    let (rt, _log) = runtime(|_, _, _, _| Reply::Ok);
    run_as(&rt, "order-ok").await.unwrap();
    tokio::time::sleep(ms(1)).await;
    let record = rt.journal().get("order-ok").await.unwrap().unwrap();
    assert_eq!(record.state, orchestrate::journal::SagaState::Finished);
    assert_eq!(record.steps.len(), 5);
    let pending = record.steps.iter().filter_map(|s| s.compensation.as_ref()).map(|c| c.state).collect::<Vec<_>>();
    assert_eq!(pending, [orchestrate::journal::CompensationState::Pending; 4]);
}

mod place_order {
    use super::app;
    use super::support;
    use super::support::mocks::{Fault, Mocks};
    use serde_json::json;

    async fn checkout(mocks: &Mocks) -> String {
        checkout_with_runtime(mocks).await.0
    }

    async fn checkout_with_runtime(mocks: &Mocks) -> (String, orchestrate::Runtime) {
        let runtime = mocks.runtime(app::services::ALL).build().unwrap();
        (support::serve(orchestrate::router::app(app::checkout::router(&runtime))).await, runtime)
    }

    async fn place(url: &str, key: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{url}/checkout/place-order"))
            .header("idempotency-key", key)
            .json(&json!({"cartId": "c1", "userId": "u1", "paymentMethod": "card"}))
            .send()
            .await
            .unwrap()
    }

    fn paths(mocks: &Mocks, service: &str) -> Vec<String> {
        mocks.get(service).seen().iter().map(|s| format!("{} {}", s.method, s.path)).collect()
    }

    #[tokio::test]
    async fn an_order_is_reserved_charged_and_shipped() {
        let mocks = Mocks::start(0.0).await.unwrap();
        let url = checkout(&mocks).await;
        let response = place(&url, "order-1").await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({
                "reservation": {"id": "res-c1"},
                "payment": {"id": "ch-res-c1", "amount": 14997},
                "shipment": {"id": "shp-res-c1", "status": "created"},
                "partialData": false
            })
        );
        let charge = &mocks.get("payment").seen()[0];
        assert_eq!(charge.headers["idempotency-key"], "u1:c1:charge");
        assert_eq!(paths(&mocks, "inventory"), ["POST /reservations"]);
    }

    #[tokio::test]
    async fn a_failed_shipment_refunds_the_charge_and_releases_the_reservation_once() {
        let mocks = Mocks::start(0.0).await.unwrap();
        mocks.get("shipping").set_fault(Fault::Status(500));
        let (url, runtime) = checkout_with_runtime(&mocks).await;
        let response = place(&url, "order-2").await;
        assert_eq!(response.status(), 502);
        // The journal has the side-effecting steps (pricing, a POST marked `idempotent`, is none).
        let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        let record = runtime.journal().get(&id).await.unwrap().unwrap();
        let steps: Vec<&str> = record.steps.iter().map(|s| s.call.as_str()).collect();
        assert_eq!(steps, ["reservation", "payment", "shipment"]);
        assert_eq!(record.state, orchestrate::journal::SagaState::Compensated);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["failedServices"], json!(["shipping"]));
        assert_eq!(body["error"]["compensated"], json!(["payment", "inventory"]));
        assert_eq!(paths(&mocks, "payment"), ["POST /charges", "POST /charges/ch-res-c1/refund"]);
        assert_eq!(paths(&mocks, "inventory"), ["POST /reservations", "POST /reservations/res-c1/release"]);
        let refund = &mocks.get("payment").seen()[1];
        assert_eq!(refund.headers["idempotency-key"], "ch-res-c1:refund");
        let sent: serde_json::Value = serde_json::from_slice(&refund.body).unwrap();
        assert_eq!(sent, json!({"chargeId": "ch-res-c1", "amount": 14997}));

        // The client retries with the same key: the same answer, nothing charged or undone again.
        let retry = place(&url, "order-2").await;
        assert_eq!(retry.status(), 502);
        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        assert_eq!(retry.json::<serde_json::Value>().await.unwrap(), body);
        assert_eq!(mocks.get("payment").requests(), 2);
        assert_eq!(mocks.get("inventory").requests(), 2);
    }
}

/// A crash between a failure and the end of its compensations, against a real `redis-server`:
/// process A (this test binary, re-invoked in child mode) runs sagas whose shipment fails and
/// whose refunds hang at the payment mock; A is killed by its PID; runtimes on the same Redis
/// resume the sagas and complete them. The mocks are real HTTP servers started by the test; the
/// payment and inventory mocks apply an effect once per idempotency key, as real services do.
mod crash {
    use super::support;
    use orchestrate::prelude::*;
    use orchestrate::{RequestContext, Runtime};
    use std::collections::HashMap;
    use std::process::{Child, Command, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    orchestrate::services! {
        inventory: "http://inventory.invalid",
        payment: "http://payment.invalid",
        shipping: "http://shipping.invalid",
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Order {
        pub order: String,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Id {
        pub id: String,
    }

    #[orchestrate::api]
    pub mod checkout {
        use super::*;

        /// reserve → charge → ship; the refund and the release carry idempotency keys.
        #[endpoint(POST "/place-order", timeout = "3s", saga)]
        #[derive(Debug, Serialize)]
        pub struct PlaceOrder {
            #[input(body)]
            #[serde(skip)]
            pub req: Order,

            #[call(service = "inventory", timeout = "1s", required, post = "/reservations", body = req,
                   idempotency_key = format!("{}-reserve", req.order),
                   compensate = post("/reservations/{reservation.id}/release", idempotency_key = format!("{}-release", req.order)))]
            pub reservation: Id,

            #[call(service = "payment", timeout = "1s", required, post = "/charges", body = reservation,
                   idempotency_key = format!("{}-charge", req.order),
                   compensate = post("/charges/{charge.id}/refund", body = charge, idempotency_key = format!("{}-refund", req.order),
                                     timeout = "20s"))]
            pub charge: Id,

            #[call(service = "shipping", timeout = "1s", required, post = "/shipments", body = charge,
                   idempotency_key = format!("{}-ship", req.order))]
            pub shipment: Id,
        }
    }

    const CHILD: &str = "ORCHESTRATE_TEST_SAGA_CHILD";
    const ORDERS: [&str; 4] = ["o1", "o2", "o3", "o4"];

    /// What the compensation mocks received, per idempotency key: deliveries and effects.
    #[derive(Default)]
    struct Effects {
        delivered: HashMap<String, usize>,
        applied: HashMap<String, usize>,
    }

    type Shared = Arc<Mutex<Effects>>;

    /// The three mocks on one loopback server (each service's base URL is a path prefix). A
    /// refund's first delivery per key is applied and then never answered (the answer is lost).
    async fn mocks(effects: Shared) -> String {
        use axum::extract::{Path, State};
        use axum::http::HeaderMap;
        use axum::routing::post;
        async fn effect(effects: &Shared, headers: &HeaderMap) -> usize {
            let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
            let mut effects = effects.lock().unwrap();
            let delivered = effects.delivered.entry(key.clone()).or_default();
            *delivered += 1;
            let n = *delivered;
            // Deduplicated by key: the effect happens once, whatever the deliveries.
            effects.applied.entry(key).or_insert(1);
            n
        }
        let app = axum::Router::new()
            .route("/inventory/reservations", post(|| async { axum::Json(serde_json::json!({"id": "res-1"})) }))
            .route(
                "/inventory/reservations/{id}/release",
                post(|State(e): State<Shared>, headers: HeaderMap, Path(_id): Path<String>| async move {
                    effect(&e, &headers).await;
                    axum::Json(serde_json::json!({"released": true}))
                }),
            )
            .route("/payment/charges", post(|| async { axum::Json(serde_json::json!({"id": "ch-1"})) }))
            .route(
                "/payment/charges/{id}/refund",
                post(|State(e): State<Shared>, headers: HeaderMap, Path(_id): Path<String>| async move {
                    if effect(&e, &headers).await == 1 {
                        std::future::pending::<()>().await;
                    }
                    axum::Json(serde_json::json!({"refunded": true}))
                }),
            )
            .route("/shipping/shipments", post(|| async { (http::StatusCode::INTERNAL_SERVER_ERROR, "{}") }))
            .with_state(effects);
        support::serve(app).await
    }

    fn runtime(redis_url: &str, mocks: &str) -> Runtime {
        Runtime::builder(services::ALL)
            .read_env(false)
            .redis_url(redis_url)
            .saga(orchestrate::journal::SagaSettings::new(Duration::from_secs(1), Duration::from_secs(600)))
            .base_url("inventory", format!("{mocks}/inventory"))
            .base_url("payment", format!("{mocks}/payment"))
            .base_url("shipping", format!("{mocks}/shipping"))
            .build()
            .unwrap()
    }

    /// Process A: runs every order's saga and waits to be killed.
    async fn child(setting: &str) -> ! {
        let (redis_url, mocks) = setting.split_once(' ').unwrap();
        let runtime = runtime(redis_url, mocks);
        for order in ORDERS {
            let runtime = runtime.clone();
            tokio::spawn(async move {
                let context = RequestContext::default().with_header("x-request-id", &format!("crash-{order}"));
                let inputs = checkout::PlaceOrderInputs { req: Order { order: order.to_owned() } };
                let _ = <checkout::PlaceOrder as orchestrate::Endpoint>::execute(&runtime, inputs, context).await;
            });
        }
        // Killed long before; never outlives a test run that went wrong.
        tokio::time::sleep(Duration::from_secs(60)).await;
        std::process::exit(1)
    }

    /// Process A, killed (SIGKILL by its PID) when dropped if the test has not killed it.
    struct ChildProcess(Child);

    impl ChildProcess {
        fn kill(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    impl Drop for ChildProcess {
        fn drop(&mut self) {
            self.kill();
        }
    }

    /// Starts process A on `redis_url` against `mocks`.
    fn spawn_child(redis_url: &str, mocks: &str) -> ChildProcess {
        let exe = std::env::current_exe().unwrap();
        let child = Command::new(exe)
            .args(["crash::killed_between_failure_and_compensations_then_resumed_once_elsewhere", "--exact"])
            .env(CHILD, format!("{redis_url} {mocks}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        ChildProcess(child)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killed_between_failure_and_compensations_then_resumed_once_elsewhere() {
        if let Ok(setting) = std::env::var(CHILD) {
            child(&setting).await;
        }
        let Some(redis) = support::redis::RedisServer::start() else { return };
        let effects = Shared::default();
        let mocks = mocks(effects.clone()).await;
        let mut a = spawn_child(&redis.url(), &mocks);

        // Every refund reached the payment mock (and hangs there): A is between the failure and
        // the end of its compensations. Kill it (SIGKILL by PID).
        let waited = std::time::Instant::now();
        while ORDERS.iter().any(|o| !effects.lock().unwrap().delivered.contains_key(&format!("{o}-refund"))) {
            assert!(waited.elapsed() < Duration::from_secs(20), "process A never sent its refunds");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        a.kill();
        {
            let effects = effects.lock().unwrap();
            assert!(
                ORDERS.iter().all(|o| !effects.delivered.contains_key(&format!("{o}-release"))),
                "A released nothing"
            );
        }

        // Two instances resume at once, until A's leases have expired and every saga is taken.
        let (b, c) = (runtime(&redis.url(), &mocks), runtime(&redis.url(), &mocks));
        let (mut by_b, mut by_c) = (Vec::new(), Vec::new());
        let waited = std::time::Instant::now();
        while by_b.len() + by_c.len() < ORDERS.len() {
            assert!(waited.elapsed() < Duration::from_secs(20), "not resumed: {by_b:?} {by_c:?}");
            let (rb, rc) = tokio::join!(orchestrate::saga::resume(&b), orchestrate::saga::resume(&c));
            assert_eq!(rb.incomplete + rc.incomplete, 0);
            by_b.extend(rb.request_ids);
            by_c.extend(rc.request_ids);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut all: Vec<&String> = by_b.iter().chain(&by_c).collect();
        all.sort();
        let expected: Vec<String> = ORDERS.iter().map(|o| format!("crash-{o}")).collect();
        assert_eq!(all, expected.iter().collect::<Vec<_>>(), "each saga resumed by exactly one instance");

        let effects = std::mem::take(&mut *effects.lock().unwrap());
        for order in ORDERS {
            let (refund, release) = (format!("{order}-refund"), format!("{order}-release"));
            // The refund was delivered twice (A's lost answer, then the resumer's), took effect once.
            assert_eq!(effects.delivered.get(&refund), Some(&2), "{order}");
            assert_eq!(effects.applied.get(&refund), Some(&1), "{order}");
            // The release, never sent by A, was sent once by one resumer.
            assert_eq!(effects.delivered.get(&release), Some(&1), "{order}");
            assert_eq!(effects.applied.get(&release), Some(&1), "{order}");
        }
        for id in &expected {
            let record = b.journal().get(id).await.unwrap().unwrap();
            assert_eq!(record.state, orchestrate::journal::SagaState::Compensated, "{id}");
            let owner = if by_b.contains(id) { b.journal().owner() } else { c.journal().owner() };
            assert_eq!(record.owner, owner);
            assert!(
                record
                    .steps
                    .iter()
                    .filter_map(|s| s.compensation.as_ref())
                    .all(|c| c.state == orchestrate::journal::CompensationState::Done)
            );
        }
        // Nothing is left to resume.
        let again = orchestrate::saga::resume(&b).await;
        assert_eq!((again.compensated, again.held), (0, 0));
    }
}

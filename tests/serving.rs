//! The checkout BFF over real HTTP on loopback: the contract's exact JSON, the bad-input matrix
//! (rejected before any downstream call), injection attempts in path values, and the header
//! allow-list.

mod support;

#[path = "../examples/checkout/app.rs"]
mod app;

use orchestrate::Runtime;
use serde_json::{Value, json};
use support::mocks::{Fault, Mocks};

struct Bff {
    url: String,
    mocks: Mocks,
    http: reqwest::Client,
}

/// Mocks with the template's latencies (`scale` 1.0) or faster, the BFF in front of them.
async fn start(scale: f64) -> Bff {
    let mocks = Mocks::start(scale).await.unwrap();
    let builder = mocks.runtime(app::services::ALL);
    let runtime = builder.build().unwrap();
    let url = support::serve(orchestrate::router::app(app::checkout::router(&runtime))).await;
    Bff { url, mocks, http: reqwest::Client::new() }
}

impl Bff {
    async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, http::HeaderMap, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    async fn summary(&self, body: Value) -> (u16, http::HeaderMap, Value) {
        self.post("/checkout/summary", "application/json", body.to_string()).await
    }

    fn downstream_requests(&self) -> u64 {
        self.mocks.all().map(|m| m.requests()).sum()
    }
}

#[tokio::test]
async fn checkout_answers_the_contract_exactly() {
    let bff = start(1.0).await;
    let (status, headers, body) = bff.summary(json!({"cartId": "c1", "userId": "u1"})).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers.get("x-partial-data").is_none());
    assert_eq!(body, support::contract::expected_summary());
    assert_eq!(body["total"], 16234);
    // Each service was called once, with the contract's request bodies.
    assert_eq!(bff.mocks.get("cart").seen()[0].path, "/carts/c1");
    let pricing: Value = serde_json::from_slice(&bff.mocks.get("pricing").seen()[0].body).unwrap();
    assert_eq!(
        pricing,
        json!({"items": [{"sku": "sku-1", "qty": 1, "price": 4999}, {"sku": "sku-2", "qty": 2, "price": 4999}]})
    );
    let tax: Value = serde_json::from_slice(&bff.mocks.get("tax").seen()[0].body).unwrap();
    assert_eq!(tax, json!({"subtotal": 14997}));
    for mock in bff.mocks.all() {
        assert_eq!(mock.requests(), 1, "{}", mock.name);
    }
}

#[tokio::test]
async fn optional_shipping_failure_is_a_partial_answer() {
    let bff = start(0.1).await;
    bff.mocks.get("shipping").set_fault(Fault::Status(503));
    let (status, headers, body) = bff.summary(json!({"cartId": "c1", "userId": "u1"})).await;
    assert_eq!(status, 200);
    assert_eq!(body["shipping"], Value::Null);
    assert_eq!(body["partialData"], true);
    assert_eq!(body["failedServices"], json!(["shipping"]));
    assert_eq!(body["total"], 16234);
    assert_eq!(headers["x-partial-data"], "true");
    assert_eq!(headers["x-failed-services"], "shipping");
}

#[tokio::test]
async fn bad_input_is_rejected_before_any_downstream_call() {
    let bff = start(0.1).await;
    let big = format!("{{\"cartId\":\"{}\",\"userId\":\"u1\"}}", "x".repeat(2 * 1024 * 1024));
    // name, method, content type, body, status, error code, field named.
    type Case<'a> = (&'a str, &'a str, &'a str, String, u16, &'a str, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "missing field",
            "POST",
            "application/json",
            json!({"cartId": "c1"}).to_string(),
            422,
            "INVALID_BODY",
            Some("userId"),
        ),
        (
            "wrong type",
            "POST",
            "application/json",
            json!({"cartId": 7, "userId": "u1"}).to_string(),
            422,
            "INVALID_BODY",
            Some("cartId"),
        ),
        ("not JSON", "POST", "application/json", "{\"cartId\": \"c1\",".to_owned(), 400, "MALFORMED_JSON", None),
        (
            "wrong content type",
            "POST",
            "text/plain",
            json!({"cartId": "c1", "userId": "u1"}).to_string(),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            None,
        ),
        (
            "no content type",
            "POST",
            "",
            json!({"cartId": "c1", "userId": "u1"}).to_string(),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            None,
        ),
        ("oversize", "POST", "application/json", big, 413, "PAYLOAD_TOO_LARGE", None),
    ];
    for (name, _, content_type, body, status, code, field) in cases {
        let mut request = bff.http.post(format!("{}/checkout/summary", bff.url)).body(body);
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{name}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{name}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{name}");
        if let Some(field) = field {
            assert_eq!(body["error"]["field"], field, "{name}: {body}");
            assert!(body["error"]["message"].as_str().unwrap().contains(field), "{name}: {body}");
        }
    }
    // Unknown route and wrong method: JSON 404 / 405 with `Allow`.
    let response = bff.http.post(format!("{}/checkout/nope", bff.url)).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], "NOT_FOUND");
    let response = bff.http.get(format!("{}/checkout/summary", bff.url)).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], "METHOD_NOT_ALLOWED");

    assert_eq!(bff.downstream_requests(), 0, "a rejected request reached a downstream service");
}

#[tokio::test]
async fn path_values_cannot_change_the_downstream_path() {
    let bff = start(0.0).await;
    for (cart_id, expected_path) in [
        ("../admin", "/carts/%2E%2E%2Fadmin"),
        ("a?b#c", "/carts/a%3Fb%23c"),
        ("%2e%2e", "/carts/%252e%252e"),
        ("c1/../../admin", "/carts/c1%2F%2E%2E%2F%2E%2E%2Fadmin"),
        ("@evil.example", "/carts/%40evil%2Eexample"),
    ] {
        bff.mocks.reset();
        let (status, _, body) = bff.summary(json!({"cartId": cart_id, "userId": "u1"})).await;
        assert_eq!(status, 200, "{cart_id}: {body}");
        let seen = bff.mocks.get("cart").seen();
        assert_eq!(seen.len(), 1, "{cart_id}");
        assert_eq!(seen[0].path, expected_path, "{cart_id}");
        // The cart service decoded exactly the id the client sent: one segment, nothing more.
        assert_eq!(body["cart"]["id"], cart_id);
    }
    // A whole segment of dots would be resolved away by any URL parser: refused, nothing sent.
    for cart_id in ["..", ".", ""] {
        bff.mocks.reset();
        let (status, _, body) = bff.summary(json!({"cartId": cart_id, "userId": "u1"})).await;
        assert_eq!(status, 400, "{cart_id:?}: {body}");
        assert_eq!(body["error"]["code"], "INVALID_INPUT");
        assert_eq!(bff.downstream_requests(), 0, "{cart_id:?}");
    }
}

#[tokio::test]
async fn only_allow_listed_headers_reach_downstream_services() {
    let bff = start(0.0).await;
    let response = bff
        .http
        .post(format!("{}/checkout/summary", bff.url))
        .header("content-type", "application/json")
        .header("authorization", "Bearer t0ken")
        .header("x-request-id", "req-42")
        .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .header("cookie", "session=secret")
        .header("x-internal-admin", "1")
        .header("proxy-authorization", "Basic eA==")
        .body(json!({"cartId": "c1", "userId": "u1"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    for mock in bff.mocks.all() {
        let headers = &mock.seen()[0].headers;
        assert_eq!(headers["authorization"], "Bearer t0ken", "{}", mock.name);
        assert_eq!(headers["x-request-id"], "req-42", "{}", mock.name);
        // The client's trace, with the call as the parent (tests/observability.rs has the rest).
        let traceparent = headers["traceparent"].to_str().unwrap();
        assert!(traceparent.starts_with("00-0af7651916cd43dd8448eb211c80319c-"), "{}: {traceparent}", mock.name);
        assert!(!traceparent.contains("-b7ad6b7169203331-"), "{}: {traceparent}", mock.name);
        for private in ["cookie", "x-internal-admin", "proxy-authorization"] {
            assert!(headers.get(private).is_none(), "{} received {private}", mock.name);
        }
    }
}

mod queries_and_headers {
    //! Values interpolated into a query string or a header stay one value.
    use super::*;
    use orchestrate::prelude::*;

    orchestrate::services! {
        search: "http://search.internal",
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub struct Echo {
        path: String,
        tenant: Option<String>,
    }

    #[orchestrate::api]
    pub mod api {
        use super::*;

        #[endpoint(GET "/search/{kind}", timeout = "1s")]
        #[derive(Debug, Serialize)]
        pub struct Search {
            #[input(path)]
            #[serde(skip)]
            kind: String,
            #[input(query = "q")]
            #[serde(skip)]
            q: String,
            #[input(header = "x-tenant")]
            #[serde(skip)]
            tenant: Option<String>,
            #[call(service = "search", timeout = "500ms", required, get = "/find/{kind}?q={q}&limit=10", headers = tenant.iter().map(|t| ("x-tenant", t)))]
            result: Echo,
        }
    }

    /// Echoes the path and query it received and the `x-tenant` header.
    async fn echo(request: axum::extract::Request) -> axum::Json<Echo> {
        let path = request.uri().path_and_query().map(ToString::to_string).unwrap_or_default();
        let tenant = request.headers().get("x-tenant").and_then(|v| v.to_str().ok()).map(str::to_owned);
        axum::Json(Echo { path, tenant })
    }

    #[tokio::test]
    async fn query_and_header_values_are_encoded_or_refused() {
        let downstream = support::serve(axum::Router::new().fallback(echo)).await;
        let runtime = Runtime::builder(services::ALL).read_env(false).base_url("search", downstream).build().unwrap();
        let url = support::serve(orchestrate::router::app(api::router(&runtime))).await;
        let http = reqwest::Client::new();

        let response = http
            .get(format!("{url}/search/books"))
            .query(&[("q", "a&limit=1000#frag")])
            .header("x-tenant", "acme")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["result"]["path"], "/find/books?q=a%26limit%3D1000%23frag&limit=10");
        assert_eq!(body["result"]["tenant"], "acme");

        // A path parameter decoded by the router is re-encoded as one segment downstream.
        let response = http.get(format!("{url}/search/a%2Fb")).query(&[("q", "x")]).send().await.unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["result"]["path"], "/find/a%2Fb?q=x&limit=10");

        // Bad inputs: a missing query parameter is a 400 naming it.
        let response = http.get(format!("{url}/search/books")).send().await.unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["field"], "q");
        assert_eq!(body["error"]["location"], "query");
    }
}

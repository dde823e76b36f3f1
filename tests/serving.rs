//! The checkout BFF over real HTTP on loopback: the contract's exact JSON, the bad-input matrix
//! (rejected before any downstream call), injection attempts in path values, and the header
//! allow-list; and the listener's protection against slow and abusive clients (`orchestrate::server`).

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

/// The listener's protection against slow and abusive clients (`orchestrate::server`), with short
/// limits so the test is quick.
mod slow_clients {
    use super::*;
    use orchestrate::server::{self, ServerLimits};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    const SHORT: Duration = Duration::from_millis(300);

    /// Serves `app` through `orchestrate::server` with `limits`; its address.
    async fn listen(app: axum::Router, limits: ServerLimits) -> std::net::SocketAddr {
        orchestrate::ops::metrics::install().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { server::serve(listener, app).limits(limits).await.unwrap() });
        addr
    }

    /// `orchestrate_server_refused_total{reason}` so far (every test of this binary counts in it).
    fn refused(reason: &str) -> f64 {
        let text = orchestrate::ops::metrics::installed().unwrap().render();
        let prefix = format!("orchestrate_server_refused_total{{reason=\"{reason}\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&prefix)).map_or(0.0, |n| n.parse().unwrap())
    }

    /// The checkout BFF over zero-latency mocks, with the runtime's server limits from the
    /// configuration file.
    async fn checkout(config: &str) -> (axum::Router, Runtime, Mocks) {
        let mocks = Mocks::start(0.0).await.unwrap();
        let runtime = mocks.runtime(app::services::ALL).config_str(config).build().unwrap();
        (orchestrate::router::app(app::checkout::router(&runtime)), runtime, mocks)
    }

    /// Reads until the server closes the connection (or resets it), at most `within`.
    async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        tokio::time::timeout(within, async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await
        .ok()?;
        Some(seen)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn trickling_headers_are_cut_while_a_normal_client_is_served() {
        let (app, runtime, _mocks) = checkout("[server]\nheader_read_timeout = \"300ms\"\n").await;
        assert_eq!(runtime.server_limits().header_read_timeout, SHORT);
        let addr = listen(app, runtime.server_limits()).await;
        const TRICKLING: usize = 1000;
        let connected = Arc::new(AtomicUsize::new(0));
        let mut trickling = Vec::with_capacity(TRICKLING);
        for _ in 0..TRICKLING {
            let connected = Arc::clone(&connected);
            trickling.push(tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                connected.fetch_add(1, Ordering::SeqCst);
                // One byte of a request head every 100 ms, never finishing it; what the server
                // sent back once it closed the connection.
                let head = b"POST /checkout/summary HTTP/1.1\r\nhost: bff\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
                let mut buf = [0u8; 1024];
                let mut answered = Vec::new();
                for byte in head.iter().cycle() {
                    if stream.write_all(&[*byte]).await.is_err() {
                        break;
                    }
                    match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
                        Err(_) => continue,
                        Ok(Ok(0) | Err(_)) => break,
                        Ok(Ok(n)) => answered.extend_from_slice(&buf[..n]),
                    }
                }
                answered
            }));
        }
        while connected.load(Ordering::SeqCst) < TRICKLING {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // While they trickle, an ordinary client's requests are all answered.
        let http = reqwest::Client::new();
        for _ in 0..20 {
            let response = http
                .post(format!("http://{addr}/checkout/summary"))
                .header("content-type", "application/json")
                .body(r#"{"cartId":"c1","userId":"u1"}"#)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.json::<Value>().await.unwrap(), support::contract::expected_summary());
        }
        // Every trickling connection was closed by the server, without an answer: hyper has no
        // request to answer until the head is complete.
        for task in trickling {
            let answered = tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("a trickling connection was not closed by the header read timeout")
                .unwrap();
            assert!(answered.is_empty(), "{}", String::from_utf8_lossy(&answered));
        }
        assert!(refused("header_timeout") >= TRICKLING as f64, "{}", refused("header_timeout"));
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_closed_after_the_header_read_timeout() {
        let (app, runtime, _mocks) = checkout("[server]\nheader_read_timeout = \"300ms\"\n").await;
        let addr = listen(app, runtime.server_limits()).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /health/nothing HTTP/1.1\r\nhost: bff\r\n\r\n").await.unwrap();
        let seen =
            read_until_closed(&mut stream, Duration::from_secs(5)).await.expect("the idle connection stayed open");
        let text = String::from_utf8_lossy(&seen);
        assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    }

    /// Sends a JSON request head announcing 64 bytes and then one byte every 100 ms; the answer.
    async fn trickle_body(addr: std::net::SocketAddr) -> (u16, Value) {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut read, mut write) = stream.into_split();
        let writer = tokio::spawn(async move {
            let head = "POST /checkout/summary HTTP/1.1\r\nhost: bff\r\ncontent-type: application/json\r\ncontent-length: 64\r\n\r\n{";
            write.write_all(head.as_bytes()).await.unwrap();
            for _ in 0..62 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if write.write_all(b" ").await.is_err() {
                    return;
                }
            }
        });
        let mut seen = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), read.read_to_end(&mut seen))
            .await
            .expect("no answer to a trickled body")
            .ok();
        writer.abort();
        let text = String::from_utf8_lossy(&seen).into_owned();
        let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn a_trickled_body_is_answered_408_under_both_listeners() {
        let (app, runtime, mocks) = checkout("[server]\nbody_read_timeout = \"300ms\"\n").await;
        let ours = listen(app.clone(), runtime.server_limits()).await;
        // `axum::serve` has no body limit of its own: the router applies the runtime's.
        let plain = support::serve(app).await;
        let plain: std::net::SocketAddr = plain.trim_start_matches("http://").parse().unwrap();
        for addr in [ours, plain] {
            let (status, body) = trickle_body(addr).await;
            assert_eq!(status, 408);
            assert_eq!(
                body,
                json!({"error": {
                    "code": "REQUEST_TIMEOUT",
                    "message": "the body did not arrive within the body read timeout of 300ms",
                    "location": "body",
                }})
            );
        }
        assert_eq!(mocks.all().map(|m| m.requests()).sum::<u64>(), 0, "nothing was called downstream");
    }

    /// A router whose `/hold` answers only when `release` is notified, counting who waits.
    fn holding_app(inside: Arc<AtomicUsize>, release: Arc<tokio::sync::Semaphore>) -> axum::Router {
        axum::Router::new()
            .route(
                "/hold",
                axum::routing::get(move || {
                    let (inside, release) = (Arc::clone(&inside), Arc::clone(&release));
                    async move {
                        inside.fetch_add(1, Ordering::SeqCst);
                        release.acquire().await.unwrap().forget();
                        "held"
                    }
                }),
            )
            .route("/ping", axum::routing::get(|| async { "pong" }))
    }

    #[tokio::test]
    async fn requests_over_the_cap_are_shed_with_503_and_retry_after() {
        let inside = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(tokio::sync::Semaphore::new(0));
        let app = holding_app(Arc::clone(&inside), Arc::clone(&release));
        let addr = listen(app, ServerLimits::DEFAULT.with_max_requests(4)).await;
        let http = reqwest::Client::new();
        let burst: Vec<_> = (0..10)
            .map(|_| {
                let request = http.get(format!("http://{addr}/hold")).send();
                tokio::spawn(async move {
                    let response = request.await.unwrap();
                    let status = response.status().as_u16();
                    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
                    (status, retry_after, response.text().await.unwrap())
                })
            })
            .collect();
        while inside.load(Ordering::SeqCst) < 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut answers = Vec::new();
        let mut held = Vec::new();
        for task in burst {
            if task.is_finished() {
                answers.push(task.await.unwrap());
            } else {
                held.push(task);
            }
        }
        // The six over the cap were answered at once, while four are held.
        let mut waited = 0;
        while answers.len() < 6 && waited < 200 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            waited += 1;
            let (done, still): (Vec<_>, Vec<_>) = held.into_iter().partition(|t| t.is_finished());
            held = still;
            for task in done {
                answers.push(task.await.unwrap());
            }
        }
        assert_eq!((answers.len(), held.len()), (6, 4));
        for (status, retry_after, body) in &answers {
            assert_eq!((*status, retry_after.as_deref()), (503, Some("1")));
            let body: Value = serde_json::from_str(body).unwrap();
            assert_eq!(body["error"]["code"], "OVERLOADED");
            assert_eq!(body["error"]["message"], "this server is at its limit of requests in flight; retry shortly");
            assert_eq!(body["error"]["failedServices"], json!([]));
        }
        release.add_permits(4);
        for task in held {
            assert_eq!(task.await.unwrap(), (200, None, "held".to_owned()));
        }
        assert_eq!(inside.load(Ordering::SeqCst), 4, "a shed request never reached the application");
        assert!(refused("max_requests") >= 6.0);
        // The places are free again.
        assert_eq!(http.get(format!("http://{addr}/ping")).send().await.unwrap().status(), 200);
    }

    #[tokio::test]
    async fn connections_over_the_cap_wait_until_one_closes() {
        let app = holding_app(Arc::new(AtomicUsize::new(0)), Arc::new(tokio::sync::Semaphore::new(0)));
        let addr = listen(app, ServerLimits::DEFAULT.with_max_connections(2)).await;
        let ping = b"GET /ping HTTP/1.1\r\nhost: bff\r\n\r\n";
        let mut first = TcpStream::connect(addr).await.unwrap();
        let mut second = TcpStream::connect(addr).await.unwrap();
        // Both are served (so both hold a place).
        let mut buf = [0u8; 1024];
        for stream in [&mut first, &mut second] {
            stream.write_all(ping).await.unwrap();
            let n = stream.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        }
        // A third connects (the backlog takes it) but is not served while two are open.
        let mut third = TcpStream::connect(addr).await.unwrap();
        third.write_all(ping).await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
        assert!(waiting.is_err(), "the third connection was served over the cap");
        drop(first);
        let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
            .await
            .expect("the third connection was not served once a place freed up")
            .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
        assert!(buf[..n].ends_with(b"pong"));
        assert!(refused("max_connections") >= 1.0);
    }
}

//! Inbound rate limits: per user, per client address, per user on one endpoint and for everyone,
//! exact under paused time (the application's router served in process, with the peer address a
//! server would give), over real HTTP on loopback, overridden by the configuration file.

mod support;

use axum::extract::ConnectInfo;
use http::Request;
use orchestrate::Runtime;
use orchestrate::prelude::*;
use orchestrate::rate_limit::gcra::{Decision, GCRA, decide, script_args};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tower::ServiceExt;

orchestrate::services! {
    quotes: "http://quotes.internal:8080" { rate_limit = "2/s" },
    queued: "http://queued.internal:8080" { rate_limit(rate = "2/s", wait = true) },
}

#[derive(Serialize, Deserialize)]
pub struct Quote {
    pub price: u64,
}

#[orchestrate::api]
pub mod outbound {
    use super::*;

    #[endpoint(GET "/quote/{id}", timeout = "1s")]
    #[derive(Serialize)]
    pub struct Fast {
        #[input(path)]
        #[serde(skip)]
        id: String,
        #[call(service = "quotes", timeout = "200ms", required, get = "/quotes/{id}")]
        quote: Quote,
    }

    #[endpoint(GET "/queued/{id}", timeout = "1s")]
    #[derive(Serialize)]
    pub struct Queued {
        #[input(path)]
        #[serde(skip)]
        id: String,
        #[call(service = "queued", timeout = "200ms", required, get = "/quotes/{id}")]
        quote: Quote,
    }
}

/// A service answering `{"price": 7}` at once, counting the requests it got.
fn quote_service(seen: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> orchestrate::Transport {
    let seen = std::sync::Arc::clone(seen);
    orchestrate::Transport::new(tower::service_fn(move |_request: http::Request<bytes::Bytes>| {
        seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async { Ok::<_, orchestrate::CallError>(http::Response::new(bytes::Bytes::from_static(b"{\"price\":7}"))) }
    }))
}

#[orchestrate::api(rate_limit(per_user = "100/min", per_ip = "500/min", global = "10000/min"))]
pub mod limited {
    use super::*;

    #[endpoint(GET "/profile/{id}", timeout = "1s", rate_limit(per_endpoint = "50/min"))]
    #[derive(Serialize)]
    pub struct Profile {
        #[input(path)]
        #[serde(skip)]
        id: String,
        #[compute(id.clone())]
        name: String,
    }

    #[endpoint(GET "/orders/{id}", timeout = "1s")]
    #[derive(Serialize)]
    pub struct Orders {
        #[input(path)]
        #[serde(skip)]
        id: String,
        #[compute(id.len())]
        count: usize,
    }
}

fn runtime(config: &str) -> Runtime {
    Runtime::builder(services::ALL).read_env(false).endpoints(limited::ENDPOINTS).config_str(config).build().unwrap()
}

fn app(runtime: &Runtime) -> axum::Router {
    orchestrate::router::app(limited::router(runtime))
}

/// One request from `peer` as user `user` (its `authorization` header), answered in process.
async fn get(app: &axum::Router, path: &str, peer: &str, user: &str) -> (u16, Option<String>, Value) {
    let mut request = Request::get(path).header("authorization", format!("Bearer {user}"));
    request.extensions_mut().unwrap().insert(ConnectInfo::<SocketAddr>(format!("{peer}:40000").parse().unwrap()));
    let response = app.clone().oneshot(request.body(axum::body::Body::empty()).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, retry_after, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test(start_paused = true)]
async fn the_101st_request_of_one_user_within_a_minute_is_429_with_the_right_retry_after() {
    let runtime = runtime("");
    let app = app(&runtime);
    for i in 0..100 {
        // Over both endpoints: `per_user` is the user's budget across the module.
        let path = if i % 2 == 0 { "/orders/o1" } else { "/profile/u1" };
        let peer = format!("198.51.100.{}", i % 50);
        let (status, _, _) = get(&app, path, &peer, "u1").await;
        assert_eq!(status, 200, "request {}", i + 1);
    }
    let (status, retry_after, body) = get(&app, "/orders/o1", "198.51.100.1", "u1").await;
    assert_eq!(status, 429);
    // 100 a minute: one comes back every 600 ms, rounded up to whole seconds.
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    assert_eq!(body["error"]["scope"], "per_user");
    assert_eq!(get(&app, "/orders/o1", "198.51.100.1", "u2").await.0, 200, "another user is not limited");

    tokio::time::advance(Duration::from_millis(600)).await;
    assert_eq!(get(&app, "/orders/o1", "198.51.100.1", "u1").await.0, 200, "one request's share came back");
    assert_eq!(get(&app, "/orders/o1", "198.51.100.1", "u1").await.0, 429, "and only one");
}

#[tokio::test(start_paused = true)]
async fn address_and_endpoint_limits_are_independent() {
    let runtime = runtime(
        "[rate_limit]\nper_ip = \"5/min\"\nper_user = \"off\"\n[rate_limit.endpoints.Profile]\nper_endpoint = \"3/min\"\n",
    );
    let app = app(&runtime);
    for _ in 0..3 {
        assert_eq!(get(&app, "/profile/u1", "203.0.113.1", "u1").await.0, 200);
    }
    let (status, retry_after, body) = get(&app, "/profile/u1", "203.0.113.1", "u1").await;
    assert_eq!((status, body["error"]["scope"].as_str()), (429, Some("per_endpoint")));
    assert_eq!(retry_after.as_deref(), Some("20"), "3 a minute: one every 20 s");

    // The endpoint's limit follows the user to another address, and not to another endpoint.
    assert_eq!(get(&app, "/profile/u1", "203.0.113.2", "u1").await.2["error"]["scope"], "per_endpoint");
    assert_eq!(get(&app, "/orders/o1", "203.0.113.2", "u1").await.0, 200);

    // The address has sent 4 requests: another user from it gets the fifth, then the address is
    // at its limit whoever sends.
    assert_eq!(get(&app, "/profile/u2", "203.0.113.1", "u2").await.0, 200);
    let (status, retry_after, body) = get(&app, "/orders/o1", "203.0.113.1", "u3").await;
    assert_eq!((status, body["error"]["scope"].as_str()), (429, Some("per_ip")));
    assert_eq!(retry_after.as_deref(), Some("12"), "5 a minute: one every 12 s");
    assert_eq!(get(&app, "/orders/o1", "203.0.113.3", "u3").await.0, 200, "another address is not limited");
}

#[tokio::test(start_paused = true)]
async fn the_global_limit_answers_503_with_retry_after() {
    let runtime = runtime("[rate_limit]\nglobal = \"10/s\"\n");
    let app = app(&runtime);
    for i in 0..10 {
        let (status, _, _) = get(&app, "/orders/o1", &format!("192.0.2.{i}"), &format!("user{i}")).await;
        assert_eq!(status, 200);
    }
    let (status, retry_after, body) = get(&app, "/profile/p", "192.0.2.200", "someone-else").await;
    assert_eq!(status, 503);
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(body["error"]["code"], "OVERLOADED");
    assert_eq!(body["error"]["scope"], "global");
    tokio::time::advance(Duration::from_millis(100)).await;
    assert_eq!(get(&app, "/profile/p", "192.0.2.200", "someone-else").await.0, 200);
}

#[tokio::test(start_paused = true)]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let runtime = runtime("[rate_limit]\nper_ip = \"1/min\"\nper_user = \"off\"\ntrusted_proxies = [\"10.0.0.0/8\"]\n");
    let app = app(&runtime);
    let via_proxy = |client: &'static str| {
        let app = app.clone();
        async move {
            let mut request = Request::get("/orders/o1").header("x-forwarded-for", client);
            request.extensions_mut().unwrap().insert(ConnectInfo::<SocketAddr>("10.1.1.1:40000".parse().unwrap()));
            app.oneshot(request.body(axum::body::Body::empty()).unwrap()).await.unwrap().status().as_u16()
        }
    };
    assert_eq!(via_proxy("198.51.100.7").await, 200);
    assert_eq!(via_proxy("198.51.100.8").await, 200, "two clients behind one proxy");
    assert_eq!(via_proxy("198.51.100.7").await, 429);
    // Not from a trusted proxy: the header is the client's own claim and is ignored.
    let mut request = Request::get("/orders/o1").header("x-forwarded-for", "198.51.100.9");
    request.extensions_mut().unwrap().insert(ConnectInfo::<SocketAddr>("198.51.100.7:40000".parse().unwrap()));
    assert_eq!(app.clone().oneshot(request.body(axum::body::Body::empty()).unwrap()).await.unwrap().status(), 429);
}

#[tokio::test]
async fn over_http_the_peer_address_is_limited_and_told_when_to_retry() {
    let runtime = runtime("[rate_limit]\nper_ip = \"2/min\"\n");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let service = app(&runtime).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
    let http = reqwest::Client::new();
    for _ in 0..2 {
        assert_eq!(http.get(format!("{url}/orders/o1")).send().await.unwrap().status(), 200);
    }
    let response = http.get(format!("{url}/orders/o1")).bearer_auth("another-user").send().await.unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((29..=30).contains(&retry_after), "2 a minute: one every 30 s, got {retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["scope"], "per_ip");
}

#[test]
fn a_configured_endpoint_that_does_not_exist_is_refused_at_start_up() {
    let error = Runtime::builder(services::ALL)
        .read_env(false)
        .endpoints(limited::ENDPOINTS)
        .config_str("[rate_limit.endpoints.Profil]\nper_user = \"1/s\"\n")
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("no endpoint is named `Profil`; did you mean `Profile`?"), "{error}");
}

// ---- Shared through a real `redis-server` ----

#[tokio::test]
async fn the_script_decides_as_its_twin_on_any_sequence() {
    let Some(server) = support::redis::RedisServer::start() else { return };
    let runtime = Runtime::builder(&[]).read_env(false).redis_url(server.url()).build().unwrap();
    let redis = runtime.store().redis().unwrap().with_timeout(Duration::from_secs(2));
    let (interval, burst) = script_args(orchestrate::Rate::new(5, Duration::from_secs(1)));
    let key = redis.key(&["rl", "twin"]);
    let (mut now, mut tat) = (1_000_000_000_u64, None);
    // A fixed pseudo-random sequence (xorshift): the same run every time.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    let (mut admitted, mut refused) = (0, 0);
    for _ in 0..2_000 {
        // Bursts and pauses: mostly close together, sometimes a long gap.
        now += if next(10) == 0 { next(2_000_000) } else { next(100_000) };
        let twin = decide(tat, now, interval, burst);
        let (ok, wait): (u8, u64) = redis.invoke(&GCRA.key(&key).arg(interval).arg(burst).arg(now)).await.unwrap();
        let stored: Option<u64> = redis.query(redis::cmd("GET").arg(&key)).await.unwrap();
        match twin {
            Decision::Admitted { tat: t, .. } => {
                assert_eq!((ok, wait, stored), (1, 0, Some(t)), "at {now}");
                tat = Some(t);
                admitted += 1;
            }
            Decision::Refused { wait: w } => {
                assert_eq!((ok, wait), (0, w), "at {now}");
                assert_eq!(stored, tat, "a refusal does not move the state");
                refused += 1;
            }
        }
    }
    assert!(admitted > 100 && refused > 100, "both paths ran: {admitted} admitted, {refused} refused");
}

/// A runtime of the module whose limits live in the store at `url`, `instances` sharing them.
fn shared_runtime(url: &str, config: &str) -> Runtime {
    Runtime::builder(services::ALL)
        .read_env(false)
        .endpoints(limited::ENDPOINTS)
        .redis_url(url)
        .config_str(config)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_sharing_a_limit_admit_it_once_not_three_times() {
    let Some(server) = support::redis::RedisServer::start() else { return };
    // 1000 an hour: during the test (seconds) not one more request's share comes back.
    let config = "[rate_limit]\nper_user = \"1000/h\"\nper_ip = \"off\"\nglobal = \"off\"\ninstances = 3\n";
    let apps: Vec<axum::Router> = (0..3).map(|_| app(&shared_runtime(&server.url(), config))).collect();
    let mut tasks = Vec::new();
    for worker in 0..30 {
        let apps = apps.clone();
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..100 {
                let app = &apps[(worker + i) % 3];
                statuses.push(get(app, "/orders/o1", &format!("198.51.100.{}", worker + 1), "shared-user").await.0);
            }
            statuses
        }));
    }
    let mut counts = std::collections::BTreeMap::new();
    for task in tasks {
        for status in task.await.unwrap() {
            *counts.entry(status).or_insert(0) += 1;
        }
    }
    let admitted = counts.get(&200).copied().unwrap_or(0);
    assert!((990..=1010).contains(&admitted), "3000 requests over three instances: {counts:?}");
    assert_eq!(admitted + counts.get(&429).copied().unwrap_or(0), 3000, "only 200 and 429: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_store_gone_each_instance_limits_its_share_and_never_fails() {
    let Some(mut server) = support::redis::RedisServer::start() else { return };
    let config = "[rate_limit]\nper_user = \"30/h\"\nper_ip = \"off\"\nglobal = \"off\"\ninstances = 3\n";
    let runtime = shared_runtime(&server.url(), config);
    let app = app(&runtime);
    assert_eq!(get(&app, "/orders/o1", "192.0.2.1", "u1").await.0, 200, "through the store");
    server.kill();
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(get(&app, "/orders/o1", "192.0.2.1", "u1").await.0);
    }
    // The local share of 30 an hour over 3 instances: 10 at once.
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 10, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "no 5xx: {statuses:?}");
}

// ---- Outbound limits per service ----

#[tokio::test(start_paused = true)]
async fn over_a_services_rate_limit_a_call_is_shed_or_waits_for_its_turn() {
    let (fast, queued) = (Default::default(), Default::default());
    let runtime = Runtime::builder(services::ALL)
        .read_env(false)
        .transport("quotes", quote_service(&fast))
        .transport("queued", quote_service(&queued))
        .build()
        .unwrap();
    let app = orchestrate::router::app(outbound::router(&runtime));
    for _ in 0..2 {
        assert_eq!(get(&app, "/quote/q1", "192.0.2.1", "u1").await.0, 200);
    }
    let (status, retry_after, body) = get(&app, "/quote/q1", "192.0.2.1", "u1").await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("OVERLOADED")), "{body}");
    assert!(retry_after.is_some(), "shed answers say when to retry");
    assert_eq!(fast.load(std::sync::atomic::Ordering::Relaxed), 2, "the third call was never sent");

    let started = tokio::time::Instant::now();
    for _ in 0..3 {
        assert_eq!(get(&app, "/queued/q1", "192.0.2.1", "u1").await.0, 200);
    }
    assert_eq!(started.elapsed(), Duration::from_millis(500), "the third waited for its turn");
    // Three at once at 0.5 s, with deadlines at 1.5 s: the next turns are at 1 s and 1.5 s, so one
    // of them waits and is made, the others would be made too late and are shed.
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let app = app.clone();
        waiting.push(tokio::spawn(async move { get(&app, "/queued/q1", "192.0.2.1", "u1").await.0 }));
    }
    let mut statuses = Vec::new();
    for task in waiting {
        statuses.push(task.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 503, 503]);
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(queued.load(std::sync::atomic::Ordering::Relaxed), 4);
}

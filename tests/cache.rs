//! Response caching as a caller sees it: fresh answers without a request, stale answers at once
//! with one refresh behind them, stale-if-error while the breaker is open, one fill for many
//! concurrent callers, keys that never mix two users, tags and keys that invalidate, and the
//! endpoint cache's `ETag`/304, `Cache-Control` and `Age` over real HTTP, and two runtimes
//! sharing entries and invalidations through a real `redis-server` that then goes away. Timing
//! logic under `tokio::time::pause`; the downstream services are in memory and count what they
//! receive.

mod support;

use bytes::Bytes;
use orchestrate::prelude::*;
use orchestrate::{RequestContext, Transport};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

orchestrate::services! {
    profile: "http://profile.test" { breaker(failures = 1, within = "60s", open_for = "20s", probes = 1) },
    catalog: "http://catalog.test",
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    path: String,
    auth: String,
    n: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    path: String,
    n: u64,
}

/// A service in memory: answers `{"path","auth","n"}` (n counts its requests) after `latency`,
/// or 500 while `failing`.
#[derive(Clone, Default)]
struct Counting {
    seen: Arc<Mutex<HashMap<String, u64>>>,
    failing: Arc<AtomicBool>,
}

impl Counting {
    fn transport(&self, latency: Duration) -> Transport {
        let this = self.clone();
        Transport::new(tower::service_fn(move |request: http::Request<Bytes>| {
            let this = this.clone();
            async move {
                let path = request.uri().path().to_owned();
                let auth = request.headers().get("authorization").map_or("", |v| v.to_str().unwrap()).to_owned();
                let n = {
                    let mut seen = this.seen.lock().unwrap();
                    let n = seen.entry(path.clone()).or_default();
                    *n += 1;
                    *n
                };
                tokio::time::sleep(latency).await;
                let mut response = http::Response::new(Bytes::from(
                    serde_json::to_vec(&serde_json::json!({"path": path, "auth": auth, "n": n})).unwrap(),
                ));
                if this.failing.load(Ordering::SeqCst) {
                    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                }
                Ok::<_, CallError>(response)
            }
        }))
    }

    fn requests(&self, path: &str) -> u64 {
        self.seen.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }
}

#[endpoint(GET "/users/{id}", timeout = "2s")]
#[derive(Debug, Serialize)]
pub struct Page {
    #[input(path)]
    #[serde(skip)]
    id: String,

    #[call(service = "profile", timeout = "500ms", get = "/users/{id}", cache(ttl = "60s", stale = "30s", tags = [format!("user:{id}")]))]
    user: Option<User>,

    // One catalog for everyone: the key narrows the default (the whole request, caller included).
    #[call(service = "catalog", timeout = "500ms", required, get = "/catalog", cache(ttl = "300s", key = "all"))]
    catalog: Catalog,
}

struct Setup {
    runtime: Runtime,
    profile: Counting,
    catalog: Counting,
}

fn setup(latency: Duration) -> Setup {
    let (profile, catalog) = (Counting::default(), Counting::default());
    let runtime = Runtime::builder(services::ALL)
        .read_env(false)
        .transport("profile", profile.transport(latency))
        .transport("catalog", catalog.transport(latency))
        .build()
        .unwrap();
    Setup { runtime, profile, catalog }
}

async fn page(runtime: &Runtime, id: &str, auth: &str) -> orchestrate::Outcome<Page> {
    let context = RequestContext::default().with_header("authorization", auth);
    Page::execute(runtime, PageInputs { id: id.to_owned() }, context).await.unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Lets background refreshes run (they are tasks of their own).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test(start_paused = true)]
async fn a_fresh_answer_needs_no_request_and_a_stale_one_is_served_while_it_refreshes() {
    let s = setup(Duration::from_millis(10));
    let first = page(&s.runtime, "u1", "Bearer a").await;
    assert_eq!(first.value.user.as_ref().map(|u| u.n), Some(1));
    assert_eq!(s.profile.requests("/users/u1"), 1);

    tokio::time::advance(secs(59)).await;
    let fresh = page(&s.runtime, "u1", "Bearer a").await;
    assert_eq!(fresh.value.user, first.value.user, "fresh for 60 s");
    assert_eq!(s.profile.requests("/users/u1"), 1, "no request for a fresh answer");
    // The call's record, its `Server-Timing` entry and the recent-requests views say where the
    // answer came from.
    let user = fresh.timeline.calls.iter().find(|c| c.call == "user").unwrap();
    assert_eq!((user.ending(), user.attempts), (orchestrate::timeline::Ending::Cached, 0));
    let first_user = first.timeline.calls.iter().find(|c| c.call == "user").unwrap();
    assert_eq!(first_user.ending(), orchestrate::timeline::Ending::Ok);
    let header = orchestrate::telemetry::server_timing(&fresh.timeline);
    assert!(header.to_str().unwrap().contains("desc=\"profile +0.0ms cached\""), "{header:?}");

    tokio::time::advance(secs(2)).await; // 61 s: stale
    let stale = page(&s.runtime, "u1", "Bearer a").await;
    assert_eq!(stale.value.user.as_ref().map(|u| u.n), Some(1), "the stale answer, at once");
    settle().await;
    assert_eq!(s.profile.requests("/users/u1"), 2, "and one refresh behind it");
    let refreshed = page(&s.runtime, "u1", "Bearer a").await;
    assert_eq!(refreshed.value.user.as_ref().map(|u| u.n), Some(2));
    assert_eq!(s.profile.requests("/users/u1"), 2);
    assert_eq!(s.catalog.requests("/catalog"), 1, "the catalog is fresh for 300 s");
}

#[tokio::test(start_paused = true)]
async fn a_stale_answer_keeps_answering_while_the_service_fails_and_its_breaker_is_open() {
    let s = setup(Duration::from_millis(10));
    page(&s.runtime, "u1", "Bearer a").await;
    tokio::time::advance(secs(61)).await;
    s.profile.fail(true);
    let stale = page(&s.runtime, "u1", "Bearer a").await;
    assert_eq!(stale.value.user.as_ref().map(|u| u.n), Some(1));
    assert!(!stale.is_partial(), "served from cache is no failure");
    settle().await;
    assert_eq!(s.profile.requests("/users/u1"), 2, "the refresh was tried and failed");
    let profile = s.runtime.service("profile").unwrap();
    assert_eq!(profile.breaker_state(), orchestrate::BreakerState::Open);

    tokio::time::advance(secs(10)).await; // 71 s: still within `stale`, the breaker open
    let still = page(&s.runtime, "u1", "Bearer a").await;
    assert_eq!(still.value.user.as_ref().map(|u| u.n), Some(1), "stale-if-error");
    settle().await;
    assert_eq!(s.profile.requests("/users/u1"), 2, "an open breaker sends nothing");

    tokio::time::advance(secs(20)).await; // 91 s: past `stale`
    let gone = page(&s.runtime, "u1", "Bearer a").await;
    assert_eq!(gone.value.user, None, "nothing left to serve: the optional call degrades");
    assert!(gone.is_partial());
}

#[tokio::test(start_paused = true)]
async fn errors_are_never_cached() {
    let s = setup(Duration::from_millis(10));
    s.profile.fail(true);
    assert_eq!(page(&s.runtime, "u2", "Bearer a").await.value.user, None);
    tokio::time::advance(secs(30)).await; // the breaker lets a probe through again
    s.profile.fail(false);
    assert_eq!(page(&s.runtime, "u2", "Bearer a").await.value.user.map(|u| u.n), Some(2));
}

#[tokio::test(start_paused = true)]
async fn one_hundred_concurrent_identical_calls_make_one_request() {
    let s = setup(Duration::from_millis(50));
    let runs = (0..100).map(|_| page(&s.runtime, "u1", "Bearer a"));
    let pages = futures_util::future::join_all(runs).await;
    assert_eq!(s.profile.requests("/users/u1"), 1);
    assert_eq!(s.catalog.requests("/catalog"), 1);
    assert!(pages.iter().all(|p| p.value.user.as_ref().map(|u| u.n) == Some(1)));
}

#[tokio::test(start_paused = true)]
async fn the_first_caller_going_away_strands_nobody() {
    let s = setup(Duration::from_millis(50));
    let runtime = s.runtime.clone();
    // The first caller leads the fill, and goes away before the service answers.
    let first = tokio::spawn(async move { page(&runtime, "u1", "Bearer a").await });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let second = page(&s.runtime, "u1", "Bearer a");
    tokio::pin!(second);
    assert!(futures_util::poll!(&mut second).is_pending(), "the second joins the fill in flight");
    first.abort();
    let second = second.await;
    assert_eq!(second.value.user.as_ref().map(|u| u.n), Some(1), "the fill went on without its first caller");
    assert_eq!(s.profile.requests("/users/u1"), 1);
    // And its answer was stored for the next.
    page(&s.runtime, "u1", "Bearer a").await;
    assert_eq!(s.profile.requests("/users/u1"), 1);
}

#[tokio::test(start_paused = true)]
async fn two_callers_never_share_an_answer_unless_the_key_says_so() {
    let s = setup(Duration::from_millis(10));
    let a = page(&s.runtime, "u1", "Bearer a").await;
    let b = page(&s.runtime, "u1", "Bearer b").await;
    assert_eq!(a.value.user.as_ref().map(|u| u.auth.as_str()), Some("Bearer a"));
    assert_eq!(b.value.user.as_ref().map(|u| u.auth.as_str()), Some("Bearer b"), "b is not served a's profile");
    assert_eq!(s.profile.requests("/users/u1"), 2);
    assert_eq!(s.catalog.requests("/catalog"), 1, "the catalog, keyed `all`, is shared");
}

#[tokio::test(start_paused = true)]
async fn tags_and_keys_invalidate_from_code() {
    let s = setup(Duration::from_millis(10));
    page(&s.runtime, "u1", "Bearer a").await;
    page(&s.runtime, "u2", "Bearer a").await;
    assert_eq!(s.runtime.cache().invalidate_tags(&["user:u1"]).await.unwrap(), 1);
    page(&s.runtime, "u1", "Bearer a").await;
    page(&s.runtime, "u2", "Bearer a").await;
    assert_eq!((s.profile.requests("/users/u1"), s.profile.requests("/users/u2")), (2, 1));
    assert_eq!(s.runtime.cache().invalidate_keys(&["catalog:all"]).await.unwrap(), 1);
    page(&s.runtime, "u1", "Bearer a").await;
    assert_eq!(s.catalog.requests("/catalog"), 2);
}

mod endpoint_cache {
    //! The whole answer of a GET endpoint, over real HTTP: ETag/304, Cache-Control, Age,
    //! invalidation through the operations router, partial answers never stored.

    use super::{Catalog, Counting, support};
    use orchestrate::prelude::*;
    use std::time::Duration;

    orchestrate::services! {
        catalog: "http://catalog.test",
        extras: "http://extras.test",
    }

    #[endpoint(GET "/dashboard/{user}", timeout = "2s", cache(ttl = "60s", stale = "30s", tags = [format!("user:{user}")]))]
    #[derive(Debug, Serialize)]
    pub struct Dashboard {
        #[input(path)]
        #[serde(skip)]
        user: String,

        #[call(service = "catalog", timeout = "500ms", required, get = "/catalog")]
        catalog: Catalog,

        #[call(service = "extras", timeout = "500ms", get = "/extras")]
        extras: Option<Catalog>,
    }

    #[tokio::test]
    async fn an_endpoint_answer_is_cached_with_etag_age_and_cache_control_and_partial_ones_are_not() {
        let (catalog, extras) = (Counting::default(), Counting::default());
        let runtime = Runtime::builder(services::ALL)
            .read_env(false)
            .transport("catalog", catalog.transport(Duration::ZERO))
            .transport("extras", extras.transport(Duration::ZERO))
            .build()
            .unwrap();
        let router = axum::Router::new()
            .route("/dashboard/{user}", axum::routing::get(orchestrate::router::serve::<Dashboard>))
            .with_state(runtime.clone())
            .merge(orchestrate::ops::router(&runtime, &[Dashboard::SPEC, super::Page::SPEC]));
        let url = support::serve(router).await;
        let http = reqwest::Client::new();

        // The operations page says what is cached and for how long.
        let page = http.get(format!("{url}/_orchestrate")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("whole answer cached 1m (then 30s stale)"), "the endpoint's cache");
        assert!(page.contains("<th>Cache TTL</th>") && page.contains("<td class=\"nw\">5m</td>"), "the calls' caches");

        let first = http.get(format!("{url}/dashboard/u1")).send().await.unwrap();
        assert_eq!(first.status(), 200);
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.len() == 18, "{etag}");
        assert_eq!(first.headers()["cache-control"], "public, max-age=60");
        assert_eq!(first.headers()["age"], "0");
        let body = first.text().await.unwrap();

        let second = http.get(format!("{url}/dashboard/u1")).send().await.unwrap();
        assert_eq!(second.headers()["etag"].to_str().unwrap(), etag);
        assert_eq!(second.text().await.unwrap(), body);
        assert_eq!(catalog.requests("/catalog"), 1, "the second answer came from the cache");

        let not_modified = http.get(format!("{url}/dashboard/u1")).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(not_modified.status(), 304);
        assert_eq!(not_modified.headers()["etag"].to_str().unwrap(), etag);
        assert!(not_modified.text().await.unwrap().is_empty());
        assert_eq!(catalog.requests("/catalog"), 1, "304 without running the graph");

        let private = http.get(format!("{url}/dashboard/u1")).bearer_auth("t").send().await.unwrap();
        assert_eq!(private.headers()["cache-control"], "private, max-age=60", "keyed by the caller");
        assert_eq!(catalog.requests("/catalog"), 2);

        // The "user updated" webhook's way in: the operations router.
        let dropped = http
            .post(format!("{url}/_orchestrate/cache/invalidate"))
            .json(&serde_json::json!({"tags": ["user:u1"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(dropped.json::<serde_json::Value>().await.unwrap(), serde_json::json!({"dropped": 2}));
        http.get(format!("{url}/dashboard/u1")).send().await.unwrap();
        assert_eq!(catalog.requests("/catalog"), 3);
        let bad = http
            .post(format!("{url}/_orchestrate/cache/invalidate"))
            .json(&serde_json::json!({"tag": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);

        // A partial answer (extras failing) is served, never stored.
        extras.fail(true);
        for _ in 0..2 {
            let partial = http.get(format!("{url}/dashboard/u2")).send().await.unwrap();
            assert_eq!(partial.headers()["x-partial-data"], "true");
            assert!(partial.headers().get("etag").is_none());
        }
        assert_eq!(catalog.requests("/catalog"), 5, "both partial answers ran the graph");
    }
}

mod shared {
    //! Two runtimes (two instances of one application) sharing a real `redis-server`.

    use super::{Counting, page, services, support};
    use orchestrate::prelude::*;
    use std::time::Duration;
    use support::redis::RedisServer;

    fn instance(url: &str, profile: &Counting, catalog: &Counting) -> Runtime {
        Runtime::builder(services::ALL)
            .read_env(false)
            .redis_url(url)
            .transport("profile", profile.transport(Duration::ZERO))
            .transport("catalog", catalog.transport(Duration::ZERO))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn an_entry_one_instance_filled_is_a_hit_on_another_and_invalidation_reaches_both() {
        let Some(server) = RedisServer::start() else { return };
        let (profile, catalog) = (Counting::default(), Counting::default());
        let (a, b) = (instance(&server.url(), &profile, &catalog), instance(&server.url(), &profile, &catalog));
        assert!(a.cache().is_shared() && b.cache().is_shared());

        let first = page(&a, "u1", "Bearer a").await;
        let second = page(&b, "u1", "Bearer a").await;
        assert_eq!(first.value.user, second.value.user, "the same stored answer");
        assert_eq!((profile.requests("/users/u1"), catalog.requests("/catalog")), (1, 1), "b asked nobody");

        // Another caller's answer is never shared, on any instance.
        let other = page(&b, "u1", "Bearer b").await;
        assert_eq!(other.value.user.as_ref().unwrap().auth, "Bearer b");
        assert_eq!(profile.requests("/users/u1"), 2);

        // A tag dropped on one instance is gone for both.
        assert_eq!(b.cache().invalidate_tags(&["user:u1"]).await.unwrap(), 2);
        page(&a, "u1", "Bearer a").await;
        assert_eq!(profile.requests("/users/u1"), 3);
        assert_eq!(a.cache().invalidate_keys(&["catalog:all"]).await.unwrap(), 1);
        page(&b, "u1", "Bearer a").await;
        assert_eq!(catalog.requests("/catalog"), 2);
    }

    #[tokio::test]
    async fn without_redis_every_lookup_is_a_miss_and_no_request_fails() {
        let Some(mut server) = RedisServer::start() else { return };
        let (profile, catalog) = (Counting::default(), Counting::default());
        let a = instance(&server.url(), &profile, &catalog);
        page(&a, "u1", "Bearer a").await;
        page(&a, "u1", "Bearer a").await;
        assert_eq!(profile.requests("/users/u1"), 1);

        server.kill();
        for _ in 0..5 {
            let outcome = page(&a, "u1", "Bearer a").await;
            assert!(!outcome.is_partial(), "the calls were made: {:?}", outcome.timeline);
            assert!(outcome.value.user.is_some());
        }
        assert_eq!(profile.requests("/users/u1"), 6, "every lookup a miss, every call made");
        let err = a.cache().invalidate_tags(&["user:u1"]).await.unwrap_err();
        assert!(err.to_string().contains("script:cache_drop_tags"), "{err}");

        server.restart();
        // The same runtime uses the store again once it answers (its pause after failures is at
        // most 2 s).
        let mut recovered = false;
        for _ in 0..40 {
            let before = profile.requests("/users/u2");
            page(&a, "u2", "Bearer a").await;
            page(&a, "u2", "Bearer a").await;
            if profile.requests("/users/u2") == before + 1 {
                recovered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(recovered, "entries are stored and found again after the outage");
    }
}

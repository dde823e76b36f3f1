//! Three instances of one application (three runtimes and routers, each on its own loopback
//! port) against one real `redis-server`, as behind a load balancer: an answer cached by one is
//! a hit on the others, a rate limit admits its count once across all three (not three times),
//! and a client's retry with an `Idempotency-Key` sent to another instance gets the first
//! response back without running again.

mod support;

use orchestrate::prelude::*;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use support::redis::RedisServer;

orchestrate::services! {
    shop: "http://127.0.0.1:9",
}

/// The shop's answer to every path.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    pub n: u64,
}

/// `POST /orders` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    pub order: String,
}

#[orchestrate::api]
pub mod shop_api {
    use super::*;

    /// A cached answer.
    #[endpoint(GET "/catalog", timeout = "1s", cache(ttl = "60s"))]
    #[derive(Serialize)]
    pub struct Catalog {
        #[call(service = "shop", timeout = "500ms", required, get = "/catalog")]
        pub catalog: Answer,
    }

    /// At most 12 requests an hour, from everyone together.
    #[endpoint(GET "/deals", timeout = "1s", rate_limit(global = "12/h"))]
    #[derive(Serialize)]
    pub struct Deals {
        #[call(service = "shop", timeout = "500ms", required, get = "/deals")]
        pub deals: Answer,
    }

    /// A side effect: client retries with an `Idempotency-Key` are replayed.
    #[endpoint(POST "/orders", timeout = "1s")]
    #[derive(Serialize)]
    pub struct Place {
        #[input(body)]
        #[serde(skip)]
        pub req: Order,

        #[call(service = "shop", timeout = "500ms", required, post = "/orders", body = req, idempotency_key = req.order)]
        pub placed: Answer,
    }
}

/// The shop: answers `{"n": k}` on the k-th request to a path, and counts them.
#[derive(Clone, Default)]
struct Shop {
    seen: Arc<Mutex<HashMap<String, u64>>>,
}

impl Shop {
    async fn start(&self) -> String {
        let seen = self.seen.clone();
        let app = axum::Router::new().fallback(move |uri: http::Uri| {
            let seen = seen.clone();
            async move {
                let mut seen = seen.lock().unwrap();
                let n = seen.entry(uri.path().to_owned()).or_default();
                *n += 1;
                format!("{{\"n\":{n}}}")
            }
        });
        support::serve(app).await
    }

    fn requests(&self, path: &str) -> u64 {
        self.seen.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

/// Three instances of `shop_api` sharing the Redis at `redis`; their base URLs.
async fn three_instances(redis: &str, shop: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for _ in 0..3 {
        let runtime = Runtime::builder(services::ALL)
            .read_env(false)
            .base_url("shop", shop)
            .redis_url(redis)
            .endpoints(shop_api::ENDPOINTS)
            .build()
            .unwrap();
        assert!(runtime.cache().is_shared());
        urls.push(support::serve(orchestrate::router::app(shop_api::router(&runtime))).await);
    }
    urls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_the_cache_the_rate_limit_and_the_idempotency_records() {
    let Some(redis) = RedisServer::start() else { return };
    let shop = Shop::default();
    let shop_url = shop.start().await;
    let instances = three_instances(&redis.url(), &shop_url).await;
    let http = reqwest::Client::new();

    // The cache: filled by the first instance, a hit on the two others.
    for url in &instances {
        let response = http.get(format!("{url}/catalog")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["catalog"]["n"], 1, "every instance answers the stored answer");
    }
    assert_eq!(shop.requests("/catalog"), 1, "one downstream request for three instances");

    // The rate limit: 12 in total, whichever instance the requests go to.
    let mut statuses = HashMap::new();
    for i in 0..30 {
        let url = &instances[i % 3];
        let response = http.get(format!("{url}/deals")).send().await.unwrap();
        *statuses.entry(response.status().as_u16()).or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&200), Some(&12), "{statuses:?}");
    assert_eq!(statuses.get(&503), Some(&18), "the global limit answers 503: {statuses:?}");
    assert_eq!(shop.requests("/deals"), 12);

    // Idempotency: the client's retry reaches another instance and gets the first response.
    let order = serde_json::json!({"order": "o-1"});
    let first = http.post(format!("{}/orders", instances[0])).header("idempotency-key", "k-1").json(&order);
    let first = first.send().await.unwrap();
    assert_eq!(first.status(), 200);
    let first_body = first.text().await.unwrap();
    for url in &instances[1..] {
        let retry = http.post(format!("{url}/orders")).header("idempotency-key", "k-1").json(&order);
        let retry = retry.send().await.unwrap();
        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        assert_eq!(retry.text().await.unwrap(), first_body);
    }
    assert_eq!(shop.requests("/orders"), 1, "the order was placed once across the three instances");
}

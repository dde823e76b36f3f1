//! A service with several instances (a base URL listing several): balanced by latency, a failing
//! instance ejected and back after its time, a failed attempt retried on another instance — in
//! virtual time over in-memory instances — and, over real HTTP, three cart instances of which
//! one is slow: the checkout summary sends almost nothing to it.

mod support;

#[path = "../examples/checkout/app.rs"]
mod app;

use bytes::Bytes;
use orchestrate::{
    BalancePolicy, CallError, CallPolicy, Outgoing, RequestContext, RetryPolicy, ServiceClient, ServiceSpec, Transport,
};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::mocks::Mocks;
use tokio::time::Instant;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// In-memory instances by host: each answers after its latency, with its status, and counts
/// the requests it got.
#[derive(Clone, Default)]
struct Hosts {
    behaviour: Arc<Mutex<HashMap<&'static str, (Duration, u16)>>>,
    seen: Arc<Mutex<Vec<&'static str>>>,
}

impl Hosts {
    fn new(hosts: &[(&'static str, Duration, u16)]) -> Self {
        let this = Self::default();
        for &(host, latency, status) in hosts {
            this.set(host, latency, status);
        }
        this
    }

    fn set(&self, host: &'static str, latency: Duration, status: u16) {
        self.behaviour.lock().unwrap().insert(host, (latency, status));
    }

    fn transport(&self) -> Transport {
        let this = self.clone();
        Transport::new(tower::service_fn(move |request: http::Request<Bytes>| {
            let this = this.clone();
            async move {
                let host = request.uri().host().unwrap().to_owned();
                let (name, (latency, status)) = {
                    let behaviour = this.behaviour.lock().unwrap();
                    let (name, b) = behaviour.iter().find(|(name, _)| **name == host).expect("a known host");
                    (*name, *b)
                };
                this.seen.lock().unwrap().push(name);
                tokio::time::sleep(latency).await;
                let mut response = http::Response::new(Bytes::from_static(b"{}"));
                *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                Ok::<_, CallError>(response)
            }
        }))
    }

    fn count(&self, host: &str) -> usize {
        self.seen.lock().unwrap().iter().filter(|h| **h == host).count()
    }

    fn total(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

const THREE: &str = "http://a:80, http://b:80, http://slow:80";

fn client(urls: &'static str, balance: BalancePolicy, hosts: &Hosts) -> ServiceClient {
    ServiceClient::new(ServiceSpec::new("cart", "http://unused").with_balance(balance), urls, hosts.transport())
}

fn policy(attempts: u32) -> CallPolicy {
    let retry = if attempts > 1 { RetryPolicy::new(attempts, ms(1)) } else { RetryPolicy::NONE };
    CallPolicy { timeout: Duration::from_secs(1), retry, retryable: true }
}

async fn get(client: &ServiceClient, attempts: u32) -> orchestrate::client::Sent {
    let outgoing = Outgoing::new(http::Method::GET, "/carts/c1".into());
    client.send(&policy(attempts), &RequestContext::default(), Instant::now() + Duration::from_secs(2), outgoing).await
}

#[tokio::test(start_paused = true)]
async fn the_share_sent_to_the_slow_instance_falls_as_its_estimate_learns_it() {
    let hosts = Hosts::new(&[("a", ms(10), 200), ("b", ms(10), 200), ("slow", ms(200), 200)]);
    let client = Arc::new(client(THREE, BalancePolicy::DEFAULT, &hosts));
    // Eight callers at a time, 40 calls each.
    let mut shares = Vec::new();
    for _round in 0..4 {
        let before = (hosts.count("slow"), hosts.total());
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    for _ in 0..10 {
                        assert!(get(&client, 1).await.result.is_ok());
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.unwrap();
        }
        let (slow, total) = (hosts.count("slow") - before.0, hosts.total() - before.1);
        shares.push(slow as f64 / total as f64);
    }
    // Round robin would send a third; the first round finds out, then almost nothing goes there.
    assert!(shares[0] > 0.0, "the slow instance was measured: {shares:?}");
    assert!(shares[3] < shares[0], "{shares:?}");
    assert!(shares[1..].iter().all(|&s| s < 0.1), "{shares:?}");
    let instances = client.instances();
    let slow = instances.iter().find(|i| i.host == "slow:80").unwrap();
    let fast = instances.iter().find(|i| i.host == "a:80").unwrap();
    assert!(slow.estimate > fast.estimate * 5, "{instances:?}");
}

#[tokio::test(start_paused = true)]
async fn a_failing_instance_is_ejected_for_its_time_times_its_ejections_then_comes_back() {
    // `bad` fails fast, so its latency alone would attract calls.
    let hosts = Hosts::new(&[("good", ms(50), 200), ("bad", ms(1), 503), ("other", ms(50), 200)]);
    let policy = BalancePolicy::DEFAULT.with_ejection(5, Duration::from_secs(30), 50);
    let client = client("http://good:80, http://bad:80, http://other:80", policy, &hosts);
    let bad = || client.instances().into_iter().find(|i| i.host == "bad:80").unwrap();
    for _ in 0..100 {
        if bad().ejections > 0 {
            break;
        }
        let _ = get(&client, 1).await;
    }
    assert_eq!(bad().ejections, 1, "ejected at the fifth failure in a row");
    assert_eq!(hosts.count("bad"), 5);
    let ejected_at = Instant::now();
    // Ejected: nothing reaches it for 30 s.
    while ejected_at.elapsed() < Duration::from_secs(29) {
        assert!(get(&client, 1).await.result.is_ok());
        assert!(bad().ejected);
        tokio::time::advance(ms(500)).await;
    }
    assert_eq!(hosts.count("bad"), 5, "no call went to the ejected instance");
    // Back after 30 s, still failing: ejected again, for 60 s this time.
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(!bad().ejected);
    for _ in 0..100 {
        if bad().ejections > 1 {
            break;
        }
        let _ = get(&client, 1).await;
    }
    assert_eq!(bad().ejections, 2);
    assert_eq!(hosts.count("bad"), 10);
    let second = Instant::now();
    tokio::time::advance(Duration::from_secs(45)).await;
    assert!(bad().ejected, "the second ejection lasts 60 s");
    hosts.set("bad", ms(1), 200);
    tokio::time::advance(Duration::from_secs(16)).await;
    assert!(second.elapsed() > Duration::from_secs(60) && !bad().ejected);
    for _ in 0..20 {
        assert!(get(&client, 1).await.result.is_ok());
    }
    assert!(hosts.count("bad") > 10, "a recovered instance gets calls again");
}

#[tokio::test(start_paused = true)]
async fn a_failed_attempt_is_retried_on_another_instance() {
    // `a` fails fast and `b` is slow: `a` keeps the lower estimate and gets the first attempts.
    let hosts = Hosts::new(&[("a", ms(5), 503), ("b", ms(100), 200)]);
    // Never ejected (a share of 0%), so `a` keeps attracting first attempts by its fast failures.
    let policy = BalancePolicy::DEFAULT.with_ejection(5, Duration::from_secs(30), 0);
    let client = client("http://a:80, http://b:80", policy, &hosts);
    let mut retried = 0;
    // Eight calls: the retry budget allows ten retries per window.
    for _ in 0..8 {
        let sent = get(&client, 2).await;
        assert!(sent.result.is_ok(), "the retry went to `b`");
        assert_eq!(sent.instance, Some(1));
        retried += usize::from(sent.attempts == 2);
    }
    assert!(retried >= 5, "{retried} calls were retried");
    assert_eq!(hosts.count("a"), retried, "no call was retried on `a`");
}

#[tokio::test]
async fn over_http_a_slow_cart_instance_gets_almost_none_of_the_summaries() {
    orchestrate::ops::metrics::install().unwrap();
    let mocks = Mocks::start(0.0).await.unwrap();
    let mut carts = Vec::new();
    for latency in [ms(5), ms(5), ms(250)] {
        carts.push(support::mocks::start_one("cart", "127.0.0.1:0".parse().unwrap(), latency).await.unwrap());
    }
    let urls = carts.iter().map(|c| c.url()).collect::<Vec<_>>().join(", ");
    let runtime = mocks.runtime(app::services::ALL).base_url("cart", urls).build().unwrap();
    let ops = orchestrate::ops::router(&runtime, app::checkout::ENDPOINTS);
    let url = support::serve(orchestrate::router::app(app::checkout::router(&runtime).merge(ops))).await;
    let http = reqwest::Client::new();
    let summary = |id: usize| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let response = http
                .post(format!("{url}/checkout/summary"))
                .header("content-type", "application/json")
                .header("x-request-id", format!("r-{id}"))
                .body(json!({"cartId": "c1", "userId": "u1"}).to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    };
    for batch in 0..25 {
        let calls: Vec<_> = (0..4).map(|i| tokio::spawn(summary(batch * 4 + i))).collect();
        for call in calls {
            call.await.unwrap();
        }
    }
    // The slow instance's answers take longer than the cart call's 200 ms timeout: the few
    // requests it gets are retried on another instance, and every summary succeeded.
    let counts: Vec<u64> = carts.iter().map(|c| c.requests()).collect();
    assert!(counts[0] + counts[1] >= 100, "{counts:?}");
    // Round robin would send it 33; at most a few while it is being learnt (and re-probed).
    assert!(counts[2] <= 5, "the slow instance got {} of 100: {counts:?}", counts[2]);

    // `/health` shows each instance by host, with its estimate.
    let health: serde_json::Value = http.get(format!("{url}/health")).send().await.unwrap().json().await.unwrap();
    let cart = health["services"].as_array().unwrap().iter().find(|s| s["name"] == "cart").unwrap();
    let instances = cart["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 3);
    assert_eq!(instances[2]["host"], carts[2].url().trim_start_matches("http://"));
    assert!(instances[2]["estimateMs"].as_f64().unwrap() > instances[0]["estimateMs"].as_f64().unwrap());
    assert!(instances.iter().all(|i| i["ejected"] == false));

    // So does `/metrics`.
    let metrics = http.get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
    for cart in &carts {
        let host = cart.url().trim_start_matches("http://").to_owned();
        let labels = format!("{{service=\"cart\",instance=\"{host}\"}}");
        assert!(metrics.contains(&format!("orchestrate_instance_estimate_seconds{labels} ")), "{metrics}");
        assert!(metrics.contains(&format!("orchestrate_instance_ejected{labels} 0")), "{metrics}");
    }

    // The recent requests say which instance answered each call.
    let recent: serde_json::Value =
        http.get(format!("{url}/_orchestrate/requests.json")).send().await.unwrap().json().await.unwrap();
    let request = &recent["endpoints"][0]["requests"][0];
    let cart = request["calls"].as_array().unwrap().iter().find(|c| c["call"] == "cart").unwrap();
    assert!(matches!(cart["instance"].as_u64(), Some(0..=2)), "{cart:#}");
    let tax = request["calls"].as_array().unwrap().iter().find(|c| c["call"] == "tax").unwrap();
    assert_eq!(tax["instance"], serde_json::Value::Null, "a service with one instance names none");
}

#[test]
fn the_configuration_file_lists_instances_as_a_list_or_one_string_with_commas() {
    const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://cart.internal:8080")];
    let hosts = |config: &str| {
        let runtime = orchestrate::Runtime::builder(SERVICES).read_env(false).config_str(config).build().unwrap();
        runtime.service("cart").unwrap().instances().into_iter().map(|i| i.host).collect::<Vec<_>>()
    };
    let list = hosts("[services.cart]\nurl = [\"http://10.0.0.1:80\", \"http://10.0.0.2:80\"]\n");
    assert_eq!(list, ["10.0.0.1:80", "10.0.0.2:80"]);
    let commas = hosts("[services.cart]\nurl = \"http://10.0.0.1:80, http://10.0.0.2:80/\"\n");
    assert_eq!(commas, ["10.0.0.1:80", "10.0.0.2:80"]);
    assert!(hosts("").is_empty(), "one instance: nothing to balance");
    let err = orchestrate::Runtime::builder(SERVICES)
        .read_env(false)
        .config_str("[services.cart]\nurl = \"http://10.0.0.1:80, 10.0.0.2\"\n")
        .build()
        .unwrap_err();
    assert!(err.to_string().ends_with("lists `10.0.0.2`, which must start with `http://` or `https://`"), "{err}");
}

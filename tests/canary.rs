//! Canary versions of an endpoint over real HTTP: two structs on `GET /quote`, the canary with
//! 5% of the users by their `x-user-id`; assignment sticky per user and near the weight, the
//! forcing header, assignment by the verified token's `sub`, the configuration file's weight,
//! and the automatic rollback when the canary's downstream starts failing (then every user is on
//! the stable version, and `/health`, `/_orchestrate`, `/_orchestrate/canaries.json` and
//! `/metrics` say so).

mod support;

use orchestrate::prelude::*;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

orchestrate::services! {
    pricing: "http://127.0.0.1:9",
    pricing_next: "http://127.0.0.1:9",
}

/// `GET /price` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Price {
    pub amount: u64,
}

#[orchestrate::api]
pub mod quotes {
    use super::*;

    /// The stable version.
    #[endpoint(GET "/quote", timeout = "1s")]
    #[derive(Serialize)]
    pub struct Quote {
        #[call(service = "pricing", timeout = "500ms", required, get = "/price")]
        price: Price,
    }

    /// The canary: 5% of the users, another pricing service.
    #[endpoint(GET "/quote", timeout = "1s", canary(version = "v2", weight = 5, key = "header:x-user-id", window = "60s", min_requests = 20))]
    #[derive(Serialize)]
    pub struct QuoteV2 {
        #[call(service = "pricing_next", timeout = "500ms", required, get = "/price")]
        price: Price,
    }
}

/// The same route with authentication, its canary assigned by the token's subject.
#[orchestrate::api(auth = jwt)]
pub mod accounts {
    use super::*;

    #[endpoint(GET "/account", timeout = "1s")]
    #[derive(Serialize)]
    pub struct Account {
        #[call(service = "pricing", timeout = "500ms", required, get = "/price")]
        price: Price,
    }

    #[endpoint(GET "/account", timeout = "1s", canary(version = "v2", weight = 10, key = "sub"))]
    #[derive(Serialize)]
    pub struct AccountV2 {
        #[call(service = "pricing_next", timeout = "500ms", required, get = "/price")]
        price: Price,
    }
}

const SECRET: &str = "0123456789abcdef0123456789abcdef-canary";

/// A token of `sub`, different for each `nonce`.
fn token(sub: &str, nonce: u64) -> String {
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 600;
    let claims = serde_json::json!({ "sub": sub, "exp": exp, "jti": nonce });
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key).unwrap()
}

/// A pricing service answering `{"amount": amount}`, or the status `failing` holds when it is
/// not 0.
async fn pricing(amount: u64) -> (String, Arc<AtomicU16>) {
    let failing = Arc::new(AtomicU16::new(0));
    let state = failing.clone();
    let app = axum::Router::new().route(
        "/price",
        axum::routing::get(move || {
            let failing = state.load(Ordering::Relaxed);
            async move {
                match failing {
                    0 => (http::StatusCode::OK, format!("{{\"amount\":{amount}}}")),
                    status => (http::StatusCode::from_u16(status).unwrap(), "{}".to_owned()),
                }
            }
        }),
    );
    (support::serve(app).await, failing)
}

struct Bff {
    url: String,
    http: reqwest::Client,
    canary_fails: Arc<AtomicU16>,
}

async fn start(config: &str) -> Bff {
    let (stable_url, _) = pricing(100).await;
    let (canary_url, canary_fails) = pricing(90).await;
    let runtime = Runtime::builder(services::ALL)
        .read_env(false)
        .base_url("pricing", &stable_url)
        .base_url("pricing_next", &canary_url)
        .endpoints(quotes::ENDPOINTS)
        .config_str(config)
        .build()
        .unwrap();
    let app = quotes::router(&runtime).merge(orchestrate::ops::router(&runtime, quotes::ENDPOINTS));
    let url = support::serve(orchestrate::router::app(app)).await;
    Bff { url, http: reqwest::Client::new(), canary_fails }
}

impl Bff {
    /// The version that answered a request with these headers, its status and body.
    async fn quote(&self, headers: &[(&str, &str)]) -> (String, u16, Value) {
        let mut request = self.http.get(format!("{}/quote", self.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let version = response.headers()["x-orchestrate-version"].to_str().unwrap().to_owned();
        let status = response.status().as_u16();
        (version, status, response.json().await.unwrap_or(Value::Null))
    }

    async fn version_of(&self, user: &str) -> String {
        self.quote(&[("x-user-id", user)]).await.0
    }

    async fn json(&self, path: &str) -> Value {
        self.http.get(format!("{}{path}", self.url)).send().await.unwrap().json().await.unwrap()
    }
}

#[tokio::test]
async fn users_stay_on_their_version_and_about_five_percent_get_the_canary() {
    let bff = start("").await;
    let mut canary_users = Vec::new();
    for user in 0..2_000 {
        let user = format!("user-{user}");
        match bff.version_of(&user).await.as_str() {
            "v2" => canary_users.push(user),
            other => assert_eq!(other, "stable"),
        }
    }
    // 5% of 2 000 is 100; three standard deviations are 29.
    assert!((70..=130).contains(&canary_users.len()), "{} of 2 000 users on the canary", canary_users.len());
    // The same users again: every one on the version it had, answered by that version's service.
    for user in canary_users.iter().take(20) {
        let (version, status, body) = bff.quote(&[("x-user-id", user)]).await;
        assert_eq!((version.as_str(), status, &body["price"]["amount"]), ("v2", 200, &Value::from(90)));
    }
    for user in ["user-a", "user-b", "user-c"] {
        let first = bff.version_of(user).await;
        for _ in 0..5 {
            assert_eq!(bff.version_of(user).await, first, "{user} changed version");
        }
    }
}

#[tokio::test]
async fn by_subject_a_user_keeps_the_version_across_tokens_and_no_token_is_the_stable_refusal() {
    let (stable_url, _) = pricing(100).await;
    let (canary_url, _) = pricing(90).await;
    let runtime = Runtime::builder(services::ALL)
        .read_env(false)
        .base_url("pricing", &stable_url)
        .base_url("pricing_next", &canary_url)
        .endpoints(accounts::ENDPOINTS)
        .auth(orchestrate::auth::AuthSettings::default().with_key(orchestrate::auth::StaticKey::secret(SECRET)))
        .build()
        .unwrap();
    let url = support::serve(orchestrate::router::app(accounts::router(&runtime))).await;
    let http = reqwest::Client::new();
    let version = |token: Option<String>| {
        let mut request = http.get(format!("{url}/account"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            let version = response.headers()["x-orchestrate-version"].to_str().unwrap().to_owned();
            (version, response.status().as_u16())
        }
    };
    let mut on_canary = 0;
    for user in 0..400 {
        let sub = format!("user-{user}");
        let (first, status) = version(Some(token(&sub, 1))).await;
        assert_eq!(status, 200);
        // A new token of the same user (another `jti`): the same version.
        assert_eq!(version(Some(token(&sub, 2))).await.0, first, "{sub}");
        on_canary += usize::from(first == "v2");
    }
    // 10% of 400 is 40; three standard deviations are 18.
    assert!((22..=58).contains(&on_canary), "{on_canary} of 400 users on the canary");
    assert_eq!(version(None).await, ("stable".to_owned(), 401));
    assert_eq!(version(Some("not.a.token".to_owned())).await, ("stable".to_owned(), 401));
}

#[tokio::test]
async fn the_version_header_forces_a_version() {
    let bff = start("").await;
    for _ in 0..10 {
        let (version, status, body) = bff.quote(&[("x-orchestrate-version", "v2")]).await;
        assert_eq!((version.as_str(), status, &body["price"]["amount"]), ("v2", 200, &Value::from(90)));
    }
    let (version, _, body) = bff.quote(&[("x-orchestrate-version", "stable"), ("x-user-id", "user-7")]).await;
    assert_eq!((version.as_str(), &body["price"]["amount"]), ("stable", &Value::from(100)));
    // A version no endpoint has is ignored: the request is assigned as usual.
    let (version, status, _) = bff.quote(&[("x-orchestrate-version", "v9")]).await;
    assert!(matches!(version.as_str(), "stable" | "v2") && status == 200);
}

#[tokio::test]
async fn the_configuration_file_sets_the_weight_at_start_up() {
    let bff = start("[canary.QuoteV2]\nweight = 0\n").await;
    for user in 0..300 {
        assert_eq!(bff.version_of(&format!("user-{user}")).await, "stable");
    }
    let canaries = bff.json("/_orchestrate/canaries.json").await;
    assert_eq!((&canaries[0]["weight"], &canaries[0]["configuredWeight"]), (&Value::from(0), &Value::from(0)));
    // The spec describes the canary as declared in the code.
    let spec = bff.json("/_orchestrate.json").await;
    let v2 = spec["endpoints"].as_array().unwrap().iter().find(|e| e["name"] == "QuoteV2").unwrap();
    assert_eq!(
        v2["canary"],
        serde_json::json!({"version": "v2", "weight": 5, "key": "header:x-user-id",
            "rollback": {"errorMarginPercent": 5, "p99MarginMs": 100, "windowMs": 60000, "minRequests": 20}})
    );

    let err = Runtime::builder(services::ALL)
        .read_env(false)
        .endpoints(quotes::ENDPOINTS)
        .config_str("[canary.Quote]\nweight = 10\n")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("no canary endpoint is named `Quote`"), "{err}");
    let err = Runtime::builder(services::ALL)
        .read_env(false)
        .config_str("[canary.QuoteV2]\nweight = 120\n")
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`canary.weight` (from <config>:2:10): `weight` is a percentage of the route's requests, at most 100"
    );
}

#[tokio::test]
async fn a_failing_canary_is_rolled_back_and_every_user_goes_to_stable() {
    orchestrate::ops::metrics::install().unwrap();
    let bff = start("").await;
    // Users assigned to the canary while it is healthy.
    let mut canary_users = Vec::new();
    for user in 0..600 {
        let user = format!("user-{user}");
        if bff.version_of(&user).await == "v2" {
            canary_users.push(user);
        }
    }
    assert!(!canary_users.is_empty());
    // Enough requests of the stable version for the comparison.
    for _ in 0..20 {
        assert_eq!(bff.quote(&[("x-orchestrate-version", "stable")]).await.1, 200);
    }
    // The canary's pricing service fails: its endpoint answers 502 until the rollback.
    bff.canary_fails.store(500, Ordering::Relaxed);
    let health = bff.json("/health").await;
    assert_eq!(health["canaries"][0]["rolledBack"], false);
    let mut failed = 0;
    while bff.json("/health").await["canaries"][0]["rolledBack"] == false {
        let (version, status, body) = bff.quote(&[("x-orchestrate-version", "v2")]).await;
        assert_eq!((version.as_str(), status, &body["error"]["code"]), ("v2", 502, &Value::from("DOWNSTREAM_FAILURE")));
        failed += 1;
        assert!(failed <= 20, "not rolled back after {failed} failures");
    }
    let health = bff.json("/health").await;
    let canary = &health["canaries"][0];
    assert_eq!(
        (&canary["endpoint"], &canary["version"], &canary["weight"]),
        (&"QuoteV2".into(), &"v2".into(), &0.into())
    );
    assert_eq!(canary["configuredWeight"], 5);
    let reason = canary["reason"].as_str().unwrap();
    // The canary's successes before its service failed are in the window too.
    assert!(
        reason.starts_with("error rate ") && reason.ends_with("against the stable version's 0.0% (margin 5%) over 1m"),
        "{reason}"
    );
    assert_eq!(health["status"], "ok", "a rolled-back canary is no outage");
    // Every user, the canary's too, is on the stable version now.
    for user in &canary_users {
        let (version, status, body) = bff.quote(&[("x-user-id", user)]).await;
        assert_eq!((version.as_str(), status, &body["price"]["amount"]), ("stable", 200, &Value::from(100)));
    }
    assert_eq!(bff.json("/_orchestrate/canaries.json").await[0]["rolledBack"], true);
    let page = bff.http.get(format!("{}/_orchestrate", bff.url)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Canary version v2, 5% by header:x-user-id · rolled back: error rate "), "page");
    let metrics = bff.http.get(format!("{}/metrics", bff.url)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("orchestrate_canary_rollbacks_total{endpoint=\"QuoteV2\",version=\"v2\"} 1"), "{metrics}");
    assert!(metrics.contains("version=\"v2\""), "the request histogram has the version label");
}

//! The dashboard over real HTTP: four independent calls run together and the loyalty → offers
//! chain runs beside them, as the recorded start times show; the dashboard is cached per user and
//! the "user updated" webhook drops it; the user is the `sub` of a token from the development auth
//! service, and without one the dashboard is 401.

mod support;

#[path = "../examples/dashboard/app.rs"]
mod app;

use orchestrate::Runtime;
use serde_json::Value;
use std::time::Duration;

/// The development auth service on loopback, and a runtime builder verifying its tokens with the
/// mock services at `mocks`.
async fn builder(mocks: &str) -> (Runtime, String) {
    builder_with(mocks, |b| b).await
}

async fn builder_with(
    mocks: &str,
    adjust: impl FnOnce(orchestrate::RuntimeBuilder) -> orchestrate::RuntimeBuilder,
) -> (Runtime, String) {
    let auth = support::serve(app::auth_service()).await;
    let mut builder = Runtime::builder(app::services::ALL)
        .read_env(false)
        .endpoints(app::dashboard::ENDPOINTS)
        .auth(app::auth_settings(&format!("{auth}/.well-known/jwks.json")));
    for service in app::services::ALL {
        builder = builder.base_url(service.name, mocks);
    }
    (adjust(builder).build().unwrap(), auth)
}

/// A token for `sub` from the development auth service (`POST /token`).
async fn token(auth: &str, sub: &str) -> String {
    let answer: Value = reqwest::Client::new()
        .post(format!("{auth}/token"))
        .json(&serde_json::json!({ "sub": sub }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((&answer["tokenType"], &answer["expiresIn"]), (&Value::from("Bearer"), &Value::from(3600)));
    answer["accessToken"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn independent_calls_start_together_and_the_chain_runs_beside_them() {
    let log = app::CallLog::default();
    let mocks = support::serve(app::mock_services(log.clone(), 1.0)).await;
    let (runtime, auth) = builder(&mocks).await;
    let url = support::serve(orchestrate::router::app(app::dashboard::router(&runtime))).await;
    let http = reqwest::Client::new();

    // Without a token: 401, and no service called.
    let anonymous = http.get(format!("{url}/dashboard")).send().await.unwrap();
    assert_eq!(
        (anonymous.status().as_u16(), &anonymous.headers()["www-authenticate"]),
        (401, &"Bearer".parse().unwrap())
    );
    assert_eq!(anonymous.json::<Value>().await.unwrap()["error"]["code"], "UNAUTHORIZED");
    assert!(log.lock().unwrap().is_empty());

    let response = http.get(format!("{url}/dashboard")).bearer_auth(token(&auth, "u1").await).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["profile"]["name"], "Ada Lovelace");
    assert_eq!(body["profile"]["id"], "u1", "the user is the token's `sub`");
    assert_eq!(body["tierOffers"][0]["title"], "Offer for tier=gold");
    assert_eq!(body["partialData"], false);

    let calls = log.lock().unwrap().clone();
    let by_name = |name: &str| calls.iter().find(|(n, ..)| *n == name).copied().unwrap();
    let first_start = calls.iter().map(|(_, s, _)| *s).min().unwrap();
    let offset = |t: std::time::Instant| t.duration_since(first_start);
    // The four independent calls and the loyalty lookup start together (within scheduling noise),
    // not one after the other (which would put the last at 50 + 80 + 60 = 190 ms).
    for name in ["profile", "orders", "recommendations", "cart", "loyalty"] {
        assert!(offset(by_name(name).1) < Duration::from_millis(25), "{name} started at {:?}", offset(by_name(name).1));
    }
    // Offers needs the tier: it starts after loyalty ended, while orders (80 ms) is still running.
    let (_, loyalty_start, loyalty_end) = by_name("loyalty");
    let (_, offers_start, _) = by_name("offers");
    let (_, _, orders_end) = by_name("orders");
    assert!(offers_start >= loyalty_end, "offers started before the tier was known");
    assert!(offers_start < orders_end, "the chain waited for unrelated calls");
    assert!(offers_start.duration_since(loyalty_start) < Duration::from_millis(45));
}

#[tokio::test]
async fn recommendations_fall_back_to_an_empty_list() {
    let log = app::CallLog::default();
    let mocks = support::serve(app::mock_services(log, 1.0)).await;
    // The recommendations service is down (nothing listens there).
    let (runtime, auth) = builder_with(&mocks, |b| b.base_url("recommendations", "http://127.0.0.1:9")).await;
    let url = support::serve(orchestrate::router::app(app::dashboard::router(&runtime))).await;
    let request = reqwest::Client::new().get(format!("{url}/dashboard")).bearer_auth(token(&auth, "u1").await);
    let body: Value = request.send().await.unwrap().json().await.unwrap();
    assert_eq!(body["recommendations"], serde_json::json!([]));
    assert_eq!(body["tierOffers"], serde_json::json!([]));
    assert_eq!(body["partialData"], true);
    assert_eq!(body["failedServices"], serde_json::json!(["recommendations"]));
    assert_eq!(body["profile"]["id"], "u1");
}

#[tokio::test]
async fn the_dashboard_is_cached_per_user_and_the_webhook_drops_it() {
    let log = app::CallLog::default();
    let mocks = support::serve(app::mock_services(log.clone(), 0.0)).await;
    let (runtime, auth) = builder(&mocks).await;
    let (u1, u2) = (token(&auth, "u1").await, token(&auth, "u2").await);
    let router = app::dashboard::router(&runtime).merge(app::webhooks(&runtime));
    let url = support::serve(orchestrate::router::app(router)).await;
    let http = reqwest::Client::new();
    let profile_calls = || log.lock().unwrap().iter().filter(|(n, ..)| *n == "profile").count();
    let catalog_calls = || log.lock().unwrap().iter().filter(|(n, ..)| *n == "catalog").count();

    let first = http.get(format!("{url}/dashboard")).bearer_auth(&u1).send().await.unwrap();
    // One user's answer: private (the request carries its credentials).
    assert_eq!(first.headers()["cache-control"], "private, max-age=60");
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["featured"][0]["title"], "Difference Engine");
    let again = http.get(format!("{url}/dashboard")).bearer_auth(&u1).send().await.unwrap();
    assert!(again.headers().contains_key("etag") && again.headers().contains_key("age"));
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(profile_calls(), 1, "the second dashboard came from the cache");

    // Another user: their own dashboard, but the featured catalog is one entry for everyone.
    http.get(format!("{url}/dashboard")).bearer_auth(&u2).send().await.unwrap();
    assert_eq!((profile_calls(), catalog_calls()), (2, 1));

    let dropped = http
        .post(format!("{url}/webhooks/user-updated"))
        .json(&serde_json::json!({"userId": "u1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dropped.json::<Value>().await.unwrap(), serde_json::json!({"dropped": 1}));
    http.get(format!("{url}/dashboard")).bearer_auth(&u1).send().await.unwrap();
    http.get(format!("{url}/dashboard")).bearer_auth(&u2).send().await.unwrap();
    assert_eq!(profile_calls(), 3, "u1 asked again, u2 still cached");
}

#[test]
fn every_dashboard_endpoint_has_the_templates_rate_limits() {
    let minute = Duration::from_secs(60);
    let template = orchestrate::RateLimits::NONE
        .with_per_user(orchestrate::Rate::new(100, minute))
        .with_per_ip(orchestrate::Rate::new(500, minute))
        .with_per_endpoint(orchestrate::Rate::new(50, minute))
        .with_global(orchestrate::Rate::new(10_000, minute));
    for spec in app::dashboard::ENDPOINTS {
        assert_eq!(spec.rate_limit, template, "{}", spec.name);
    }
}

/// A development token for `sub` with a `jti` of its own, so two tokens of one user differ.
fn token_with_id(sub: &str, jti: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_ed_pem(include_bytes!("../examples/dashboard/dev_key.pem")).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({
        "sub": sub, "jti": jti, "iss": app::DEV_ISSUER, "aud": app::AUDIENCE, "iat": now, "exp": now + 600,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("dev-1".to_owned());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

#[tokio::test]
async fn the_per_user_limits_count_the_tokens_subject_not_the_token() {
    let mocks = support::serve(app::mock_services(Default::default(), 0.0)).await;
    // Three an hour on the endpoint, so no request's turn comes back while the test runs.
    let (runtime, _auth) =
        builder_with(&mocks, |b| b.config_str("[rate_limit.endpoints.Dashboard]\nper_endpoint = \"3/h\"\n")).await;
    let url = support::serve(orchestrate::router::app(app::dashboard::router(&runtime))).await;
    let http = reqwest::Client::new();
    let get = |token: String| {
        let request = http.get(format!("{url}/dashboard")).bearer_auth(token);
        async move { request.send().await.unwrap() }
    };
    let (a, b) = (token_with_id("u1", "a"), token_with_id("u1", "b"));
    assert_ne!(a, b);
    for token in [&a, &b, &a] {
        assert_eq!(get(token.clone()).await.status(), 200);
    }
    // The fourth of u1's requests, with another of u1's tokens: over u1's limit.
    let refused = get(b.clone()).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        (body["error"]["code"].as_str(), body["error"]["scope"].as_str()),
        (Some("RATE_LIMITED"), Some("per_endpoint"))
    );
    // Another user is not affected.
    assert_eq!(get(token_with_id("u2", "c")).await.status(), 200);
}

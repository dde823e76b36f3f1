//! The dashboard of the BFF-characteristics page: profile (50 ms), order history (80 ms),
//! recommendations (60 ms) and cart (40 ms) in parallel — about 80 ms instead of 230 ms one after
//! another — plus the loyalty tier → tier-specific offers chain running beside them.
//! Recommendations and offers are optional, with an empty list as their fallback.
//!
//! Caching follows the design template's table: the whole dashboard is cached 60 s per user
//! (tagged `user:<id>`, so the `POST /webhooks/user-updated` handler in `main.rs` drops that
//! user's entries), and the featured catalog is one entry for everyone, cached 300 s. Entries
//! live in memory, or in Redis when `ORCHESTRATE_REDIS_URL` is set, shared by every instance.
//!
//! The dashboard requires a JWT: the user is the token's `sub`. The embedded development auth
//! service ([`auth_service`]) issues tokens (`POST /token` with `{"sub":"u1"}`) signed with a
//! development Ed25519 key and publishes the JWK Set the BFF verifies them with.

#![allow(dead_code)]

use orchestrate::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

orchestrate::services! {
    profile:         "http://profile.internal:8080",
    orders:          "http://orders.internal:8080",
    recommendations: "http://recommendations.internal:8080" { retry(attempts = 2, backoff = "20ms") },
    cart:            "http://cart.internal:8080",
    loyalty:         "http://loyalty.internal:8080",
    catalog:         "http://catalog.internal:8080",
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: String,
    pub total: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Product {
    pub sku: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CartSummary {
    pub item_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Bronze,
    Silver,
    Gold,
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tier::Bronze => "bronze",
            Tier::Silver => "silver",
            Tier::Gold => "gold",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Loyalty {
    pub tier: Tier,
}

/// Every endpoint requires a verified JWT, and the design template's limits apply: per user (the
/// token's `sub`) 100 a minute, per client address 500, per user on one endpoint 50, and 10 000 a
/// minute for everyone (then 503). Shared by every instance through Redis when
/// `ORCHESTRATE_REDIS_URL` is set.
#[orchestrate::api(
    auth = jwt,
    rate_limit(per_user = "100/min", per_ip = "500/min", per_endpoint = "50/min", global = "10000/min")
)]
pub mod dashboard {
    use super::*;

    /// Everything the signed-in user's home screen shows, in one request.
    #[endpoint(GET "/dashboard", timeout = "1s", cache(ttl = "60s", stale = "30s", tags = [format!("user:{user_id}")]))]
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Dashboard {
        #[input(claim = "sub")]
        #[serde(skip)]
        pub user_id: String,

        #[call(service = "profile", timeout = "200ms", required, get = "/users/{user_id}")]
        pub profile: Profile,

        #[call(service = "orders", timeout = "300ms", required, get = "/users/{user_id}/orders")]
        pub orders: Vec<Order>,

        #[call(service = "recommendations", timeout = "150ms", get = "/recommendations?user={user_id}", fallback = Vec::new())]
        pub recommendations: Vec<Product>,

        #[call(service = "cart", timeout = "200ms", required, get = "/carts/{user_id}/summary")]
        pub cart: CartSummary,

        #[call(service = "loyalty", timeout = "100ms", required, get = "/members/{user_id}")]
        pub loyalty: Loyalty,

        #[call(service = "recommendations", timeout = "150ms", get = "/offers?tier={loyalty.tier}", fallback = Vec::new())]
        pub tier_offers: Vec<Product>,

        // The same for every user: one entry, whoever asks.
        #[call(service = "catalog", timeout = "200ms", get = "/catalog/featured", fallback = Vec::new(), cache(ttl = "300s", key = "featured"))]
        pub featured: Vec<Product>,
    }
}

/// The issuer of the development tokens (`iss`).
pub const DEV_ISSUER: &str = "dashboard-dev-auth";
/// The audience the dashboard accepts (`aud`).
pub const AUDIENCE: &str = "dashboard";
/// The `kid` of the development key.
const DEV_KID: &str = "dev-1";
/// The development signing key. For the embedded mock only: anyone can read it, so a real
/// deployment verifies its own issuer's keys (`[auth] jwks_url` in the configuration file).
const DEV_KEY: &str = include_str!("dev_key.pem");
/// Its public half (the JWK Set publishes it; the benchmark configures it as a static key).
pub const DEV_PUBLIC_KEY: &str = include_str!("dev_key.pub");

fn dev_key() -> jsonwebtoken::EncodingKey {
    jsonwebtoken::EncodingKey::from_ed_pem(DEV_KEY.as_bytes()).expect("the development key parses")
}

/// A development token for user `sub`, valid for an hour.
pub fn dev_token(sub: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let claims = serde_json::json!({ "sub": sub, "iss": DEV_ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 3600 });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(DEV_KID.to_owned());
    jsonwebtoken::encode(&header, &claims, &dev_key()).expect("a token")
}

/// How the dashboard verifies tokens: the development issuer's JWK Set at `jwks_url`.
pub fn auth_settings(jwks_url: &str) -> orchestrate::auth::AuthSettings {
    orchestrate::auth::AuthSettings::default().with_issuer(DEV_ISSUER).with_audience(AUDIENCE).with_jwks_url(jwks_url)
}

/// The body of `POST /token`.
#[derive(Deserialize)]
struct TokenRequest {
    sub: String,
}

/// The development auth service: `POST /token` (`{"sub":"u1"}` → `{"accessToken","tokenType",
/// "expiresIn"}`) and `GET /.well-known/jwks.json`.
pub fn auth_service() -> axum::Router {
    use axum::Json;
    use axum::routing::{get, post};
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&dev_key(), jsonwebtoken::Algorithm::EdDSA)
        .expect("the development key's JWK");
    jwk.common.key_id = Some(DEV_KID.to_owned());
    let set = serde_json::to_value(jsonwebtoken::jwk::JwkSet { keys: vec![jwk] }).unwrap_or_default();
    axum::Router::new()
        .route(
            "/token",
            post(|Json(request): Json<TokenRequest>| async move {
                Json(serde_json::json!({
                    "accessToken": dev_token(&request.sub),
                    "tokenType": "Bearer",
                    "expiresIn": 3600,
                }))
            }),
        )
        .route("/.well-known/jwks.json", get(move || async move { Json(set) }))
}

/// The body of the "user updated" webhook.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserUpdated {
    user_id: String,
}

/// `POST /webhooks/user-updated` (`{"userId":"u1"}`): drops that user's cached dashboard on every
/// instance (they share entries through Redis when it is configured). Answers `{"dropped": n}`,
/// or 503 when the shared cache cannot be reached, so that the sender tries again.
pub fn webhooks(runtime: &orchestrate::Runtime) -> axum::Router {
    use axum::Json;
    use axum::extract::State;
    use axum::response::IntoResponse;
    async fn user_updated(
        State(runtime): State<orchestrate::Runtime>,
        Json(event): Json<UserUpdated>,
    ) -> axum::response::Response {
        match runtime.cache().invalidate_tags(&[format!("user:{}", event.user_id)]).await {
            Ok(dropped) => Json(serde_json::json!({ "dropped": dropped })).into_response(),
            Err(error) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response(),
        }
    }
    axum::Router::new().route("/webhooks/user-updated", axum::routing::post(user_updated)).with_state(runtime.clone())
}

/// The simulated latency of each mock route.
pub fn latency(service: &str) -> Duration {
    Duration::from_millis(match service {
        "profile" => 50,
        "orders" => 80,
        "recommendations" => 60,
        "cart" => 40,
        "loyalty" => 20,
        "offers" => 45,
        "catalog" => 30,
        _ => 0,
    })
}

/// When each mock request started and ended, by route name.
pub type CallLog = Arc<Mutex<Vec<(&'static str, Instant, Instant)>>>;

/// One axum app serving every mock downstream route of the dashboard (each service gets its own
/// base URL on it in the example: they are separate services that happen to share a process).
pub fn mock_services(log: CallLog, scale: f64) -> axum::Router {
    use axum::extract::Path;
    use axum::routing::get;
    async fn timed<T>(log: &CallLog, name: &'static str, scale: f64, value: T) -> axum::Json<T> {
        let start = Instant::now();
        // No timer at scale 0: tokio would still wait for its next millisecond tick.
        if scale > 0.0 {
            tokio::time::sleep(latency(name).mul_f64(scale)).await;
        }
        log.lock().unwrap().push((name, start, Instant::now()));
        axum::Json(value)
    }
    let (l1, l2, l3, l4, l5, l6, l7) =
        (log.clone(), log.clone(), log.clone(), log.clone(), log.clone(), log.clone(), log);
    axum::Router::new()
        .route(
            "/users/{id}",
            get(move |Path(id): Path<String>| async move {
                timed(&l1, "profile", scale, Profile { id, name: "Ada Lovelace".into() }).await
            }),
        )
        .route(
            "/users/{id}/orders",
            get(move |Path(id): Path<String>| async move {
                timed(&l2, "orders", scale, vec![Order { id: format!("{id}-o1"), total: 4999 }]).await
            }),
        )
        .route(
            "/recommendations",
            get(move || async move {
                timed(
                    &l3,
                    "recommendations",
                    scale,
                    vec![Product { sku: "sku-9".into(), title: "Analytical Engine".into() }],
                )
                .await
            }),
        )
        .route(
            "/carts/{id}/summary",
            get(move || async move { timed(&l4, "cart", scale, CartSummary { item_count: 3 }).await }),
        )
        .route(
            "/members/{id}",
            get(move || async move { timed(&l5, "loyalty", scale, Loyalty { tier: Tier::Gold }).await }),
        )
        .route(
            "/offers",
            get(move |axum::extract::RawQuery(q): axum::extract::RawQuery| async move {
                let tier = q.unwrap_or_default();
                timed(&l6, "offers", scale, vec![Product { sku: "gold-1".into(), title: format!("Offer for {tier}") }])
                    .await
            }),
        )
        .route(
            "/catalog/featured",
            get(move || async move {
                timed(&l7, "catalog", scale, vec![Product { sku: "sku-1".into(), title: "Difference Engine".into() }])
                    .await
            }),
        )
}

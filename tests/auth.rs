//! JWT authentication over real HTTP on loopback: the token matrix (each refusal's exact status,
//! header and body, and that nothing reaches the downstream service), claims as inputs, the JWK
//! Set's bounded refetch on an unknown `kid` and its periodic refresh (a rotated key set), and the
//! operations endpoints' token.

mod support;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use orchestrate::auth::{AuthSettings, StaticKey};
use orchestrate::prelude::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

orchestrate::services! {
    profile: "http://127.0.0.1:9",
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Profile {
    pub id: String,
    pub name: String,
}

#[orchestrate::api(auth = jwt)]
pub mod app {
    use super::*;

    /// The signed-in user's profile: the user id is the token's `sub`.
    #[endpoint(GET "/me", timeout = "1s")]
    #[derive(Serialize)]
    pub struct Me {
        #[input(claim = "sub")]
        #[serde(skip)]
        user_id: String,

        #[input(claim = "tier")]
        tier: Option<u8>,

        #[call(service = "profile", timeout = "500ms", required, get = "/profiles/{user_id}")]
        profile: Profile,
    }

    /// Public: opts out of the module's `auth = jwt`.
    #[endpoint(GET "/catalog", timeout = "1s", auth = none)]
    #[derive(Serialize)]
    pub struct Catalog {
        #[call(service = "profile", timeout = "500ms", required, get = "/catalog")]
        items: Vec<String>,
    }
}

const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "bff";
const HS_SECRET: &str = "0123456789abcdef0123456789abcdef-test";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/auth/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn claims(sub: Value) -> Value {
    json!({ "sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600, "iat": now() })
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, key).unwrap()
}

fn rsa() -> EncodingKey {
    EncodingKey::from_rsa_pem(fixture("rsa.key").as_bytes()).unwrap()
}

/// Unpadded base64url, for the one token no library will make: `alg: none`.
fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// A request's path and `Authorization`, as the downstream service saw them.
type Seen = (String, Option<String>);

/// The downstream service: answers profiles and the catalog, counts requests and keeps the
/// `Authorization` each carried.
#[derive(Clone, Default)]
struct Downstream {
    requests: Arc<AtomicUsize>,
    authorization: Arc<std::sync::Mutex<Vec<Seen>>>,
}

async fn downstream() -> (String, Downstream) {
    let state = Downstream::default();
    let seen = state.clone();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let seen = seen.clone();
        async move {
            seen.requests.fetch_add(1, Ordering::SeqCst);
            let auth = request.headers().get("authorization").map(|v| v.to_str().unwrap().to_owned());
            let path = request.uri().path().to_owned();
            seen.authorization.lock().unwrap().push((path.clone(), auth));
            let body = match path.strip_prefix("/profiles/") {
                Some(id) => json!({ "id": id, "name": format!("User {id}") }),
                None => json!(["a", "b"]),
            };
            axum::Json(body)
        }
    });
    (support::serve(app).await, state)
}

/// The issuer: its JWK Set (RS256 `k1`, ES256 `k2`, EdDSA `k3`), with the fetches counted.
async fn issuer() -> (String, Arc<AtomicUsize>) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let mut keys = Vec::new();
    for (file, alg, kid) in
        [("rsa.key", Algorithm::RS256, "k1"), ("ec.key", Algorithm::ES256, "k2"), ("ed.key", Algorithm::EdDSA, "k3")]
    {
        let pem = fixture(file);
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
            _ => EncodingKey::from_ed_pem(pem.as_bytes()),
        }
        .unwrap();
        let mut jwk = Jwk::from_encoding_key(&key, alg).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        keys.push(jwk);
    }
    let set = serde_json::to_string(&JwkSet { keys }).unwrap();
    let counted = fetches.clone();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let set = set.clone();
            async move { ([("content-type", "application/json")], set) }
        }),
    );
    (support::serve(app).await, fetches)
}

struct Bff {
    url: String,
    runtime: Runtime,
    downstream: Downstream,
    jwks_fetches: Arc<AtomicUsize>,
    http: reqwest::Client,
}

impl Bff {
    async fn start(ops_token: Option<&str>) -> Self {
        let (downstream_url, downstream) = downstream().await;
        let (issuer_url, jwks_fetches) = issuer().await;
        let settings = AuthSettings::default()
            .with_issuer(ISSUER)
            .with_audience(AUDIENCE)
            .with_jwks_url(format!("{issuer_url}/jwks.json"))
            .with_key(StaticKey::secret(HS_SECRET).with_kid("hs"));
        let mut builder = Runtime::builder(services::ALL)
            .read_env(false)
            .base_url("profile", downstream_url)
            .endpoints(app::ENDPOINTS)
            .auth(settings);
        if let Some(token) = ops_token {
            builder = builder.ops_token(token);
        }
        let runtime = builder.build().unwrap();
        // The JWK Set is fetched at start-up, in the background.
        for _ in 0..500 {
            if jwks_fetches.load(Ordering::SeqCst) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(jwks_fetches.load(Ordering::SeqCst), 1, "fetched once at start-up");
        let router = app::router(&runtime).merge(orchestrate::ops::router(&runtime, app::ENDPOINTS));
        let url = support::serve(orchestrate::router::app(router)).await;
        Self { url, runtime, downstream, jwks_fetches, http: reqwest::Client::new() }
    }

    /// `GET /me` with `authorization` (if any): status, `WWW-Authenticate`, body.
    async fn me(&self, authorization: Option<&str>) -> (u16, Option<String>, Value) {
        let mut request = self.http.get(format!("{}/me", self.url));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
        (status, challenge, response.json().await.unwrap())
    }

    async fn me_with(&self, token: &str) -> (u16, Option<String>, Value) {
        self.me(Some(&format!("Bearer {token}"))).await
    }

    fn downstream_requests(&self) -> usize {
        self.downstream.requests.load(Ordering::SeqCst)
    }
}

const INVALID: Option<&str> = Some("Bearer error=\"invalid_token\"");

fn unauthorized(message: &str) -> Value {
    json!({ "error": { "code": "UNAUTHORIZED", "message": message } })
}

#[tokio::test]
async fn the_token_matrix() {
    let bff = Bff::start(None).await;

    // Valid tokens of every algorithm: 200, the user id from `sub`, the token forwarded.
    let rs = sign(Algorithm::RS256, Some("k1"), &rsa(), &claims(json!("u1")));
    let (status, challenge, body) = bff.me_with(&rs).await;
    assert_eq!((status, challenge), (200, None));
    assert_eq!(body, json!({ "tier": null, "profile": { "id": "u1", "name": "User u1" }, "partialData": false }));
    assert_eq!(
        bff.downstream.authorization.lock().unwrap().last().unwrap(),
        &("/profiles/u1".to_owned(), Some(format!("Bearer {rs}"))),
        "the token travels downstream through the header allow-list"
    );
    let ec = EncodingKey::from_ec_pem(fixture("ec.key").as_bytes()).unwrap();
    let ed = EncodingKey::from_ed_pem(fixture("ed.key").as_bytes()).unwrap();
    let hs = EncodingKey::from_secret(HS_SECRET.as_bytes()).unwrap();
    let mut with_tier = claims(json!("u2"));
    with_tier["tier"] = json!(3);
    for (alg, kid, key) in [(Algorithm::ES256, "k2", &ec), (Algorithm::EdDSA, "k3", &ed), (Algorithm::HS256, "hs", &hs)]
    {
        let (status, _, body) = bff.me_with(&sign(alg, Some(kid), key, &with_tier)).await;
        assert_eq!(status, 200, "{alg:?}: {body}");
        assert_eq!(body["profile"]["id"], "u2");
        assert_eq!(body["tier"], 3);
    }
    assert_eq!(bff.downstream_requests(), 4);

    // Each refusal: 401, the challenge, the error body; nothing downstream.
    let mut expired = claims(json!("u1"));
    expired["exp"] = json!(now() - 120); // beyond the 30 s leeway
    let mut early = claims(json!("u1"));
    early["nbf"] = json!(now() + 120);
    let mut wrong_aud = claims(json!("u1"));
    wrong_aud["aud"] = json!("another-service");
    let mut wrong_iss = claims(json!("u1"));
    wrong_iss["iss"] = json!("https://evil.test");
    let other = EncodingKey::from_rsa_pem(fixture("rsa_other.key").as_bytes()).unwrap();
    let none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
        b64url(claims(json!("u1")).to_string().as_bytes())
    );
    // The classic confusion: an HS256 token whose "secret" is the RSA public key.
    let confused = sign(
        Algorithm::HS256,
        Some("k1"),
        &EncodingKey::from_secret(fixture("rsa.pub").as_bytes()).unwrap(),
        &claims(json!("u1")),
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("expired", sign(Algorithm::RS256, Some("k1"), &rsa(), &expired), "the token has expired"),
        ("not yet valid", sign(Algorithm::RS256, Some("k1"), &rsa(), &early), "the token is not valid yet"),
        (
            "wrong aud",
            sign(Algorithm::RS256, Some("k1"), &rsa(), &wrong_aud),
            "the token is not meant for this service",
        ),
        (
            "wrong iss",
            sign(Algorithm::RS256, Some("k1"), &rsa(), &wrong_iss),
            "the token is from an issuer this service does not accept",
        ),
        (
            "bad signature",
            sign(Algorithm::RS256, Some("k1"), &other, &claims(json!("u1"))),
            "the token's signature does not verify",
        ),
        ("alg none", none, "the bearer token is not a well-formed JWT"),
        ("HS256 against the RS256 key", confused, "the token's algorithm is not the one its key verifies"),
        ("malformed", "not.a.jwt".to_owned(), "the bearer token is not a well-formed JWT"),
        ("garbage", "abc".to_owned(), "the bearer token is not a well-formed JWT"),
    ];
    for (case, token, message) in cases {
        assert_eq!(bff.me_with(&token).await, (401, INVALID.map(str::to_owned), unauthorized(message)), "{case}");
    }

    // No token, or another scheme: the challenge without an error (RFC 6750 §3.1).
    let missing = unauthorized("this endpoint requires a bearer token: send `Authorization: Bearer <token>`");
    assert_eq!(bff.me(None).await, (401, Some("Bearer".to_owned()), missing.clone()));
    assert_eq!(bff.me(Some("Basic dTE6cHc=")).await, (401, Some("Bearer".to_owned()), missing));

    // Claims of the wrong type, or a required one missing: 401 naming the input.
    let claim_error = |field: &str, message: &str| json!({ "error": { "code": "UNAUTHORIZED", "message": message, "location": "token", "field": field } });
    let numeric_sub = sign(Algorithm::RS256, Some("k1"), &rsa(), &claims(json!(42)));
    assert_eq!(
        bff.me_with(&numeric_sub).await,
        (
            401,
            INVALID.map(str::to_owned),
            claim_error(
                "user_id",
                "the token's `sub` claim is not what this endpoint reads: invalid type: integer `42`, expected a string"
            )
        )
    );
    let mut word_tier = claims(json!("u1"));
    word_tier["tier"] = json!("gold");
    let (status, _, body) = bff.me_with(&sign(Algorithm::RS256, Some("k1"), &rsa(), &word_tier)).await;
    assert_eq!((status, &body["error"]["field"]), (401, &json!("tier")));
    let mut no_sub = claims(json!(null));
    no_sub.as_object_mut().unwrap().remove("sub");
    assert_eq!(
        bff.me_with(&sign(Algorithm::RS256, Some("k1"), &rsa(), &no_sub)).await,
        (
            401,
            INVALID.map(str::to_owned),
            claim_error("user_id", "the token has no `sub` claim, which this endpoint reads")
        )
    );
    assert_eq!(bff.downstream_requests(), 4, "no refused request reached the service");

    // An unknown `kid` fetches the JWK Set again, once; the next unknown `kid` within
    // `jwks_refetch` (30 s) does not.
    let unknown = unauthorized("the token names a key the issuer does not publish");
    let k9 = sign(Algorithm::RS256, Some("k9"), &rsa(), &claims(json!("u1")));
    assert_eq!(bff.me_with(&k9).await, (401, INVALID.map(str::to_owned), unknown.clone()));
    assert_eq!(bff.jwks_fetches.load(Ordering::SeqCst), 2, "one refetch for the unknown kid");
    for kid in ["k10", "k11", "k12"] {
        let token = sign(Algorithm::RS256, Some(kid), &rsa(), &claims(json!("u1")));
        assert_eq!(bff.me_with(&token).await, (401, INVALID.map(str::to_owned), unknown.clone()));
    }
    assert_eq!(bff.jwks_fetches.load(Ordering::SeqCst), 2, "no more refetches within the interval");
    assert_eq!(bff.runtime.auth().unwrap().jwks_fetches(), 2);
    // Known keys still work.
    assert_eq!(bff.me_with(&rs).await.0, 200);

    // `auth = none` opts an endpoint of the module out.
    let catalog = bff.http.get(format!("{}/catalog", bff.url)).send().await.unwrap();
    assert_eq!(catalog.status(), 200);
    assert_eq!(catalog.json::<Value>().await.unwrap(), json!({ "items": ["a", "b"], "partialData": false }));
}

#[test]
fn an_endpoint_with_auth_needs_keys_at_start_up() {
    let error = Runtime::builder(services::ALL).read_env(false).endpoints(app::ENDPOINTS).build().unwrap_err();
    assert!(
        error.to_string().contains("endpoint `Me` requires a bearer token (`auth = jwt`), but no key is configured"),
        "{error}"
    );
}

#[test]
fn the_auth_section_of_the_configuration_file() {
    let pem = fixture("rsa.pub");
    let config = format!(
        "[auth]\nissuer = \"{ISSUER}\"\naudience = [\"{AUDIENCE}\"]\nleeway = \"10s\"\n\n[[auth.keys]]\nkid = \"k1\"\nalg = \"RS256\"\npem = '''\n{pem}'''\n"
    );
    let runtime =
        Runtime::builder(services::ALL).read_env(false).endpoints(app::ENDPOINTS).config_str(config).build().unwrap();
    assert!(runtime.auth().is_some());
    let broken = "[auth]\n[[auth.keys]]\nalg = \"RS256\"\npem = \"-----BEGIN PUBLIC KEY-----\\nnope\\n-----END PUBLIC KEY-----\"\n";
    let error = Runtime::builder(services::ALL).read_env(false).config_str(broken).build().unwrap_err().to_string();
    assert!(error.contains("the RS256 key without `kid` does not parse"), "{error}");
    let none = "[auth]\n[[auth.keys]]\nalg = \"none\"\nsecret = \"x\"\n";
    let error = Runtime::builder(services::ALL).read_env(false).config_str(none).build().unwrap_err().to_string();
    assert!(error.contains("`none` is never accepted"), "{error}");
}

#[tokio::test]
async fn the_operations_endpoints_require_the_ops_token_and_count_refusals() {
    orchestrate::ops::metrics::install().unwrap();
    let token = "ops-token-0123456789";
    let bff = Bff::start(Some(token)).await;
    let get = |path: &str, authorization: Option<String>| {
        let mut request = bff.http.get(format!("{}{path}", bff.url));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send()
    };
    let refused = json!({ "error": {
        "code": "UNAUTHORIZED",
        "message": "the operations endpoints require `Authorization: Bearer <ops token>`",
    } });
    for path in ["/health", "/metrics", "/_orchestrate", "/_orchestrate.json", "/_orchestrate/requests.json"] {
        for authorization in [None, Some("Bearer wrong-token-0123456789".to_owned()), Some(format!("Basic {token}"))] {
            let response = get(path, authorization.clone()).await.unwrap();
            assert_eq!(response.status(), 401, "{path} {authorization:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            assert_eq!(response.json::<Value>().await.unwrap(), refused, "{path}");
        }
        let response = get(path, Some(format!("Bearer {token}"))).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let invalidate = bff
        .http
        .post(format!("{}/_orchestrate/cache/invalidate", bff.url))
        .header("content-type", "application/json")
        .body(r#"{"tags":["x"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(invalidate.status(), 401);
    // The application's routes are not behind the ops token.
    assert_eq!(bff.http.get(format!("{}/catalog", bff.url)).send().await.unwrap().status(), 200);

    // Refused tokens are counted by reason.
    let mut expired = claims(json!("u1"));
    expired["exp"] = json!(now() - 120);
    assert_eq!(bff.me_with(&sign(Algorithm::RS256, Some("k1"), &rsa(), &expired)).await.0, 401);
    assert_eq!(bff.me(None).await.0, 401);
    let metrics = get("/metrics", Some(format!("Bearer {token}"))).await.unwrap().text().await.unwrap();
    for reason in ["expired", "missing"] {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(&format!("orchestrate_auth_failures_total{{reason=\"{reason}\"}}")))
            .unwrap_or_else(|| panic!("no {reason} count in:\n{metrics}"));
        let count: f64 = line.rsplit_once(' ').unwrap().1.parse().unwrap();
        assert!(count >= 1.0, "{line}");
    }
}

/// The JWK Set of `kid`s `keys` (from the fixtures: `k1` RSA, `k2` EC, `k3` Ed25519).
fn jwk_set(keys: &[&str]) -> String {
    let keys = keys
        .iter()
        .map(|kid| {
            let (file, alg) = match *kid {
                "k1" => ("rsa.key", Algorithm::RS256),
                "k2" => ("ec.key", Algorithm::ES256),
                _ => ("ed.key", Algorithm::EdDSA),
            };
            let pem = fixture(file);
            let key = match alg {
                Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
                Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
                _ => EncodingKey::from_ed_pem(pem.as_bytes()),
            }
            .unwrap();
            let mut jwk = Jwk::from_encoding_key(&key, alg).unwrap();
            jwk.common.key_id = Some((*kid).to_owned());
            jwk
        })
        .collect();
    serde_json::to_string(&JwkSet { keys }).unwrap()
}

#[tokio::test]
async fn the_periodic_refresh_picks_up_a_rotated_key_set_without_the_unknown_kid_refetch() {
    // The issuer publishes `k1`, and rotates to `k2` when told to.
    let published = Arc::new(std::sync::Mutex::new(jwk_set(&["k1"])));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (set, counted) = (Arc::clone(&published), Arc::clone(&fetches));
    let issuer = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let set = set.lock().unwrap().clone();
            async move { ([("content-type", "application/json")], set) }
        }),
    );
    let issuer_url = support::serve(issuer).await;
    let (downstream_url, _downstream) = downstream().await;
    // Refreshed every 500 ms; an unknown `kid` refetches at most once an hour, so after the first
    // one only the periodic refresh can bring new keys.
    let settings = AuthSettings::default()
        .with_issuer(ISSUER)
        .with_audience(AUDIENCE)
        .with_jwks_url(format!("{issuer_url}/jwks.json"))
        .with_jwks_timing(Duration::from_millis(500), Duration::from_secs(3600));
    let runtime = Runtime::builder(services::ALL)
        .read_env(false)
        .base_url("profile", downstream_url)
        .endpoints(app::ENDPOINTS)
        .auth(settings)
        .build()
        .unwrap();
    let url = support::serve(orchestrate::router::app(app::router(&runtime))).await;
    let http = reqwest::Client::new();
    let me = |token: String| {
        let request = http.get(format!("{url}/me")).header("authorization", format!("Bearer {token}"));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let ec = || EncodingKey::from_ec_pem(fixture("ec.key").as_bytes()).unwrap();
    let wait_for_fetches = |n: usize| {
        let fetches = Arc::clone(&fetches);
        async move {
            for _ in 0..500 {
                if fetches.load(Ordering::SeqCst) >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("the JWK Set was fetched {} times, not {n}", fetches.load(Ordering::SeqCst));
        }
    };
    // Each step starts right after a fetch began (fetches hold one lock, so the one before has
    // ended), far from the next refresh.
    let after_next_fetch = || wait_for_fetches(fetches.load(Ordering::SeqCst) + 1);
    after_next_fetch().await;
    assert_eq!(me(sign(Algorithm::RS256, Some("k1"), &rsa(), &claims(json!("u1")))).await, 200);
    // The one refetch an unknown `kid` may cause is spent now.
    after_next_fetch().await;
    let before = fetches.load(Ordering::SeqCst);
    assert_eq!(me(sign(Algorithm::ES256, Some("k2"), &ec(), &claims(json!("u1")))).await, 401);
    assert_eq!(fetches.load(Ordering::SeqCst), before + 1, "the unknown `kid` refetched once");

    after_next_fetch().await;
    *published.lock().unwrap() = jwk_set(&["k2"]);
    let rotated = fetches.load(Ordering::SeqCst);
    // Until the next refresh, the new key is unknown and no refetch is allowed.
    assert_eq!(me(sign(Algorithm::ES256, Some("k2"), &ec(), &claims(json!("u2")))).await, 401);
    assert_eq!(fetches.load(Ordering::SeqCst), rotated, "no refetch within `jwks_refetch`");
    // Two refreshes later the first of them has certainly replaced the keys.
    wait_for_fetches(rotated + 2).await;
    assert_eq!(me(sign(Algorithm::ES256, Some("k2"), &ec(), &claims(json!("u3")))).await, 200);
    // A token of the old key (one not seen before) is refused: `k1` left the set.
    assert_eq!(me(sign(Algorithm::RS256, Some("k1"), &rsa(), &claims(json!("u4")))).await, 401);
    assert_eq!(runtime.auth().unwrap().jwks_fetches(), fetches.load(Ordering::SeqCst) as u64);
}

//! Bearer-token authentication of inbound requests: JWTs verified against static keys and/or an
//! issuer's JWK Set, before the request's inputs are read and before anything is sent downstream.
//!
//! An endpoint with `auth = jwt` (its own, or its `#[api]` module's) is served only with an
//! `Authorization: Bearer <jwt>` whose
//!
//! - header names a key: its `kid` one of the static keys' or the JWK Set's (a token without `kid`
//!   is checked against the static keys without one), and its `alg` exactly that key's algorithm
//!   (RS256, ES256, EdDSA or HS256; `none` never parses, and an HS256 token is never checked with
//!   an RSA key's bytes as its secret);
//! - signature verifies with that key;
//! - `exp` is in the future and `nbf` (when present) in the past, both within the leeway;
//! - `iss` is one of the configured issuers and `aud` contains one of the configured audiences
//!   (each checked when configured).
//!
//! Anything else is 401 with `WWW-Authenticate: Bearer error="invalid_token"` (just `Bearer` when
//! no token was sent, as RFC 6750 §3.1 asks) and `{"error":{"code":"UNAUTHORIZED","message":..}}`,
//! counted in `orchestrate_auth_failures_total{reason}`. The verified claims are what
//! `#[input(claim = "..")]` fields read ([`Claims`]); the token itself travels downstream only
//! through the services' header allow-list (`authorization` is on it by default).
//!
//! The cryptography and the claim checks are `jsonwebtoken`'s; this module chooses the key,
//! pins the algorithm and keeps the JWK Set fresh ([`jwks`](self) module: fetched at start-up,
//! again every `jwks_refresh`, and on a token with an unknown `kid` at most once per
//! `jwks_refetch`, so that a flood of made-up `kid`s costs the issuer one request per interval).

mod jwks;
mod keys;

use crate::telemetry::metrics;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use jwks::Jwks;
use keys::Key;
pub use orchestrate_core::policy::auth::{Algorithm, Auth, AuthSettings, StaticKey};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Why a token was refused; its [`as_str`](Self::as_str) is the metric's `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// No `Authorization: Bearer ..` header.
    Missing,
    /// Not a JWT: its parts, header or claims do not parse (an `alg` of `none` among them).
    Malformed,
    /// The `alg` is not the algorithm of the key the token names.
    Algorithm,
    /// No key has the token's `kid` (after the bounded refetch of the JWK Set).
    UnknownKey,
    /// The signature does not verify.
    Signature,
    /// `exp` has passed.
    Expired,
    /// `nbf` has not come yet.
    NotYetValid,
    /// `iss` is not an accepted issuer.
    Issuer,
    /// `aud` names no accepted audience.
    Audience,
    /// A claim an input reads is missing or of the wrong type.
    Claim,
    /// The endpoint requires a token but the runtime has no keys configured.
    NoKeys,
}

impl Reason {
    /// The metric label.
    ///
    /// ```
    /// assert_eq!(orchestrate_runtime::auth::Reason::NotYetValid.as_str(), "not_yet_valid");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Algorithm => "algorithm",
            Self::UnknownKey => "unknown_key",
            Self::Signature => "signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::Claim => "claim",
            Self::NoKeys => "no_keys",
        }
    }

    /// What the client is told (nothing about keys or configuration).
    fn message(self) -> &'static str {
        match self {
            Self::Missing => "this endpoint requires a bearer token: send `Authorization: Bearer <token>`",
            Self::Malformed => "the bearer token is not a well-formed JWT",
            Self::Algorithm => "the token's algorithm is not the one its key verifies",
            Self::UnknownKey => "the token names a key the issuer does not publish",
            Self::Signature => "the token's signature does not verify",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet",
            Self::Issuer => "the token is from an issuer this service does not accept",
            Self::Audience => "the token is not meant for this service",
            Self::Claim => "the token lacks a claim this endpoint reads, or has it with the wrong type",
            Self::NoKeys => "this endpoint requires a bearer token, and no key is configured to verify one",
        }
    }
}

/// A refused token: 401 with `WWW-Authenticate` and the design's error body.
///
/// ```
/// use axum::response::IntoResponse;
/// use orchestrate_runtime::auth::{AuthFailure, Reason};
/// let response = AuthFailure::new(Reason::Expired).into_response();
/// assert_eq!(response.status(), 401);
/// assert_eq!(response.headers()["www-authenticate"], "Bearer error=\"invalid_token\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    reason: Reason,
    message: String,
}

impl AuthFailure {
    /// A failure for `reason`, worded for the client.
    pub fn new(reason: Reason) -> Self {
        Self { reason, message: reason.message().to_owned() }
    }

    /// A failure for `reason` with its own message (e.g. naming the claim at fault).
    pub fn with_message(reason: Reason, message: impl Into<String>) -> Self {
        Self { reason, message: message.into() }
    }

    /// Why the token was refused.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// What the client is told.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Counts the failure in `orchestrate_auth_failures_total`.
    pub(crate) fn counted(self) -> Self {
        metrics::auth_failure(self.reason.as_str());
        tracing::debug!(reason = self.reason.as_str(), "bearer token refused");
        self
    }
}

/// `WWW-Authenticate` of a 401: `Bearer` without a token, `Bearer error="invalid_token"` with one.
pub(crate) fn challenge(reason: Reason) -> HeaderValue {
    match reason {
        Reason::Missing | Reason::NoKeys => HeaderValue::from_static("Bearer"),
        _ => HeaderValue::from_static("Bearer error=\"invalid_token\""),
    }
}

impl IntoResponse for AuthFailure {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": "UNAUTHORIZED", "message": self.message } });
        let mut response =
            (StatusCode::UNAUTHORIZED, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
        response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge(self.reason));
        response
    }
}

/// The claims of a verified token.
///
/// ```
/// use orchestrate_runtime::auth::Claims;
/// let claims = Claims::from_json(serde_json::json!({ "sub": "u1", "tier": 3 })).unwrap();
/// assert_eq!(claims.get::<String>("sub").unwrap(), Some("u1".to_owned()));
/// assert!(claims.get::<String>("tier").is_err());
/// assert_eq!(claims.get::<u8>("missing").unwrap(), None);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Claims(Arc<serde_json::Map<String, serde_json::Value>>);

impl Claims {
    /// Claims from a JSON object (tests, custom authentication); `None` for anything else.
    pub fn from_json(value: serde_json::Value) -> Option<Self> {
        match value {
            serde_json::Value::Object(map) => Some(Self(Arc::new(map))),
            _ => None,
        }
    }

    /// The claim `name` as a `T`: `Ok(None)` when absent (or `null`).
    ///
    /// # Errors
    ///
    /// serde's explanation when the claim is not a `T`.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, serde_json::Error> {
        match self.0.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(value) => T::deserialize(value).map(Some),
        }
    }

    /// The raw claim `name`.
    pub fn raw(&self, name: &str) -> Option<&serde_json::Value> {
        self.0.get(name)
    }
}

/// Verifies bearer tokens; one per runtime, shared by every endpoint with `auth = jwt`.
///
/// ```
/// use orchestrate_runtime::auth::{AuthSettings, Authenticator, StaticKey};
/// let auth = Authenticator::new(
///     AuthSettings::default().with_key(StaticKey::secret("0123456789abcdef0123456789abcdef")),
/// )
/// .unwrap();
/// # let _ = auth;
/// ```
#[derive(Debug, Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    issuer: Vec<String>,
    audience: Vec<String>,
    leeway: u64,
    keys: Vec<Key>,
    jwks: Option<Jwks>,
    /// Tokens whose signature verified, by their SHA-256, with their claims and `exp`: a client
    /// sends the same token with every request, and an Ed25519 or RSA check costs tens of
    /// microseconds where this lookup costs a hash. Bounded in entries and kept at most
    /// [`REMEMBERED_FOR`]; an entry is used only while its `exp` (with the leeway) holds.
    verified: moka::sync::Cache<[u8; 32], (Claims, u64)>,
}

/// How long a verified token is remembered at most: a key removed from the issuer's JWK Set
/// stops accepting the tokens it signed within this time.
const REMEMBERED_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// How many verified tokens are remembered at most.
const REMEMBERED_TOKENS: u64 = 10_000;

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Authenticator {
    /// An authenticator for `settings`; nothing is fetched until [`start`](Self::start) or the
    /// first token.
    ///
    /// # Errors
    ///
    /// A sentence naming the static key that does not parse.
    pub fn new(settings: AuthSettings) -> Result<Self, String> {
        let keys = settings.keys.iter().map(Key::from_static).collect::<Result<Vec<_>, _>>()?;
        let jwks = match &settings.jwks_url {
            Some(url) => Some(Jwks::new(url, settings.jwks_refresh, settings.jwks_refetch)?),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                issuer: settings.issuer,
                audience: settings.audience,
                leeway: settings.leeway.as_secs(),
                keys,
                jwks,
                verified: moka::sync::Cache::builder()
                    .max_capacity(REMEMBERED_TOKENS)
                    .time_to_live(REMEMBERED_FOR)
                    .build(),
            }),
        })
    }

    /// Fetches the JWK Set now and then every `jwks_refresh`, in a task that ends with the last
    /// handle (needs a tokio runtime; without one, the first token fetches it). Idempotent.
    pub fn start(&self) {
        if let Some(jwks) = &self.inner.jwks {
            jwks.start();
        }
    }

    /// How many times the JWK Set was requested (start-up, refreshes and refetches).
    ///
    /// ```
    /// use orchestrate_runtime::auth::{AuthSettings, Authenticator};
    /// let auth = Authenticator::new(AuthSettings::default()).unwrap();
    /// assert_eq!(auth.jwks_fetches(), 0);
    /// ```
    pub fn jwks_fetches(&self) -> u64 {
        self.inner.jwks.as_ref().map_or(0, Jwks::fetches)
    }

    /// The claims of the request's bearer token, or why it is refused (counted).
    ///
    /// # Errors
    ///
    /// [`AuthFailure`] for a missing, malformed, unverifiable, expired, premature or misdirected
    /// token.
    pub async fn verify(&self, headers: &HeaderMap) -> Result<Claims, AuthFailure> {
        self.check(headers).await.map_err(AuthFailure::counted)
    }

    /// The `sub` of the request's token when it verifies, counting no failure (the endpoint that
    /// serves the request verifies it again, from the remembered tokens, and refuses it).
    pub(crate) async fn subject(&self, headers: &HeaderMap) -> Option<String> {
        let claims = self.check(headers).await.ok()?;
        claims.raw("sub").and_then(serde_json::Value::as_str).map(str::to_owned)
    }

    async fn check(&self, headers: &HeaderMap) -> Result<Claims, AuthFailure> {
        let token = bearer(headers).ok_or(AuthFailure::new(Reason::Missing))?;
        let inner = &*self.inner;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some((claims, exp)) = inner.verified.get(&digest) {
            if now_secs() <= exp.saturating_add(inner.leeway) {
                return Ok(claims);
            }
            inner.verified.invalidate(&digest);
        }
        let head = jsonwebtoken::decode_header(token).map_err(|_| AuthFailure::new(Reason::Malformed))?;
        let kid = head.kid.as_deref();
        let key = match inner.find(kid) {
            Some(key) => key,
            None => match (&inner.jwks, kid) {
                (Some(jwks), _) => jwks.find_or_refetch(kid).await.ok_or(AuthFailure::new(Reason::UnknownKey))?,
                (None, _) if inner.keys.is_empty() => return Err(AuthFailure::new(Reason::NoKeys)),
                (None, _) => return Err(AuthFailure::new(Reason::UnknownKey)),
            },
        };
        if head.alg != key.alg {
            return Err(AuthFailure::new(Reason::Algorithm));
        }
        let mut validation = jsonwebtoken::Validation::new(key.alg);
        validation.leeway = inner.leeway;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if inner.issuer.is_empty() {
            validation.iss = None;
        } else {
            validation.set_issuer(&inner.issuer);
            required.push("iss");
        }
        if inner.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&inner.audience);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, &key.key, &validation)
            .map_err(|e| AuthFailure::new(reason_of(e.kind())))?;
        let exp = data.claims.get("exp").and_then(serde_json::Value::as_u64);
        let claims = Claims(Arc::new(data.claims));
        if let Some(exp) = exp {
            inner.verified.insert(digest, (claims.clone(), exp));
        }
        Ok(claims)
    }
}

impl Inner {
    /// The static key for `kid`, or the fetched one.
    fn find(&self, kid: Option<&str>) -> Option<Key> {
        if let Some(key) = self.keys.iter().find(|k| k.kid.as_deref() == kid) {
            return Some(key.clone());
        }
        self.jwks.as_ref().and_then(|jwks| kid.and_then(|kid| jwks.find(kid)))
    }
}

fn reason_of(kind: &jsonwebtoken::errors::ErrorKind) -> Reason {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::InvalidSignature => Reason::Signature,
        K::ExpiredSignature => Reason::Expired,
        K::ImmatureSignature => Reason::NotYetValid,
        K::InvalidIssuer => Reason::Issuer,
        K::InvalidAudience => Reason::Audience,
        K::InvalidAlgorithm | K::MissingAlgorithm | K::InvalidAlgorithmName | K::UnsupportedAlgorithm => {
            Reason::Algorithm
        }
        K::MissingRequiredClaim(claim) if claim == "iss" => Reason::Issuer,
        K::MissingRequiredClaim(claim) if claim == "aud" => Reason::Audience,
        K::MissingRequiredClaim(claim) if claim == "exp" => Reason::Expired,
        _ => Reason::Malformed,
    }
}

/// The token of `Authorization: Bearer <token>` (the scheme in any case).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bearer_scheme_carries_a_token() {
        let headers = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            h
        };
        assert_eq!(bearer(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&headers("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&headers("Basic abc")), None);
        assert_eq!(bearer(&headers("Bearer ")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    fn hs256(secret: &str) -> Authenticator {
        let settings = AuthSettings::default().with_key(StaticKey::secret(secret).with_kid("k"));
        Authenticator::new(settings).unwrap()
    }

    fn signed(secret: &str, claims: serde_json::Value) -> HeaderMap {
        let mut head = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        head.kid = Some("k".to_owned());
        let token =
            jsonwebtoken::encode(&head, &claims, &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap())
                .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        headers
    }

    #[tokio::test]
    async fn a_verified_token_is_remembered_until_its_exp_and_a_refused_one_never() {
        let secret = "0123456789abcdef0123456789abcdef";
        let auth = hs256(secret);
        let good = signed(secret, serde_json::json!({"sub": "u1", "exp": now_secs() + 600}));
        assert_eq!(auth.check(&good).await.unwrap().raw("sub"), Some(&serde_json::json!("u1")));
        auth.inner.verified.run_pending_tasks();
        assert_eq!(auth.inner.verified.entry_count(), 1);
        assert!(auth.check(&good).await.is_ok(), "answered from memory");

        // Signed with another secret: refused, and not remembered.
        let forged =
            signed("another secret, also 32 bytes long", serde_json::json!({"sub": "u1", "exp": now_secs() + 600}));
        assert_eq!(auth.check(&forged).await.unwrap_err().reason(), Reason::Signature);
        auth.inner.verified.run_pending_tasks();
        assert_eq!(auth.inner.verified.entry_count(), 1);

        // A remembered token whose `exp` has passed is checked again (and refused as expired).
        let token = bearer(&good).unwrap();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let claims = auth.inner.verified.get(&digest).unwrap().0;
        auth.inner.verified.insert(digest, (claims, now_secs() - 3600));
        let aged = signed(secret, serde_json::json!({"sub": "u1", "exp": now_secs() - 3600}));
        let aged_digest: [u8; 32] = Sha256::digest(bearer(&aged).unwrap().as_bytes()).into();
        auth.inner.verified.insert(aged_digest, (auth.check(&good).await.unwrap(), now_secs() - 3600));
        assert_eq!(auth.check(&aged).await.unwrap_err().reason(), Reason::Expired);
    }
}

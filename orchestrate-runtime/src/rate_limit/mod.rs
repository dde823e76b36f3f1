//! Inbound rate limits: per client address, per user, per user on one endpoint, and for everyone
//! together, checked before a request's body is read and before anything is sent downstream.
//!
//! # Declaring
//!
//! ```text
//! #[orchestrate::api(rate_limit(per_user = "100/min", per_ip = "500/min", global = "10000/min"))]
//! pub mod dashboard {
//!     #[endpoint(GET "/dashboard", timeout = "1s", rate_limit(per_endpoint = "50/min"))]
//!     pub struct Dashboard { .. }
//! }
//! ```
//!
//! An endpoint's keys override its module's, key by key. The configuration file overrides both:
//! `[rate_limit]` for every endpoint, `[rate_limit.endpoints.Dashboard]` for one (`"off"` removes a
//! limit); see [`orchestrate_core::policy::rate_limit`] for the grammar and
//! [`RuntimeBuilder::rate_limit`](crate::RuntimeBuilder::rate_limit) for the settings.
//!
//! # What counts
//!
//! | scope | counts | over the limit |
//! |---|---|---|
//! | `per_ip` | requests from one client address, over every endpoint declaring the same rate | 429 `RATE_LIMITED` |
//! | `per_user` | requests of one user ([`UserKey`]), over every endpoint declaring the same rate | 429 `RATE_LIMITED` |
//! | `per_endpoint` | requests of one user to this endpoint | 429 `RATE_LIMITED` |
//! | `global` | every request, over every endpoint declaring the same rate | 503 `OVERLOADED` |
//!
//! Each answer carries `Retry-After` (whole seconds, rounded up) and the design's error body with
//! the `scope`; each refusal counts in `orchestrate_rate_limited_total{endpoint, scope}`. A
//! request is checked against the narrowest limit first, so one client over its own limit does not
//! spend the shared ones. Each limit is a GCRA: up to its number at once, then one request every
//! `period / number`.
//!
//! The client address is the peer's: serve the application with
//! `app.into_make_service_with_connect_info::<SocketAddr>()` (without it, `per_ip` cannot apply and
//! says so once in the log). `X-Forwarded-For` and `Forwarded` are believed only from the
//! configured `trusted_proxies`. The user of an endpoint with `auth = jwt` is its verified token's
//! `sub` claim ([`RateLimiter::check_as`]); elsewhere it comes from [`UserKey`]; a request without
//! one counts under its address.
//!
//! # State
//!
//! In memory (`memory.rs`): governor's GCRA, exact under `tokio::time::pause`, at most
//! `max_keys` keys per limit. With a Redis store (`ORCHESTRATE_REDIS_URL`), the limits are shared
//! by every instance (`shared.rs`).
//!
//! ```
//! use orchestrate_runtime::rate_limit::Limited;
//! use orchestrate_core::policy::rate_limit::Scope;
//! use std::time::Duration;
//! let limited = Limited::new(Scope::PerUser, Duration::from_millis(600));
//! assert_eq!((limited.status().as_u16(), limited.retry_after_secs()), (429, 1));
//! assert_eq!(Limited::new(Scope::Global, Duration::from_millis(10)).status().as_u16(), 503);
//! ```

mod client;
pub mod gcra;
mod memory;
mod outbound;
mod shared;

pub use client::UserKey;
pub use orchestrate_core::policy::rate_limit::Scope;
pub use orchestrate_core::policy::{Rate, RateLimitSettings, RateLimits};
pub use outbound::OutboundLimiter;

use crate::spec::EndpointSpec;
use crate::store::Store;
use crate::telemetry::metrics;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

/// A request refused by a limit: which one, and how long until it would be admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// The limit reached.
    pub scope: Scope,
    /// How long until a request would be admitted.
    pub retry_after: Duration,
}

impl Limited {
    /// Refused by `scope`, admitted again after `retry_after`.
    pub const fn new(scope: Scope, retry_after: Duration) -> Self {
        Self { scope, retry_after }
    }

    /// 503 for the global limit (the application protecting itself), 429 for the others (the
    /// client sending too much).
    pub const fn status(&self) -> StatusCode {
        match self.scope {
            Scope::Global => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// `Retry-After` in whole seconds, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        u64::try_from(self.retry_after.as_nanos().div_ceil(1_000_000_000)).unwrap_or(u64::MAX).max(1)
    }
}

impl IntoResponse for Limited {
    fn into_response(self) -> Response {
        let secs = self.retry_after_secs();
        let (code, message) = match self.scope {
            Scope::Global => ("OVERLOADED", format!("the service is at its request limit; retry after {secs}s")),
            scope => ("RATE_LIMITED", format!("too many requests {}; retry after {secs}s", scope.describe())),
        };
        let body = serde_json::json!({
            "error": { "code": code, "message": message, "scope": self.scope.as_str(), "retryAfter": secs }
        });
        let mut response =
            (self.status(), [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        response
    }
}

/// One limit's state in this instance's memory.
#[derive(Debug)]
enum Local {
    Keyed(memory::Keyed),
    Direct(memory::Direct),
}

impl Local {
    fn new(scope: Scope, rate: Rate, max_keys: usize) -> Self {
        match scope {
            Scope::Global => Self::Direct(memory::Direct::new(rate)),
            _ => Self::Keyed(memory::Keyed::new(rate, max_keys)),
        }
    }

    /// Counts a request of the key `key` computes (only a keyed limit needs it).
    fn check(&self, key: impl FnOnce() -> u64) -> Option<Duration> {
        match self {
            Self::Keyed(keyed) => keyed.check(key()),
            Self::Direct(direct) => direct.check(),
        }
    }
}

/// One limit's state: in memory, or in the shared store with a local share for when the store
/// does not answer.
#[derive(Debug)]
enum Bucket {
    Local(Local),
    Shared { limit: shared::SharedLimit, fallback: Local },
}

/// Who a limit counts, for one request.
#[derive(Debug, Hash)]
struct Who<'a> {
    /// The endpoint (`per_endpoint` only): method and route.
    endpoint: Option<(&'static str, &'static str)>,
    kind: Kind<'a>,
}

#[derive(Debug, Hash)]
enum Kind<'a> {
    User(&'a [u8]),
    Ip(Option<IpAddr>),
    Everyone,
}

impl Who<'_> {
    /// A stable digest for the store's key: 32 hex digits of SHA-256, the same in every instance.
    fn digest(&self) -> String {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        if let Some((method, route)) = self.endpoint {
            hash.update([b'e']);
            hash.update(method.as_bytes());
            hash.update(route.as_bytes());
            hash.update([0]);
        }
        match &self.kind {
            Kind::User(user) => {
                hash.update([b'u']);
                hash.update(user);
            }
            Kind::Ip(ip) => {
                hash.update([b'i']);
                hash.update(ip.map(|ip| ip.to_string()).unwrap_or_default().as_bytes());
            }
            Kind::Everyone => hash.update([b'g']),
        }
        let digest = hash.finalize();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The limits of one endpoint, resolved: each scope's rate and state.
type Resolved = Vec<(Scope, Rate, Arc<Bucket>)>;

/// The inbound limiter of a runtime ([`Runtime::rate_limiter`](crate::Runtime::rate_limiter)):
/// every endpoint's limits, their state, and how a request's address and user are read.
///
/// ```
/// use orchestrate_runtime::rate_limit::{RateLimitSettings, RateLimiter};
/// use orchestrate_runtime::store::Store;
/// let limiter = RateLimiter::new(RateLimitSettings::default(), &Store::Memory);
/// assert_eq!(limiter.settings().instances, 1);
/// ```
#[derive(Debug)]
pub struct RateLimiter {
    settings: RateLimitSettings,
    user: UserKey,
    /// Keys are hashed with a per-process random seed: no client can aim at another's key.
    hasher: RandomState,
    /// Each endpoint's resolved limits, by method and route.
    endpoints: RwLock<HashMap<(&'static str, &'static str), Arc<Resolved>>>,
    /// The state of each limit, shared by the endpoints that declare the same rate in a scope.
    buckets: Mutex<HashMap<(Scope, Rate), Arc<Bucket>>>,
    /// The shared store, when limits are shared by every instance.
    redis: Option<crate::store::RedisStore>,
    /// Whether the store failed at the last check (to log the outage and the recovery once).
    degraded: AtomicBool,
    /// Whether the file or the builder overrides any limit (else endpoints without a
    /// declaration skip everything).
    overrides: bool,
    warned_no_peer: AtomicBool,
}

impl RateLimiter {
    /// A limiter applying `settings` to every endpoint's declared limits, keeping its state in
    /// `store`: shared by every instance with Redis, in this instance's memory otherwise.
    pub fn new(settings: RateLimitSettings, store: &Store) -> Self {
        let user = match settings.user_header.as_deref().map(http::HeaderName::try_from) {
            Some(Ok(name)) => UserKey::Header(name),
            _ => UserKey::Authorization,
        };
        let overrides = !settings.limits.is_none() || !settings.endpoints.is_empty();
        Self {
            settings,
            user,
            hasher: RandomState::new(),
            endpoints: RwLock::default(),
            buckets: Mutex::default(),
            redis: store.redis().cloned(),
            degraded: AtomicBool::new(false),
            overrides,
            warned_no_peer: AtomicBool::new(false),
        }
    }

    /// The settings it applies.
    pub fn settings(&self) -> &RateLimitSettings {
        &self.settings
    }

    /// The limits in force for `spec`: its declaration with the configuration's overrides.
    pub fn limits_of(&self, spec: &EndpointSpec) -> RateLimits {
        self.settings.limits_of(spec.name, spec.rate_limit)
    }

    /// Counts a request of `spec` (its head only: the body is not read) against every limit in
    /// force for it, narrowest first.
    ///
    /// # Errors
    ///
    /// [`Limited`] with the first limit reached; limits after it are not counted.
    pub async fn check(&self, spec: &EndpointSpec, parts: &Parts) -> Result<(), Limited> {
        self.check_as(spec, parts, None).await
    }

    /// [`check`](Self::check) for a request whose user is known: `subject` (the verified token's
    /// `sub` claim of an endpoint with `auth = jwt`) is the user of `per_user` and `per_endpoint`,
    /// in place of what [`UserKey`] reads from the request.
    ///
    /// # Errors
    ///
    /// [`Limited`] with the first limit reached; limits after it are not counted.
    pub async fn check_as(&self, spec: &EndpointSpec, parts: &Parts, subject: Option<&str>) -> Result<(), Limited> {
        if !self.overrides && spec.rate_limit.is_none() {
            return Ok(());
        }
        let resolved = self.resolved(spec);
        if resolved.is_empty() {
            return Ok(());
        }
        let ip = client::client_ip(parts, &self.settings.trusted_proxies);
        // Read once for `per_user` and `per_endpoint`.
        let user = subject.map(str::as_bytes).or_else(|| self.user.of(parts));
        for (scope, _rate, bucket) in resolved.iter() {
            let endpoint = (*scope == Scope::PerEndpoint).then_some((spec.method.as_str(), spec.route));
            let kind = match scope {
                Scope::PerIp => match ip {
                    Some(ip) => Kind::Ip(Some(ip)),
                    None => {
                        self.warn_no_peer();
                        continue;
                    }
                },
                Scope::PerUser | Scope::PerEndpoint => match user {
                    Some(user) => Kind::User(user),
                    None => Kind::Ip(ip),
                },
                _ => Kind::Everyone,
            };
            let who = Who { endpoint, kind };
            let verdict = match &**bucket {
                Bucket::Local(local) => local.check(|| self.hasher.hash_one(&who)),
                Bucket::Shared { limit, fallback } => match limit.check(&who.digest()).await {
                    Ok(verdict) => {
                        self.store_answered();
                        verdict
                    }
                    Err(error) => {
                        self.store_failed(*scope, &error);
                        fallback.check(|| self.hasher.hash_one(&who))
                    }
                },
            };
            if let Some(wait) = verdict {
                metrics::rate_limited(spec.name, scope.as_str());
                return Err(Limited::new(*scope, wait));
            }
        }
        Ok(())
    }

    fn store_answered(&self) {
        if self.degraded.load(Ordering::Relaxed) && self.degraded.swap(false, Ordering::Relaxed) {
            tracing::info!("rate limits are shared through the store again");
        }
    }

    fn store_failed(&self, scope: Scope, error: &crate::store::StoreError) {
        metrics::rate_limit_fallback(scope.as_str());
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                %error,
                instances = self.settings.instances,
                "the store does not answer: rate limits are checked by this instance alone, each at 1/{} of its rate",
                self.settings.instances
            );
        }
    }

    fn warn_no_peer(&self) {
        if !self.warned_no_peer.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "a `per_ip` rate limit cannot apply: the peer address is unknown; serve the application with `into_make_service_with_connect_info::<SocketAddr>()`"
            );
        }
    }

    fn resolved(&self, spec: &EndpointSpec) -> Arc<Resolved> {
        let id = (spec.method.as_str(), spec.route);
        if let Some(resolved) = self.endpoints.read().unwrap_or_else(PoisonError::into_inner).get(&id) {
            return Arc::clone(resolved);
        }
        let limits = self.limits_of(spec);
        let max_keys = self.settings.max_keys as usize;
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let resolved: Resolved = Scope::ALL
            .into_iter()
            .filter_map(|scope| {
                let rate = limits.get(scope)?;
                let bucket = buckets.entry((scope, rate)).or_insert_with(|| {
                    Arc::new(match &self.redis {
                        None => Bucket::Local(Local::new(scope, rate, max_keys)),
                        Some(redis) => Bucket::Shared {
                            limit: shared::SharedLimit::new(redis.clone(), scope.as_str(), rate),
                            fallback: Local::new(scope, share(rate, self.settings.instances), max_keys),
                        },
                    })
                });
                Some((scope, rate, Arc::clone(bucket)))
            })
            .collect();
        drop(buckets);
        let resolved = Arc::new(resolved);
        self.endpoints.write().unwrap_or_else(PoisonError::into_inner).insert(id, Arc::clone(&resolved));
        resolved
    }

    /// How many keys the limit of `scope` at `rate` remembers now (0 for none or for `global`).
    pub fn keys_held(&self, scope: Scope, rate: Rate) -> usize {
        let buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        match buckets.get(&(scope, rate)).map(|b| &**b) {
            Some(Bucket::Local(Local::Keyed(keyed)) | Bucket::Shared { fallback: Local::Keyed(keyed), .. }) => {
                keyed.len()
            }
            _ => 0,
        }
    }
}

/// One instance's share of `rate` when `instances` share it: the count divided (at least 1), the
/// period kept.
fn share(rate: Rate, instances: u32) -> Rate {
    Rate::new((rate.count / instances.max(1)).max(1), rate.per)
}

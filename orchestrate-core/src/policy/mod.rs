//! Every policy of the DSL and the configuration file, once: the types, their keys, defaults and
//! ranges, and the wording of every mistake.
//!
//! `services!` and `#[call(retry(..))]` (at compile time) and the configuration reader (at
//! start-up) turn what they parsed into [`Value`]s carrying their own positions, call the `read`
//! function of the policy, and turn the [`Problem`]s it reports into compile errors at a span or
//! configuration errors at `file:line:col`. Neither side has a rule of its own, so the two accept
//! exactly the same values and say the same thing about a wrong one.
//!
//! | policy | module | DSL | configuration file |
//! |---|---|---|---|
//! | retries | [`retry`] | `retry(attempts = 3, backoff = "100ms")` | `retry = { attempts = 3, backoff = "100ms" }` |
//! | circuit breaker | [`breaker`] | `breaker(failure_rate = "50%", min_calls = 20, within = "10s", open_for = "30s", probes = 3)` or `breaker(failures = 5, ..)` | `breaker = { .. }` |
//! | concurrency limit | [`bulkhead`] | `max_in_flight = auto` or `max_in_flight = 64` | the same (`"auto"`) |
//! | response cache (call, endpoint) | [`cache`] | `cache(ttl = "60s", stale = "30s", key = .., tags = [..])` | `[cache]` (capacity, shared) |
//! | balancing over instances, outlier ejection | [`balance`] | `balance(failures = 5, eject_for = "30s", max_ejected = "50%")` | `balance = { .. }` |
//! | hedged reads (call), their budget (service) | [`hedge`] | `hedge(after = "50ms", max = 1)`, `hedge_budget = "10%"` | `hedge_budget = "10%"` |
//! | retry budget | [`retry_budget`] | `retry_budget(percent = 20)` | `retry_budget = { percent = 20 }` |
//! | compensation of a call | [`saga`] | `compensate = post("/refunds", .., timeout = "2s", retry(..))` | – |
//! | replay of client retries | [`idempotency`] | `#[endpoint(.., idempotent_requests)]` | – |
//! | a service's policies | [`service`] | `cart: ".." { .. }` | `[services.cart]` |
//! | inbound rate limits (module, endpoint) | [`rate_limit`] | `rate_limit(per_user = "100/min", per_ip = "500/min", per_endpoint = "50/min", global = "10000/min")` | `[rate_limit]`, `[rate_limit.endpoints.Summary]` |
//! | canary version of an endpoint, its rollback | [`canary`] | `canary(version = "v2", weight = 5, key = "sub")` | `[canary.SummaryV2]` |
//! | service-level objective (endpoint) | [`slo`] | `slo(availability = "99.9%", p99 = "300ms")` | – |
//! | the shared store | [`store`] | – | `[store]` |
//! | authentication | [`auth`] | `#[api(auth = jwt)]`, `#[endpoint(.., auth = none)]` | `[auth]`, `[ops] token` |
//! | recent requests kept for `/_orchestrate` | [`recent`] | – (the runtime builder) | `[recent]` |
//! | the listener's limits on slow and abusive clients | [`server`] | – (the runtime builder, `server::Server`) | `[server]` |
//!
//! ```
//! use orchestrate_core::policy::{Entry, Reader, Syntax, Value, service};
//! // `services! { cart: ".." { retry(attempts = 11, backoff = "100ms") } }`, positions as numbers.
//! let retry = Value::Table(
//!     vec![Entry::new("attempts", 2, Value::Number(11, 3)), Entry::new("backoff", 4, Value::Str("100ms".into(), 5))],
//!     1,
//! );
//! let mut reader = Reader::new(Syntax::Dsl);
//! assert!(service::read(&mut reader, &[Entry::new("retry", 0, retry)], None).is_none());
//! let problem = &reader.problems()[0];
//! assert_eq!((problem.at, problem.key.as_str()), (3, "retry.attempts"));
//! assert_eq!(problem.message, "more than 10 attempts multiplies load on a failing service; use at most 10");
//! ```

pub mod auth;
pub mod balance;
pub mod breaker;
pub mod bulkhead;
pub mod cache;
pub mod canary;
pub mod hedge;
pub mod idempotency;
pub mod rate_limit;
pub mod recent;
pub mod retry;
pub mod retry_budget;
pub mod saga;
pub mod server;
pub mod service;
pub mod slo;
pub mod store;
mod value;

pub use auth::{Auth, AuthSettings};
pub use balance::BalancePolicy;
pub use breaker::{BreakerPolicy, Trip};
pub use bulkhead::Concurrency;
pub use cache::{CachePolicy, CacheSettings};
pub use canary::{Canary, CanaryKey, CanaryOverride, CanarySettings, Rollback};
pub use hedge::{HedgeBudget, HedgePolicy};
pub use rate_limit::{Rate, RateLimitSettings, RateLimits};
pub use recent::RecentRequests;
pub use retry::{RetryOn, RetryPolicy};
pub use retry_budget::RetryBudget;
pub use saga::{CompensationPolicy, SagaSettings};
pub use server::ServerLimits;
pub use service::ServicePolicies;
pub use slo::{Availability, Slo};
pub use store::StoreSettings;
pub use value::{Entry, Example, Keys, Problem, Reader, Syntax, Value, unknown_key};

/// Serializes a duration as whole milliseconds (the `..Ms` keys of the specs' JSON).
#[cfg(feature = "serde")]
pub fn millis<S: serde::Serializer>(duration: &std::time::Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

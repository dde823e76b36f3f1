//! Downstream services as declared by `services!`: names, base URLs and per-service policies.
//!
//! The declaration is plain `const` data so that the compile-time checks of `#[endpoint]` can read
//! the retry policies (see [`orchestrate_core::budget`]) and the runtime can build one client per
//! service at start-up, after applying overrides from the environment or a configuration file.
//!
//! The policy types themselves ([`RetryPolicy`], [`BreakerPolicy`], [`RetryBudget`], [`RetryOn`])
//! live in [`orchestrate_core::policy`] with their grammar, defaults and ranges, so that
//! `services!` and the configuration file share them.

use serde::Serialize;

pub(crate) use orchestrate_core::policy::millis;
pub use orchestrate_core::policy::rate_limit::Outbound;
pub use orchestrate_core::policy::{
    BalancePolicy, BreakerPolicy, CachePolicy, CompensationPolicy, Concurrency, HedgeBudget, HedgePolicy, RetryBudget,
    RetryOn, RetryPolicy, Trip,
};

/// The host (and port) of a URL: no scheme, user info, path or query, so a serialized spec never
/// shows credentials or internal paths.
pub(crate) fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.rsplit_once('@').map_or(authority, |(_, host)| host)
}

fn host_only<S: serde::Serializer>(url: &&'static str, serializer: S) -> Result<S::Ok, S::Error> {
    let hosts: Vec<&str> = orchestrate_core::url::base_urls(url).map(host_of).collect();
    serializer.serialize_str(&hosts.join(", "))
}

/// Implemented by the marker type `services!` generates for each service.
///
/// Endpoints refer to services through these types (`services::cart`), so a misspelled service is
/// an ordinary "cannot find type" error at the `service = ".."` of the call, with rustc's
/// suggestion of the closest declared name.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a downstream service",
    label = "not declared in `services!`",
    note = "declare it in `orchestrate::services! {{ {Self}: \"http://..\" }}`"
)]
pub trait Service: 'static {
    /// Position of the service in its `services!` declaration ([`Service::ALL`]).
    const INDEX: usize;
    /// The declaration of the service, with its compile-time policies.
    const SPEC: &'static ServiceSpec;
    /// Every service of the same `services!` declaration, in order.
    const ALL: &'static [ServiceSpec];
}

/// The service type of a `#[call(service = "..")]` that names no declared service: the build
/// already failed with that error, and this type keeps the rest of the generated code well-typed
/// so that no second error follows from it.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct UnknownService<const ERROR: usize>;

const UNKNOWN: ServiceSpec = ServiceSpec::new("", "http://unknown.invalid");

impl<const ERROR: usize> Service for UnknownService<ERROR> {
    const INDEX: usize = usize::MAX;
    const SPEC: &'static ServiceSpec = &UNKNOWN;
    const ALL: &'static [ServiceSpec] = &[];
}

/// One downstream service: where it lives and how calls to it behave.
///
/// ```
/// use orchestrate_runtime::{ServiceSpec, RetryPolicy};
/// use std::time::Duration;
/// const CART: ServiceSpec = ServiceSpec::new("cart", "http://cart.internal:8080")
///     .with_retry(RetryPolicy::new(3, Duration::from_millis(100)))
///     .with_max_in_flight(48);
/// assert_eq!(CART.retry.attempts, 3);
/// assert_eq!(CART.max_in_flight.fixed(), Some(48));
/// ```
///
/// It serializes as JSON with the base URL reduced to its host (no credentials, no path):
///
/// ```
/// use orchestrate_runtime::ServiceSpec;
/// const TAX: ServiceSpec = ServiceSpec::new("tax", "https://user:secret@tax.internal:8443/v1");
/// let json = serde_json::to_value(TAX).unwrap();
/// assert_eq!((json["name"].as_str(), json["host"].as_str()), (Some("tax"), Some("tax.internal:8443")));
/// assert!(!json.to_string().contains("secret"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ServiceSpec {
    /// The name used in `#[call(service = "..")]`, in metrics and in `failedServices`.
    pub name: &'static str,
    /// Default base URL; `ORCHESTRATE_<NAME>_URL` overrides it at start-up. Serialized as `host`.
    #[serde(rename = "host", serialize_with = "host_only")]
    pub base_url: &'static str,
    /// Retries of idempotent calls (or calls with an idempotency key).
    pub retry: RetryPolicy,
    /// Circuit breaker, if any.
    pub breaker: Option<BreakerPolicy>,
    /// Bulkhead: concurrent calls allowed (adaptive unless fixed); the excess is shed at once.
    pub max_in_flight: Concurrency,
    /// Largest response body accepted, in bytes; a larger answer is the call's failure.
    #[serde(rename = "maxBodyBytes")]
    pub max_body: u64,
    /// Share of calls that may be retries, so retries cannot multiply an outage.
    pub retry_budget: RetryBudget,
    /// Inbound headers forwarded to this service in addition to the default allow-list.
    pub forward_headers: &'static [&'static str],
    /// Speak HTTP/2 only: h2c with prior knowledge over `http://`, h2 over `https://`. Without it,
    /// HTTPS services negotiate HTTP/2 by ALPN and plain HTTP uses HTTP/1.1 keep-alive.
    pub http2: bool,
    /// Outbound rate limit: at most so many calls per period from this instance; the excess is
    /// shed at once, or waits for its turn within the deadline (`wait`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<Outbound>,
    /// How calls are spread over the service's instances when its base URL lists several, and
    /// when an instance is ejected.
    pub balance: BalancePolicy,
    /// Share of the hedged calls (`#[call(.., hedge(..))]`) that may send a hedge.
    pub hedge_budget: HedgeBudget,
}

impl ServiceSpec {
    /// Default response body cap: 8 MiB.
    pub const DEFAULT_MAX_BODY: u64 = orchestrate_core::policy::service::DEFAULT_MAX_BODY;

    /// A service with default policies: no retries, no breaker, an adaptive concurrency limit,
    /// 8 MiB body cap, a 20% retry budget.
    pub const fn new(name: &'static str, base_url: &'static str) -> Self {
        Self {
            name,
            base_url,
            retry: RetryPolicy::NONE,
            breaker: None,
            max_in_flight: Concurrency::AUTO,
            max_body: Self::DEFAULT_MAX_BODY,
            retry_budget: RetryBudget::DEFAULT,
            forward_headers: &[],
            http2: false,
            rate_limit: None,
            balance: BalancePolicy::DEFAULT,
            hedge_budget: HedgeBudget::DEFAULT,
        }
    }

    /// Sets the retry policy.
    pub const fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the circuit breaker.
    pub const fn with_breaker(mut self, breaker: BreakerPolicy) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// A fixed bulkhead size instead of the adaptive limit.
    pub const fn with_max_in_flight(mut self, max: u32) -> Self {
        self.max_in_flight = Concurrency::Fixed(max);
        self
    }

    /// Sets the concurrency limit.
    pub const fn with_concurrency(mut self, limit: Concurrency) -> Self {
        self.max_in_flight = limit;
        self
    }

    /// Limits the calls to the service (`rate_limit = "200/s"` in `services!`).
    pub const fn with_rate_limit(mut self, limit: Outbound) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Sets the response body cap in bytes.
    pub const fn with_max_body(mut self, bytes: u64) -> Self {
        self.max_body = bytes;
        self
    }

    /// Sets the balancing and ejection over the service's instances.
    pub const fn with_balance(mut self, balance: BalancePolicy) -> Self {
        self.balance = balance;
        self
    }

    /// Sets the share of hedged calls that may send a hedge (`hedge_budget = "10%"`).
    ///
    /// ```
    /// use orchestrate_runtime::{HedgeBudget, ServiceSpec};
    /// const CATALOG: ServiceSpec = ServiceSpec::new("catalog", "http://catalog.internal").with_hedge_budget(HedgeBudget::new(5));
    /// assert_eq!(CATALOG.hedge_budget.percent, 5);
    /// ```
    pub const fn with_hedge_budget(mut self, budget: HedgeBudget) -> Self {
        self.hedge_budget = budget;
        self
    }

    /// Sets the retry budget.
    pub const fn with_retry_budget(mut self, budget: RetryBudget) -> Self {
        self.retry_budget = budget;
        self
    }

    /// Adds inbound headers to forward to this service.
    pub const fn with_forward_headers(mut self, headers: &'static [&'static str]) -> Self {
        self.forward_headers = headers;
        self
    }

    /// Speaks HTTP/2 only (`http2 = true` in `services!`): h2c with prior knowledge over plain
    /// HTTP, for services behind a gRPC-style or h2c-only proxy.
    ///
    /// ```
    /// use orchestrate_runtime::ServiceSpec;
    /// const PRICING: ServiceSpec = ServiceSpec::new("pricing", "http://pricing.internal:8080").with_http2(true);
    /// assert!(PRICING.http2);
    /// ```
    pub const fn with_http2(mut self, http2: bool) -> Self {
        self.http2 = http2;
        self
    }
}

/// The state of a service's circuit breaker, for health checks, metrics and the record of each
/// call. (Here, beside the service's policies, rather than in [`breaker`](crate::breaker): the
/// timeline records it, and the breaker reports to the telemetry that reads the timeline.)
///
/// ```
/// use orchestrate_runtime::{BreakerState, Runtime, ServiceSpec};
/// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://127.0.0.1:9")];
/// let runtime = Runtime::builder(SERVICES).read_env(false).build().unwrap();
/// // A service without a breaker reports `Closed`.
/// assert_eq!(runtime.service("cart").unwrap().breaker_state(), BreakerState::Closed);
/// assert_eq!(BreakerState::HalfOpen.as_str(), "half_open");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls pass; failures are being counted.
    Closed,
    /// Calls fail at once without a request.
    Open,
    /// A limited number of probe calls pass to test the service.
    HalfOpen,
}

impl BreakerState {
    /// Snake-case name for metrics labels and health reports.
    ///
    /// ```
    /// assert_eq!(orchestrate_runtime::BreakerState::Open.as_str(), "open");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    /// The gauge value used by metrics: 0 closed, 1 half-open, 2 open.
    ///
    /// ```
    /// assert_eq!(orchestrate_runtime::BreakerState::Open.as_gauge(), 2);
    /// ```
    pub const fn as_gauge(self) -> u8 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }
}

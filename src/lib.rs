//! # orchestrate
//!
//! Backend-for-Frontend and API composition in Rust. Declare the downstream services once, write
//! one annotated struct per client screen, and get:
//!
//! - a **dependency graph checked while your crate compiles**: a call that needs a field nobody
//!   produces, a cycle, an unknown service, a retry that could charge twice, or a critical path
//!   longer than the endpoint's deadline are compile errors at the line to fix;
//! - **generated executor code** that starts every call the moment its own inputs are ready, on
//!   the request's task, within the endpoint's deadline, cancelling everything in flight when a
//!   required call fails;
//! - the failure policy of the design template: optional calls degrade to `null` (or a fallback)
//!   with `partialData: true`, required failures become 502/504/401/429 with the failed services
//!   named.
//!
//! ```
//! use orchestrate::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! orchestrate::services! {
//!     cart: "http://cart.internal:8080" { retry(attempts = 3, backoff = "100ms") },
//!     pricing: "http://pricing.internal:8080",
//! }
//!
//! #[derive(Deserialize)]
//! #[serde(rename_all = "camelCase")]
//! pub struct SummaryRequest { cart_id: String }
//! #[derive(Serialize, Deserialize)]
//! pub struct Cart { id: String, items: Vec<Item> }
//! #[derive(Serialize, Deserialize, Clone)]
//! pub struct Item { sku: String, qty: u32, price: u64 }
//! #[derive(Serialize, Deserialize)]
//! pub struct Pricing { subtotal: u64 }
//! #[derive(Serialize)]
//! pub struct Items<'a> { items: &'a [Item] }
//!
//! #[endpoint(POST "/summary", timeout = "2s")]
//! #[derive(Serialize)]
//! pub struct Summary {
//!     #[input(body)]
//!     #[serde(skip)]
//!     req: SummaryRequest,
//!     #[call(service = "cart", timeout = "200ms", required, get = "/carts/{req.cart_id}")]
//!     cart: Cart,
//!     #[call(service = "pricing", timeout = "200ms", post = "/calculate", body = Items { items: &cart.items })]
//!     pricing: Option<Pricing>,
//!     #[compute(pricing.as_ref().map_or(0, |p| p.subtotal))]
//!     total: u64,
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::new(services::ALL)?;
//! let outcome = Summary::run(&runtime, SummaryInputs { req: SummaryRequest { cart_id: "c1".into() } }).await?;
//! println!("total {} (partial: {})", outcome.value.total, outcome.is_partial());
//! # Ok(()) }
//! ```
#![doc = include_str!("../docs/dsl.md")]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]
#![forbid(unsafe_code)]

pub use orchestrate_macros::{api, endpoint, services};

// Explicit re-exports: what applications write against. The machinery the generated code calls
// is in `__private`; new items appear here deliberately.

// Defining and running endpoints.
pub use orchestrate_runtime::{
    Endpoint, FailedCall, Failure, FailureCause, Outcome, RequestContext, Runtime, RuntimeBuilder,
};

// Services and their policies.
pub use orchestrate_runtime::{
    Availability, BalancePolicy, BreakerPolicy, BreakerState, CachePolicy, CompensationPolicy, Concurrency,
    HedgeBudget, HedgePolicy, RetryBudget, RetryOn, RetryPolicy, Service, ServiceClient, ServiceHealth, ServiceSpec,
    Slo, Trip,
};

// Custom call logic and downstream requests.
pub use orchestrate_runtime::{
    BoxError, CallClient, CallError, CallErrorKind, CallPolicy, HttpTransport, Outgoing, RequestBuilder, Target,
    Transport,
};

// What a request did.
pub use orchestrate_runtime::{CallOutcome, CallRecord, Timeline};

// The static description of endpoints (documentation, start-up checks, `/_orchestrate`).
pub use orchestrate_runtime::{
    CallSpec, CallTarget, Canary, CanaryKey, CompensationSpec, EndpointSpec, InputSource, InputSpec, Method, NodeKind,
    NodeSpec, Rollback,
};

// Start-up configuration.
pub use orchestrate_runtime::{
    ConfigError, REDIS_URL_ENV, SERVER_TIMING_ENV, env_var_name, install_tls_provider, validate_base_url,
};

// Namespaces: serving, operations, telemetry, configuration, the downstream client.
pub use orchestrate_runtime::{Outbound, Rate, RateLimits};
pub use orchestrate_runtime::{
    auth, cache, canary, client, config, journal, ops, rate_limit, recent, router, saga, server, store, telemetry,
    timeline,
};

/// The names most endpoint modules need.
pub mod prelude {
    pub use crate::{CallClient, CallError, Endpoint, Outcome, Runtime, endpoint};
    pub use serde::{Deserialize, Serialize};
}

#[doc(hidden)]
pub mod __private {
    pub use orchestrate_macros::__unknown_service as unknown_service;
    pub use orchestrate_runtime::__private::*;
}

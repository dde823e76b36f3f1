//! Runtime of [orchestrate](https://docs.rs/orchestrate): the dependency-driven executor, the
//! downstream clients and their policies, and the glue that serves endpoints with axum.
//!
//! Applications depend on the `orchestrate` facade crate, which re-exports this crate and the
//! macros; this crate is what the generated code calls.
//!
//! | module | concern |
//! |---|---|
//! | [`service`] | services and their policies, as declared by `services!` |
//! | [`endpoint`] | the [`Endpoint`] trait the generated code implements |
//! | [`spec`] | the static description of an endpoint (`/_orchestrate`, start-up checks) |
//! | [`client`] | per-service HTTP clients over a pluggable [`Transport`] |
//! | [`retry`] | retries with backoff and jitter inside the deadline, the retry budget |
//! | [`auth`] | bearer-token (JWT) authentication of inbound requests, claims for inputs |
//! | [`breaker`] | the circuit breaker per service |
//! | [`cache`] | response caches of calls and endpoints (stale-while-revalidate, single-flight, invalidation) |
//! | [`rate_limit`] | inbound rate limits per address, user, endpoint and for everyone |
//! | [`bulkhead`] | the concurrency limit per service (adaptive or fixed), the excess shed at once |
//! | [`health`] | what a service's client has seen lately |
//! | [`config`] | start-up overrides from the environment and a TOML file |
//! | [`store`] | the shared store (Redis, or memory) the stateful features keep their state in |
//! | [`outcome`] | assembled values, partial results and failures → HTTP status |
//! | [`timeline`] | per-call timing and results of one request |
//! | [`recent`] | the recent requests of each endpoint, in fixed-size stores, for `/_orchestrate` |
//! | [`telemetry`] | trace context and request ids downstream, metrics, `Server-Timing` |
//! | [`ops`] | `/metrics`, `/health` and `/_orchestrate` for operators |
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]
#![forbid(unsafe_code)]

pub mod auth;
pub mod balance;
pub mod breaker;
pub mod bulkhead;
pub mod cache;
pub mod canary;
pub mod client;
pub mod config;
pub mod context;
mod downstream;
pub mod endpoint;
pub mod error;
mod executor;
pub mod health;
mod idempotency;
pub mod journal;
pub mod ops;
pub mod outcome;
pub mod rate_limit;
pub mod recent;
pub mod retry;
pub mod router;
mod runtime;
pub mod saga;
pub mod server;
pub mod service;
pub mod spec;
pub mod store;
pub mod telemetry;
pub mod timeline;
mod tls;
mod window;

pub use breaker::BreakerState;
pub use client::{CallClient, CallPolicy, HttpTransport, Outgoing, RequestBuilder, ServiceClient, Target, Transport};
pub use config::{ConfigError, REDIS_URL_ENV, env_var_name, validate_base_url};
pub use context::RequestContext;
pub use endpoint::Endpoint;
pub use error::{BoxError, CallError, CallErrorKind};
pub use health::ServiceHealth;
pub use outcome::{FailedCall, Failure, FailureCause, Outcome};
pub use rate_limit::{Rate, RateLimits};
pub use runtime::{Runtime, RuntimeBuilder, SERVER_TIMING_ENV};
pub use service::Outbound;
pub use service::{
    BalancePolicy, BreakerPolicy, CachePolicy, CompensationPolicy, Concurrency, HedgeBudget, HedgePolicy, RetryBudget,
    RetryOn, RetryPolicy, Service, ServiceSpec, Trip,
};
pub use spec::{
    Availability, CallSpec, CallTarget, Canary, CanaryKey, CompensationSpec, EndpointSpec, InputSource, InputSpec,
    Method, NodeKind, NodeSpec, Rollback, Slo,
};
pub use timeline::{CallOutcome, CallRecord, Timeline};
pub use tls::install_tls_provider;

/// Items the generated code uses. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::canary::Versions;
    pub use crate::client::{CustomLogic, Outgoing, Target, custom_logic};
    pub use crate::downstream::Downstream;
    pub use crate::executor::{CallDone, Calls, Driver, Exec, IntoFallback, Report, Slot};
    pub use crate::router::{Extract, FromParam, Inbound, InputError, answered_version, choose_version, serve};
    pub use crate::service::UnknownService;
    pub use crate::timeline::Tally;
    pub use axum;
    pub use http::Method as HttpMethod;
    pub use orchestrate_core::budget::{Cost, over_budget};
    pub use std::future::poll_fn;
    pub use std::pin::pin;
    pub use std::task::Poll;
    pub use std::time::Duration;
}

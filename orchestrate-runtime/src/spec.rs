//! The static description of an endpoint that `#[endpoint]` generates: its method, route,
//! timeout, inputs and the nodes of its graph (calls and computed fields).
//!
//! The description serializes (serde) as the JSON of `/_orchestrate.json`: camelCase keys,
//! durations as milliseconds (`timeoutMs`), enums tagged by `kind`.

use crate::service::{CachePolicy, CompensationPolicy, HedgePolicy, RetryPolicy, millis};
use orchestrate_core::policy::{Auth, RateLimits};
pub use orchestrate_core::policy::{Availability, Canary, CanaryKey, Rollback, Slo};
use serde::Serialize;
use std::time::Duration;

/// An HTTP method of an endpoint or a downstream call. Serializes as `"GET"`, `"POST"`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
}

impl Method {
    /// The `http` crate's method.
    pub fn to_http(self) -> http::Method {
        match self {
            Self::Get => http::Method::GET,
            Self::Post => http::Method::POST,
            Self::Put => http::Method::PUT,
            Self::Patch => http::Method::PATCH,
            Self::Delete => http::Method::DELETE,
        }
    }

    /// Upper-case name, e.g. `"POST"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }

    /// Whether repeating the request has the same effect as sending it once (RFC 9110 §9.2.2).
    pub const fn is_idempotent(self) -> bool {
        matches!(self, Self::Get | Self::Put | Self::Delete)
    }
}

/// Where an endpoint input comes from. Serializes as `{"from":"body"}` or
/// `{"from":"path","name":"id"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "from", content = "name", rename_all = "camelCase")]
#[non_exhaustive]
pub enum InputSource {
    /// The JSON request body.
    Body,
    /// A route parameter.
    Path(&'static str),
    /// The whole query string.
    Query,
    /// One query parameter.
    QueryParam(&'static str),
    /// One request header.
    Header(&'static str),
    /// One claim of the verified bearer token (`auth = jwt` endpoints only).
    Claim(&'static str),
}

/// An input field of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct InputSpec {
    /// Field name.
    pub name: &'static str,
    /// Where it is read from.
    pub source: InputSource,
    /// The field's type as written.
    #[serde(rename = "type")]
    pub ty: &'static str,
}

impl InputSpec {
    /// Input `name` of type `ty` (as written), read from `source`.
    pub const fn new(name: &'static str, source: InputSource, ty: &'static str) -> Self {
        Self { name, source, ty }
    }
}

/// A node of an endpoint's graph: a downstream call or a computed field. Serializes with its
/// [`NodeKind`]'s fields inline (`"kind":"call","service":"cart",..`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[non_exhaustive]
pub struct NodeSpec {
    /// Field name.
    pub name: &'static str,
    /// The field's type as written.
    #[serde(rename = "type")]
    pub ty: &'static str,
    /// Indices (into [`EndpointSpec::nodes`]) of the nodes this one waits for.
    pub deps: &'static [usize],
    /// Inputs this node reads (for documentation).
    pub inputs: &'static [&'static str],
    /// What the node does.
    #[serde(flatten)]
    pub kind: NodeKind,
}

impl NodeSpec {
    /// Node `name` of type `ty` (as written), waiting for the nodes `deps` and reading the inputs
    /// `inputs`, doing `kind`.
    pub const fn new(
        name: &'static str,
        ty: &'static str,
        deps: &'static [usize],
        inputs: &'static [&'static str],
        kind: NodeKind,
    ) -> Self {
        Self { name, ty, deps, inputs, kind }
    }
}

/// What a node does. Serializes tagged: `{"kind":"call",..}` or `{"kind":"compute","expr":".."}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
#[non_exhaustive]
pub enum NodeKind {
    /// Calls a downstream service.
    Call(CallSpec),
    /// Computes a value from other fields.
    Compute {
        /// The expression as written.
        expr: &'static str,
    },
}

/// How a call reaches its service. Serializes as `{"kind":"http","method":"GET","path":".."}` or
/// `{"kind":"with","expr":".."}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
#[non_exhaustive]
pub enum CallTarget {
    /// A request built from the attribute: method and path template.
    Http {
        /// Method.
        method: Method,
        /// Path template as written, e.g. `"/carts/{req.cart_id}"`.
        path: &'static str,
    },
    /// Custom logic: `with = some::async_fn(..)`.
    With {
        /// The expression as written.
        expr: &'static str,
    },
}

/// A downstream call of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CallSpec {
    /// Service name.
    pub service: &'static str,
    /// Position of the service in its `services!` declaration.
    #[serde(skip)]
    pub service_index: usize,
    /// Method and path, or custom logic.
    pub target: CallTarget,
    /// Per-attempt timeout.
    #[serde(rename = "timeoutMs", serialize_with = "millis")]
    pub timeout: Duration,
    /// Whether a failure fails the endpoint.
    pub required: bool,
    /// Whether repeating the call is safe (idempotent method, `idempotent` flag or idempotency key).
    pub retryable: bool,
    /// Whether an `Idempotency-Key` is sent.
    pub idempotency_key: bool,
    /// Call-level retry policy replacing the service's.
    pub retry: Option<RetryPolicy>,
    /// The `fallback` expression, if any.
    pub fallback: Option<&'static str>,
    /// The `when` condition, if any.
    pub when: Option<&'static str>,
    /// Fan-out: the collection expression and the concurrency bound. Serializes as
    /// `{"collection":"cart.items","concurrency":8}`.
    #[serde(serialize_with = "fan_out")]
    pub for_each: Option<(&'static str, u32)>,
    /// How the call's answers are cached, if they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CachePolicy>,
    /// What undoes the call when a later required step fails (`compensate = ..`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compensation: Option<&'static CompensationSpec>,
    /// When a hedge of each attempt is sent (`hedge(after = "50ms")`), if the call is hedged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hedge: Option<&'static HedgePolicy>,
}

/// The compensation of a call (`compensate = post("/charges/{payment.id}/refund", ..)`): the
/// request the generated code builds once the call committed, sent when a later required step
/// fails, with its own timeout and retries.
///
/// ```
/// use orchestrate_runtime::{CompensationSpec, Method};
/// use orchestrate_runtime::service::CompensationPolicy;
/// const REFUND: CompensationSpec =
///     CompensationSpec::new(Method::Post, "/charges/{payment.id}/refund", CompensationPolicy::DEFAULT, true);
/// assert!(REFUND.idempotency_key);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CompensationSpec {
    /// The compensation's method.
    pub method: Method,
    /// Its path template, as written.
    pub path: &'static str,
    /// Timeout per attempt and retries.
    #[serde(flatten)]
    pub policy: CompensationPolicy,
    /// Whether it sends an `Idempotency-Key`.
    pub idempotency_key: bool,
}

impl CompensationSpec {
    /// `method path` with `policy`, with or without an idempotency key.
    pub const fn new(method: Method, path: &'static str, policy: CompensationPolicy, idempotency_key: bool) -> Self {
        Self { method, path, policy, idempotency_key }
    }
}

fn fan_out<S: serde::Serializer>(value: &Option<(&'static str, u32)>, serializer: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct FanOut {
        collection: &'static str,
        concurrency: u32,
    }
    value.map(|(collection, concurrency)| FanOut { collection, concurrency }).serialize(serializer)
}

impl CallSpec {
    /// A call of `service` (at `service_index` in its `services!`) through `target`, each attempt
    /// within `timeout`: optional, retryable when its method is idempotent, no idempotency key, the
    /// service's retries, no fallback, unconditional, one request.
    ///
    /// ```
    /// use orchestrate_runtime::{CallSpec, CallTarget, Method};
    /// use std::time::Duration;
    /// const CART: CallSpec = CallSpec::new("cart", 0, CallTarget::Http { method: Method::Get, path: "/carts/{id}" }, Duration::from_millis(200))
    ///     .with_required(true);
    /// assert!(CART.required && CART.retryable);
    /// ```
    pub const fn new(service: &'static str, service_index: usize, target: CallTarget, timeout: Duration) -> Self {
        let retryable = match target {
            CallTarget::Http { method, .. } => method.is_idempotent(),
            CallTarget::With { .. } => false,
        };
        Self {
            service,
            service_index,
            target,
            timeout,
            required: false,
            retryable,
            idempotency_key: false,
            retry: None,
            fallback: None,
            when: None,
            for_each: None,
            cache: None,
            compensation: None,
            hedge: None,
        }
    }

    /// Whether a failure fails the endpoint.
    pub const fn with_required(mut self, required: bool) -> Self {
        self.required = required;
        self
    }

    /// Whether repeating the call is safe.
    pub const fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Whether an `Idempotency-Key` is sent (which makes the call retryable).
    pub const fn with_idempotency_key(mut self, sent: bool) -> Self {
        self.idempotency_key = sent;
        if sent {
            self.retryable = true;
        }
        self
    }

    /// A call-level retry policy replacing the service's.
    pub const fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }

    /// The `fallback` expression, as written.
    pub const fn with_fallback(mut self, expr: &'static str) -> Self {
        self.fallback = Some(expr);
        self
    }

    /// The `when` condition, as written.
    pub const fn with_when(mut self, expr: &'static str) -> Self {
        self.when = Some(expr);
        self
    }

    /// Caches the call's answers.
    pub const fn with_cache(mut self, cache: CachePolicy) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The same call, hedged: each attempt sends another request when it has not answered after
    /// `hedge.after` (`hedge(after = "50ms")`).
    ///
    /// ```
    /// use orchestrate_runtime::{CallSpec, CallTarget, HedgePolicy, Method};
    /// use std::time::Duration;
    /// const PRICE: CallSpec = CallSpec::new("catalog", 0, CallTarget::Http { method: Method::Get, path: "/prices" }, Duration::from_millis(300))
    ///     .with_hedge(&HedgePolicy::new(Duration::from_millis(50)));
    /// assert_eq!(serde_json::to_value(PRICE).unwrap()["hedge"], serde_json::json!({"afterMs": 50, "max": 1}));
    /// ```
    pub const fn with_hedge(mut self, hedge: &'static HedgePolicy) -> Self {
        self.hedge = Some(hedge);
        self
    }

    /// Whether the call changes something downstream: a request other than GET not marked
    /// `idempotent` (retryable without being idempotent by method or keyed).
    ///
    /// ```
    /// use orchestrate_runtime::{CallSpec, CallTarget, Method};
    /// use std::time::Duration;
    /// let charge = CallSpec::new("charge", 0, CallTarget::Http { method: Method::Post, path: "/charges" }, Duration::from_secs(1));
    /// assert!(charge.has_side_effect());
    /// let cart = CallSpec::new("cart", 0, CallTarget::Http { method: Method::Get, path: "/carts/c1" }, Duration::from_secs(1));
    /// assert!(!cart.has_side_effect());
    /// ```
    pub const fn has_side_effect(&self) -> bool {
        match self.target {
            CallTarget::Http { method, .. } => {
                let marked_idempotent = self.retryable && !method.is_idempotent() && !self.idempotency_key;
                !matches!(method, Method::Get) && !marked_idempotent
            }
            CallTarget::With { .. } => false,
        }
    }

    /// The same call, undone by `compensation` when a later required step fails.
    pub const fn with_compensation(mut self, compensation: &'static CompensationSpec) -> Self {
        self.compensation = Some(compensation);
        self
    }

    /// A fan-out over `collection` (as written), at most `concurrency` requests at a time.
    pub const fn with_for_each(mut self, collection: &'static str, concurrency: u32) -> Self {
        self.for_each = Some((collection, concurrency));
        self
    }

    /// The retry policy in force: the call's own, else its service's (when the call is retryable).
    pub fn effective_retry(&self, service: &RetryPolicy) -> RetryPolicy {
        match (self.retry, self.retryable) {
            (Some(own), _) => own,
            (None, true) => *service,
            (None, false) => RetryPolicy::NONE,
        }
    }
}

/// The static description of an endpoint, generated by `#[endpoint]`.
///
/// It drives documentation (`/_orchestrate`, the rustdoc call table) and run-time bookkeeping.
/// It serializes as JSON for tools:
///
/// ```
/// use orchestrate_runtime::{EndpointSpec, Method, NodeKind, NodeSpec};
/// use std::time::Duration;
/// static TOTAL: EndpointSpec = EndpointSpec::new(
///     "Total", Method::Get, "/total", Duration::from_millis(500), &[],
///     &[NodeSpec::new("zero", "u64", &[], &[], NodeKind::Compute { expr: "0" })],
/// );
/// assert_eq!(
///     serde_json::to_string(&TOTAL).unwrap(),
///     r#"{"name":"Total","method":"GET","route":"/total","timeoutMs":500,"inputs":[],"nodes":[{"name":"zero","type":"u64","deps":[],"inputs":[],"kind":"compute","expr":"0"}]}"#
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct EndpointSpec {
    /// The struct's name.
    pub name: &'static str,
    /// Method served.
    pub method: Method,
    /// Route served, axum 0.8 syntax.
    pub route: &'static str,
    /// Deadline of the whole graph.
    #[serde(rename = "timeoutMs", serialize_with = "millis")]
    pub timeout: Duration,
    /// Input fields.
    pub inputs: &'static [InputSpec],
    /// Calls and computed fields, in topological order.
    pub nodes: &'static [NodeSpec],
    /// How the assembled answers are cached, if they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CachePolicy>,
    /// The inbound rate limits declared for it (its own, and its module's where it sets none);
    /// the configuration file may override them (see [`rate_limit`](crate::rate_limit)).
    #[serde(rename = "rateLimit", skip_serializing_if = "RateLimits::is_none")]
    pub rate_limit: RateLimits,
    /// What the endpoint promises (`slo(..)`), if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo: Option<Slo>,
    /// Whether a verified bearer token is required ([`auth`](crate::auth)); in the JSON only
    /// when it is.
    #[serde(skip_serializing_if = "is_open")]
    pub auth: Auth,
    /// Whether a client's retry with the same `Idempotency-Key` gets the first response back
    /// instead of running again (`idempotent_requests`); in the JSON only when it does.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub idempotent_requests: bool,
    /// The canary version this endpoint is of its route (`canary(..)`), if it is one; the
    /// endpoint of the same method and path without it is the stable version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    /// How long a retry with the key of a request still running waits for its response
    /// (`idempotent_requests(wait = "5s")`) instead of a 409 at once; in the JSON only when set.
    #[serde(rename = "idempotentWaitMs", skip_serializing_if = "Option::is_none", serialize_with = "optional_millis")]
    pub idempotent_wait: Option<Duration>,
    /// Whether some call has a compensation, found once when the spec is made (every call of
    /// a request asks).
    #[serde(skip)]
    compensates: bool,
}

fn optional_millis<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => millis(d, s),
        None => s.serialize_none(),
    }
}

fn is_open(auth: &Auth) -> bool {
    *auth == Auth::None
}

impl EndpointSpec {
    /// Endpoint `name` serving `method` `route` within `timeout`, with its inputs and its nodes in
    /// topological order.
    pub const fn new(
        name: &'static str,
        method: Method,
        route: &'static str,
        timeout: Duration,
        inputs: &'static [InputSpec],
        nodes: &'static [NodeSpec],
    ) -> Self {
        Self {
            name,
            method,
            route,
            timeout,
            inputs,
            nodes,
            cache: None,
            rate_limit: RateLimits::NONE,
            slo: None,
            auth: Auth::None,
            idempotent_requests: false,
            idempotent_wait: None,
            canary: None,
            compensates: compensates(nodes),
        }
    }

    /// Makes the endpoint a canary version of its route (`canary(..)`; see
    /// [`canary`](crate::canary)).
    ///
    /// ```
    /// use orchestrate_runtime::{Canary, CanaryKey, EndpointSpec, Method, Rollback};
    /// const V2: EndpointSpec = EndpointSpec::new("PingV2", Method::Get, "/ping", std::time::Duration::from_secs(1), &[], &[])
    ///     .with_canary(Canary::new("v2", 5, CanaryKey::RequestId, Rollback::DEFAULT));
    /// assert_eq!(V2.version(), "v2");
    /// ```
    pub const fn with_canary(mut self, canary: Canary) -> Self {
        self.canary = Some(canary);
        self
    }

    /// The version's name: the canary's, or `"stable"`.
    pub const fn version(&self) -> &'static str {
        match &self.canary {
            Some(canary) => canary.version,
            None => orchestrate_core::policy::canary::STABLE,
        }
    }

    /// Requires (or, with [`Auth::None`], does not) a verified bearer token.
    ///
    /// ```
    /// use orchestrate_runtime::{EndpointSpec, Method};
    /// use orchestrate_runtime::auth::Auth;
    /// use std::time::Duration;
    /// const SPEC: EndpointSpec =
    ///     EndpointSpec::new("Me", Method::Get, "/me", Duration::from_secs(1), &[], &[]).with_auth(Auth::Jwt);
    /// assert_eq!(SPEC.auth, Auth::Jwt);
    /// ```
    pub const fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Caches the assembled answers (a GET endpoint's).
    pub const fn with_cache(mut self, cache: CachePolicy) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Limits the requests of users, addresses or everyone (`rate_limit(..)`).
    pub const fn with_rate_limit(mut self, limits: RateLimits) -> Self {
        self.rate_limit = limits;
        self
    }

    /// Promises `slo`: its availability and p99 become alert rules
    /// ([`ops::alerts`](crate::ops::alerts)) and the recent requests' target.
    ///
    /// ```
    /// use orchestrate_runtime::{Availability, EndpointSpec, Method, Slo};
    /// use std::time::Duration;
    /// static PING: EndpointSpec = EndpointSpec::new("Ping", Method::Get, "/ping", Duration::from_secs(1), &[], &[])
    ///     .with_slo(Slo::new().with_availability(Availability::from_ppm(999_000)).with_p99(Duration::from_millis(50)));
    /// assert!(serde_json::to_string(&PING).unwrap().ends_with(r#""slo":{"availability":"99.9%","p99Ms":50}}"#));
    /// ```
    pub const fn with_slo(mut self, slo: Slo) -> Self {
        self.slo = Some(slo);
        self
    }

    /// Replays the first response to a client's retry with the same `Idempotency-Key` (or not).
    ///
    /// ```
    /// use orchestrate_runtime::{EndpointSpec, Method};
    /// const PLACE: EndpointSpec =
    ///     EndpointSpec::new("Place", Method::Post, "/orders", std::time::Duration::from_secs(3), &[], &[])
    ///         .with_idempotent_requests(true);
    /// assert!(PLACE.idempotent_requests);
    /// ```
    pub const fn with_idempotent_requests(mut self, on: bool) -> Self {
        self.idempotent_requests = on;
        self
    }

    /// A retry while the first request with its key runs waits up to `wait` for its response.
    ///
    /// ```
    /// use orchestrate_runtime::{EndpointSpec, Method};
    /// use std::time::Duration;
    /// const PLACE: EndpointSpec =
    ///     EndpointSpec::new("Place", Method::Post, "/orders", Duration::from_secs(3), &[], &[])
    ///         .with_idempotent_requests(true)
    ///         .with_idempotent_wait(Duration::from_secs(5));
    /// assert_eq!(PLACE.idempotent_wait, Some(Duration::from_secs(5)));
    /// ```
    pub const fn with_idempotent_wait(mut self, wait: Duration) -> Self {
        self.idempotent_wait = Some(wait);
        self
    }

    /// The call of node `index`, if it is one.
    pub fn call(&self, index: usize) -> Option<&CallSpec> {
        match &self.nodes.get(index)?.kind {
            NodeKind::Call(call) => Some(call),
            NodeKind::Compute { .. } => None,
        }
    }

    /// Whether some call of the endpoint has a compensation (`compensate = ..`): its requests are
    /// sagas, recorded in the journal.
    ///
    /// ```
    /// use orchestrate_runtime::{EndpointSpec, Method};
    /// let ping = EndpointSpec::new("Ping", Method::Get, "/ping", std::time::Duration::from_secs(1), &[], &[]);
    /// assert!(!ping.has_compensations());
    /// ```
    pub fn has_compensations(&self) -> bool {
        self.compensates
    }
}

/// Whether some call of `nodes` has a compensation.
const fn compensates(nodes: &[NodeSpec]) -> bool {
    let mut i = 0;
    while i < nodes.len() {
        if let NodeKind::Call(call) = &nodes[i].kind
            && call.compensation.is_some()
        {
            return true;
        }
        i += 1;
    }
    false
}

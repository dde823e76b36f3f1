//! Downstream HTTP: one client per service, a pluggable transport at the bottom.
//!
//! A [`ServiceClient`] turns an [`Outgoing`] request into `http::Request<Bytes>`, applies the
//! service's policies and hands the request to its [`Transport`], a `tower::Service` from
//! `http::Request<Bytes>` to `http::Response<Bytes>`. The default transport is a pooled `reqwest`
//! client per service ([`HttpTransport`]); tests and special deployments put any tower service
//! there (an in-memory service with virtual-time latency, a service with extra layers).
//!
//! The client knows nothing of endpoints or graphs: it is given a [`CallPolicy`] (timeout, retry,
//! idempotency) and the request's deadline.
//!
//! [`ServiceClient::send`] runs one call through the service's policies, in this order: the
//! [bulkhead](crate::bulkhead) (a place for the whole call, or `BulkheadFull` at once: shed), the
//! [circuit breaker](crate::breaker) (`BreakerOpen` at once, no request; told how the call ended,
//! after its retries), each attempt within `min(call timeout, deadline left)`, and the
//! [retry](crate::retry) decision with its backoff and the service's retry budget (no retry once
//! the breaker opened meanwhile). A call with `hedge(..)` runs each attempt as a race of the
//! first request and its hedges (see `hedge.rs`), which the policies above see as one attempt.

mod custom;
mod hedge;
mod http_transport;
mod target;

pub use custom::{CallClient, RequestBuilder};
#[doc(hidden)]
pub use custom::{CustomLogic, custom_logic};
pub use http_transport::HttpTransport;
pub use target::Target;

use crate::balance::{InstanceHealth, Instances, Load};
use crate::breaker::{Breaker, BreakerState, Verdict};
use crate::bulkhead::{Bulkhead, Ended};
use crate::context::{DEFAULT_FORWARD_HEADERS, HOP_BY_HOP_HEADERS, RequestContext};
use crate::error::{CallError, CallErrorKind};
use crate::health::{ServiceHealth, Stats};
use crate::rate_limit::OutboundLimiter;
pub use crate::retry::CallPolicy;
use crate::retry::{Budget, Schedule};
use crate::service::{HedgePolicy, ServiceSpec};
use crate::telemetry::{self, metrics::InFlight};
use crate::timeline::AttemptLog;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use std::fmt::Display;
use std::future::{Future, poll_fn};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::time::{Instant, timeout_at};
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

/// The bottom of a service's client: sends one request and reads the whole (capped) response.
///
/// Errors are [`CallError`]s so a transport can say whether it failed to connect, timed out or got
/// an oversized body.
///
/// ```
/// use bytes::Bytes;
/// use orchestrate_runtime::{CallError, Transport};
/// use tower::service_fn;
///
/// // An in-memory service: every request gets the same JSON.
/// let transport = Transport::new(service_fn(|_req: http::Request<Bytes>| async {
///     Ok::<_, CallError>(http::Response::new(Bytes::from_static(br#"{"ok":true}"#)))
/// }));
/// # let _ = transport;
/// ```
pub type Transport = BoxCloneSyncService<http::Request<Bytes>, http::Response<Bytes>, CallError>;

/// The result of sending one call: the response or why not, and how many attempts it took.
#[derive(Debug)]
#[non_exhaustive]
pub struct Sent {
    /// The successful (2xx) response, or the failure.
    pub result: Result<http::Response<Bytes>, CallError>,
    /// Attempts made (0 when no request left the process); a hedged attempt counts once, its
    /// hedges are [`hedges`](Self::hedges).
    pub attempts: u32,
    /// Status of the last response, if any arrived.
    pub status: Option<u16>,
    /// When the call ended, as the client read the clock last (`None` when no request was
    /// sent), so that the caller need not read it again.
    pub ended: Option<Instant>,
    /// When the attempts ran (the first three and the last).
    pub attempt_log: AttemptLog,
    /// The state the call left the service's circuit breaker in, or found it in when it refused
    /// the call (`None` without a breaker, or when the call got no further than the bulkhead).
    pub breaker: Option<BreakerState>,
    /// The instance the last attempt went to (its position in the service's base URLs), when
    /// the service has several.
    pub instance: Option<u16>,
    /// Hedges sent (calls with `hedge(..)`; 0 otherwise).
    pub hedges: u32,
}

impl Sent {
    /// A call that ended before any attempt: `error`, no request sent.
    pub(crate) fn refused(error: CallError, breaker: Option<BreakerState>) -> Self {
        Self {
            result: Err(error),
            attempts: 0,
            status: None,
            ended: None,
            attempt_log: AttemptLog::new(),
            breaker,
            instance: None,
            hedges: 0,
        }
    }
}

/// A request to a service before its policies run: method, path and query, body and headers.
///
/// Generated code builds these from the `#[call]` attribute; [`CallClient`] builds them for
/// custom logic.
#[derive(Debug)]
pub struct Outgoing {
    method: http::Method,
    target: Target,
    body: Option<Bytes>,
    /// The body is JSON: `content-type: application/json` is added when the request is built
    /// (unless the call set its own), so that most calls bring no header map of their own.
    json: bool,
    headers: HeaderMap,
    /// What few calls carry (a failure while building, a cache key or tags), out of line so that
    /// the common request stays small.
    rare: Option<Box<Rare>>,
}

/// The parts of an [`Outgoing`] that few calls have.
#[derive(Debug, Default)]
struct Rare {
    error: Option<CallError>,
    cache_key: Option<String>,
    cache_tags: Vec<String>,
}

/// `application/json`, the type of every JSON body and what a call accepts.
static APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

impl Outgoing {
    /// A request with no body.
    pub fn new(method: http::Method, target: Target) -> Self {
        Self { method, target, body: None, json: false, headers: HeaderMap::new(), rare: None }
    }

    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// Caches the answer under `key` instead of the whole request (`cache(key = ..)`): narrows who
    /// shares it, e.g. one catalog for every user.
    pub fn cache_key(mut self, key: &dyn Display) -> Self {
        self.rare().cache_key = Some(key.to_string());
        self
    }

    /// Tags the cached answer, so that invalidating a tag drops it (`cache(tags = [..])`).
    pub fn cache_tags(mut self, tags: Vec<String>) -> Self {
        self.rare().cache_tags = tags;
        self
    }

    /// Sets a JSON body.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => {
                self.body = Some(Bytes::from(bytes));
                self.json = true;
            }
            Err(error) => self.fail(CallError::with_source(CallErrorKind::Encode, error)),
        }
        self
    }

    /// Appends `query` (serialized as a form) to the query string.
    pub fn query<T: Serialize + ?Sized>(mut self, query: &T) -> Self {
        self.target.query(query);
        self
    }

    /// Adds a header. A name or value that is not valid HTTP, or a header the client owns
    /// (`host`, `content-length` or a hop-by-hop header such as `connection`), fails the call
    /// with [`CallErrorKind::InvalidInput`].
    pub fn header(mut self, name: &str, value: &dyn Display) -> Self {
        if let Err(message) = orchestrate_core::headers::settable(name) {
            self.fail(CallError::with_source(CallErrorKind::InvalidInput, message));
            return self;
        }
        let parsed = HeaderName::from_bytes(name.as_bytes()).ok().zip(HeaderValue::from_str(&value.to_string()).ok());
        match parsed {
            Some((name, value)) => {
                self.headers.append(name, value);
            }
            None => self.fail(CallError::with_source(
                CallErrorKind::InvalidInput,
                format!("header `{name}` has an invalid value"),
            )),
        }
        self
    }

    /// Adds every `(name, value)` pair as a header.
    pub fn headers<I, K, V>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Display,
    {
        for (name, value) in headers {
            self = self.header(name.as_ref(), &value);
        }
        self
    }

    /// Sets the `Idempotency-Key` header, sent unchanged on every attempt.
    pub fn idempotency_key(self, key: &dyn Display) -> Self {
        self.header("idempotency-key", key)
    }

    fn fail(&mut self, error: CallError) {
        let rare = self.rare();
        if rare.error.is_none() {
            rare.error = Some(error);
        }
    }

    /// The call's own header `name`, if it set one.
    pub(crate) fn header_value(&self, name: &str) -> Option<&HeaderValue> {
        self.headers.get(name)
    }

    /// Method, encoded path and query, headers (the `content-type` of a JSON body among them) and
    /// body: what it takes to send the request again from another process (the saga journal keeps
    /// compensations so).
    pub(crate) fn parts(
        &self,
    ) -> (&http::Method, &str, impl Iterator<Item = (&HeaderName, &HeaderValue)>, Option<&Bytes>) {
        let content_type = (self.json && !self.headers.contains_key(header::CONTENT_TYPE))
            .then_some((&header::CONTENT_TYPE, &APPLICATION_JSON));
        (&self.method, self.target.as_str(), content_type.into_iter().chain(&self.headers), self.body.as_ref())
    }

    /// The request `parts` described.
    pub(crate) fn from_parts(method: http::Method, path: String, headers: HeaderMap, body: Option<Bytes>) -> Self {
        Self { body, headers, ..Self::new(method, Target::from_encoded(path)) }
    }

    /// Takes the cache key and tags the generated code set.
    pub(crate) fn take_cache(&mut self) -> (Option<String>, Vec<String>) {
        match self.rare.as_deref_mut() {
            Some(rare) => (rare.cache_key.take(), std::mem::take(&mut rare.cache_tags)),
            None => (None, Vec::new()),
        }
    }
}

/// The client of one downstream service, shared by every request.
///
/// Clones share the service's breaker, bulkhead, retry budget and counters.
#[derive(Debug, Clone)]
pub struct ServiceClient {
    spec: ServiceSpec,
    base_url: String,
    /// The base URL parsed once: scheme, authority and path prefix, so that a call parses only
    /// its own path.
    origin: Option<Origin>,
    forward: Vec<HeaderName>,
    transport: Transport,
    guards: Arc<Guards>,
}

/// The `traceparent` header's name, parsed once.
static TRACEPARENT: HeaderName = HeaderName::from_static(telemetry::TRACEPARENT);

/// A base URL split into the parts every request reuses.
#[derive(Debug, Clone)]
struct Origin {
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// The base URL's path without its trailing `/` (usually empty).
    prefix: String,
}

impl Origin {
    fn parse(base_url: &str) -> Option<Self> {
        let parts = base_url.parse::<http::Uri>().ok()?.into_parts();
        let prefix = parts.path_and_query.as_ref().map_or("", |p| p.path()).trim_end_matches('/').to_owned();
        if parts.path_and_query.as_ref().is_some_and(|p| p.query().is_some()) {
            return None;
        }
        Some(Self { scheme: parts.scheme?, authority: parts.authority?, prefix })
    }

    /// The URI of `path` (which starts with `/`) at this origin.
    fn uri(&self, path: String) -> Result<http::Uri, http::Error> {
        let path = if self.prefix.is_empty() { path } else { format!("{}{path}", self.prefix) };
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(http::uri::PathAndQuery::from_maybe_shared(Bytes::from(path))?);
        Ok(http::Uri::from_parts(parts)?)
    }
}

/// The run-time state of the service's policies.
#[derive(Debug)]
struct Guards {
    breaker: Option<Breaker>,
    bulkhead: Bulkhead,
    budget: Budget,
    stats: Stats,
    outbound: Option<OutboundLimiter>,
    /// The hedges calls with `hedge(..)` may still send.
    hedges: hedge::Budget,
    /// The service's in-flight gauge, registered with the metrics recorder on first use.
    in_flight: std::sync::OnceLock<metrics::Gauge>,
    /// The instances when the base URL lists several: what the balancer knows of each, and each
    /// one's origin (the first is `ServiceClient::origin`).
    instances: Option<(Instances, Vec<Option<Origin>>)>,
}

impl ServiceClient {
    /// A client for `spec` at `base_url` over `transport`. A `base_url` that lists several
    /// instances separated by commas balances the calls over them (see [`balance`](crate::balance)).
    pub fn new(spec: ServiceSpec, base_url: &str, transport: Transport) -> Self {
        let urls: Vec<String> =
            orchestrate_core::url::base_urls(base_url).map(|u| u.trim_end_matches('/').to_owned()).collect();
        let instances = (urls.len() > 1).then(|| {
            let hosts = urls.iter().map(|u| crate::service::host_of(u).to_owned()).collect();
            let origins = urls.iter().map(|u| Origin::parse(u)).collect();
            (Instances::new(hosts, spec.balance, Instant::now()), origins)
        });
        let base_url = urls.first().map_or(base_url, String::as_str);
        let mut forward: Vec<HeaderName> = Vec::new();
        for name in DEFAULT_FORWARD_HEADERS.iter().chain(spec.forward_headers) {
            if let Ok(name) = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                && !HOP_BY_HOP_HEADERS.contains(&name.as_str())
                && !forward.contains(&name)
            {
                forward.push(name);
            }
        }
        let guards = Arc::new(Guards {
            breaker: spec.breaker.map(|policy| Breaker::new(spec.name, policy)),
            bulkhead: Bulkhead::new(spec.max_in_flight),
            budget: Budget::new(spec.retry_budget),
            stats: Stats::new(),
            outbound: spec.rate_limit.map(OutboundLimiter::new),
            hedges: hedge::Budget::new(spec.hedge_budget),
            in_flight: std::sync::OnceLock::new(),
            instances,
        });
        let base_url = base_url.trim_end_matches('/').to_owned();
        Self { spec, origin: Origin::parse(&base_url), base_url, forward, transport, guards }
    }

    /// The service's name.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The service's policies as configured at start-up.
    pub fn spec(&self) -> &ServiceSpec {
        &self.spec
    }

    /// The base URL calls go to (the first instance's, when there are several).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Each instance's host, latency estimate and ejection, when the service has several
    /// (empty otherwise).
    ///
    /// ```
    /// use orchestrate_runtime::{Runtime, ServiceSpec};
    /// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://10.0.0.1:80, http://10.0.0.2:80")];
    /// let runtime = Runtime::builder(SERVICES).read_env(false).build().unwrap();
    /// let instances = runtime.service("cart").unwrap().instances();
    /// assert_eq!(instances.iter().map(|i| i.host.as_str()).collect::<Vec<_>>(), ["10.0.0.1:80", "10.0.0.2:80"]);
    /// assert!(!instances[0].ejected);
    /// ```
    pub fn instances(&self) -> Vec<InstanceHealth> {
        self.guards.instances.as_ref().map_or_else(Vec::new, |(set, _)| set.health(Instant::now()))
    }

    /// Points `request` (built for the first instance) at instance `index`.
    fn retarget(&self, request: &mut http::Request<Bytes>, index: usize) {
        let Some((_, origins)) = &self.guards.instances else { return };
        let (Some(Some(to)), Some(from)) = (origins.get(index), &self.origin) else { return };
        let Some(path) = request.uri().path_and_query().map(|p| p.as_str().to_owned()) else { return };
        let path = path.strip_prefix(from.prefix.as_str()).map(str::to_owned).unwrap_or(path);
        if let Ok(uri) = to.uri(path) {
            *request.uri_mut() = uri;
        }
    }

    /// Inbound headers forwarded to this service.
    pub fn forwarded_headers(&self) -> &[HeaderName] {
        &self.forward
    }

    /// The state of the service's circuit breaker (`Closed` when it has none).
    ///
    /// ```
    /// use orchestrate_runtime::{BreakerPolicy, BreakerState, Runtime, ServiceSpec};
    /// use std::time::Duration;
    /// const BREAKER: BreakerPolicy =
    ///     BreakerPolicy::new(5, Duration::from_secs(60), Duration::from_secs(30), 3);
    /// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://127.0.0.1:9").with_breaker(BREAKER)];
    /// let runtime = Runtime::builder(SERVICES).read_env(false).build().unwrap();
    /// assert_eq!(runtime.service("cart").unwrap().breaker_state(), BreakerState::Closed);
    /// ```
    pub fn breaker_state(&self) -> BreakerState {
        self.guards.breaker.as_ref().map_or(BreakerState::Closed, Breaker::state)
    }

    /// Calls to the service in flight now, as counted by its bulkhead (0 without one).
    ///
    /// ```
    /// use orchestrate_runtime::{Runtime, ServiceSpec};
    /// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://127.0.0.1:9").with_max_in_flight(48)];
    /// let runtime = Runtime::builder(SERVICES).read_env(false).build().unwrap();
    /// assert_eq!(runtime.service("cart").unwrap().in_flight(), 0);
    /// ```
    pub fn in_flight(&self) -> u32 {
        self.guards.bulkhead.in_flight()
    }

    /// A snapshot of the service for health checks and metrics: breaker state, calls in flight,
    /// recent error rate, last success (see [`ServiceHealth`]).
    pub fn health(&self) -> ServiceHealth {
        let (recent_attempts, recent_failures, last_success) = self.guards.stats.snapshot();
        ServiceHealth {
            service: self.spec.name,
            breaker: self.breaker_state(),
            in_flight: self.in_flight(),
            max_in_flight: self.guards.bulkhead.limit(),
            recent_attempts,
            recent_failures,
            last_success,
        }
    }

    /// Sends `outgoing` under `policy`, within `deadline`, through the service's policies: a
    /// bulkhead place for the whole call, then attempts admitted by the circuit breaker and
    /// retried as [`retry`](crate::retry) describes. [`Sent::attempts`] counts the requests made.
    pub async fn send(
        &self,
        policy: &CallPolicy,
        context: &RequestContext,
        deadline: Instant,
        outgoing: Outgoing,
    ) -> Sent {
        match self.build(context, outgoing) {
            Ok(request) => self.send_request(*policy, None, deadline, None, request).await,
            Err(error) => Sent::refused(error, None),
        }
    }

    /// Sends the request [`build`](Self::build) made from a call's [`Outgoing`], through the
    /// service's policies (see [`send`](Self::send)), its first attempt starting at `started`
    /// when the caller has just read the clock (one clock read less per call), each attempt
    /// hedged by `hedge`.
    ///
    /// Its future is part of every call's node future, and the graph's future is moved whole:
    /// each local here that lives across an `await` costs every request its size. So the request
    /// is held once (`template`, the argument itself), each attempt's copy is made in a block that
    /// ends before the attempt is awaited, and the policy is owned (the caller need not keep it).
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn send_request(
        &self,
        policy: CallPolicy,
        hedge: Option<&'static HedgePolicy>,
        deadline: Instant,
        started: Option<Instant>,
        mut template: http::Request<Bytes>,
    ) -> impl Future<Output = Sent> + Send + '_ {
        // Not an `async fn`: its arguments would be kept twice in the future (as arguments and as
        // the locals they are bound to); an `async` block keeps what it captures once.
        async move {
            let guards = &*self.guards;
            // The outbound limit first: a call waiting for its turn holds no place in the bulkhead.
            if let Some(limit) = &guards.outbound
                && let Err(error) = limit.admit(deadline).await
            {
                tracing::debug!(service = self.spec.name, "outbound rate limit reached; call shed");
                return Sent::refused(error, None);
            }
            let place = match guards.bulkhead.enter() {
                Ok(place) => place,
                Err(error) => {
                    tracing::debug!(service = self.spec.name, "concurrency limit reached; call shed");
                    return Sent::refused(error, None);
                }
            };
            // The breaker judges the call as a whole: admitted once, told how it ended.
            let ticket = match guards.breaker.as_ref().map(Breaker::admit).transpose() {
                Ok(ticket) => ticket,
                Err(open) => {
                    tracing::debug!(service = self.spec.name, "circuit breaker open; call refused");
                    drop(place);
                    return Sent::refused(open, guards.breaker.as_ref().map(Breaker::state));
                }
            };
            let _in_flight = InFlight::call(self.spec.name, &guards.in_flight);
            let policy = &policy;
            let mut schedule = Schedule::new(policy, deadline);
            // Whether the last possible attempt has run (it took the request itself, not a copy).
            let mut taken = false;
            let mut attempts = 0;
            let mut hedges = 0;
            let mut call_started = None;
            let mut attempt_log = AttemptLog::new();
            // The instance the last attempt went to and whether it failed there.
            let mut instance: Option<(usize, bool)> = None;
            let (result, status, ended) = loop {
                if taken {
                    break (
                        Err(CallError::new(CallErrorKind::Transport)),
                        None,
                        call_started.unwrap_or_else(Instant::now),
                    );
                }
                // Two clock reads per attempt, shared by every policy: its start (retry budget, timeout)
                // and its end (breaker, bulkhead, statistics, backoff); the first attempt's start is
                // the caller's reading when it has one.
                let started = match (attempts, started) {
                    (0, Some(at)) => at,
                    _ => Instant::now(),
                };
                if attempts == 0 {
                    guards.budget.deposit(started);
                    call_started = Some(started);
                }
                attempts += 1;
                // A retry goes to another instance than the one that failed.
                let avoid = instance.and_then(|(i, failed)| failed.then_some(i));
                // The attempt's own request is a copy while another attempt could follow, the
                // request itself for the last possible one.
                let last = !schedule.has_more();
                taken = last;
                let (result, status, ended, answered, sent) = match hedge {
                    // What `attempt_on` does, written out: one future less per call.
                    None => {
                        let mut transport = self.transport.clone();
                        // No `match` on a value here spans an `await`: its scrutinee would be
                        // kept in the future.
                        let (result, status, index, load) = 'attempt: {
                            let (end, cut) = match attempt_end(policy, deadline, started) {
                                Ok(window) => window,
                                Err(error) => break 'attempt (Err(error), None, None, None),
                            };
                            // Asked once without a timer (a transport is almost always ready at
                            // once); only one that is not is waited for, within the attempt's end.
                            let waiting = match poll_fn(|cx| Poll::Ready(transport.poll_ready(cx))).await {
                                Poll::Ready(Ok(())) => false,
                                Poll::Ready(Err(error)) => break 'attempt (Err(error), None, None, None),
                                Poll::Pending => true,
                            };
                            if waiting {
                                match timeout_at(end, ServiceExt::ready(&mut transport)).await {
                                    Ok(Ok(_)) => {}
                                    Ok(Err(error)) => break 'attempt (Err(error), None, None, None),
                                    Err(elapsed) => {
                                        let (result, status) = judge(Err(elapsed), cut);
                                        break 'attempt (result, status, None, None);
                                    }
                                }
                            }
                            // Made once the transport takes it, and pointed at its instance by
                            // value: a request made before the transport was ready, or borrowed
                            // here, would be kept in the future across the attempt.
                            let request = for_attempt(&mut template, last);
                            let (index, request) = self.pointed(avoid, started, request);
                            let load = self.load(index);
                            let (result, status) = judge(timeout_at(end, transport.call(request)).await, cut);
                            (result, status, index, load)
                        };
                        let ended = landed(load, &result, started);
                        (result, status, ended, index, 0)
                    }
                    // Boxed: the race stays out of the future of every call without `hedge`.
                    Some(hedge) => {
                        let request = for_attempt(&mut template, last);
                        let tried = Box::pin(self.hedged(policy, hedge, deadline, started, request, avoid)).await;
                        (tried.result, tried.status, tried.ended, tried.instance, tried.hedges)
                    }
                };
                // What the attempt left decides in a block that ends before the backoff, which
                // keeps nothing of it.
                let wait = {
                    hedges += sent;
                    attempt_log.push(started, ended);
                    let verdict = result.as_ref().map_or_else(Verdict::of, |_| Verdict::Success);
                    if let Some(index) = answered {
                        instance = Some((index, result.is_err()));
                    }
                    tracing::debug!(
                        service = self.spec.name,
                        attempt = attempts,
                        status,
                        result = result.as_ref().map_or_else(|e| e.kind().as_str(), |_| "ok"),
                        elapsed_ms = ended.saturating_duration_since(started).as_secs_f64() * 1000.0,
                        "attempt"
                    );
                    guards.stats.record(verdict, ended);
                    let error = match result {
                        Ok(response) => break (Ok(response), status, ended),
                        Err(error) => error,
                    };
                    let Some(wait) = schedule.next_wait(&error, ended) else {
                        break (Err(error), status, ended);
                    };
                    if let (Some(breaker), Some(ticket)) = (&guards.breaker, &ticket)
                        && !breaker.allows_retry(ticket)
                    {
                        tracing::debug!(service = self.spec.name, attempts, %error, "circuit breaker opened; not retrying");
                        break (Err(error), status, ended);
                    }
                    if !guards.budget.withdraw() {
                        tracing::debug!(service = self.spec.name, attempts, %error, "retry budget spent; not retrying");
                        break (Err(error), status, ended);
                    }
                    tracing::debug!(service = self.spec.name, attempt = attempts + 1, ?wait, %error, "retrying");
                    let reason = error.kind().as_str();
                    tracing::Span::current().record("retry_reason", reason);
                    telemetry::metrics::retry(self.spec.name, reason);
                    wait
                };
                tokio::time::sleep(wait).await;
            };
            let elapsed = call_started.map_or(Duration::ZERO, |start| ended.saturating_duration_since(start));
            let verdict = result.as_ref().map_or_else(Verdict::of, |_| Verdict::Success);
            let breaker = match (&guards.breaker, ticket) {
                (Some(breaker), Some(ticket)) => Some(ticket.record_at(verdict, breaker.is_slow(elapsed), ended)),
                _ => None,
            };
            let how = match &result {
                Ok(_) => Ended::Answered,
                Err(e) if e.http_status().is_some() => Ended::Answered,
                Err(e) if matches!(e.kind(), CallErrorKind::Timeout | CallErrorKind::Connect) => Ended::Dropped,
                Err(_) => Ended::Unknown,
            };
            place.done(how, elapsed, ended);
            let instance = instance.and_then(|(i, _)| u16::try_from(i).ok());
            Sent { result, attempts, status, ended: Some(ended), attempt_log, breaker, instance, hedges }
        }
    }

    /// The instance a request starting `now` goes to, when the service has several (avoiding
    /// `avoid` if another is open), with `request` (built for the first) pointed at it.
    fn pick(&self, avoid: Option<usize>, now: Instant, request: &mut http::Request<Bytes>) -> Option<usize> {
        let (set, _) = self.guards.instances.as_ref()?;
        let index = set.pick(avoid, now);
        if index != 0 {
            self.retarget(request, index);
        }
        Some(index)
    }

    /// [`pick`](Self::pick) for a request owned by the caller: the instance and the request.
    fn pointed(
        &self,
        avoid: Option<usize>,
        now: Instant,
        mut request: http::Request<Bytes>,
    ) -> (Option<usize>, http::Request<Bytes>) {
        let index = self.pick(avoid, now, &mut request);
        (index, request)
    }

    /// One request starting `now` to instance `index` (of several), its timeout counted from
    /// `from` (the start of the attempt it belongs to); the balancer learns how it went.
    async fn attempt_on(
        &self,
        policy: &CallPolicy,
        deadline: Instant,
        from: Instant,
        now: Instant,
        request: http::Request<Bytes>,
        index: Option<usize>,
    ) -> hedge::Tried {
        let load = self.load(index);
        let (result, status) = match attempt_end(policy, deadline, from) {
            Ok((end, cut)) => judge(timeout_at(end, self.transport.clone().oneshot(request)).await, cut),
            Err(error) => (Err(error), None),
        };
        let ended = landed(load, &result, now);
        hedge::Tried { result, status, ended, instance: index, hedges: 0 }
    }

    /// The balancer's count of a request starting on instance `index`, when there are several.
    fn load(&self, index: Option<usize>) -> Option<Load<'_>> {
        match (&self.guards.instances, index) {
            (Some((set, _)), Some(index)) => Some(set.start(index)),
            _ => None,
        }
    }

    /// The request of `outgoing` to this service: its URI at the base URL, its body, its own
    /// headers and the forwarded ones, and the call's `traceparent`.
    pub(crate) fn build(
        &self,
        context: &RequestContext,
        outgoing: Outgoing,
    ) -> Result<http::Request<Bytes>, CallError> {
        if let Some(error) = outgoing.rare.and_then(|rare| rare.error) {
            return Err(error);
        }
        let path = outgoing.target.finish()?;
        // Glued onto the base URL, `@evil.example/x` or `.evil.example/x` would name another host:
        // a path is absolute or refused.
        if !path.starts_with('/') {
            return Err(CallError::with_source(
                CallErrorKind::InvalidInput,
                format!("a downstream path must start with `/`, not `{}`", path.chars().next().unwrap_or(' ')),
            ));
        }
        let invalid = |e: http::Error| CallError::with_source(CallErrorKind::InvalidInput, e);
        let uri = match &self.origin {
            Some(origin) => origin.uri(path).map_err(invalid)?,
            None => format!("{}{path}", self.base_url).parse::<http::Uri>().map_err(|e| invalid(e.into()))?,
        };
        let mut request = http::Request::new(outgoing.body.unwrap_or_default());
        *request.method_mut() = outgoing.method;
        *request.uri_mut() = uri;
        // The call's own headers (every value of each) take precedence over forwarded ones of the
        // same name; the request is built in the call's header map.
        let mut headers = outgoing.headers;
        let own = !headers.is_empty();
        let content_type = outgoing.json && !(own && headers.contains_key(header::CONTENT_TYPE));
        // The same trace, with this call as the parent of what the service does: it replaces the
        // inbound `traceparent`, which is then not forwarded.
        let traceparent = if own && headers.contains_key(&TRACEPARENT) {
            None
        } else {
            context.trace().map(telemetry::downstream_traceparent)
        };
        let inbound = context.headers();
        if !inbound.is_empty() && !self.forward.is_empty() {
            // Headers the client named in its `Connection` header are hop-by-hop too (RFC 9110
            // §7.6.1): they concern its connection to us, not ours to the service.
            let connection = inbound.get_all(header::CONNECTION);
            let named = connection.iter().next().is_some();
            let per_hop = |name: &HeaderName| {
                named
                    && connection
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .flat_map(|v| v.split(','))
                        .any(|listed| listed.trim().eq_ignore_ascii_case(name.as_str()))
            };
            // The inbound headers are walked once (a few, each compared with the short allow-list)
            // rather than the allow-list looked up in them (a hash per name); the values of one
            // name come one after the other, so the decision is taken once per name.
            let mut decided: Option<(&HeaderName, bool)> = None;
            for (name, value) in inbound {
                let forward = match decided {
                    Some((last, forward)) if last == name => forward,
                    _ => {
                        let replaced = (traceparent.is_some() && *name == TRACEPARENT)
                            || (content_type && *name == header::CONTENT_TYPE)
                            || (own && headers.contains_key(name));
                        let forward = self.forward.contains(name) && !replaced && !per_hop(name);
                        decided = Some((name, forward));
                        forward
                    }
                };
                if forward {
                    headers.append(name.clone(), value.clone());
                }
            }
        }
        if let Some(traceparent) = traceparent {
            headers.insert(TRACEPARENT.clone(), traceparent);
        }
        if content_type {
            headers.insert(header::CONTENT_TYPE, APPLICATION_JSON.clone());
        }
        headers.entry(header::ACCEPT).or_insert_with(|| APPLICATION_JSON.clone());
        *request.headers_mut() = headers;
        Ok(request)
    }
}

/// When an attempt starting `now` must end: the smaller of the call's timeout and the time
/// left, and whether the deadline is what cut it.
///
/// # Errors
///
/// [`CallErrorKind::DeadlineExceeded`] when no time is left.
fn attempt_end(policy: &CallPolicy, deadline: Instant, now: Instant) -> Result<(Instant, bool), CallError> {
    // Instants compared, not subtracted: no time arithmetic but the one addition.
    if now >= deadline {
        return Err(CallError::new(CallErrorKind::DeadlineExceeded));
    }
    Ok(match now.checked_add(policy.timeout) {
        Some(end) if end < deadline => (end, false),
        _ => (deadline, true),
    })
}

/// What the transport's answer (or its timeout, `cut` by the deadline or not) means for the
/// call: a 2xx response, or the failure, with the status that came back.
#[inline]
fn judge(
    answer: Result<Result<http::Response<Bytes>, CallError>, tokio::time::error::Elapsed>,
    cut: bool,
) -> (Result<http::Response<Bytes>, CallError>, Option<u16>) {
    match answer {
        Err(_elapsed) => {
            let kind = if cut { CallErrorKind::DeadlineExceeded } else { CallErrorKind::Timeout };
            (Err(CallError::new(kind)), None)
        }
        Ok(Err(error)) => (Err(error), None),
        Ok(Ok(response)) => {
            let status = response.status();
            if status.is_success() {
                (Ok(response), Some(status.as_u16()))
            } else {
                let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
                (Err(CallError::status(status, retry_after)), Some(status.as_u16()))
            }
        }
    }
}

/// A request that started at `now` has ended with `result`: when (the clock is read), and the
/// balancer learns how it went on its instance.
fn landed(load: Option<Load<'_>>, result: &Result<http::Response<Bytes>, CallError>, now: Instant) -> Instant {
    let ended = Instant::now();
    if let Some(load) = load {
        let failed = match result.as_ref().map_or_else(Verdict::of, |_| Verdict::Success) {
            Verdict::Success => Some(false),
            Verdict::Failure => Some(true),
            Verdict::Neutral => None,
        };
        load.finish(ended.saturating_duration_since(now), failed, ended);
    }
    ended
}

/// The request of an attempt made from the call's `template`: the template itself for the `last`
/// possible attempt, a copy for any other.
fn for_attempt(template: &mut http::Request<Bytes>, last: bool) -> http::Request<Bytes> {
    if last { std::mem::take(template) } else { copy_request(template) }
}

/// A copy of `request` for another attempt: same method, URI, headers (the `Idempotency-Key`
/// among them) and body, which is reference-counted and not copied.
fn copy_request(request: &http::Request<Bytes>) -> http::Request<Bytes> {
    let mut copy = http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// Decodes a JSON response body as `T`; a body that is not a `T` is the call's failure.
///
/// # Errors
///
/// [`CallErrorKind::Decode`] with serde's explanation (no body content).
pub fn decode_json<T: serde::de::DeserializeOwned>(response: &http::Response<Bytes>) -> Result<T, CallError> {
    serde_json::from_slice(response.body()).map_err(|e| CallError::with_source(CallErrorKind::Decode, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::TraceContext;

    fn client(base_url: &str) -> ServiceClient {
        let transport = Transport::new(tower::service_fn(|_: http::Request<Bytes>| async {
            Ok::<_, CallError>(http::Response::new(Bytes::new()))
        }));
        ServiceClient::new(ServiceSpec::new("cart", "http://cart.internal"), base_url, transport)
    }

    fn outgoing(path: &str) -> Outgoing {
        Outgoing::new(http::Method::POST, Target::from(path))
    }

    /// A transport that takes no request before `at` (a connection pool still filling, a layer
    /// limiting concurrency), then answers at once.
    struct ReadyAt {
        at: Instant,
        waiting: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    }

    impl Clone for ReadyAt {
        fn clone(&self) -> Self {
            Self { at: self.at, waiting: None }
        }
    }

    impl Service<http::Request<Bytes>> for ReadyAt {
        type Response = http::Response<Bytes>;
        type Error = CallError;
        type Future = std::future::Ready<Result<http::Response<Bytes>, CallError>>;

        fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), CallError>> {
            let at = self.at;
            self.waiting.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at))).as_mut().poll(cx).map(Ok)
        }

        fn call(&mut self, _: http::Request<Bytes>) -> Self::Future {
            std::future::ready(Ok(http::Response::new(Bytes::new())))
        }
    }

    /// One call with a 100 ms timeout through a transport ready `ready_in` from now: what it
    /// got and how long it took.
    async fn through_transport_ready_in(ready_in: Duration) -> (Result<http::Response<Bytes>, CallError>, Duration) {
        let policy =
            CallPolicy { timeout: Duration::from_millis(100), retry: crate::RetryPolicy::NONE, retryable: false };
        let start = Instant::now();
        let transport = Transport::new(ReadyAt { at: start + ready_in, waiting: None });
        let client =
            ServiceClient::new(ServiceSpec::new("cart", "http://cart.internal"), "http://cart.internal", transport);
        let deadline = start + Duration::from_secs(2);
        let sent = client.send(&policy, &RequestContext::default(), deadline, outgoing("/carts")).await;
        (sent.result, sent.ended.map_or(Duration::MAX, |at| at - start))
    }

    #[tokio::test(start_paused = true)]
    async fn a_transport_not_ready_is_waited_for_within_the_attempts_timeout() {
        let (result, took) = through_transport_ready_in(Duration::ZERO).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(took, Duration::ZERO);
        // Ready after 40 ms: the request goes then and is answered.
        let (result, took) = through_transport_ready_in(Duration::from_millis(40)).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(took, Duration::from_millis(40));
        // Not ready within the attempt's 100 ms: the attempt times out then.
        let (result, took) = through_transport_ready_in(Duration::from_millis(500)).await;
        assert_eq!(result.err().map(|e| e.kind()), Some(CallErrorKind::Timeout));
        assert_eq!(took, Duration::from_millis(100));
    }

    #[test]
    fn an_attempt_ends_at_its_timeout_or_at_the_deadline_whichever_comes_first() {
        let policy =
            |ms| CallPolicy { timeout: Duration::from_millis(ms), retry: crate::RetryPolicy::NONE, retryable: false };
        let now = Instant::now();
        let deadline = now + Duration::from_millis(100);
        assert_eq!(attempt_end(&policy(30), deadline, now).ok(), Some((now + Duration::from_millis(30), false)));
        // A timeout that reaches the deadline is the deadline's cut.
        assert_eq!(attempt_end(&policy(100), deadline, now).ok(), Some((deadline, true)));
        assert_eq!(attempt_end(&policy(500), deadline, now).ok(), Some((deadline, true)));
        let late = attempt_end(&policy(30), deadline, deadline).err().map(|e| e.kind());
        assert_eq!(late, Some(CallErrorKind::DeadlineExceeded));
    }

    #[test]
    fn the_request_goes_to_the_base_url_and_its_path_prefix() {
        let context = RequestContext::default();
        let request = client("http://cart.internal:8080/api/").build(&context, outgoing("/carts/c%201")).unwrap();
        assert_eq!(request.uri(), "http://cart.internal:8080/api/carts/c%201");
        let request = client("http://cart.internal:8080").build(&context, outgoing("/carts?x=1")).unwrap();
        assert_eq!(request.uri(), "http://cart.internal:8080/carts?x=1");
        assert_eq!(request.headers()[header::ACCEPT], "application/json");
    }

    #[test]
    fn a_path_that_is_not_absolute_cannot_change_the_host() {
        let context = RequestContext::default();
        for base in ["http://cart.internal:8080", "http://cart.internal:8080/api?v=1"] {
            for path in ["@evil.example/x", ".evil.example/x", ":9999/x", "carts"] {
                let error = client(base).build(&context, outgoing(path)).unwrap_err();
                assert_eq!(error.kind(), CallErrorKind::InvalidInput, "{base} {path}");
            }
        }
        let request = client("http://cart.internal:8080").build(&context, outgoing("//evil.example/x")).unwrap();
        assert_eq!(request.uri().authority().unwrap(), "cart.internal:8080");
    }

    #[test]
    fn headers_named_in_connection_are_not_forwarded() {
        let spec = ServiceSpec::new("cart", "http://cart.internal").with_forward_headers(&["x-tenant-id", "x-debug"]);
        let transport = Transport::new(tower::service_fn(|_: http::Request<Bytes>| async {
            Ok::<_, CallError>(http::Response::new(Bytes::new()))
        }));
        let client = ServiceClient::new(spec, "http://cart.internal", transport);
        let context = RequestContext::default()
            .with_header("connection", "keep-alive, X-Debug")
            .with_header("connection", "authorization")
            .with_header("authorization", "Bearer t")
            .with_header("x-debug", "1")
            .with_header("x-tenant-id", "t1")
            .with_header("x-tenant-id", "t2");
        let request = client.build(&context, outgoing("/carts")).unwrap();
        let headers = request.headers();
        assert_eq!(headers.get_all("x-tenant-id").iter().collect::<Vec<_>>(), ["t1", "t2"]);
        assert!(headers.get("x-debug").is_none());
        assert!(headers.get("authorization").is_none());
        assert!(headers.get("connection").is_none());
    }

    #[test]
    fn a_json_body_is_typed_unless_the_call_types_it_and_no_forwarded_type_replaces_it() {
        let spec = ServiceSpec::new("cart", "http://cart.internal").with_forward_headers(&["content-type"]);
        let transport = Transport::new(tower::service_fn(|_: http::Request<Bytes>| async {
            Ok::<_, CallError>(http::Response::new(Bytes::new()))
        }));
        let client = ServiceClient::new(spec, "http://cart.internal", transport);
        let context = RequestContext::default().with_header("content-type", "text/plain");
        let types = |request: http::Request<Bytes>| {
            request
                .headers()
                .get_all(header::CONTENT_TYPE)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        let request = client.build(&context, outgoing("/carts").json(&[1])).unwrap();
        assert_eq!(types(request), ["application/json"]);
        let own = outgoing("/carts").json(&[1]).header("content-type", &"application/merge-patch+json");
        assert_eq!(types(client.build(&context, own).unwrap()), ["application/merge-patch+json"]);
        // Without a body of its own, the allow-listed inbound header goes through.
        assert_eq!(types(client.build(&context, outgoing("/carts")).unwrap()), ["text/plain"]);
        // The journal sees the type a JSON body is sent with.
        let journaled = outgoing("/carts").json(&[1]);
        let (.., headers, _) = journaled.parts();
        assert_eq!(
            headers.map(|(n, v)| (n.as_str(), v.to_str().unwrap())).collect::<Vec<_>>(),
            [("content-type", "application/json")]
        );
    }

    #[test]
    fn a_call_cannot_set_headers_the_client_owns() {
        let context = RequestContext::default();
        for name in ["Host", "content-length", "connection", "transfer-encoding", "keep-alive"] {
            let error =
                client("http://cart.internal").build(&context, outgoing("/carts").header(name, &"x")).unwrap_err();
            assert_eq!(error.kind(), CallErrorKind::InvalidInput, "{name}");
        }
        assert!(client("http://cart.internal").build(&context, outgoing("/carts").header("x-tag", &"a")).is_ok());
    }

    #[test]
    fn the_calls_own_headers_beat_forwarded_ones_and_the_trace_gets_a_new_parent() {
        let trace = TraceContext::new_root();
        let context = RequestContext::default()
            .with_header("authorization", "Bearer inbound")
            .with_header("x-request-id", "r-1")
            .with_header("cookie", "secret")
            .with_header("traceparent", trace.traceparent().to_str().unwrap())
            .with_trace(trace.clone());
        let call = outgoing("/carts").json(&1).header("authorization", &"Bearer own").header("x-tag", &"a");
        let request = client("http://cart.internal").build(&context, call.header("x-tag", &"b")).unwrap();
        let headers = request.headers();
        assert_eq!(headers.get_all("authorization").iter().collect::<Vec<_>>(), ["Bearer own"]);
        assert_eq!(headers.get_all("x-tag").iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(headers["x-request-id"], "r-1");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert!(headers.get("cookie").is_none());
        let sent = TraceContext::parse(headers[TRACEPARENT.as_str()].to_str().unwrap()).unwrap();
        assert_eq!((sent.trace_id(), headers.get_all("traceparent").iter().count()), (trace.trace_id(), 1));
        assert_ne!(sent.parent_id(), trace.parent_id());
    }
}

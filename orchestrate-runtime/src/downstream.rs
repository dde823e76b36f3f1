//! The runtime's implementation of the executor's port ([`Calls`]): each call of a run goes to
//! its service's client with the call's policy, the request's forwarded headers and its trace.
//!
//! This module is the seam between the two halves: the executor (graphs, no HTTP) and the client
//! (HTTP, no graphs) each know only this module's side of the other.

use crate::Runtime;
use crate::breaker::BreakerState;
use crate::cache::{Cache, Filled, Flight, Freshness, Key, Stored};
use crate::client::{CallClient, Outgoing, Sent, ServiceClient, decode_json};
use crate::context::RequestContext;
use crate::error::{CallError, CallErrorKind};
use crate::executor::{CallDone, Calls};
use crate::journal::{SagaState, StepOutcome};
use crate::outcome::Compensation;
use crate::retry::CallPolicy;
use crate::saga::SagaLog;
use crate::service::{CachePolicy, HedgePolicy};
use crate::spec::{CallSpec, EndpointSpec};
use crate::telemetry::{self, metrics::CacheResult};
use crate::timeline::Tally;
use futures_util::FutureExt;
use futures_util::future::{self, Either};
use orchestrate_core::budget::Cost;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The downstream services of one request: the runtime's clients and the inbound context
/// (forwarded headers, trace) every call of the request carries.
#[derive(Debug)]
pub struct Downstream<'rt> {
    runtime: &'rt Runtime,
    context: RequestContext,
    /// The request's saga record in the journal, made at its first side-effecting step (only
    /// for endpoints with compensations).
    saga: OnceLock<SagaLog>,
}

impl<'rt> Downstream<'rt> {
    /// The services of `runtime` for one request with `context`.
    pub fn new(runtime: &'rt Runtime, context: RequestContext) -> Self {
        Self { runtime, context, saga: OnceLock::new() }
    }

    /// The saga record of this request of `spec`, started on first use.
    fn saga(&self, spec: &'static EndpointSpec) -> &SagaLog {
        self.saga.get_or_init(|| {
            let journal = self.runtime.journal();
            let id = self
                .context
                .headers()
                .get(telemetry::REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .map_or_else(|| format!("r{:016x}", fastrand::u64(..)), str::to_owned);
            SagaLog::start(journal.clone(), SagaLog::running(journal, id, spec.name))
        })
    }

    /// Records a side-effecting step of an endpoint with compensations in its saga record.
    fn journal_step(&self, spec: &'static EndpointSpec, call: &CallSpec, name: &str, key: Option<String>, ok: bool) {
        let outcome = if ok { StepOutcome::Committed } else { StepOutcome::Failed };
        self.saga(spec).step(name, call.service, key, outcome);
    }

    fn resolve(&self, call: &CallSpec) -> Result<(&'rt ServiceClient, CallPolicy), CallError> {
        let client = self.runtime.service_at(call.service_index, call.service).ok_or_else(|| {
            CallError::with_source(
                CallErrorKind::UnknownService,
                format!("service `{}` is not configured", call.service),
            )
        })?;
        let policy = CallPolicy {
            timeout: call.timeout,
            retry: call.effective_retry(&client.spec().retry),
            retryable: call.retryable,
        };
        Ok((client, policy))
    }
}

fn call_of(spec: &'static EndpointSpec, node: usize) -> Result<&'static CallSpec, CallError> {
    spec.call(node).ok_or_else(|| CallError::new(CallErrorKind::UnknownService))
}

/// Whether `call` of `spec` goes in the saga journal: a side-effecting call (not a GET, not
/// marked `idempotent`) of an endpoint that compensates some call.
fn journaled(spec: &EndpointSpec, call: &CallSpec) -> bool {
    spec.has_compensations() && (call.has_side_effect() || call.compensation.is_some())
}

/// Whether `body` decodes as a `T`: only answers the call can use are cached.
fn decodes<T: DeserializeOwned>(body: &[u8]) -> bool {
    serde_json::from_slice::<T>(body).is_ok()
}

impl Downstream<'_> {
    /// A call with `cache(..)`: fresh answers from the cache, stale ones at once with a refresh in
    /// the background, missing ones filled once for every concurrent caller (see
    /// [`cache`](crate::cache)).
    #[allow(clippy::too_many_arguments)]
    async fn cached<T: DeserializeOwned + Send>(
        &self,
        (endpoint, field): (&'static str, &'static str),
        call: &'static CallSpec,
        cache_policy: CachePolicy,
        client: &ServiceClient,
        policy: CallPolicy,
        mut outgoing: Outgoing,
        deadline: Instant,
    ) -> CallDone<T> {
        let cache = self.runtime.cache();
        let (named, tags) = outgoing.take_cache();
        let request = match client.build(&self.context, outgoing) {
            Ok(request) => request,
            Err(error) => return CallDone::failed(error, 0, None),
        };
        let key = match &named {
            Some(named) => Key::named(call.service, named),
            None => Key::of_request(call.service, &request),
        };
        let now = Instant::now();
        let stored = match cache.get(&key).await {
            Ok(stored) => stored,
            Err(error) => {
                tracing::debug!(service = call.service, %error, "cache unavailable; a miss");
                telemetry::metrics::cache(endpoint, field, CacheResult::Error);
                None
            }
        };
        let fill = Fill { client: client.clone(), policy, hedge: call.hedge, cache_policy, tags, check: decodes::<T> };
        if let Some(stored) = stored {
            match stored.freshness(now) {
                Freshness::Fresh => {
                    telemetry::metrics::cache(endpoint, field, CacheResult::Hit);
                    return from_cache(&stored.body, now);
                }
                Freshness::Stale => {
                    telemetry::metrics::cache(endpoint, field, CacheResult::Stale);
                    if let Flight::Lead(tx) = cache.flight(key) {
                        fill.spawn(cache.clone(), key, request, tx);
                    }
                    return from_cache(&stored.body, now);
                }
                Freshness::Expired => {}
            }
        }
        let (mut rx, leader) = match cache.flight(key) {
            Flight::Lead(tx) => {
                telemetry::metrics::cache(endpoint, field, CacheResult::Miss);
                let rx = tx.subscribe();
                fill.spawn(cache.clone(), key, request, tx);
                (rx, true)
            }
            Flight::Follow(rx) => {
                telemetry::metrics::cache(endpoint, field, CacheResult::Coalesced);
                (rx, false)
            }
        };
        let filled = match tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some)).await {
            Ok(Ok(filled)) => filled.clone(),
            // The fill goes on for the next caller; this one's deadline has passed.
            Err(_elapsed) => return CallDone::failed(CallError::new(CallErrorKind::DeadlineExceeded), 0, None),
            Ok(Err(_closed)) => None,
        };
        let attempts = |n: u32| if leader { n } else { 0 };
        match filled {
            Some(Filled::Answered { body, attempts: n, status }) => {
                let value = serde_json::from_slice(&body).map_err(|e| CallError::with_source(CallErrorKind::Decode, e));
                CallDone::new(value, attempts(n), status)
            }
            Some(Filled::Failed { kind, status, retry_after, attempts: n }) => {
                CallDone::failed(Filled::error(kind, status, &retry_after), attempts(n), status.map(|s| s.as_u16()))
            }
            None => CallDone::failed(CallError::new(CallErrorKind::Transport), 0, None),
        }
    }
}

/// A cached answer as the call's value.
fn from_cache<T: DeserializeOwned>(body: &[u8], now: Instant) -> CallDone<T> {
    let value = serde_json::from_slice(body).map_err(|e| CallError::with_source(CallErrorKind::Decode, e));
    CallDone::new(value, 0, None).ended_at(Some(now)).cached()
}

/// Everything a fill needs, owned: it runs in a task of its own.
struct Fill {
    client: ServiceClient,
    policy: CallPolicy,
    hedge: Option<&'static HedgePolicy>,
    cache_policy: CachePolicy,
    tags: Vec<String>,
    /// Whether an answer decodes as the call's type (only those are stored).
    check: fn(&[u8]) -> bool,
}

impl Fill {
    /// Sends `request` in a task of its own, stores a usable answer under `key` and lands the
    /// flight: neither a caller going away nor its deadline cut it short (it has the call's own
    /// worst case from now).
    fn spawn(self, cache: Cache, key: Key, request: http::Request<bytes::Bytes>, tx: watch::Sender<Option<Filled>>) {
        tokio::spawn(async move {
            let retry = self.policy.retry;
            let worst = Cost::call(
                "",
                millis(self.policy.timeout),
                retry.attempts,
                millis(retry.backoff),
                millis(retry.max_backoff),
            );
            let deadline = Instant::now() + Duration::from_millis(worst.worst_case_ms());
            let sent = self.client.send_request(self.policy, self.hedge, deadline, None, request).await;
            let filled = match sent.result {
                Ok(response) => {
                    let body = response.into_body();
                    if (self.check)(&body) {
                        cache.put(key, Stored::new(body.clone(), self.cache_policy, self.tags)).await;
                    }
                    Filled::Answered { body, attempts: sent.attempts, status: sent.status }
                }
                Err(error) => Filled::Failed {
                    kind: error.kind(),
                    status: error.http_status(),
                    retry_after: error.retry_after().cloned(),
                    attempts: sent.attempts,
                },
            };
            cache.land(&key, &tx, filled);
        });
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Calls for Downstream<'_> {
    type Request = Outgoing;
    type Custom<'a>
        = CallClient<'a>
    where
        Self: 'a;

    // Not an `async fn` nor an `async` block: either would keep `request` (and the request
    // built from it) in the call's future beside the client's future that owns it, and the graph
    // moves every call's future with it. The checks and `build` run here, when the node calls
    // `fetch`; the future is the client's own, mapped into the call's result.
    fn fetch<T: DeserializeOwned + Send + 'static>(
        &self,
        spec: &'static EndpointSpec,
        node: usize,
        request: Outgoing,
        started: Option<Instant>,
        deadline: Instant,
    ) -> impl Future<Output = CallDone<T>> + Send + '_ {
        let resolved = call_of(spec, node).and_then(|call| Ok((call, self.resolve(call)?)));
        let (call, (client, policy)) = match resolved {
            Ok(resolved) => resolved,
            Err(error) => return Either::Left(future::ready(CallDone::failed(error, 0, None))),
        };
        if let Some(cache) = call.cache {
            let names = (spec.name, spec.nodes[node].name);
            // Boxed: the cached path's future stays out of every uncached call's future.
            let cached = Box::pin(self.cached::<T>(names, call, cache, client, policy, request, deadline));
            return Either::Right(Either::Left(cached));
        }
        // Only a journaled call's key is copied: other calls allocate nothing for the journal.
        let journal = journaled(spec, call)
            .then(|| request.header_value("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned));
        let sent = match client.build(&self.context, request) {
            Ok(request) => Either::Left(client.send_request(policy, call.hedge, deadline, started, request)),
            // A request that cannot be built fails the call (and its journaled step) unsent.
            Err(error) => Either::Right(future::ready(Sent::refused(error, None))),
        };
        Either::Right(Either::Right(sent.map(move |sent| {
            let value = sent.result.and_then(|response| decode_json(&response));
            if let Some(key) = journal {
                self.journal_step(spec, call, spec.nodes[node].name, key, value.is_ok());
            }
            CallDone::new(value, sent.attempts, sent.status)
                .ended_at(sent.ended)
                .with_attempts(sent.attempt_log, sent.breaker)
                .on_instance(sent.instance)
                .hedged(sent.hedges)
        })))
    }

    fn custom<'a>(
        &'a self,
        spec: &'static EndpointSpec,
        node: usize,
        deadline: Instant,
        tally: &'a Tally,
    ) -> Result<CallClient<'a>, CallError> {
        let (client, policy) = self.resolve(call_of(spec, node)?)?;
        Ok(CallClient::new(client, policy, &self.context, deadline, tally))
    }

    fn compensate(
        &self,
        spec: &'static EndpointSpec,
        steps: Vec<(usize, Outgoing)>,
    ) -> impl Future<Output = Vec<Compensation>> + Send + '_ {
        // Spawned: the compensations go on when this future is dropped.
        let log = self.saga.get().cloned();
        let handle = crate::saga::spawn(self.runtime.clone(), self.context.clone(), spec, steps, log);
        async move {
            handle.await.unwrap_or_else(|error| {
                tracing::error!(%error, "the compensations' task failed");
                Vec::new()
            })
        }
    }

    fn committed(&self, spec: &'static EndpointSpec, node: usize, compensation: &Outgoing) {
        let Some(call) = spec.call(node) else { return };
        let Some(undo) = call.compensation else { return };
        self.saga(spec).compensation(spec.nodes[node].name, call.service, undo, compensation);
    }

    fn finished(&self, _spec: &'static EndpointSpec) {
        if let Some(log) = self.saga.get() {
            log.state(SagaState::Finished);
        }
    }

    fn breaker(&self, call: &CallSpec) -> Option<BreakerState> {
        self.runtime.service_at(call.service_index, call.service).map(ServiceClient::breaker_state)
    }
}

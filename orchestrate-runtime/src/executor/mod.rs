//! Runs an endpoint's graph on the request's own task.
//!
//! The code `#[endpoint]` generates is a single future: one pinned sub-future per call, one
//! [`Slot`] per field, and a [`Driver`] that, on every wake-up, walks the nodes in topological
//! order and polls each node whose dependencies are complete. Because the walk is in topological
//! order, a node that completes makes its dependents runnable in the same pass: each call starts
//! the moment its own inputs are ready, with no level barriers, no task spawned per call and no
//! allocation for the schedule. (This is the shape of `tokio::join!`, generalised from a flat list
//! to a dependency graph; a hand-written `join!` of chains cannot express every graph.)
//!
//! The driver owns the endpoint deadline: when it passes, or a required call fails, the driver
//! returns and every call still in flight is dropped, which cancels its request.
//!
//! The executor knows nothing of HTTP: calls reach the network only through
//! [`ServiceClient`].

mod node;

pub use node::{CallDone, IntoFallback, Slot};

use crate::Runtime;
use crate::client::{CallClient, CallPolicy, Outgoing, ServiceClient, Tally, decode_json};
use crate::context::RequestContext;
use crate::endpoint::{CallSpec, EndpointSpec};
use crate::error::{CallError, CallErrorKind};
use crate::outcome::{FailedCall, Failure};
use crate::telemetry;
use crate::timeline::{CallOutcome, CallRecord, Timeline};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tracing::Span;
use tracing::field::Empty;

/// The state of one endpoint run shared by its calls: runtime, inbound context, start and deadline.
#[derive(Debug)]
pub struct Exec<'rt> {
    runtime: &'rt Runtime,
    spec: &'static EndpointSpec,
    context: RequestContext,
    start: Instant,
    deadline: Instant,
}

impl<'rt> Exec<'rt> {
    /// Starts the clock of one run of `spec`.
    pub fn new(runtime: &'rt Runtime, spec: &'static EndpointSpec, context: RequestContext) -> Self {
        let start = Instant::now();
        Self { runtime, spec, context, start, deadline: start + spec.timeout }
    }

    /// The endpoint's description.
    pub fn spec(&self) -> &'static EndpointSpec {
        self.spec
    }

    /// When the run must be done.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// When the run started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// A timer that fires at the deadline; the driver polls it.
    pub fn deadline_sleep(&self) -> Sleep {
        tokio::time::sleep_until(self.deadline)
    }

    fn call(&self, node: usize) -> Result<(&'static CallSpec, &ServiceClient, CallPolicy), CallError> {
        let call = self.spec.call(node).ok_or_else(|| CallError::new(CallErrorKind::UnknownService))?;
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
        Ok((call, client, policy))
    }

    /// Sends the request of call `node` and decodes the answer as `T`.
    pub async fn fetch<T: DeserializeOwned>(&self, node: usize, outgoing: Outgoing) -> CallDone<T> {
        let (_, client, policy) = match self.call(node) {
            Ok(parts) => parts,
            Err(error) => return CallDone::failed(error, 0, None),
        };
        // Boxed: the client's future (about 1.8 KiB) would otherwise be a part of every node's
        // future, and the endpoint's future (which holds them all) is moved several times on its
        // way to the runtime; one allocation per call costs less than copying it.
        let sent = Box::pin(client.send(&policy, &self.context, self.deadline, outgoing)).await;
        let value = sent.result.and_then(|response| decode_json(&response));
        CallDone::new(value, sent.attempts, sent.status)
    }

    /// Sends one request per item, at most `concurrency` at a time, and collects the answers in
    /// order. The first failure fails the whole call and cancels the requests still in flight.
    pub async fn fan_out<T, I>(&self, node: usize, concurrency: u32, requests: I) -> CallDone<Vec<T>>
    where
        T: DeserializeOwned,
        I: IntoIterator<Item = Outgoing>,
    {
        let (_, client, policy) = match self.call(node) {
            Ok(parts) => parts,
            Err(error) => return CallDone::failed(error, 0, None),
        };
        let requests = requests.into_iter();
        let mut values = Vec::with_capacity(requests.size_hint().0);
        let mut attempts = 0;
        let mut status = None;
        let policy = &policy;
        let mut answers = futures_util::stream::iter(requests)
            .map(|outgoing| client.send(policy, &self.context, self.deadline, outgoing))
            .buffered(concurrency.max(1) as usize);
        while let Some(sent) = answers.next().await {
            attempts += sent.attempts;
            status = sent.status.or(status);
            match sent.result.and_then(|response| decode_json(&response)) {
                Ok(value) => values.push(value),
                Err(error) => return CallDone::failed(error, attempts, status),
            }
        }
        CallDone::new(Ok(values), attempts, status)
    }

    /// The client custom logic of call `node` receives.
    ///
    /// # Errors
    ///
    /// [`CallErrorKind::UnknownService`] when the runtime has no client for the call's service.
    pub fn client<'a>(&'a self, node: usize, tally: &'a Tally) -> Result<CallClient<'a>, CallError> {
        let (_, client, policy) = self.call(node)?;
        Ok(CallClient::new(client, policy, &self.context, self.deadline, tally))
    }

    /// Offset of now from the run's start.
    fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.start)
    }
}

/// What a finished run reports besides the values: degraded calls and the timeline.
#[derive(Debug)]
pub struct Report {
    /// Optional calls that failed.
    pub failed: Vec<FailedCall>,
    /// Every call's record.
    pub timeline: Timeline,
}

/// Drives the nodes of one run; see the [module docs](self).
///
/// Node `i` is done when bit `i` of the done mask is set; `N` is the number of nodes (at most 64).
///
/// Each call runs inside its own `call` span (a child of the current span, the `request` span
/// when served by the router), entered whenever the driver polls it, so what the client logs for
/// the call's attempts belongs to it. When the call ends the span gets its `attempts`, `status`,
/// `outcome`, `error`, `duration_ms` and the service's `breaker` state, and the call is counted
/// in the [metrics](crate::telemetry::metrics).
///
/// Times in the timeline cost one clock read per completed call: a call that starts in the same
/// pass as its dependency completed starts at that completion's time (when its inputs were
/// ready), and the calls that start together in a pass share one read.
#[derive(Debug)]
pub struct Driver<'e, 'rt, const N: usize> {
    exec: &'e Exec<'rt>,
    done: u64,
    /// The last clock read of the current pass (offset from the run's start).
    clock: Option<Duration>,
    started: [Option<Duration>; N],
    spans: [Span; N],
    records: Vec<CallRecord>,
    failed: Vec<FailedCall>,
}

impl<'e, 'rt, const N: usize> Driver<'e, 'rt, N> {
    const ALL: u64 = if N >= 64 { u64::MAX } else { (1u64 << N) - 1 };

    /// A driver for `N` nodes of `exec`'s endpoint.
    pub fn new(exec: &'e Exec<'rt>) -> Self {
        Self {
            exec,
            done: 0,
            clock: None,
            started: [None; N],
            spans: std::array::from_fn(|_| Span::none()),
            records: Vec::with_capacity(N),
            failed: Vec::new(),
        }
    }

    /// The span of call node `i`, opened when it starts.
    fn call_span(&self, i: usize) -> Span {
        let spec = self.exec.spec;
        let Some(call) = spec.call(i) else { return Span::none() };
        tracing::info_span!(
            "call",
            service = call.service,
            call = spec.nodes[i].name,
            attempts = Empty,
            status = Empty,
            outcome = Empty,
            error = Empty,
            duration_ms = Empty,
            breaker = Empty,
            retry_reason = Empty,
        )
    }

    /// Records how call node `i` ended: in its span (then closed), the metrics and the timeline.
    fn end_call(&mut self, i: usize, record: CallRecord) {
        telemetry::metrics::call(self.exec.spec.name, &record);
        let span = std::mem::replace(&mut self.spans[i], Span::none());
        if !span.is_disabled() {
            span.record("attempts", record.attempts);
            if let Some(status) = record.status {
                span.record("status", status);
            }
            span.record("outcome", record.outcome_label());
            if let CallOutcome::Failed(kind) = record.outcome {
                span.record("error", kind.as_str());
            }
            // To 0.1 ms, as `Server-Timing` shows it (and no `84.29928100000001` in log lines).
            span.record("duration_ms", (record.duration().as_secs_f64() * 10_000.0).round() / 10.0);
            let client = self.exec.spec.call(i).and_then(|c| self.exec.runtime.service_at(c.service_index, c.service));
            if let Some(client) = client {
                span.record("breaker", client.breaker_state().as_str());
            }
        }
        self.records.push(record);
    }

    /// Now, as read last in this pass (or read now).
    fn now(&mut self) -> Duration {
        *self.clock.get_or_insert_with(|| self.exec.elapsed())
    }

    /// Reads the clock and keeps the reading for the rest of the pass.
    fn read_clock(&mut self) -> Duration {
        *self.clock.insert(self.exec.elapsed())
    }

    /// Whether node `i` still has to run and every node of `deps` (a bit mask) is done.
    #[inline]
    pub fn ready(&self, i: usize, deps: u64) -> bool {
        self.done & (1 << i) == 0 && self.done & deps == deps
    }

    /// Fails the run when the deadline has passed.
    ///
    /// # Errors
    ///
    /// The deadline [`Failure`], listing the calls it cut.
    pub fn poll_deadline(&mut self, deadline: Pin<&mut Sleep>, cx: &mut Context<'_>) -> Result<(), Failure> {
        // A new pass: earlier clock readings are stale.
        self.clock = None;
        if deadline.poll(cx).is_pending() {
            return Ok(());
        }
        let mut failed = std::mem::take(&mut self.failed);
        let spec = self.exec.spec;
        for i in self.in_flight() {
            if let Some(call) = spec.call(i) {
                failed.push(FailedCall {
                    call: spec.nodes[i].name,
                    service: call.service,
                    kind: CallErrorKind::DeadlineExceeded,
                    status: None,
                    required: call.required,
                });
            }
        }
        let timeline = self.close_timeline();
        Err(Failure::deadline(spec.name, failed, timeline))
    }

    fn in_flight(&self) -> impl Iterator<Item = usize> + '_ {
        (0..N).filter(|&i| self.done & (1 << i) == 0 && self.started[i].is_some())
    }

    /// Records calls still in flight as cancelled and returns the timeline.
    fn close_timeline(&mut self) -> Timeline {
        let now = self.read_clock();
        let spec = self.exec.spec;
        let cancelled: Vec<usize> = self.in_flight().collect();
        for i in cancelled {
            if let (Some(call), Some(start)) = (spec.call(i), self.started[i]) {
                let record = CallRecord {
                    call: spec.nodes[i].name,
                    service: call.service,
                    start,
                    end: now,
                    attempts: 0,
                    status: None,
                    outcome: CallOutcome::Cancelled,
                    fallback: false,
                };
                self.end_call(i, record);
            }
        }
        Timeline { calls: std::mem::take(&mut self.records), total: now }
    }

    /// Polls call node `i`; when it completes, stores its value in `slot` and records it.
    ///
    /// # Errors
    ///
    /// The run's [`Failure`] when the node was a required call and failed.
    pub fn poll_call<V, F>(
        &mut self,
        i: usize,
        future: Pin<&mut F>,
        slot: &Slot<V>,
        cx: &mut Context<'_>,
    ) -> Result<(), Failure>
    where
        F: Future<Output = CallDone<V>>,
    {
        let start = match self.started[i] {
            Some(start) => start,
            None => {
                self.spans[i] = self.call_span(i);
                let now = self.now();
                *self.started[i].insert(now)
            }
        };
        let polled = {
            let _entered = self.spans[i].enter();
            future.poll(cx)
        };
        let Poll::Ready(done) = polled else {
            return Ok(());
        };
        self.done |= 1 << i;
        let spec = self.exec.spec;
        let name = spec.nodes[i].name;
        let (service, required) = spec.call(i).map_or(("", true), |c| (c.service, c.required));
        let end = self.read_clock();
        let mut record = CallRecord {
            call: name,
            service,
            start,
            end,
            attempts: done.attempts,
            status: done.status,
            outcome: CallOutcome::Ok,
            fallback: done.fallback,
        };
        if done.skipped {
            record.outcome = CallOutcome::Skipped;
        }
        if let Some(error) = &done.degraded {
            record.outcome = CallOutcome::Failed(error.kind());
            self.failed.push(FailedCall {
                call: name,
                service,
                kind: error.kind(),
                status: error.http_status(),
                required: false,
            });
        }
        match done.value {
            Ok(value) => {
                slot.set(value);
                self.end_call(i, record);
                Ok(())
            }
            Err(error) => {
                record.outcome = CallOutcome::Failed(error.kind());
                self.end_call(i, record);
                let call =
                    FailedCall { call: name, service, kind: error.kind(), status: error.http_status(), required };
                let failed = std::mem::take(&mut self.failed);
                let timeline = self.close_timeline();
                Err(Failure::required(spec.name, failed, call, &error, timeline))
            }
        }
    }

    /// Marks computed node `i` done (its value was stored by the generated code).
    #[inline]
    pub fn computed(&mut self, i: usize) {
        self.done |= 1 << i;
    }

    /// `Ready` with the run's report once every node is done.
    pub fn finish(&mut self) -> Poll<Result<Report, Failure>> {
        if self.done & Self::ALL != Self::ALL {
            // The pass ends; the next one reads the clock afresh.
            self.clock = None;
            return Poll::Pending;
        }
        let timeline = Timeline { calls: std::mem::take(&mut self.records), total: self.now() };
        Poll::Ready(Ok(Report { failed: std::mem::take(&mut self.failed), timeline }))
    }
}

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
//! The executor knows nothing of HTTP: it reaches downstream services only through its port,
//! [`Calls`], which sends the request of a call and yields the decoded value or a
//! [`CallError`](crate::CallError), with the attempts it took. The runtime's implementation of
//! the port (over the services' policies and connections) lives outside this module.
//!
//! Sagas: a call with a compensation hands the compensation's request to [`Exec::commit`] the
//! moment it succeeded. When the run fails, [`Exec::compensate`] hands the committed ones to the
//! port in reverse dependency order (the reverse of the topological order of their nodes: every
//! call is undone before the calls it depended on) and attaches what became of them to the
//! failure. The port runs them under their own budget, not the request's (see
//! [`Calls::compensate`]).

mod node;
mod port;

pub use node::{CallDone, IntoFallback, Slot};
pub use port::Calls;

use crate::outcome::{FailedCall, Failure};
use crate::spec::EndpointSpec;
use crate::telemetry;
use crate::timeline::{AttemptLog, CallOutcome, CallRecord, Tally, Timeline};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tracing::Span;
use tracing::field::Empty;

/// The state of one endpoint run shared by its calls: the port to the services, the endpoint's
/// description, start and deadline, and the compensations of the calls that committed.
pub struct Exec<'p, P: Calls> {
    calls: &'p P,
    spec: &'static EndpointSpec,
    start: Instant,
    deadline: Instant,
    /// The driver's clock reading of the current pass, in nanoseconds from `start` plus one (0:
    /// none yet), so that a call starting in the pass starts at it without reading the clock.
    pass_clock: AtomicU64,
    /// The compensations of the calls that committed, by node.
    committed: Mutex<Vec<(usize, P::Request)>>,
}

impl<'p, P: Calls> Exec<'p, P> {
    /// Starts the clock of one run of `spec`, its calls sent through `calls`.
    pub fn new(calls: &'p P, spec: &'static EndpointSpec) -> Self {
        let start = Instant::now();
        // The first pass starts now.
        Self {
            calls,
            spec,
            start,
            deadline: start + spec.timeout,
            pass_clock: AtomicU64::new(1),
            committed: Mutex::new(Vec::new()),
        }
    }

    /// Call `node` committed: `compensation` undoes it if the run fails.
    pub fn commit(&self, node: usize, compensation: P::Request) {
        self.calls.committed(self.spec, node, &compensation);
        self.committed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((node, compensation));
    }

    /// The run succeeded: none of the committed calls will be compensated.
    pub fn succeeded(&self) {
        self.calls.finished(self.spec);
    }

    /// Runs the compensations of the calls that committed before `failure`, dependents first,
    /// and returns the failure with what became of them. Without committed compensations it
    /// returns `failure` at once.
    pub async fn compensate(&self, failure: Failure) -> Failure {
        let mut steps = std::mem::take(&mut *self.committed.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if steps.is_empty() {
            return failure;
        }
        // Nodes are numbered in topological order: the reverse undoes dependents first.
        steps.sort_by_key(|(node, _)| std::cmp::Reverse(*node));
        let compensations = self.calls.compensate(self.spec, steps).await;
        failure.with_compensations(compensations)
    }

    /// The driver's reading of the clock in this pass, if it made one.
    fn pass_now(&self) -> Option<Instant> {
        match self.pass_clock.load(Ordering::Relaxed) {
            0 => None,
            n => Some(self.start + Duration::from_nanos(n - 1)),
        }
    }

    fn set_pass_clock(&self, offset: Option<Duration>) {
        let n = offset.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1) + 1);
        self.pass_clock.store(n, Ordering::Relaxed);
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

    /// Sends the request of call `node` and decodes the answer as `T`.
    ///
    /// The port's future itself (no `async fn` around it: one state machine less per call),
    /// starting at the pass's clock when the driver read it.
    pub fn fetch<T: DeserializeOwned + Send + 'static>(
        &self,
        node: usize,
        request: P::Request,
    ) -> impl Future<Output = CallDone<T>> + Send + '_ {
        self.calls.fetch::<T>(self.spec, node, request, self.pass_now(), self.deadline)
    }

    /// Sends one request per item, at most `concurrency` at a time, and collects the answers in
    /// order. The first failure fails the whole call and cancels the requests still in flight.
    pub async fn fan_out<T, I>(&self, node: usize, concurrency: u32, requests: I) -> CallDone<Vec<T>>
    where
        T: DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = P::Request>,
    {
        let requests = requests.into_iter();
        let mut values = Vec::with_capacity(requests.size_hint().0);
        let mut attempts = 0;
        let mut status = None;
        let mut ended = None;
        let mut breaker = None;
        let mut answers = futures_util::stream::iter(requests)
            .map(|request| self.calls.fetch::<T>(self.spec, node, request, None, self.deadline))
            .buffered(concurrency.max(1) as usize);
        while let Some(done) = answers.next().await {
            attempts += done.attempts;
            status = done.status.or(status);
            ended = done.ended.max(ended);
            breaker = done.breaker.or(breaker);
            match done.value {
                Ok(value) => values.push(value),
                // The items' requests overlap: their attempt times are not kept, only counted.
                Err(error) => {
                    return CallDone::failed(error, attempts, status)
                        .ended_at(ended)
                        .with_attempts(AttemptLog::new(), breaker);
                }
            }
        }
        CallDone::new(Ok(values), attempts, status).ended_at(ended).with_attempts(AttemptLog::new(), breaker)
    }

    /// The handle custom logic of call `node` receives, counting what it sends in `tally`.
    ///
    /// # Errors
    ///
    /// [`CallErrorKind::UnknownService`](crate::CallErrorKind::UnknownService) when the port has no
    /// service for the call.
    pub fn custom<'a>(&'a self, node: usize, tally: &'a Tally) -> Result<P::Custom<'a>, crate::CallError> {
        self.calls.custom(self.spec, node, self.deadline, tally)
    }

    /// Offset of now from the run's start.
    fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.start)
    }
}

impl<P: Calls> std::fmt::Debug for Exec<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exec")
            .field("endpoint", &self.spec.name)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
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

/// Drives the nodes of one run, as the executor module describes.
///
/// Node `i` is done when bit `i` of the done mask is set; `N` is the number of nodes (at most 64).
///
/// Each call runs inside its own `call` span (a child of the current span, the `request` span
/// when served by the router), entered whenever the driver polls it, so what is logged for
/// the call's attempts belongs to it. When the call ends the span gets its `attempts`, `status`,
/// `outcome`, `error`, `duration_ms` and the service's `breaker` state, and the call is counted
/// in the [metrics](crate::telemetry::metrics).
///
/// Times in the timeline cost one clock read per completed call: a call that starts in the same
/// pass as its dependency completed starts at that completion's time (when its inputs were
/// ready), and the calls that start together in a pass share one read.
#[derive(Debug)]
pub struct Driver<'e, 'p, P: Calls, const N: usize> {
    exec: &'e Exec<'p, P>,
    done: u64,
    /// The last clock read of the current pass (offset from the run's start).
    clock: Option<Duration>,
    /// Whether the first pass has not begun: its clock is the run's start.
    first_pass: bool,
    started: [Option<Duration>; N],
    spans: [Span; N],
    records: Vec<CallRecord>,
    failed: Vec<FailedCall>,
}

impl<'e, 'p, P: Calls, const N: usize> Driver<'e, 'p, P, N> {
    const ALL: u64 = if N >= 64 { u64::MAX } else { (1u64 << N) - 1 };

    /// A driver for `N` nodes of `exec`'s endpoint.
    pub fn new(exec: &'e Exec<'p, P>) -> Self {
        Self {
            exec,
            done: 0,
            // Exec::new just read the clock: the first pass starts at the run's start.
            clock: Some(Duration::ZERO),
            first_pass: true,
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
            let breaker = record.breaker.or_else(|| self.exec.spec.call(i).and_then(|c| self.exec.calls.breaker(c)));
            if let Some(state) = breaker {
                span.record("breaker", state.as_str());
            }
        }
        self.records.push(record);
    }

    /// Now, as read last in this pass (or read now).
    fn now(&mut self) -> Duration {
        match self.clock {
            Some(now) => now,
            None => self.read_clock(),
        }
    }

    /// Reads the clock and keeps the reading for the rest of the pass.
    fn read_clock(&mut self) -> Duration {
        let now = self.exec.elapsed();
        self.set_clock(now)
    }

    /// Keeps `now` as the pass's clock, for the driver and the calls it starts.
    fn set_clock(&mut self, now: Duration) -> Duration {
        self.clock = Some(now);
        self.exec.set_pass_clock(Some(now));
        now
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
        // A new pass: earlier clock readings are stale (but for the first, which starts at the
        // run's start).
        if !std::mem::take(&mut self.first_pass) {
            self.clock = None;
            self.exec.set_pass_clock(None);
        }
        if deadline.poll(cx).is_pending() {
            return Ok(());
        }
        let mut failed = std::mem::take(&mut self.failed);
        let spec = self.exec.spec;
        for i in self.in_flight() {
            if let Some(call) = spec.call(i) {
                failed.push(FailedCall::cut(spec.nodes[i].name, call.service, call.required));
            }
        }
        let timeline = self.close_timeline();
        Err(Failure::deadline(spec.name, failed, timeline))
    }

    fn in_flight(&self) -> impl Iterator<Item = usize> + '_ {
        (0..N).filter(|&i| self.done & (1 << i) == 0 && self.started[i].is_some())
    }

    /// Records calls still in flight as cancelled and returns the timeline.
    ///
    /// They end at the pass's clock reading: after a required failure, the instant that call
    /// ended, so the record shows them cut together with it (and the failed call as the one
    /// the request ended on).
    fn close_timeline(&mut self) -> Timeline {
        let now = self.now();
        let spec = self.exec.spec;
        let cancelled: Vec<usize> = self.in_flight().collect();
        for i in cancelled {
            if let (Some(call), Some(start)) = (spec.call(i), self.started[i]) {
                let record = CallRecord::new(spec.nodes[i].name, call.service, start, now, CallOutcome::Cancelled);
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
        // The call's own last clock reading is when it ended, and this pass's clock from now on.
        let end = match done.ended {
            Some(at) => self.set_clock(at.saturating_duration_since(self.exec.start)),
            None => self.read_clock(),
        };
        let known = done.ended.map(|at| (at, end));
        let mut record = CallRecord {
            call: name,
            service,
            start,
            end,
            attempts: done.attempts,
            attempt_times: done.attempt_log.since_known(self.exec.start, known),
            status: done.status,
            outcome: CallOutcome::Ok,
            fallback: done.fallback,
            cached: done.cached,
            breaker: done.breaker,
            instance: done.instance,
            hedges: done.hedges,
        };
        if done.skipped {
            record.outcome = CallOutcome::Skipped;
        }
        if let Some(error) = &done.degraded {
            record.outcome = CallOutcome::Failed(error.kind());
            self.failed.push(FailedCall::new(name, service, error, false));
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
                let call = FailedCall::new(name, service, &error, required);
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
            self.exec.set_pass_clock(None);
            return Poll::Pending;
        }
        let timeline = Timeline { calls: std::mem::take(&mut self.records), total: self.now() };
        Poll::Ready(Ok(Report { failed: std::mem::take(&mut self.failed), timeline }))
    }
}

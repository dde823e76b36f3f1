//! One endpoint's store: three fixed-capacity sets of fixed-size entries, allocated once, and the
//! retention rule that decides which set a finished request is copied into.
//!
//! - `last`: a ring of the last `last` requests, the oldest overwritten.
//! - `slowest`: the `slowest` slowest requests of the window: a request takes an empty or
//!   expired place, else the place of the fastest one kept if it is slower.
//! - `failed`: a ring of the last `failed` requests in which a call failed (the request failed,
//!   or came back partial); expired ones are not shown.
//!
//! A request may be in more than one set (a copy in each): entries carry their sequence number,
//! and the read side shows each request once with the sets that keep it.

use super::Served;
use super::view::{Kept, RecentCall, RecentRequest};
use crate::breaker::BreakerState;
use crate::error::CallErrorKind;
use crate::spec::{EndpointSpec, NodeKind};
use crate::telemetry::TraceId;
use crate::timeline::{AttemptTimes, CallOutcome, Ending};
use orchestrate_core::policy::RecentRequests;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// The longest request id kept, as the router accepts them (see
/// [`is_valid_request_id`](crate::telemetry::is_valid_request_id)).
const MAX_REQUEST_ID: usize = 200;

/// One call of a kept request, in 56 bytes.
#[derive(Debug, Clone, Copy)]
struct CallEntry {
    /// Index of the call's node in the endpoint's spec.
    node: u8,
    ending: Ending,
    error: Option<CallErrorKind>,
    breaker: Option<BreakerState>,
    /// 0 when no response arrived.
    status: u16,
    attempts: u16,
    instance: Option<u16>,
    start_us: u32,
    end_us: u32,
    attempt_times: AttemptTimes,
}

impl CallEntry {
    const EMPTY: Self = Self {
        node: 0,
        ending: Ending::Ok,
        error: None,
        breaker: None,
        status: 0,
        attempts: 0,
        instance: None,
        start_us: 0,
        end_us: 0,
        attempt_times: AttemptTimes::new(),
    };
}

/// One kept request: what the operator sees of it, and nothing else (no body, no header but the
/// request id).
#[derive(Debug)]
struct Entry {
    used: bool,
    seq: u64,
    /// When the request started.
    at: Instant,
    duration_us: u32,
    graph_us: u32,
    status: u16,
    partial: bool,
    trace_id: [u8; 16],
    request_id_len: u8,
    request_id: [u8; MAX_REQUEST_ID],
    calls_len: u8,
    /// One place per call node of the endpoint, allocated with the store.
    calls: Box<[CallEntry]>,
}

impl Entry {
    fn new(calls: usize, now: Instant) -> Self {
        Self {
            used: false,
            seq: 0,
            at: now,
            duration_us: 0,
            graph_us: 0,
            status: 0,
            partial: false,
            trace_id: [0; 16],
            request_id_len: 0,
            request_id: [0; MAX_REQUEST_ID],
            calls_len: 0,
            calls: vec![CallEntry::EMPTY; calls].into_boxed_slice(),
        }
    }

    fn failed(&self) -> bool {
        !(200..300).contains(&self.status)
    }

    /// Whether the entry is kept by a set that holds entries only within `within`.
    fn fresh(&self, now: Instant, within: Duration) -> bool {
        self.used && now.saturating_duration_since(self.at) < within
    }

    /// Fills the entry from a finished request, in place.
    fn write(&mut self, spec: &EndpointSpec, seq: u64, served: &Served<'_>) {
        self.used = true;
        self.seq = seq;
        self.at = served.started;
        self.duration_us = micros(served.duration);
        self.graph_us = micros(served.timeline.total);
        self.status = served.status;
        self.partial = served.partial;
        self.trace_id = served.trace_id.0;
        let id = &served.request_id[..served.request_id.len().min(MAX_REQUEST_ID)];
        self.request_id[..id.len()].copy_from_slice(id);
        self.request_id_len = id.len() as u8;
        let mut len = 0;
        for record in &served.timeline.calls {
            let Some(place) = self.calls.get_mut(len) else { break };
            // The executor names calls by their node's own `&'static str`: the pointer matches.
            let node = spec
                .nodes
                .iter()
                .position(|n| std::ptr::eq(n.name, record.call))
                .or_else(|| spec.nodes.iter().position(|n| n.name == record.call));
            let Some(node) = node else { continue };
            *place = CallEntry {
                node: node as u8,
                ending: record.ending(),
                error: match record.outcome {
                    CallOutcome::Failed(kind) => Some(kind),
                    _ => None,
                },
                breaker: record.breaker,
                status: record.status.unwrap_or(0),
                attempts: u16::try_from(record.attempts).unwrap_or(u16::MAX),
                instance: record.instance,
                start_us: micros(record.start),
                end_us: micros(record.end),
                attempt_times: record.attempt_times,
            };
            len += 1;
        }
        self.calls_len = len as u8;
    }

    /// Makes this entry a copy of `other` (same endpoint, so the same number of call places).
    fn copy_from(&mut self, other: &Entry) {
        self.used = other.used;
        self.seq = other.seq;
        self.at = other.at;
        self.duration_us = other.duration_us;
        self.graph_us = other.graph_us;
        self.status = other.status;
        self.partial = other.partial;
        self.trace_id = other.trace_id;
        let id = usize::from(other.request_id_len);
        self.request_id[..id].copy_from_slice(&other.request_id[..id]);
        self.request_id_len = other.request_id_len;
        let calls = usize::from(other.calls_len).min(self.calls.len());
        self.calls[..calls].copy_from_slice(&other.calls[..calls]);
        self.calls_len = calls as u8;
    }

    fn view(&self, spec: &'static EndpointSpec, kept: Kept) -> RecentRequest {
        let calls = self.calls[..usize::from(self.calls_len)]
            .iter()
            .map(|c| {
                let node = &spec.nodes[usize::from(c.node)];
                let (service, required) = match &node.kind {
                    NodeKind::Call(call) => (call.service, call.required),
                    NodeKind::Compute { .. } => ("", false),
                };
                RecentCall {
                    node: usize::from(c.node),
                    call: node.name,
                    service,
                    required,
                    start: from_micros(c.start_us),
                    end: from_micros(c.end_us),
                    attempts: u32::from(c.attempts),
                    attempt_times: c.attempt_times,
                    ending: c.ending,
                    error: c.error,
                    status: (c.status != 0).then_some(c.status),
                    breaker: c.breaker,
                    instance: c.instance,
                }
            })
            .collect();
        RecentRequest {
            seq: self.seq,
            request_id: String::from_utf8_lossy(&self.request_id[..usize::from(self.request_id_len)]).into_owned(),
            trace_id: TraceId(self.trace_id),
            started: self.at,
            status: self.status,
            partial: self.partial,
            duration: from_micros(self.duration_us),
            graph: from_micros(self.graph_us),
            kept,
            calls,
        }
    }
}

fn micros(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

fn from_micros(us: u32) -> Duration {
    Duration::from_micros(u64::from(us))
}

#[derive(Debug)]
struct Sets {
    /// Requests recorded so far (the sequence number of the last one).
    recorded: u64,
    last: Box<[Entry]>,
    next_last: usize,
    slowest: Box<[Entry]>,
    failed: Box<[Entry]>,
    next_failed: usize,
}

/// The recent requests of one endpoint.
#[derive(Debug)]
pub(super) struct Store {
    spec: &'static EndpointSpec,
    within: Duration,
    sets: Mutex<Sets>,
}

impl Store {
    /// A store for `spec` with the capacities of `settings`, every entry allocated now.
    pub(super) fn new(spec: &'static EndpointSpec, settings: &RecentRequests) -> Self {
        let calls = call_nodes(spec);
        let now = Instant::now();
        let entries = |n: u32| (0..n).map(|_| Entry::new(calls, now)).collect::<Vec<_>>().into_boxed_slice();
        let sets = Sets {
            recorded: 0,
            last: entries(settings.last.max(1)),
            next_last: 0,
            slowest: entries(settings.slowest),
            failed: entries(settings.failed),
            next_failed: 0,
        };
        Self { spec, within: settings.within, sets: Mutex::new(sets) }
    }

    pub(super) fn spec(&self) -> &'static EndpointSpec {
        self.spec
    }

    fn lock(&self) -> MutexGuard<'_, Sets> {
        // Every update leaves the sets consistent entry by entry: a panic cannot corrupt them.
        self.sets.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a finished request; `now` is when it finished.
    pub(super) fn record(&self, served: &Served<'_>, now: Instant) {
        let within = self.within;
        let mut sets = self.lock();
        let sets = &mut *sets;
        sets.recorded += 1;
        let seq = sets.recorded;
        let at = sets.next_last;
        sets.next_last = (at + 1) % sets.last.len();
        let written = &mut sets.last[at];
        written.write(self.spec, seq, served);
        let written = &sets.last[at];

        // The slowest of the window: an empty or expired place first, else the fastest kept.
        let mut place: Option<(usize, u32)> = None;
        for (i, entry) in sets.slowest.iter().enumerate() {
            let speed = if entry.fresh(now, within) { entry.duration_us } else { 0 };
            if place.is_none_or(|(_, fastest)| speed < fastest) {
                place = Some((i, speed));
            }
        }
        if let Some((i, fastest)) = place
            && (fastest == 0 || written.duration_us > fastest)
        {
            sets.slowest[i].copy_from(written);
        }

        // The last with a failed call: a ring, so its next place is the oldest.
        if (written.failed() || written.partial) && !sets.failed.is_empty() {
            let at = sets.next_failed;
            sets.next_failed = (at + 1) % sets.failed.len();
            sets.failed[at].copy_from(written);
        }
    }

    /// Requests recorded since the store was made.
    pub(super) fn recorded(&self) -> u64 {
        self.lock().recorded
    }

    /// Every request kept at `now`, each once with the sets that keep it, newest first.
    pub(super) fn requests(&self, now: Instant) -> Vec<RecentRequest> {
        let within = self.within;
        let sets = self.lock();
        let mut found: Vec<(&Entry, Kept)> = Vec::with_capacity(sets.last.len());
        let last = sets.last.iter().filter(|e| e.used).map(|e| (e, Kept::LAST));
        let slowest = sets.slowest.iter().filter(|e| e.fresh(now, within)).map(|e| (e, Kept::SLOWEST));
        let failed = sets.failed.iter().filter(|e| e.fresh(now, within)).map(|e| (e, Kept::FAILED));
        found.extend(last.chain(slowest).chain(failed));
        found.sort_by_key(|(entry, _)| std::cmp::Reverse(entry.seq));
        let mut views: Vec<RecentRequest> = Vec::with_capacity(found.len());
        let mut i = 0;
        while i < found.len() {
            let (entry, mut kept) = found[i];
            i += 1;
            while let Some((_, also)) = found.get(i).filter(|(e, _)| e.seq == entry.seq) {
                kept = kept.or(*also);
                i += 1;
            }
            views.push(entry.view(self.spec, kept));
        }
        views
    }
}

/// The number of call nodes of `spec`: the places each entry has for calls.
fn call_nodes(spec: &EndpointSpec) -> usize {
    spec.nodes.iter().filter(|n| matches!(n.kind, NodeKind::Call(_))).count()
}

/// Bytes one kept request of `spec` takes: the entry and its call places.
pub(super) fn entry_bytes(spec: &EndpointSpec) -> usize {
    std::mem::size_of::<Entry>() + call_nodes(spec) * std::mem::size_of::<CallEntry>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figures the module docs and BENCHMARKS.md quote (64-bit Linux): an entry grows only
    /// when someone decides it should.
    #[test]
    #[cfg(all(target_pointer_width = "64", target_os = "linux"))]
    fn an_entry_is_272_bytes_and_a_call_56() {
        assert_eq!(std::mem::size_of::<Entry>(), 272);
        assert_eq!(std::mem::size_of::<CallEntry>(), 56);
    }
}

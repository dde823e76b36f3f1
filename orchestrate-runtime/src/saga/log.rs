//! One request's saga record while it runs: changed in memory by the port and the compensations,
//! written to the journal in order by a task of its own, which also renews the lease.
//!
//! A change never waits for the store (a step commits on the request's path); the task writes
//! the latest state after each change, so writes never go out of order and a burst of changes is
//! one write. [`SagaLog::flush`] waits (bounded) until what was changed is written: the failure
//! path flushes before it sends the first compensation, so a crash from then on leaves a record
//! that says `compensating` with every compensation's request.

use crate::client::Outgoing;
use crate::journal::{
    CompensationRecord, CompensationState, Journal, JournaledRequest, SagaRecord, SagaState, StepOutcome, StepRecord,
};
use crate::spec::CompensationSpec;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;

/// How long [`SagaLog::flush`] waits for the store at most.
const FLUSH_WITHIN: Duration = Duration::from_secs(2);
/// Attempts of one write before the change is given up (the next change writes everything again).
const WRITE_ATTEMPTS: u32 = 3;

/// The live record of one saga: cheap to clone; the writer ends when the last clone is dropped.
#[derive(Debug, Clone)]
pub(crate) struct SagaLog {
    shared: Arc<Shared>,
    /// The version of the last change; every clone holds the sender, so the writer sees when
    /// all are gone.
    changes: Arc<watch::Sender<u64>>,
}

#[derive(Debug)]
struct Shared {
    record: Mutex<SagaRecord>,
    /// The version the writer last wrote (or gave up on).
    written: watch::Sender<u64>,
}

impl SagaLog {
    /// Starts the record of request `request_id` of `endpoint` in `journal` (`state` running, or
    /// the record a resumer took over) and its writer.
    pub(crate) fn start(journal: Journal, record: SagaRecord) -> Self {
        let (changes, receiver) = watch::channel(0);
        let shared = Arc::new(Shared { record: Mutex::new(record), written: watch::Sender::new(0) });
        let log = Self { shared: Arc::clone(&shared), changes: Arc::new(changes) };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(write(journal, shared, receiver));
        }
        log
    }

    /// A fresh record of a request.
    pub(crate) fn running(journal: &Journal, request_id: String, endpoint: &str) -> SagaRecord {
        SagaRecord {
            request_id,
            endpoint: endpoint.to_owned(),
            state: SagaState::Running,
            owner: journal.owner().to_owned(),
            steps: Vec::new(),
        }
    }

    fn change(&self, f: impl FnOnce(&mut SagaRecord)) {
        f(&mut self.shared.record.lock().unwrap_or_else(PoisonError::into_inner));
        self.changes.send_modify(|v| *v += 1);
    }

    /// Step `call` (of `service`, with `idempotency_key`) ended with `outcome`.
    pub(crate) fn step(&self, call: &str, service: &str, idempotency_key: Option<String>, outcome: StepOutcome) {
        self.change(|record| {
            record.steps.push(StepRecord {
                call: call.to_owned(),
                service: service.to_owned(),
                idempotency_key,
                outcome,
                compensation: None,
            });
        });
    }

    /// Committed step `call` (of `service`) is undone by `request` under `spec`'s policy.
    pub(crate) fn compensation(&self, call: &str, service: &str, spec: &CompensationSpec, request: &Outgoing) {
        let (method, path, headers, body) = request.parts();
        let policy = spec.policy;
        let compensation = CompensationRecord {
            request: JournaledRequest {
                method: method.as_str().to_owned(),
                path: path.to_owned(),
                headers: headers
                    .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
                    .collect(),
                body: body.map(|b| String::from_utf8_lossy(b).into_owned()),
            },
            timeout_ms: millis(policy.timeout),
            attempts: policy.retry.attempts,
            backoff_ms: millis(policy.retry.backoff),
            max_backoff_ms: millis(policy.retry.max_backoff),
            state: CompensationState::Pending,
            sent: 0,
        };
        self.change(|record| {
            match record.steps.iter_mut().rev().find(|s| s.call == call && s.outcome == StepOutcome::Committed) {
                Some(step) => step.compensation = Some(compensation),
                None => record.steps.push(StepRecord {
                    call: call.to_owned(),
                    service: service.to_owned(),
                    idempotency_key: None,
                    outcome: StepOutcome::Committed,
                    compensation: Some(compensation),
                }),
            }
        });
    }

    /// The compensation of `call` is now `state`, after `sent` requests in all.
    pub(crate) fn compensation_state(&self, call: &str, state: CompensationState, sent: u32) {
        self.change(|record| {
            let step = record.steps.iter_mut().rev().find(|s| s.call == call && s.compensation.is_some());
            if let Some(compensation) = step.and_then(|s| s.compensation.as_mut()) {
                compensation.state = state;
                compensation.sent = sent;
            }
        });
    }

    /// The saga is now `state` (unless it ended already).
    pub(crate) fn state(&self, state: SagaState) {
        self.change(|record| {
            if !record.state.ended() {
                record.state = state;
            }
        });
    }

    /// Waits until every change so far is written (or given up), at most [`FLUSH_WITHIN`].
    pub(crate) async fn flush(&self) {
        let target = *self.changes.borrow();
        let mut written = self.shared.written.subscribe();
        let _ = tokio::time::timeout(FLUSH_WITHIN, written.wait_for(|w| *w >= target)).await;
    }
}

/// The writer: the latest record after each change, and the lease renewed in between, until the
/// saga ended and was written, or every handle is gone.
async fn write(journal: Journal, shared: Arc<Shared>, mut changes: watch::Receiver<u64>) {
    let renew_every = journal.settings().renew_every().max(Duration::from_millis(100));
    let mut renewal = tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);
    loop {
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = renewal.tick() => {
                let id = shared.record.lock().unwrap_or_else(PoisonError::into_inner).request_id.clone();
                match journal.renew(&id).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(request_id = %id, "this instance lost its lease on a saga; it stops writing it");
                        return;
                    }
                    Err(error) => tracing::warn!(request_id = %id, %error, "a saga's lease could not be renewed"),
                }
                continue;
            }
        };
        let version = *changes.borrow_and_update();
        let record = shared.record.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut held = true;
        for attempt in 1..=WRITE_ATTEMPTS {
            match journal.write(&record).await {
                Ok(ok) => {
                    held = ok;
                    break;
                }
                Err(error) if attempt == WRITE_ATTEMPTS => tracing::warn!(
                    request_id = %record.request_id,
                    %error,
                    "the saga journal could not be written; the request goes on without it"
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await,
            }
        }
        shared.written.send_replace(version);
        if !held {
            tracing::warn!(request_id = %record.request_id, "another instance holds this saga; this one stops writing it");
            return;
        }
        if record.state.ended() {
            return;
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

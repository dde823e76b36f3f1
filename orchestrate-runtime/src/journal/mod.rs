//! The saga journal: what each request of an endpoint with compensations did that must be undone
//! if it fails, kept where another instance can find it.
//!
//! One [`SagaRecord`] per request (keyed by its request id): the side-effecting steps it sent,
//! each with its idempotency key and outcome, and for each committed step its compensation's
//! whole request (method, path, headers including `Idempotency-Key`, body) and that
//! compensation's state (`pending`, `running`, `done`, `failed`). The record is written the
//! moment a step commits, so an instance that crashes before, during or after its failure leaves
//! everything another needs to undo the request (see [`saga::resume`](crate::saga::resume)).
//!
//! Each record is held by its *owner* (the instance running the request, or the one resuming it)
//! under a lease that the owner renews with every write and while it works; a lease that expires
//! means the owner is gone. Claiming is `SET NX PX`, so two instances never hold one record, and
//! a write is refused to an instance that no longer holds the lease. The lease is the only
//! sign of life: an owner that cannot renew it for longer than the lease (the store unreachable
//! that long) may see another instance's [`resume`](crate::saga::resume) take its saga over
//! while its request still runs, so keep the lease well above the store outages to ride out.
//!
//! - In memory (the default): bounded ([`MAX_RECORDS`]), each record kept for the journal's time
//!   to live; a crash loses it with the process, so resuming matters only with Redis.
//! - In Redis (when the runtime's store is Redis), under the store's prefix:
//!   `saga:record:<request id>` (the record as JSON, with the time to live),
//!   `saga:lease:<request id>` (the owner's id, `PX` the lease) and `saga:open` (the set of
//!   request ids whose saga has not ended). Every command runs under the store's timeout; a store
//!   that fails degrades the journal (the request runs, its saga is not resumable, the failure is
//!   logged and counted in `orchestrate_store_errors_total`), never a 5xx.
//!
//! The settings (lease, renewal, time to live) are
//! [`SagaSettings`], `[saga]` in the configuration file.

mod memory;
mod shared;

use crate::store::{Store, StoreError};

pub use orchestrate_core::policy::SagaSettings;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The most records the in-memory journal keeps; past it, ended sagas are dropped first.
pub const MAX_RECORDS: usize = 10_000;

/// A request's saga as the journal keeps it.
///
/// ```
/// use orchestrate_runtime::journal::{SagaRecord, SagaState};
/// let record: SagaRecord = serde_json::from_str(
///     r#"{"requestId":"r1","endpoint":"place","state":"running","owner":"o1","steps":[]}"#,
/// ).unwrap();
/// assert_eq!(record.state, SagaState::Running);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SagaRecord {
    /// The request's id (`x-request-id`).
    pub request_id: String,
    /// The endpoint's name.
    pub endpoint: String,
    /// Where the saga is.
    pub state: SagaState,
    /// The instance that holds (or last held) the record.
    pub owner: String,
    /// The side-effecting steps, in the order they ended.
    pub steps: Vec<StepRecord>,
}

/// Where a saga is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum SagaState {
    /// The request runs (or its owner died while it ran: resumable once its lease expired).
    Running,
    /// The request ended without needing its compensations.
    Finished,
    /// A step failed after others committed: their compensations run (or are left to resume).
    Compensating,
    /// Every compensation is done.
    Compensated,
    /// Some compensation failed after its retries; an operator must look.
    Incomplete,
}

impl SagaState {
    /// Whether nothing more will happen to the saga.
    ///
    /// ```
    /// use orchestrate_runtime::journal::SagaState;
    /// assert!(SagaState::Compensated.ended() && !SagaState::Compensating.ended());
    /// ```
    pub fn ended(self) -> bool {
        matches!(self, Self::Finished | Self::Compensated | Self::Incomplete)
    }
}

/// One side-effecting step of a saga.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct StepRecord {
    /// The call's field name.
    pub call: String,
    /// Its service.
    pub service: String,
    /// The `Idempotency-Key` it sent, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Whether it committed.
    pub outcome: StepOutcome,
    /// What undoes it, for a committed step with `compensate = ..`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensation: Option<CompensationRecord>,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum StepOutcome {
    /// It succeeded: its side effect happened.
    Committed,
    /// It failed.
    Failed,
}

/// A committed step's compensation: the whole request, its policy and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CompensationRecord {
    /// The request to send.
    pub request: JournaledRequest,
    /// Each attempt's timeout, in milliseconds.
    pub timeout_ms: u64,
    /// Attempts in all.
    pub attempts: u32,
    /// The first backoff's bound, in milliseconds.
    pub backoff_ms: u64,
    /// Any backoff's bound, in milliseconds.
    pub max_backoff_ms: u64,
    /// Where it is.
    pub state: CompensationState,
    /// Requests sent so far.
    #[serde(default)]
    pub sent: u32,
}

/// Where a compensation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum CompensationState {
    /// Not sent (the saga has not failed, or its owner died first).
    Pending,
    /// Being sent (a resumer sends it again: it is safe to repeat).
    Running,
    /// Answered with a 2xx.
    Done,
    /// Failed after its retries.
    Failed,
}

/// A request as the journal keeps it: enough to send it again from another process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct JournaledRequest {
    /// `POST`, `DELETE`, ..
    pub method: String,
    /// The encoded path and query, e.g. `/charges/ch_1/refund`.
    pub path: String,
    /// The request's own headers (`content-type`, `idempotency-key`, the call's `headers`).
    pub headers: Vec<(String, String)>,
    /// The body (JSON text), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// A journal operation that did not reach the store.
pub(crate) type JournalResult<T> = Result<T, StoreError>;

/// The journal of one runtime: in memory or in the shared store, cheap to clone.
///
/// ```
/// use orchestrate_runtime::Runtime;
/// let runtime = Runtime::builder(&[]).read_env(false).build().unwrap();
/// assert_eq!(runtime.journal().settings().lease.as_secs(), 10);
/// assert!(!runtime.journal().owner().is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct Journal(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    owner: String,
    settings: SagaSettings,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Memory(memory::Records),
    Redis(shared::Records),
}

impl Journal {
    /// A journal in `store` (memory without Redis) for an instance with a fresh owner id.
    pub(crate) fn new(store: &Store, settings: SagaSettings) -> Self {
        let owner = format!("o{:016x}", fastrand::u64(..));
        let backend = match store.redis() {
            Some(redis) => Backend::Redis(shared::Records::new(redis.clone())),
            None => Backend::Memory(memory::Records::default()),
        };
        Self(Arc::new(Inner { owner, settings, backend }))
    }

    /// The same records seen by another instance (another owner id): for tests of leases.
    #[cfg(test)]
    pub(crate) fn as_other_owner(&self) -> Self {
        let backend = match &self.0.backend {
            Backend::Memory(records) => Backend::Memory(records.clone()),
            Backend::Redis(records) => Backend::Redis(records.clone()),
        };
        Self(Arc::new(Inner { owner: format!("o{:016x}", fastrand::u64(..)), settings: self.0.settings, backend }))
    }

    /// This instance's owner id.
    pub fn owner(&self) -> &str {
        &self.0.owner
    }

    /// The lease and time-to-live settings.
    pub fn settings(&self) -> &SagaSettings {
        &self.0.settings
    }

    /// The record of `request_id`, if the journal has it.
    ///
    /// # Errors
    ///
    /// When the store does not answer.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runtime = orchestrate_runtime::Runtime::builder(&[]).read_env(false).build().unwrap();
    /// assert!(runtime.journal().get("r-unknown").await.unwrap().is_none());
    /// # }
    /// ```
    pub async fn get(&self, request_id: &str) -> Result<Option<SagaRecord>, StoreError> {
        match &self.0.backend {
            Backend::Memory(records) => Ok(records.get(request_id)),
            Backend::Redis(records) => records.get(request_id).await,
        }
    }

    /// Writes `record` if this instance holds its lease or nobody does, renewing the lease while
    /// the saga is open and releasing it (and the open mark) once it ended. `false` when another
    /// owner holds it.
    pub(crate) async fn write(&self, record: &SagaRecord) -> JournalResult<bool> {
        let (owner, s) = (&self.0.owner, &self.0.settings);
        match &self.0.backend {
            Backend::Memory(records) => Ok(records.write(record, owner, s.lease, s.ttl)),
            Backend::Redis(records) => records.write(record, owner, s.lease, s.ttl).await,
        }
    }

    /// Takes the lease of `request_id` for this instance if nobody holds it.
    pub(crate) async fn claim(&self, request_id: &str) -> JournalResult<bool> {
        let (owner, lease) = (&self.0.owner, self.0.settings.lease);
        match &self.0.backend {
            Backend::Memory(records) => Ok(records.claim(request_id, owner, lease)),
            Backend::Redis(records) => records.claim(request_id, owner, lease).await,
        }
    }

    /// Extends this instance's lease of `request_id`; `false` when it no longer holds it.
    pub(crate) async fn renew(&self, request_id: &str) -> JournalResult<bool> {
        let (owner, lease) = (&self.0.owner, self.0.settings.lease);
        match &self.0.backend {
            Backend::Memory(records) => Ok(records.renew(request_id, owner, lease)),
            Backend::Redis(records) => records.renew(request_id, owner, lease).await,
        }
    }

    /// The request ids of the sagas that have not ended (held or not).
    pub(crate) async fn open(&self) -> JournalResult<Vec<String>> {
        match &self.0.backend {
            Backend::Memory(records) => Ok(records.open()),
            Backend::Redis(records) => records.open().await,
        }
    }

    /// Forgets that `request_id` is open (its record is gone).
    pub(crate) async fn forget(&self, request_id: &str) -> JournalResult<()> {
        match &self.0.backend {
            Backend::Memory(records) => {
                records.forget(request_id);
                Ok(())
            }
            Backend::Redis(records) => records.forget(request_id).await,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal() -> Journal {
        Journal::new(&Store::Memory, SagaSettings::DEFAULT)
    }

    fn record(journal: &Journal, state: SagaState) -> SagaRecord {
        SagaRecord {
            request_id: "r1".into(),
            endpoint: "place".into(),
            state,
            owner: journal.owner().into(),
            steps: vec![StepRecord {
                call: "charge".into(),
                service: "payment".into(),
                idempotency_key: Some("o1-charge".into()),
                outcome: StepOutcome::Committed,
                compensation: Some(CompensationRecord {
                    request: JournaledRequest {
                        method: "POST".into(),
                        path: "/charges/ch1/refund".into(),
                        headers: vec![("idempotency-key".into(), "o1-refund".into())],
                        body: None,
                    },
                    timeout_ms: 300,
                    attempts: 3,
                    backoff_ms: 50,
                    max_backoff_ms: 800,
                    state: CompensationState::Pending,
                    sent: 0,
                }),
            }],
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_is_kept_and_its_saga_open_until_it_ends() {
        let journal = journal();
        let running = record(&journal, SagaState::Running);
        assert!(journal.write(&running).await.unwrap());
        assert_eq!(journal.get("r1").await.unwrap(), Some(running.clone()));
        assert_eq!(journal.open().await.unwrap(), vec!["r1".to_owned()]);
        let done = SagaRecord { state: SagaState::Compensated, ..running };
        assert!(journal.write(&done).await.unwrap());
        assert!(journal.open().await.unwrap().is_empty());
        assert_eq!(journal.get("r1").await.unwrap().map(|r| r.state), Some(SagaState::Compensated));
        // Kept for the time to live, then gone.
        tokio::time::sleep(SagaSettings::DEFAULT.ttl + Duration::from_secs(1)).await;
        assert_eq!(journal.get("r1").await.unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_keeps_a_second_owner_out_until_it_expires() {
        let first = journal();
        let second = first.as_other_owner();
        let lease = SagaSettings::DEFAULT.lease;
        assert!(first.write(&record(&first, SagaState::Running)).await.unwrap());
        assert!(!second.claim("r1").await.unwrap(), "held by the first owner");
        assert!(!second.write(&record(&second, SagaState::Compensating)).await.unwrap());
        // Renewed before it expires: still held.
        tokio::time::sleep(lease - Duration::from_secs(1)).await;
        assert!(first.renew("r1").await.unwrap());
        tokio::time::sleep(lease - Duration::from_secs(1)).await;
        assert!(!second.claim("r1").await.unwrap());
        // The first owner stops renewing (it crashed): the second claims it, and then the first
        // may no longer write.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(second.claim("r1").await.unwrap());
        assert!(!first.claim("r1").await.unwrap());
        assert!(!first.renew("r1").await.unwrap());
        assert!(!first.write(&record(&first, SagaState::Finished)).await.unwrap());
        assert!(second.write(&record(&second, SagaState::Compensated)).await.unwrap());
        assert!(second.open().await.unwrap().is_empty());
        assert_eq!(first.get("r1").await.unwrap().map(|r| r.owner), Some(second.owner().to_owned()));
    }

    #[test]
    fn the_record_reads_as_the_operations_route_shows_it() {
        let journal = journal();
        let json = serde_json::to_value(record(&journal, SagaState::Compensating)).unwrap();
        assert_eq!(json["state"], "compensating");
        assert_eq!(json["steps"][0]["idempotencyKey"], "o1-charge");
        assert_eq!(json["steps"][0]["compensation"]["state"], "pending");
        assert_eq!(json["steps"][0]["compensation"]["request"]["path"], "/charges/ch1/refund");
    }
}

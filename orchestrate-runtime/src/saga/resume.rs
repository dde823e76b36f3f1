//! Resuming the sagas a crashed instance left: claim, then send what was not done.

use super::{SagaLog, Step, run};
use crate::Runtime;
use crate::client::Outgoing;
use crate::context::RequestContext;
use crate::journal::{CompensationState, SagaState};
use crate::retry::CallPolicy;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use orchestrate_core::policy::RetryPolicy;
use std::time::Duration;

/// What one call of [`resume`] did.
///
/// ```
/// let resumed = orchestrate_runtime::saga::Resumed::default();
/// assert_eq!((resumed.compensated, resumed.incomplete, resumed.held), (0, 0, 0));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resumed {
    /// Sagas this instance took over and whose every compensation is now done.
    pub compensated: usize,
    /// Sagas this instance took over of which some compensation failed after its retries.
    pub incomplete: usize,
    /// Open sagas whose owner still holds the lease (running, or not presumed gone yet): call
    /// [`resume`] again after the lease (`[saga] lease`) to take over those of a crashed owner.
    pub held: usize,
    /// The request ids of the sagas taken over.
    pub request_ids: Vec<String>,
}

/// Finds the sagas left open by instances that are gone (their lease expired) and completes
/// their compensations, from the requests the journal kept, one saga after the other.
///
/// Call it once the runtime is built, at start-up (the examples do, in a task of its own so
/// the server starts at once); calling it again later (e.g. every minute) takes over what
/// instances that crashed since have left. With the in-memory journal only this process's own
/// sagas are there (a crash loses them): the journal needs the Redis store to survive one.
/// A store that does not answer makes it log a warning and return what it did.
///
/// ```no_run
/// # async fn run(runtime: orchestrate_runtime::Runtime) {
/// let resumed = orchestrate_runtime::saga::resume(&runtime).await;
/// tracing::info!(compensated = resumed.compensated, held = resumed.held, "sagas resumed");
/// # }
/// ```
pub async fn resume(runtime: &Runtime) -> Resumed {
    let journal = runtime.journal();
    let mut resumed = Resumed::default();
    let ids = match journal.open().await {
        Ok(ids) => ids,
        Err(error) => {
            tracing::warn!(%error, "the saga journal did not answer; no saga resumed");
            return resumed;
        }
    };
    for id in ids {
        match journal.claim(&id).await {
            Ok(true) => {}
            Ok(false) => {
                resumed.held += 1;
                continue;
            }
            Err(error) => {
                tracing::warn!(request_id = %id, %error, "a saga could not be claimed");
                continue;
            }
        }
        let mut record = match journal.get(&id).await {
            Ok(Some(record)) => record,
            Ok(None) => {
                // Expired: nothing left to do.
                let _ = journal.forget(&id).await;
                continue;
            }
            Err(error) => {
                tracing::warn!(request_id = %id, %error, "a saga's record could not be read");
                continue;
            }
        };
        if record.state.ended() {
            // Ended, but its open mark outlived the last write: rewriting it clears the mark.
            let _ = journal.write(&record).await;
            continue;
        }
        tracing::info!(request_id = %id, endpoint = %record.endpoint, previous_owner = %record.owner, "resuming a saga");
        record.owner = journal.owner().to_owned();
        // Dependents committed after what they depend on: the reverse undoes them first.
        let steps: Vec<Step> = record
            .steps
            .iter()
            .rev()
            .filter_map(|step| {
                let c = step.compensation.as_ref().filter(|c| c.state != CompensationState::Done)?;
                let retry = RetryPolicy::new(c.attempts.max(1), Duration::from_millis(c.backoff_ms))
                    .with_max_backoff(Duration::from_millis(c.max_backoff_ms));
                let policy = CallPolicy { timeout: Duration::from_millis(c.timeout_ms.max(1)), retry, retryable: true };
                let method = Method::from_bytes(c.request.method.as_bytes()).unwrap_or(Method::POST);
                let mut headers = HeaderMap::new();
                for (name, value) in &c.request.headers {
                    if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_str(value)) {
                        headers.append(name, value);
                    }
                }
                let body = c.request.body.clone().map(Bytes::from);
                let request = Outgoing::from_parts(method, c.request.path.clone(), headers, body);
                Some(Step { call: step.call.clone(), service: step.service.clone(), policy, request })
            })
            .collect();
        let endpoint = record.endpoint.clone();
        let log = SagaLog::start(journal.clone(), record);
        log.state(SagaState::Compensating);
        log.flush().await;
        let context = RequestContext::default().with_header("x-request-id", &id);
        let ended = run(runtime, &context, &endpoint, steps, Some(&log)).await;
        if ended.iter().all(|(done, _)| *done) {
            log.state(SagaState::Compensated);
            resumed.compensated += 1;
        } else {
            log.state(SagaState::Incomplete);
            resumed.incomplete += 1;
        }
        log.flush().await;
        resumed.request_ids.push(id);
    }
    resumed
}

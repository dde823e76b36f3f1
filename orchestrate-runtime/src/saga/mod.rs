//! Sagas: undoing the committed side effects of a request that failed.
//!
//! A call with `compensate = ..` that succeeded leaves its compensation (a request built from
//! its answer) with the executor; when a later required step fails or the deadline passes, the
//! executor hands the committed compensations to its port in reverse dependency order, and the
//! port runs them here, in a task of their own: one after the other, each with its own timeout
//! and retries (a compensation is always safe to repeat: it has an idempotency key or an
//! idempotent method, which the macro checks), under its own budget — the worst case of its
//! policy from when it starts — so neither the client going away nor the request's deadline cuts
//! them short. What became of each goes into the failure's body (`compensated`,
//! `notCompensated`), the `orchestrate_compensations_total` metric and the log.
//!
//! # The journal, and resuming after a crash
//!
//! Every request of an endpoint with compensations has a record in the runtime's
//! [`journal`](crate::journal) (`log.rs` keeps it while the request runs): each side-effecting
//! step with its idempotency key and outcome, and each committed step's compensation request, written
//! the moment the step commits; then the saga's state (`running`, `finished`, `compensating`,
//! `compensated`, `incomplete`) and each compensation's (`pending`, `running`, `done`,
//! `failed`). `GET /_orchestrate/sagas/{request_id}` shows it (see [`ops`](crate::ops)).
//!
//! An instance that crashes leaves its open sagas in the journal, and its lease on each runs
//! out. [`resume`] (which an application calls at start-up, and may call again later) claims
//! each open saga whose lease expired, and sends its compensations that are not done, from the
//! requests the journal kept: a saga that was compensating, or whose request never finished
//! (a step committed, then the instance died). The lease (`SET NX PX`, renewed by its holder)
//! makes sure two instances never resume one saga; a compensation sent twice (the crash came
//! between its sending and the journal's `done`) carries the same idempotency key both times, so
//! the service applies it once.
//!
//! No crate runs an in-request saga (the workflow engines are whole platforms), so this is ours.

mod log;
mod resume;

pub use resume::{Resumed, resume};

pub(crate) use log::SagaLog;

use crate::Runtime;
use crate::client::Outgoing;
use crate::context::RequestContext;
use crate::journal::{CompensationState, SagaState};
use crate::outcome::Compensation;
use crate::retry::CallPolicy;
use crate::spec::EndpointSpec;
use crate::telemetry;
use orchestrate_core::budget::Cost;
use std::time::Duration;
use tokio::time::Instant;

/// Starts the compensations `steps` (`(node, request)`, in the order to run them) of a failed
/// run of `spec` in a task of their own and returns its handle: dropping the handle leaves them
/// running. `log` is the saga's journal record, if it has one.
pub(crate) fn spawn(
    runtime: Runtime,
    context: RequestContext,
    spec: &'static EndpointSpec,
    steps: Vec<(usize, Outgoing)>,
    log: Option<SagaLog>,
) -> tokio::task::JoinHandle<Vec<Compensation>> {
    tokio::spawn(async move {
        if let Some(log) = &log {
            log.state(SagaState::Compensating);
            // Written before the first compensation goes out: from here a crash is resumable.
            log.flush().await;
        }
        let mut report = Vec::with_capacity(steps.len());
        let mut resolved = Vec::with_capacity(steps.len());
        for (node, request) in steps {
            let (Some(call), Some(name)) = (spec.call(node), spec.nodes.get(node).map(|n| n.name)) else { continue };
            let Some(compensation) = call.compensation else { continue };
            let policy =
                CallPolicy { timeout: compensation.policy.timeout, retry: compensation.policy.retry, retryable: true };
            resolved.push((name, call.service));
            report.push(Step { call: name.to_owned(), service: call.service.to_owned(), policy, request });
        }
        let ended = run(&runtime, &context, spec.name, report, log.as_ref()).await;
        if let Some(log) = &log {
            log.state(if ended.iter().all(|(done, _)| *done) { SagaState::Compensated } else { SagaState::Incomplete });
            log.flush().await;
        }
        resolved
            .into_iter()
            .zip(ended)
            .map(|((name, service), (done, attempts))| Compensation::new(name, service, done, attempts))
            .collect()
    })
}

/// One compensation to send: the call it undoes, its service, its policy and its request.
pub(crate) struct Step {
    call: String,
    service: String,
    policy: CallPolicy,
    request: Outgoing,
}

/// Sends `steps` one after the other; for each, whether it was done and the requests it sent.
async fn run(
    runtime: &Runtime,
    context: &RequestContext,
    endpoint: &str,
    steps: Vec<Step>,
    log: Option<&SagaLog>,
) -> Vec<(bool, u32)> {
    let mut ended = Vec::with_capacity(steps.len());
    for Step { call, service, policy, request } in steps {
        let Some(client) = runtime.service(&service) else {
            tracing::warn!(endpoint, call = %call, service = %service, "a compensation's service is not configured");
            if let Some(log) = log {
                log.compensation_state(&call, CompensationState::Failed, 0);
            }
            ended.push((false, 0));
            continue;
        };
        if let Some(log) = log {
            log.compensation_state(&call, CompensationState::Running, 0);
        }
        let deadline = Instant::now() + budget(&policy);
        let sent = client.send(&policy, context, deadline, request).await;
        let done = sent.result.is_ok();
        let outcome = if done { "compensated" } else { "failed" };
        telemetry::metrics::compensation(endpoint.to_owned(), call.clone(), outcome);
        match &sent.result {
            Ok(_) => tracing::info!(endpoint, call = %call, attempts = sent.attempts, "compensated"),
            Err(error) => tracing::warn!(
                endpoint,
                call = %call,
                attempts = sent.attempts,
                error = %error,
                "compensation failed after its retries"
            ),
        }
        if let Some(log) = log {
            let state = if done { CompensationState::Done } else { CompensationState::Failed };
            log.compensation_state(&call, state, sent.attempts);
        }
        ended.push((done, sent.attempts));
    }
    ended
}

/// A compensation's own budget: every attempt's timeout and every backoff of its policy.
fn budget(policy: &CallPolicy) -> Duration {
    let retry = policy.retry;
    let worst =
        Cost::call("", millis(policy.timeout), retry.attempts, millis(retry.backoff), millis(retry.max_backoff));
    Duration::from_millis(worst.worst_case_ms())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

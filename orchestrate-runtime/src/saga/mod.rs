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
//! No crate runs an in-request saga (the workflow engines are whole platforms), so this is ours.

use crate::Runtime;
use crate::client::Outgoing;
use crate::context::RequestContext;
use crate::outcome::Compensation;
use crate::retry::CallPolicy;
use crate::spec::EndpointSpec;
use crate::telemetry;
use orchestrate_core::budget::Cost;
use std::time::Duration;
use tokio::time::Instant;

/// Starts the compensations `steps` (`(node, request)`, in the order to run them) of a failed
/// run of `spec` in a task of their own and returns its handle: dropping the handle leaves them
/// running.
pub(crate) fn spawn(
    runtime: Runtime,
    context: RequestContext,
    spec: &'static EndpointSpec,
    steps: Vec<(usize, Outgoing)>,
) -> tokio::task::JoinHandle<Vec<Compensation>> {
    tokio::spawn(async move { run(&runtime, &context, spec, steps).await })
}

/// Runs `steps` one after the other.
async fn run(
    runtime: &Runtime,
    context: &RequestContext,
    spec: &'static EndpointSpec,
    steps: Vec<(usize, Outgoing)>,
) -> Vec<Compensation> {
    let mut report = Vec::with_capacity(steps.len());
    for (node, request) in steps {
        let (Some(call), Some(name)) = (spec.call(node), spec.nodes.get(node).map(|n| n.name)) else { continue };
        let Some(compensation) = call.compensation else { continue };
        let Some(client) = runtime.service_at(call.service_index, call.service) else {
            report.push(Compensation::new(name, call.service, false, 0));
            continue;
        };
        let policy =
            CallPolicy { timeout: compensation.policy.timeout, retry: compensation.policy.retry, retryable: true };
        let deadline = Instant::now() + budget(&policy);
        let sent = client.send(&policy, context, deadline, request).await;
        let done = sent.result.is_ok();
        let outcome = if done { "compensated" } else { "failed" };
        telemetry::metrics::compensation(spec.name, name, outcome);
        match &sent.result {
            Ok(_) => tracing::info!(endpoint = spec.name, call = name, attempts = sent.attempts, "compensated"),
            Err(error) => tracing::warn!(
                endpoint = spec.name,
                call = name,
                attempts = sent.attempts,
                error = %error,
                "compensation failed after its retries"
            ),
        }
        report.push(Compensation::new(name, call.service, done, sent.attempts));
    }
    report
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

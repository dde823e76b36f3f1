//! The runtime's implementation of the executor's port ([`Calls`]): each call of a run goes to
//! its service's client with the call's policy, the request's forwarded headers and its trace.
//!
//! This module is the seam between the two halves: the executor (graphs, no HTTP) and the client
//! (HTTP, no graphs) each know only this module's side of the other.

use crate::Runtime;
use crate::breaker::BreakerState;
use crate::client::{CallClient, Outgoing, ServiceClient, decode_json};
use crate::context::RequestContext;
use crate::error::{CallError, CallErrorKind};
use crate::executor::{CallDone, Calls};
use crate::retry::CallPolicy;
use crate::spec::{CallSpec, EndpointSpec};
use crate::timeline::Tally;
use serde::de::DeserializeOwned;
use std::future::Future;
use tokio::time::Instant;

/// The downstream services of one request: the runtime's clients and the inbound context
/// (forwarded headers, trace) every call of the request carries.
#[derive(Debug)]
pub struct Downstream<'rt> {
    runtime: &'rt Runtime,
    context: RequestContext,
}

impl<'rt> Downstream<'rt> {
    /// The services of `runtime` for one request with `context`.
    pub fn new(runtime: &'rt Runtime, context: RequestContext) -> Self {
        Self { runtime, context }
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

impl Calls for Downstream<'_> {
    type Request = Outgoing;
    type Custom<'a>
        = CallClient<'a>
    where
        Self: 'a;

    // Not an `async fn`: its future would capture `T` beyond the `'_` the trait promises.
    #[allow(clippy::manual_async_fn)]
    fn fetch<T: DeserializeOwned + Send>(
        &self,
        spec: &'static EndpointSpec,
        node: usize,
        request: Outgoing,
        started: Option<Instant>,
        deadline: Instant,
    ) -> impl Future<Output = CallDone<T>> + Send + '_ {
        async move {
            let (client, policy) = match call_of(spec, node).and_then(|call| self.resolve(call)) {
                Ok(parts) => parts,
                Err(error) => return CallDone::failed(error, 0, None),
            };
            // Not boxed: the router boxes the whole graph once (see `router::serve`).
            let sent = client.send_from(&policy, &self.context, deadline, started, request).await;
            let value = sent.result.and_then(|response| decode_json(&response));
            CallDone::new(value, sent.attempts, sent.status).ended_at(sent.ended)
        }
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

    fn breaker(&self, call: &CallSpec) -> Option<BreakerState> {
        self.runtime.service_at(call.service_index, call.service).map(ServiceClient::breaker_state)
    }
}

//! The executor's port to the downstream services: what it needs to run one call.

use super::node::CallDone;
use crate::breaker::BreakerState;
use crate::error::CallError;
use crate::outcome::Compensation;
use crate::spec::{CallSpec, EndpointSpec};
use crate::timeline::Tally;
use serde::de::DeserializeOwned;
use std::future::Future;
use tokio::time::Instant;

/// Sends the calls of one endpoint run and decodes their answers.
///
/// The executor drives the graph; an implementation of this trait turns call `node` of `spec`
/// and the request the generated code built into a decoded value or a [`CallError`], with the
/// attempts it took. The runtime implements it over its downstream services (their policies and
/// connections, the request's forwarded headers and trace); tests may implement it over anything.
pub trait Calls: Sync {
    /// A request as the generated code builds it (method, path, body, headers).
    type Request: Send;
    /// What custom logic (`with = ..`) receives to send its own requests.
    type Custom<'a>
    where
        Self: 'a;

    /// Sends `request`, the request of call `node` of `spec`, within `deadline`, and decodes the
    /// answer as `T`. `started` is the executor's reading of the clock when the call started, if
    /// it has one; the result says when the call ended if the port read the clock then.
    fn fetch<T: DeserializeOwned + Send + 'static>(
        &self,
        spec: &'static EndpointSpec,
        node: usize,
        request: Self::Request,
        started: Option<Instant>,
        deadline: Instant,
    ) -> impl Future<Output = CallDone<T>> + Send + '_;

    /// The handle of call `node` of `spec` for custom logic, bound to `deadline`, counting what
    /// it sends in `tally`.
    ///
    /// # Errors
    ///
    /// When the call's service is not known to this port.
    fn custom<'a>(
        &'a self,
        spec: &'static EndpointSpec,
        node: usize,
        deadline: Instant,
        tally: &'a Tally,
    ) -> Result<Self::Custom<'a>, CallError>;

    /// Call `node` of `spec` committed, and `compensation` undoes it: the moment to write it
    /// down where a crash cannot lose it (the runtime's port writes it to the saga journal).
    /// Nothing by default.
    fn committed(&self, spec: &'static EndpointSpec, node: usize, compensation: &Self::Request) {
        let _ = (spec, node, compensation);
    }

    /// The run of `spec` succeeded: its committed calls stay. Nothing by default.
    fn finished(&self, spec: &'static EndpointSpec) {
        let _ = spec;
    }

    /// Sends the compensations of the committed calls of a failed run of `spec`, in the order
    /// given (`(node, request)`: the request the generated code built from the call's answer),
    /// each with its compensation's timeout and retries, and reports how each ended.
    ///
    /// They must finish even when the returned future is dropped (the client went away) and
    /// whatever the request's deadline: an implementation runs them under their own budget, e.g.
    /// in a task of their own.
    fn compensate(
        &self,
        spec: &'static EndpointSpec,
        steps: Vec<(usize, Self::Request)>,
    ) -> impl Future<Output = Vec<Compensation>> + Send + '_;

    /// The state of the circuit breaker of `call`'s service, for the call's span.
    fn breaker(&self, call: &CallSpec) -> Option<BreakerState>;
}

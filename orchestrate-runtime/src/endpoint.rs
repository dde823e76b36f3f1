//! The trait every `#[endpoint]` struct implements: its static description and how to run it.

use crate::Runtime;
use crate::context::RequestContext;
use crate::outcome::{Failure, Outcome};
use crate::spec::EndpointSpec;
use std::future::Future;

/// Implemented by `#[endpoint]` for the annotated struct.
///
/// `execute` runs the graph: every call starts the moment its inputs are ready, all on the
/// caller's task, within the endpoint's timeout. Dropping the future cancels every call in flight.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an orchestrate endpoint",
    label = "needs `#[endpoint(METHOD \"/path\", timeout = \"..\")]`",
    note = "annotate the struct with `#[orchestrate::endpoint(..)]`"
)]
pub trait Endpoint: Sized + Send + 'static {
    /// The inputs of the endpoint, one field per `#[input]` field of the struct.
    type Inputs: Send + 'static;

    /// The static description of the endpoint.
    const SPEC: &'static EndpointSpec;

    /// Runs the endpoint's graph with the given inputs and inbound request context.
    fn execute(
        runtime: &Runtime,
        inputs: Self::Inputs,
        context: RequestContext,
    ) -> impl Future<Output = Result<Outcome<Self>, Failure>> + Send + '_;

    /// Runs the endpoint's graph from code, with an empty request context.
    fn run(
        runtime: &Runtime,
        inputs: Self::Inputs,
    ) -> impl Future<Output = Result<Outcome<Self>, Failure>> + Send + '_ {
        Self::execute(runtime, inputs, RequestContext::default())
    }
}

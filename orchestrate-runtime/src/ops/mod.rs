//! Operations endpoints every application mounts beside its own: `/metrics` (Prometheus),
//! `/health` (per-service state), `/_orchestrate` (the living documentation of every endpoint).

pub mod spec;

use crate::Runtime;
use crate::endpoint::EndpointSpec;

/// A router serving the operations endpoints for `runtime` and the given endpoints (usually the
/// `ENDPOINTS` of each `#[api]` module). Merge it into the main router, or serve it on a separate
/// admin listener.
pub fn router(runtime: &Runtime, endpoints: &[&'static EndpointSpec]) -> axum::Router {
    axum::Router::new().merge(spec::routes(runtime, endpoints))
}

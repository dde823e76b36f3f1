//! The living documentation of the endpoints, served at `/_orchestrate` (HTML) and
//! `/_orchestrate.json`.

use crate::Runtime;
use crate::endpoint::EndpointSpec;

/// Routes of the living documentation.
pub fn routes(_runtime: &Runtime, _endpoints: &[&'static EndpointSpec]) -> axum::Router {
    axum::Router::new()
}

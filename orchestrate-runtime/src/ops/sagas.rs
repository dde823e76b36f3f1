//! `GET /_orchestrate/sagas/{request_id}`: a saga's record in the journal, as JSON.
//!
//! The record of the request with that `x-request-id` (see [`journal`](crate::journal)): its
//! state, each side-effecting step with its idempotency key and outcome, and each committed
//! step's compensation (the request, its policy, its state). 404 `SAGA_NOT_FOUND` when the journal
//! has none (not an endpoint with compensations, no side effect yet, or kept past `[saga] keep`),
//! 503 `JOURNAL_UNAVAILABLE` with `Retry-After` when the shared store does not answer.

use crate::Runtime;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;

/// The route, for `runtime`.
///
/// ```
/// # let runtime = orchestrate_runtime::Runtime::builder(&[]).read_env(false).build().unwrap();
/// let app: axum::Router = orchestrate_runtime::ops::sagas::routes(&runtime);
/// # let _ = app;
/// ```
pub fn routes(runtime: &Runtime) -> axum::Router {
    axum::Router::new().route("/_orchestrate/sagas/{request_id}", get(show)).with_state(runtime.clone())
}

async fn show(State(runtime): State<Runtime>, Path(request_id): Path<String>) -> Response {
    match runtime.journal().get(&request_id).await {
        Ok(Some(record)) => Json(record).into_response(),
        Ok(None) => {
            let message = format!("the saga journal has no record of request `{request_id}`");
            let body = serde_json::json!({ "error": { "code": "SAGA_NOT_FOUND", "message": message } });
            (StatusCode::NOT_FOUND, Json(body)).into_response()
        }
        Err(error) => {
            let message = format!("the saga journal could not be reached ({error}); ask again");
            let body = serde_json::json!({ "error": { "code": "JOURNAL_UNAVAILABLE", "message": message } });
            let retry = [(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"))];
            (StatusCode::SERVICE_UNAVAILABLE, retry, Json(body)).into_response()
        }
    }
}

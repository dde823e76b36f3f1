//! `POST /_orchestrate/cache/invalidate`: drops cached answers by tag or by key, so that an event
//! elsewhere (a "user updated" webhook, a catalog publish) reaches every cache at once.
//!
//! Body: `{"tags": ["user:u1"]}` and/or `{"keys": ["catalog:all"]}` (a key is `<scope>:<key>`:
//! the service of a call with `cache(key = ..)`, or the endpoint of an endpoint with one, and the
//! key it gave). Answer: `{"dropped": n}`. A body that is not that is a 400 naming what is wrong;
//! a shared store that cannot be reached a 503 `CACHE_UNAVAILABLE` with `Retry-After`, so that
//! the sender (a webhook) asks again.

use crate::Runtime;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::StatusCode;
use serde::Deserialize;

/// What to drop.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Invalidate {
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    keys: Vec<String>,
}

/// The route, for `runtime`.
///
/// ```
/// # let runtime = orchestrate_runtime::Runtime::builder(&[]).read_env(false).build().unwrap();
/// let app: axum::Router = orchestrate_runtime::ops::cache::routes(&runtime);
/// # let _ = app;
/// ```
pub fn routes(runtime: &Runtime) -> axum::Router {
    axum::Router::new().route("/_orchestrate/cache/invalidate", post(invalidate)).with_state(runtime.clone())
}

async fn invalidate(State(runtime): State<Runtime>, body: Result<Json<Invalidate>, JsonRejection>) -> Response {
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => {
            let body = serde_json::json!({ "error": { "code": "INVALID_INPUT", "message": rejection.body_text() } });
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    let cache = runtime.cache();
    let dropped = match (cache.invalidate_tags(&request.tags).await, cache.invalidate_keys(&request.keys).await) {
        (Ok(tags), Ok(keys)) => tags + keys,
        (Err(error), _) | (_, Err(error)) => {
            tracing::warn!(tags = ?request.tags, keys = ?request.keys, %error, "cache invalidation failed");
            let message =
                format!("the shared cache could not be reached ({error}); nothing is known to be dropped, ask again");
            let body = serde_json::json!({ "error": { "code": "CACHE_UNAVAILABLE", "message": message } });
            let retry = [(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"))];
            return (StatusCode::SERVICE_UNAVAILABLE, retry, Json(body)).into_response();
        }
    };
    tracing::info!(tags = ?request.tags, keys = ?request.keys, dropped, "cache invalidated");
    Json(serde_json::json!({ "dropped": dropped })).into_response()
}

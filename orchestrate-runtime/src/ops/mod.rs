//! Operations endpoints every application mounts beside its own: `/metrics` (Prometheus),
//! `/health` (per-service state), `/_orchestrate` (the living documentation of every endpoint,
//! with its recent requests), `/_orchestrate/requests.json` (those requests for tools) and
//! `POST /_orchestrate/cache/invalidate` (dropping cached answers by tag or key),
//! `/_orchestrate/alerts.yml` (Prometheus rules from the endpoints' SLOs) and
//! `GET /_orchestrate/sagas/{request_id}` (a saga's record in the journal).

pub mod alerts;
pub mod cache;
pub mod health;
pub mod metrics;
pub mod requests;
pub mod sagas;
pub mod spec;

pub use alerts::alert_rules;

use crate::Runtime;
use crate::spec::EndpointSpec;

/// A router serving the operations endpoints for `runtime` and the given endpoints (usually the
/// `ENDPOINTS` of each `#[api]` module). Merge it into the main router, or serve it on a separate
/// admin listener.
///
/// `/metrics` answers once [`metrics::install`] was called (404 before); `/health` is described
/// in [`health`].
///
/// On the main listener, beside the endpoints:
///
/// ```
/// # orchestrate_runtime::ops::metrics::install().unwrap();
/// # let runtime = orchestrate_runtime::Runtime::builder(&[]).read_env(false).build().unwrap();
/// # let endpoints = axum::Router::new();
/// let app = endpoints.merge(orchestrate_runtime::ops::router(&runtime, &[]));
/// # let _: axum::Router = app;
/// ```
///
/// Or on a separate admin listener, so the operations endpoints are not reachable from outside:
///
/// ```no_run
/// # async fn run(runtime: orchestrate_runtime::Runtime) -> std::io::Result<()> {
/// let admin = tokio::net::TcpListener::bind("127.0.0.1:9090").await?;
/// tokio::spawn(axum::serve(admin, orchestrate_runtime::ops::router(&runtime, &[])).into_future());
/// # Ok(()) }
/// ```
///
/// With an operations token configured (`[ops] token = ".."`, [`RuntimeBuilder::ops_token`]),
/// every route of this router requires `Authorization: Bearer <token>` (401 otherwise, with the
/// design's error body); the routes merged beside it are not affected.
///
/// [`RuntimeBuilder::ops_token`]: crate::RuntimeBuilder::ops_token
pub fn router(runtime: &Runtime, endpoints: &[&'static EndpointSpec]) -> axum::Router {
    let router = axum::Router::new()
        .merge(spec::routes(runtime, endpoints))
        .merge(requests::routes(runtime, endpoints))
        .merge(metrics::routes(runtime))
        .merge(health::routes(runtime, endpoints))
        .merge(cache::routes(runtime))
        .merge(sagas::routes(runtime))
        .merge(alerts::routes(endpoints));
    match runtime.ops_token() {
        Some(token) => {
            let token: std::sync::Arc<str> = token.into();
            router.route_layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    let token = token.clone();
                    async move { if presents(request.headers(), &token) { next.run(request).await } else { refused() } }
                },
            ))
        }
        None => router,
    }
}

/// Whether `headers` carry `Authorization: Bearer <token>`, compared in time independent of
/// where the first difference is (the token is a shared secret).
fn presents(headers: &http::HeaderMap, token: &str) -> bool {
    let Some(value) = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some((scheme, given)) = value.split_once(' ') else { return false };
    let given = given.trim().as_bytes();
    let token = token.as_bytes();
    let differs = given.len() ^ token.len();
    let bytes = given.iter().zip(token).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    scheme.eq_ignore_ascii_case("bearer") && differs == 0 && bytes == 0
}

fn refused() -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = serde_json::json!({ "error": {
        "code": "UNAUTHORIZED",
        "message": "the operations endpoints require `Authorization: Bearer <ops token>`",
    } });
    let mut response =
        (http::StatusCode::UNAUTHORIZED, [(http::header::CONTENT_TYPE, "application/json")], body.to_string())
            .into_response();
    response.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
    response
}

/// HTML-escapes `text` (element content and quoted attribute values): every string of the
/// operations pages that comes from a spec, the configuration or a request goes through it.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

//! The living documentation of the endpoints: `/_orchestrate` (a self-contained HTML page) and
//! `/_orchestrate.json` (the same facts for tools).
//!
//! For every endpoint: method, route, timeout, inputs, the design template's call sequence table
//! (the one `#[endpoint]` appends to the struct's rustdoc, rendered by the same code in
//! [`orchestrate_core::sequence`], with the retries resolved against the running configuration),
//! the computed fields, and the dependency graph drawn as inline SVG (columns by dependency
//! depth, an arrow from each node to those that use it). Then every service with its effective
//! policies and the host it calls (never the full URL: no credentials, no internal paths).
//!
//! Each endpoint's section ends with its recent requests ([`ops::requests`](crate::ops::requests):
//! a waterfall per kept request, filtered by `?show=slow|failed|partial`).
//!
//! The page loads nothing: no scripts, no fonts, no stylesheets from elsewhere (it is served with
//! a `Content-Security-Policy` that forbids them), so it works on an isolated network. Every string
//! taken from a spec, the configuration or a request is HTML-escaped. The JSON document and
//! everything on the page but the recent requests are rendered once, when the router is built (the
//! specs and the configuration do not change while it runs); each request for the page renders
//! only the recent requests and splices them in.
//!
//! ```
//! use orchestrate_runtime::ops::spec;
//! # use orchestrate_runtime::{Runtime, ServiceSpec};
//! # const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://cart.internal:8080")];
//! let runtime = Runtime::builder(SERVICES).read_env(false).build().unwrap();
//! let app: axum::Router = axum::Router::new().merge(spec::routes(&runtime, &[]));
//! # let _ = app;
//! ```

// `json.rs` the JSON document, `page.rs` the HTML page (its stylesheet in `style.css`), `graph.rs`
// the SVG layout of one endpoint's graph. This file: the routes and what all three share (the
// spec's nodes as the renderer takes them, durations in milliseconds, HTML escaping).
mod graph;
mod json;
mod page;

pub use graph::svg;
pub use json::json;
pub use page::html;

use crate::Runtime;
use crate::ops::requests;
use crate::spec::{CallSpec, CallTarget, EndpointSpec, NodeKind};
use axum::extract::RawQuery;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header;
use orchestrate_core::sequence::{self, Call, Kind, Node, Retries, Target};
use std::sync::Arc;

// The page and the graph escape with the operations views' shared escaping.
use super::esc;

/// Routes of the living documentation: `GET /_orchestrate` (HTML, `?show=slow|failed|partial`
/// filters the recent requests), `GET /_orchestrate.json` and `GET /_orchestrate/canaries.json`
/// (each canary version's weight now and whether it was rolled back, [`canary`](crate::canary)).
///
/// ```
/// # use orchestrate_runtime::{Runtime, ServiceSpec};
/// # const SERVICES: &[ServiceSpec] = &[];
/// let runtime = Runtime::builder(SERVICES).read_env(false).build().unwrap();
/// let docs: axum::Router = orchestrate_runtime::ops::spec::routes(&runtime, &[]);
/// # let _ = docs;
/// ```
pub fn routes(runtime: &Runtime, endpoints: &[&'static EndpointSpec]) -> axum::Router {
    let page = Arc::new(page::Page::new(runtime, endpoints));
    let document: Arc<str> = json(runtime, endpoints).into();
    let canaries = runtime.clone();
    let runtime = runtime.clone();
    axum::Router::new()
        .route(
            "/_orchestrate",
            get(move |RawQuery(query): RawQuery| {
                let body = page.render(&runtime, requests::shown(query.as_deref()));
                async move { respond("text/html; charset=utf-8", body, true) }
            }),
        )
        .route(
            "/_orchestrate/canaries.json",
            get(move || {
                let body = serde_json::to_string(&canaries.canaries().report()).unwrap_or_default();
                async move { respond("application/json", body, true) }
            }),
        )
        .route(
            "/_orchestrate.json",
            get(move || {
                let document = Arc::clone(&document);
                async move { respond("application/json", document.to_string(), false) }
            }),
        )
}

fn respond(content_type: &'static str, body: String, live: bool) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type),
            // Nothing to load from anywhere: inline styles and SVG only.
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; img-src data:"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response();
    if live {
        // The recent requests change with every request served.
        response.headers_mut().insert(header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    }
    response
}

/// The documentation `#[endpoint]` appended to the endpoint's rustdoc, rebuilt from its spec: the
/// "Call sequence" section (Markdown table) and the "Dependency graph" section (Mermaid).
///
/// Retries read "service policy" as in the rustdoc; [`html`] and [`json`] resolve them against the
/// running configuration.
///
/// ```
/// use orchestrate_runtime::{CallSpec, CallTarget, EndpointSpec, Method, NodeKind, NodeSpec};
/// use std::time::Duration;
/// const USER: CallSpec =
///     CallSpec::new("users", 0, CallTarget::Http { method: Method::Get, path: "/users/{id}" }, Duration::from_millis(200))
///         .with_required(true);
/// static PROFILE: EndpointSpec = EndpointSpec::new(
///     "Profile", Method::Get, "/profile/{id}", Duration::from_millis(500), &[],
///     &[NodeSpec::new("user", "User", &[], &["id"], NodeKind::Call(USER))],
/// );
/// let doc = orchestrate_runtime::ops::spec::markdown(&PROFILE);
/// assert!(doc.contains("| 1 | Users: `GET /users/{id}` | Yes | 200ms | service policy | Fail request |"));
/// assert!(doc.contains("```mermaid\nflowchart LR\nn0[\"user<br/>users: GET /users/{id}\"]\n```"));
/// ```
pub fn markdown(spec: &EndpointSpec) -> String {
    sequence::endpoint_doc_cached(millis(spec.timeout), spec.cache, &nodes(spec, None))
}

/// The call sequence table alone (Markdown), as in [`markdown`].
///
/// ```
/// # use orchestrate_runtime::{EndpointSpec, Method};
/// # use std::time::Duration;
/// static EMPTY: EndpointSpec = EndpointSpec::new("Empty", Method::Get, "/", Duration::from_millis(1), &[], &[]);
/// assert_eq!(orchestrate_runtime::ops::spec::call_table(&EMPTY).lines().count(), 2);
/// ```
pub fn call_table(spec: &EndpointSpec) -> String {
    sequence::call_table(&nodes(spec, None))
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The spec's nodes as the documentation renderer takes them; with a runtime, service retry
/// policies are resolved.
fn nodes<'a>(spec: &'a EndpointSpec, runtime: Option<&Runtime>) -> Vec<Node<'a>> {
    spec.nodes
        .iter()
        .map(|node| Node {
            name: node.name,
            deps: node.deps,
            kind: match &node.kind {
                NodeKind::Call(call) => Kind::Call(Call {
                    service: call.service,
                    target: match call.target {
                        CallTarget::Http { method, path } => Target::Http { method: method.as_str(), path },
                        CallTarget::With { expr } => Target::With(expr),
                    },
                    required: call.required,
                    timeout_ms: millis(call.timeout),
                    retries: retries(call, runtime),
                    fallback: call.fallback,
                    when: call.when,
                    for_each: call.for_each,
                    cache: call.cache,
                    side_effect: side_effect(call),
                    compensation: call.compensation.map(|c| (c.method.as_str(), c.path)),
                    hedge: call.hedge,
                }),
                NodeKind::Compute { expr } => Kind::Compute(expr),
            },
        })
        .collect()
}

/// Whether the call changes something downstream: a request other than GET not marked
/// `idempotent` (read off the spec: retryable without being idempotent by method or keyed).
fn side_effect(call: &CallSpec) -> bool {
    call.has_side_effect()
}

fn retries(call: &CallSpec, runtime: Option<&Runtime>) -> Retries {
    match (call.retry, call.retryable) {
        (Some(own), _) => Retries::Call { attempts: own.attempts, backoff_ms: millis(own.backoff) },
        (None, false) => Retries::NotIdempotent,
        (None, true) => match runtime.and_then(|r| r.service(call.service)) {
            Some(client) => {
                let policy = client.spec().retry;
                Retries::ServiceResolved { attempts: policy.attempts, backoff_ms: millis(policy.backoff) }
            }
            None => Retries::Service,
        },
    }
}

/// The hostile spec the page and graph tests share: every string a spec can carry is markup.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::ServiceSpec;
    use crate::spec::{InputSource, InputSpec, Method, NodeSpec};
    use std::time::Duration;

    pub(super) const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("a<b>", "http://user:pw@a.internal:8080/x")];
    const N: CallSpec = CallSpec::new(
        "a<b>",
        0,
        CallTarget::Http { method: Method::Get, path: "/<img src=x onerror=alert(1)>" },
        Duration::from_millis(10),
    )
    .with_fallback("\"</code><b>\"")
    .with_when("a < b && c > d");
    pub(super) static HOSTILE: EndpointSpec = EndpointSpec::new(
        "X<script>",
        Method::Get,
        "/x/{id}\"><script>alert(1)</script>",
        Duration::from_millis(100),
        &[InputSpec::new("id", InputSource::Path("id\"'"), "Vec<u8>")],
        &[
            NodeSpec::new("n", "Option<T>", &[], &[], NodeKind::Call(N)),
            NodeSpec::new("m", "u8", &[0, 9], &[], NodeKind::Compute { expr: "x & y" }),
        ],
    );
}

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
//! The page loads nothing: no scripts, no fonts, no stylesheets from elsewhere (it is served with
//! a `Content-Security-Policy` that forbids them), so it works on an isolated network. Every string
//! taken from a spec or the configuration is HTML-escaped. Both documents are rendered once, when
//! the router is built; the specs and the configuration do not change while it runs.
//!
//! ```
//! use orchestrate_runtime::ops::spec;
//! # use orchestrate_runtime::{Runtime, ServiceSpec};
//! # const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://cart.internal:8080")];
//! let runtime = Runtime::builder(SERVICES).read_env(false).build().unwrap();
//! let app: axum::Router = axum::Router::new().merge(spec::routes(&runtime, &[]));
//! # let _ = app;
//! ```

use crate::Runtime;
use crate::endpoint::{CallSpec, CallTarget, EndpointSpec, InputSource, NodeKind};
use crate::service::{BreakerPolicy, RetryBudget, RetryPolicy, host_of};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header;
use orchestrate_core::duration::format_duration;
use orchestrate_core::sequence::{self, Call, Fallback, Kind, Node, Retries, Row, Target};
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::Arc;

/// Routes of the living documentation: `GET /_orchestrate` (HTML) and `GET /_orchestrate.json`.
///
/// ```
/// # use orchestrate_runtime::{Runtime, ServiceSpec};
/// # const SERVICES: &[ServiceSpec] = &[];
/// let runtime = Runtime::builder(SERVICES).read_env(false).build().unwrap();
/// let docs: axum::Router = orchestrate_runtime::ops::spec::routes(&runtime, &[]);
/// # let _ = docs;
/// ```
pub fn routes(runtime: &Runtime, endpoints: &[&'static EndpointSpec]) -> axum::Router {
    let page: Arc<str> = html(runtime, endpoints).into();
    let document: Arc<str> = json(runtime, endpoints).into();
    axum::Router::new()
        .route(
            "/_orchestrate",
            get(move || {
                let page = Arc::clone(&page);
                async move { respond("text/html; charset=utf-8", &page) }
            }),
        )
        .route(
            "/_orchestrate.json",
            get(move || {
                let document = Arc::clone(&document);
                async move { respond("application/json", &document) }
            }),
        )
}

fn respond(content_type: &'static str, body: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Nothing to load from anywhere: inline styles and SVG only.
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; img-src data:"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body.to_owned(),
    )
        .into_response()
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
/// static PROFILE: EndpointSpec = EndpointSpec {
///     name: "Profile", method: Method::Get, route: "/profile/{id}", timeout: Duration::from_millis(500), inputs: &[],
///     nodes: &[NodeSpec { name: "user", ty: "User", deps: &[], inputs: &["id"], kind: NodeKind::Call(CallSpec {
///         service: "users", service_index: 0, target: CallTarget::Http { method: Method::Get, path: "/users/{id}" },
///         timeout: Duration::from_millis(200), required: true, retryable: true, idempotency_key: false,
///         retry: None, fallback: None, when: None, for_each: None,
///     }) }],
/// };
/// let doc = orchestrate_runtime::ops::spec::markdown(&PROFILE);
/// assert!(doc.contains("| 1 | Users: `GET /users/{id}` | Yes | 200ms | service policy | Fail request |"));
/// assert!(doc.contains("```mermaid\nflowchart LR\nn0[\"user<br/>users: GET /users/{id}\"]\n```"));
/// ```
pub fn markdown(spec: &EndpointSpec) -> String {
    sequence::endpoint_doc(millis(spec.timeout), &nodes(spec, None))
}

/// The call sequence table alone (Markdown), as in [`markdown`].
///
/// ```
/// # use orchestrate_runtime::{EndpointSpec, Method};
/// # use std::time::Duration;
/// static EMPTY: EndpointSpec = EndpointSpec {
///     name: "Empty", method: Method::Get, route: "/", timeout: Duration::from_millis(1), inputs: &[], nodes: &[],
/// };
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
                }),
                NodeKind::Compute { expr } => Kind::Compute(expr),
            },
        })
        .collect()
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

// ---------------------------------------------------------------------------------------------
// JSON

#[derive(Serialize)]
struct Document<'a> {
    endpoints: Vec<EndpointView<'a>>,
    services: Vec<ServiceView<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EndpointView<'a> {
    #[serde(flatten)]
    spec: &'a EndpointSpec,
    call_sequence: Vec<RowView>,
    mermaid: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RowView {
    order: String,
    stage: usize,
    parallel: bool,
    field: String,
    service: String,
    request: String,
    when: Option<String>,
    required: bool,
    timeout_ms: u64,
    retries: String,
    /// `failRequest`, `null` or `fallback`.
    on_failure: &'static str,
    fallback: Option<String>,
}

impl From<Row> for RowView {
    fn from(row: Row) -> Self {
        let order = row.order();
        let (on_failure, fallback) = match row.fallback {
            Fallback::FailRequest => ("failRequest", None),
            Fallback::Null => ("null", None),
            Fallback::Value(expr) => ("fallback", Some(expr)),
        };
        let mut request = row.request;
        if let Some((collection, concurrency)) = row.for_each {
            let _ = write!(request, " for each item of {collection} ({concurrency} at a time)");
        }
        Self {
            order,
            stage: row.stage,
            parallel: row.parallel,
            field: row.field,
            service: row.service,
            request,
            when: row.when,
            required: row.required,
            timeout_ms: row.timeout_ms,
            retries: row.retries,
            on_failure,
            fallback,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceView<'a> {
    name: &'a str,
    /// Host and port of the effective base URL.
    host: &'a str,
    retry: RetryPolicy,
    breaker: Option<BreakerPolicy>,
    max_in_flight: Option<u32>,
    max_body_bytes: u64,
    retry_budget: RetryBudget,
    http2: bool,
    forwarded_headers: Vec<&'a str>,
}

fn services(runtime: &Runtime) -> Vec<ServiceView<'_>> {
    runtime
        .services()
        .iter()
        .map(|client| {
            let spec = client.spec();
            ServiceView {
                name: client.name(),
                host: host_of(client.base_url()),
                retry: spec.retry,
                breaker: spec.breaker,
                max_in_flight: spec.max_in_flight,
                max_body_bytes: spec.max_body,
                retry_budget: spec.retry_budget,
                http2: spec.http2,
                forwarded_headers: client.forwarded_headers().iter().map(http::HeaderName::as_str).collect(),
            }
        })
        .collect()
}

/// The body of `/_orchestrate.json`: `{"endpoints":[..],"services":[..]}`.
///
/// Each endpoint is its [`EndpointSpec`] (see its JSON form) plus `callSequence` (the table's
/// rows, retries resolved) and `mermaid` (the graph); each service has its effective policies and
/// `host`.
///
/// ```
/// # use orchestrate_runtime::{Runtime, ServiceSpec};
/// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://cart.internal:8080/v1")];
/// let runtime = Runtime::builder(SERVICES).read_env(false).build().unwrap();
/// let json: serde_json::Value = serde_json::from_str(&orchestrate_runtime::ops::spec::json(&runtime, &[])).unwrap();
/// assert_eq!(json["services"][0]["host"], "cart.internal:8080");
/// assert_eq!(json["services"][0]["retry"]["attempts"], 1);
/// ```
pub fn json(runtime: &Runtime, endpoints: &[&'static EndpointSpec]) -> String {
    let document = Document {
        endpoints: endpoints
            .iter()
            .map(|&spec| {
                let nodes = nodes(spec, Some(runtime));
                EndpointView {
                    spec,
                    call_sequence: sequence::rows(&nodes).into_iter().map(RowView::from).collect(),
                    mermaid: sequence::mermaid(&nodes),
                }
            })
            .collect(),
        services: services(runtime),
    };
    // Plain data with string keys: serializing cannot fail.
    serde_json::to_string_pretty(&document).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// HTML

/// HTML-escapes `text` (element content and quoted attribute values).
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

/// A fragment id for an endpoint: its name, keeping only characters safe in a URL fragment.
fn anchor(spec: &EndpointSpec) -> String {
    let name: String = spec.name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    format!("endpoint-{name}")
}

const STYLE: &str = "\
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2330;margin:0;background:#fafbfc}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:21px;margin:0 0 6px}h3{font-size:15px;margin:18px 0 6px;color:#4a5365}
code,.mono{font-family:ui-monospace,'SFMono-Regular',Menlo,Consolas,monospace;font-size:13px}
section{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:18px 22px;margin:18px 0}
table{border-collapse:collapse;width:100%;font-size:14px}th,td{text-align:left;padding:5px 9px;border-bottom:1px solid #e6e9ef;vertical-align:top}
th{background:#f3f5f8;font-weight:600}.method{font-weight:700;color:#fff;background:#3b6fd8;border-radius:4px;padding:1px 7px;font-size:14px;margin-right:6px}
.muted{color:#667085}.graph{overflow-x:auto;margin-top:6px}nav a{margin-right:14px}
.nw,.nw code{white-space:nowrap}
.legend span{display:inline-block;width:22px;height:11px;margin:0 5px 0 14px;vertical-align:-1px;border:1.5px solid}
";

/// The page of `/_orchestrate`.
///
/// ```
/// # use orchestrate_runtime::{Runtime, ServiceSpec};
/// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://cart.internal:8080")];
/// let runtime = Runtime::builder(SERVICES).read_env(false).build().unwrap();
/// let page = orchestrate_runtime::ops::spec::html(&runtime, &[]);
/// assert!(page.starts_with("<!doctype html>") && page.contains("<td><code>cart.internal:8080</code></td>"));
/// ```
pub fn html(runtime: &Runtime, endpoints: &[&'static EndpointSpec]) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Endpoints · orchestrate</title><style>{STYLE}</style></head>\n<body><main>\n\
         <h1>Endpoints</h1><p class=\"muted\">{} endpoint{}, {} downstream service{}. Generated from the endpoints' \
         specs and the running configuration; also as <a href=\"_orchestrate.json\">JSON</a>.</p>\n<nav>",
        endpoints.len(),
        if endpoints.len() == 1 { "" } else { "s" },
        runtime.services().len(),
        if runtime.services().len() == 1 { "" } else { "s" },
    );
    for spec in endpoints {
        let _ =
            write!(out, "<a href=\"#{}\"><code>{} {}</code></a>", anchor(spec), spec.method.as_str(), esc(spec.route));
    }
    out.push_str("<a href=\"#services\">Services</a></nav>\n");
    for (index, spec) in endpoints.iter().enumerate() {
        endpoint_section(&mut out, runtime, spec, index);
    }
    services_section(&mut out, runtime);
    out.push_str("</main></body></html>\n");
    out
}

fn endpoint_section(out: &mut String, runtime: &Runtime, spec: &EndpointSpec, index: usize) {
    let nodes = nodes(spec, Some(runtime));
    let calls = nodes.iter().filter(|n| matches!(n.kind, Kind::Call(_))).count();
    let _ = writeln!(
        out,
        "<section id=\"{}\"><h2><span class=\"method\">{}</span><code>{}</code> <span class=\"muted\">{}</span></h2>\
         <p class=\"muted\">Total timeout {}ms · {calls} call{} · {} computed field{}</p>",
        anchor(spec),
        spec.method.as_str(),
        esc(spec.route),
        esc(spec.name),
        millis(spec.timeout),
        if calls == 1 { "" } else { "s" },
        nodes.len() - calls,
        if nodes.len() - calls == 1 { "" } else { "s" },
    );
    if !spec.inputs.is_empty() {
        out.push_str("<h3>Inputs</h3><table><tr><th>Field</th><th>From</th><th>Type</th></tr>");
        for input in spec.inputs {
            let from = match input.source {
                InputSource::Body => "JSON body".to_owned(),
                InputSource::Path(name) => format!("route parameter <code>{{{}}}</code>", esc(name)),
                InputSource::Query => "query string".to_owned(),
                InputSource::QueryParam(name) => format!("query parameter <code>{}</code>", esc(name)),
                InputSource::Header(name) => format!("header <code>{}</code>", esc(name)),
            };
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{from}</td><td><code>{}</code></td></tr>",
                esc(input.name),
                esc(input.ty)
            );
        }
        out.push_str("</table>\n");
    }
    let rows = sequence::rows(&nodes);
    if !rows.is_empty() {
        out.push_str(
            "<h3>Call sequence</h3><table><tr><th>Order</th><th>Field</th><th>Service call</th><th>Required?</th>\
             <th>Timeout</th><th>Retries</th><th>Fallback</th></tr>",
        );
        for row in &rows {
            call_row(out, row);
        }
        out.push_str(
            "</table><p class=\"muted\">Order counts the calls on a call's longest dependency chain; a call starts as \
             soon as the calls it uses have answered.</p>\n",
        );
    }
    let _ = write!(out, "<h3>Dependency graph</h3><div class=\"graph\">{}</div>", svg(spec, index));
    out.push_str(
        "<p class=\"legend muted\">Arrows point from a node to the nodes that use it.\
         <span style=\"background:#eef4ff;border-color:#3b6fd8\"></span>required call\
         <span style=\"background:#fff8e6;border-color:#c98a00;border-style:dashed\"></span>optional call\
         <span style=\"background:#f1f2f4;border-color:#8a8f99;border-radius:6px\"></span>computed field</p>\n",
    );
    let computed: Vec<_> = spec
        .nodes
        .iter()
        .filter_map(|n| if let NodeKind::Compute { expr } = n.kind { Some((n, expr)) } else { None })
        .collect();
    if !computed.is_empty() {
        out.push_str("<h3>Computed fields</h3><table><tr><th>Field</th><th>Type</th><th>Value</th></tr>");
        for (node, expr) in computed {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                esc(node.name),
                esc(node.ty),
                esc(expr)
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
}

fn call_row(out: &mut String, row: &Row) {
    let mut call = format!("{}: <code>{}</code>", esc(&row.service_title()), esc(&row.request));
    if let Some((collection, concurrency)) = &row.for_each {
        let _ = write!(call, ", for each item of <code>{}</code> ({concurrency} at a time)", esc(collection));
    }
    if let Some(when) = &row.when {
        let _ = write!(call, ", only when <code>{}</code>", esc(when));
    }
    let fallback = match &row.fallback {
        Fallback::FailRequest => "Fail request".to_owned(),
        Fallback::Null => "<code>null</code>".to_owned(),
        Fallback::Value(expr) => format!("<code>{}</code>", esc(expr)),
    };
    let _ = write!(
        out,
        "<tr><td class=\"nw\">{}</td><td><code>{}</code></td><td>{call}</td><td>{}</td><td class=\"nw\">{}ms</td>\
         <td>{}</td><td class=\"nw\">{fallback}</td></tr>",
        esc(&row.order()),
        esc(&row.field),
        if row.required { "Yes" } else { "No" },
        row.timeout_ms,
        esc(&row.retries),
    );
}

fn services_section(out: &mut String, runtime: &Runtime) {
    out.push_str(
        "<section id=\"services\"><h2>Services</h2><p class=\"muted\">Effective policies after start-up \
         configuration.</p><table><tr><th>Service</th><th>Host</th><th>Retries</th><th>Circuit breaker</th>\
         <th>Bulkhead</th><th>Body cap</th><th>Retry budget</th><th>Protocol</th><th>Forwarded headers</th></tr>",
    );
    for service in services(runtime) {
        let retry = if service.retry.attempts <= 1 {
            "none".to_owned()
        } else {
            format!(
                "{} attempts, backoff {} up to {}",
                service.retry.attempts,
                format_duration(service.retry.backoff),
                format_duration(service.retry.max_backoff)
            )
        };
        let breaker = service.breaker.map_or_else(
            || "none".to_owned(),
            |b| {
                format!(
                    "opens after {} failures within {}; open {}; {} probe{}",
                    b.failures,
                    format_duration(b.within),
                    format_duration(b.open_for),
                    b.probes,
                    if b.probes == 1 { "" } else { "s" }
                )
            },
        );
        let bulkhead = service.max_in_flight.map_or_else(|| "none".to_owned(), |n| format!("{n} in flight"));
        let budget = format!(
            "{}% over {}, at least {}",
            service.retry_budget.percent,
            format_duration(service.retry_budget.within),
            service.retry_budget.min_retries
        );
        let protocol = if service.http2 { "HTTP/2 only" } else { "HTTP/1.1, or h2 by ALPN" };
        let headers: Vec<String> =
            service.forwarded_headers.iter().map(|h| format!("<code class=\"nw\">{}</code>", esc(h))).collect();
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{protocol}</td><td>{}</td></tr>",
            esc(service.name),
            esc(service.host),
            esc(&retry),
            esc(&breaker),
            esc(&bulkhead),
            esc(&bytes(service.max_body_bytes)),
            esc(&budget),
            headers.join(" "),
        );
    }
    out.push_str("</table></section>\n");
}

fn bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    UNITS
        .iter()
        .find(|(size, _)| n >= *size && n.is_multiple_of(*size))
        .map_or_else(|| format!("{n} B"), |(size, unit)| format!("{} {unit}", n / size))
}

// ---------------------------------------------------------------------------------------------
// SVG

const NODE_HEIGHT: f64 = 58.0;
/// Vertical room of one lane for an edge that skips a column.
const LANE_GAP: f64 = 16.0;
const COLUMN_GAP: f64 = 56.0;
const ROW_GAP: f64 = 22.0;
const PAD: f64 = 10.0;
/// Advance of one character of the 13px bold monospace field name and the 11px monospace lines.
const NAME_CHAR: f64 = 7.9;
const DETAIL_CHAR: f64 = 6.7;
const MAX_WIDTH: f64 = 380.0;

/// The three lines of a node's box: field, service (or "computed"), request (or value).
fn labels(node: &Node<'_>) -> [String; 3] {
    match &node.kind {
        Kind::Call(call) => [
            node.name.to_owned(),
            if call.required { call.service.to_owned() } else { format!("{} · optional", call.service) },
            match call.target {
                Target::Http { method, path } => format!("{method} {path}"),
                Target::With(expr) => format!("with {expr}"),
            },
        ],
        Kind::Compute(expr) => [node.name.to_owned(), "computed".to_owned(), format!("= {expr}")],
    }
}

/// `text` cut to `chars` characters, with an ellipsis when cut.
fn fit(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        text.to_owned()
    } else {
        text.chars().take(chars.saturating_sub(1)).chain(['…']).collect()
    }
}

/// The endpoint's dependency graph as an inline SVG element: one column per dependency depth,
/// each node in a box labelled with its field, its service and its request (or its computed
/// value), placed level with the nodes it uses where there is room; an arrow from each node to
/// every node that uses it. Required calls are solid blue, optional ones dashed amber, computed
/// fields rounded grey. `index` makes the element's ids unique within a page.
///
/// ```
/// # use orchestrate_runtime::{EndpointSpec, Method, NodeKind, NodeSpec};
/// # use std::time::Duration;
/// static SUM: EndpointSpec = EndpointSpec {
///     name: "Sum", method: Method::Get, route: "/sum", timeout: Duration::from_millis(10), inputs: &[],
///     nodes: &[
///         NodeSpec { name: "a", ty: "u8", deps: &[], inputs: &[], kind: NodeKind::Compute { expr: "1" } },
///         NodeSpec { name: "b", ty: "u8", deps: &[0], inputs: &[], kind: NodeKind::Compute { expr: "a + 1" } },
///     ],
/// };
/// let svg = orchestrate_runtime::ops::spec::svg(&SUM, 0);
/// assert!(svg.starts_with("<svg") && svg.contains(">a</text>") && svg.contains(">= a + 1</text>"));
/// assert_eq!(svg.matches("<path class=\"edge\"").count(), 1);
/// ```
pub fn svg(spec: &EndpointSpec, index: usize) -> String {
    let nodes = nodes(spec, None);
    let labels: Vec<[String; 3]> = nodes.iter().map(labels).collect();
    let layers = sequence::layers(&nodes);
    let columns = layers.iter().copied().max().map_or(0, |m| m + 1);
    let members: Vec<Vec<usize>> =
        (0..columns).map(|c| (0..nodes.len()).filter(|&i| layers[i] == c).collect()).collect();

    // Each column as wide as its widest label.
    let width: Vec<f64> = members
        .iter()
        .map(|column| {
            let widest = column
                .iter()
                .map(|&i| {
                    let [name, service, request] = &labels[i];
                    (name.chars().count() as f64 * NAME_CHAR)
                        .max(service.chars().count().max(request.chars().count()) as f64 * DETAIL_CHAR)
                })
                .fold(0.0, f64::max);
            (widest + 24.0).clamp(120.0, MAX_WIDTH)
        })
        .collect();
    let left: Vec<f64> = width.iter().scan(PAD, |x, w| Some(std::mem::replace(x, *x + w + COLUMN_GAP))).collect();
    let stack = |count: usize| count as f64 * NODE_HEIGHT + count.saturating_sub(1) as f64 * ROW_GAP;
    let height = stack(members.iter().map(Vec::len).max().unwrap_or(0));

    // The first column is centred; later ones sit level with the nodes they use, without overlap.
    let mut top: Vec<f64> = vec![PAD; nodes.len()];
    for column in &members {
        let wanted = |i: usize| {
            let deps: Vec<f64> = nodes[i].deps.iter().filter(|&&d| d < nodes.len()).map(|&d| top[d]).collect();
            (!deps.is_empty()).then(|| deps.iter().sum::<f64>() / deps.len() as f64)
        };
        let mut order: Vec<(usize, Option<f64>)> = column.iter().map(|&i| (i, wanted(i))).collect();
        order.sort_by(|a, b| a.1.unwrap_or(0.0).total_cmp(&b.1.unwrap_or(0.0)).then(a.0.cmp(&b.0)));
        let centred = PAD + (height - stack(order.len())) / 2.0;
        let mut next = PAD;
        for (k, &(i, want)) in order.iter().enumerate() {
            let y = want.unwrap_or(centred + k as f64 * (NODE_HEIGHT + ROW_GAP)).max(next);
            top[i] = y;
            next = y + NODE_HEIGHT + ROW_GAP;
        }
        // Pushed past the bottom: shift the column up as far as needed.
        let overflow = (next - ROW_GAP) - (PAD + height);
        if overflow > 0.0 {
            for &(i, _) in &order {
                top[i] -= overflow;
            }
        }
    }
    let total_width = left.last().zip(width.last()).map_or(2.0 * PAD, |(x, w)| x + w + PAD);
    // An edge that skips a column runs in its own lane below every node, so it never passes
    // behind the nodes in between.
    let skips = nodes
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.deps.iter().filter(|&&d| d < nodes.len()).map(move |&d| (d, i)))
        .filter(|&(d, i)| layers[i] > layers[d] + 1)
        .count();
    let total_height = height + 2.0 * PAD + skips as f64 * LANE_GAP;

    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"graph\" data-endpoint=\"{name}\" width=\"{total_width:.0}\" \
         height=\"{total_height:.0}\" viewBox=\"0 0 {total_width:.0} {total_height:.0}\" role=\"img\" \
         aria-label=\"Dependency graph of {name}\"><defs><marker id=\"arrow-{index}\" viewBox=\"0 0 10 10\" refX=\"10\" \
         refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" \
         fill=\"#5b6475\"/></marker></defs>",
        name = esc(spec.name),
    );
    let mut lane = 0;
    for (i, node) in nodes.iter().enumerate() {
        for &d in node.deps.iter().filter(|&&d| d < nodes.len()) {
            let (x1, y1) = (left[layers[d]] + width[layers[d]], top[d] + NODE_HEIGHT / 2.0);
            let (x2, y2) = (left[layers[i]] - 1.0, top[i] + NODE_HEIGHT / 2.0);
            let path = if layers[i] > layers[d] + 1 {
                lane += 1;
                let y = PAD + height + lane as f64 * LANE_GAP - LANE_GAP / 2.0;
                let (out_x, in_x) = (x1 + COLUMN_GAP / 2.0, x2 - COLUMN_GAP / 2.0);
                format!(
                    "M{x1:.1},{y1:.1} C{out_x:.1},{y1:.1} {x1:.1},{y:.1} {out_x:.1},{y:.1} L{in_x:.1},{y:.1} \
                     C{x2:.1},{y:.1} {in_x:.1},{y2:.1} {x2:.1},{y2:.1}"
                )
            } else {
                let bend = (x2 - x1) / 2.0;
                format!("M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}", x1 + bend, x2 - bend)
            };
            let _ = write!(
                out,
                "<path class=\"edge\" d=\"{path}\" fill=\"none\" stroke=\"#5b6475\" stroke-width=\"1.4\" \
                 marker-end=\"url(#arrow-{index})\"/>",
            );
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        let (x, y, w) = (left[layers[i]], top[i], width[layers[i]]);
        let (fill, stroke, dash, radius) = match &node.kind {
            Kind::Call(call) if call.required => ("#eef4ff", "#3b6fd8", "", 6),
            Kind::Call(_) => ("#fff8e6", "#c98a00", " stroke-dasharray=\"5 4\"", 6),
            Kind::Compute(_) => ("#f1f2f4", "#8a8f99", "", 16),
        };
        let [name, service, request] = &labels[i];
        let chars = ((w - 24.0) / DETAIL_CHAR) as usize;
        let font = "font-family=\"ui-monospace,Menlo,Consolas,monospace\"";
        let _ = write!(
            out,
            "<g class=\"node\"><title>{title}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.0}\" \
             height=\"{NODE_HEIGHT:.0}\" rx=\"{radius}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.5\"{dash}/>\
             <text x=\"{tx:.1}\" y=\"{:.1}\" {font} font-size=\"13\" font-weight=\"700\" fill=\"#1d2330\">{}</text>\
             <text x=\"{tx:.1}\" y=\"{:.1}\" {font} font-size=\"11\" fill=\"#4a5365\">{}</text>\
             <text x=\"{tx:.1}\" y=\"{:.1}\" {font} font-size=\"11\" fill=\"#1d2330\">{}</text></g>",
            y + 18.0,
            esc(name),
            y + 34.0,
            esc(&fit(service, chars)),
            y + 49.0,
            esc(&fit(request, chars)),
            title = esc(&format!("{name} ({service}): {request}")),
            tx = x + 12.0,
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{InputSpec, Method, NodeSpec};
    use crate::service::ServiceSpec;
    use std::time::Duration;

    const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("a<b>", "http://user:pw@a.internal:8080/x")];
    static HOSTILE: EndpointSpec = EndpointSpec {
        name: "X<script>",
        method: Method::Get,
        route: "/x/{id}\"><script>alert(1)</script>",
        timeout: Duration::from_millis(100),
        inputs: &[InputSpec { name: "id", source: InputSource::Path("id\"'"), ty: "Vec<u8>" }],
        nodes: &[
            NodeSpec {
                name: "n",
                ty: "Option<T>",
                deps: &[],
                inputs: &[],
                kind: NodeKind::Call(CallSpec {
                    service: "a<b>",
                    service_index: 0,
                    target: CallTarget::Http { method: Method::Get, path: "/<img src=x onerror=alert(1)>" },
                    timeout: Duration::from_millis(10),
                    required: false,
                    retryable: true,
                    idempotency_key: false,
                    retry: None,
                    fallback: Some("\"</code><b>\""),
                    when: Some("a < b && c > d"),
                    for_each: None,
                }),
            },
            NodeSpec { name: "m", ty: "u8", deps: &[0, 9], inputs: &[], kind: NodeKind::Compute { expr: "x & y" } },
        ],
    };

    #[test]
    fn every_string_from_a_spec_or_the_configuration_is_escaped() {
        let runtime = Runtime::builder(SERVICES).read_env(false).build().unwrap();
        let page = html(&runtime, &[&HOSTILE]);
        for raw in ["<script>", "<img", "<b>", "</code><b>", "a<b>", "\"'", "x & y", "a < b"] {
            assert!(!page.contains(raw), "unescaped {raw:?}");
        }
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(page.contains("x &amp; y") && page.contains("a &lt; b &amp;&amp; c &gt; d"));
        // The page's own markup is balanced: as many `<svg`, `<table`, `<section` opened as closed.
        for tag in ["svg", "table", "section", "code", "text", "g"] {
            assert_eq!(
                page.matches(&format!("<{tag}>")).count() + page.matches(&format!("<{tag} ")).count(),
                page.matches(&format!("</{tag}>")).count(),
                "<{tag}> balance"
            );
        }
        assert!(!page.contains("pw@") && !page.contains("8080/x"), "only the host is shown");
        let json = json(&runtime, &[&HOSTILE]);
        assert!(!json.contains("pw@") && !json.contains("user:"), "{json}");
    }

    #[test]
    fn a_dependency_on_no_node_draws_nothing_and_panics_nowhere() {
        let svg = svg(&HOSTILE, 3);
        assert_eq!(svg.matches("<path class=\"edge\"").count(), 1, "{svg}");
        assert!(svg.contains("marker-end=\"url(#arrow-3)\""));
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(bytes(8 * 1024 * 1024), "8 MiB");
        assert_eq!(bytes(1536), "1536 B");
        assert_eq!(bytes(2048), "2 KiB");
    }
}

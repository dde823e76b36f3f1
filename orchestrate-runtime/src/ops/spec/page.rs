//! `/_orchestrate`: the HTML page: the header and navigation, one section per endpoint (inputs,
//! call sequence rows, dependency graph, computed fields, then its recent requests), the services
//! table, and the stylesheets (`style.css` and the recent requests', inlined). Every string taken
//! from a spec or the configuration goes through the shared escaping.
//!
//! Everything but the recent requests is rendered once ([`Page::new`]) and kept as the pieces
//! between them; each request for the page renders only the recent requests ([`Page::render`]).

use super::graph::svg;
use super::json::services;
use super::{esc, millis, nodes};
use crate::Runtime;
use crate::ops::requests;
use crate::recent::Filter;
use crate::spec::{EndpointSpec, InputSource, NodeKind};
use orchestrate_core::duration::format_duration;
use orchestrate_core::sequence::{self, Fallback, Kind, Row};
use std::fmt::Write as _;

/// A fragment id for an endpoint: its name, keeping only characters safe in a URL fragment.
fn anchor(spec: &EndpointSpec) -> String {
    let name: String = spec.name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    format!("endpoint-{name}")
}

const STYLE: &str = include_str!("style.css");

/// The page of `/_orchestrate` as it is now: the static description of `endpoints` and the
/// runtime's services, and each endpoint's recent requests.
///
/// ```
/// # use orchestrate_runtime::{Runtime, ServiceSpec};
/// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://cart.internal:8080")];
/// let runtime = Runtime::builder(SERVICES).read_env(false).build().unwrap();
/// let page = orchestrate_runtime::ops::spec::html(&runtime, &[]);
/// assert!(page.starts_with("<!doctype html>") && page.contains("<td><code>cart.internal:8080</code></td>"));
/// ```
pub fn html(runtime: &Runtime, endpoints: &[&'static EndpointSpec]) -> String {
    Page::new(runtime, endpoints).render(runtime, Filter::All)
}

/// `/_orchestrate` rendered once and cut where each endpoint's recent requests go.
#[derive(Debug)]
pub(super) struct Page {
    /// `endpoints.len() + 1` pieces: before the first endpoint's recent requests, between each
    /// endpoint's and the next's, after the last's.
    pieces: Vec<String>,
    endpoints: Vec<&'static EndpointSpec>,
}

impl Page {
    /// Renders everything that does not change while the runtime runs.
    pub(super) fn new(runtime: &Runtime, endpoints: &[&'static EndpointSpec]) -> Self {
        let mut pieces = Vec::with_capacity(endpoints.len() + 1);
        let mut out = String::with_capacity(16 * 1024);
        let _ = write!(
            out,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>Endpoints · orchestrate</title><style>{STYLE}{}</style></head>\n<body><main>\n\
             <h1>Endpoints</h1><p class=\"muted\">{} endpoint{}, {} downstream service{}. Generated from the endpoints' \
             specs and the running configuration, with each endpoint's recent requests; also as \
             <a href=\"_orchestrate.json\">JSON</a>.</p>\n<nav>",
            requests::STYLE,
            endpoints.len(),
            if endpoints.len() == 1 { "" } else { "s" },
            runtime.services().len(),
            if runtime.services().len() == 1 { "" } else { "s" },
        );
        for spec in endpoints {
            let _ = write!(
                out,
                "<a href=\"#{}\"><code>{} {}</code></a><a href=\"#{}\" class=\"muted\">recent</a>",
                anchor(spec),
                spec.method.as_str(),
                esc(spec.route),
                requests::anchor(spec),
            );
        }
        out.push_str("<a href=\"#services\">Services</a></nav>\n");
        for (index, spec) in endpoints.iter().enumerate() {
            endpoint_section(&mut out, runtime, spec, index);
            pieces.push(std::mem::take(&mut out));
            out.push_str("</section>\n");
        }
        services_section(&mut out, runtime);
        out.push_str("</main></body></html>\n");
        pieces.push(out);
        Self { pieces, endpoints: endpoints.to_vec() }
    }

    /// The page with each endpoint's recent requests as `show` filters them.
    pub(super) fn render(&self, runtime: &Runtime, show: Filter) -> String {
        let fixed: usize = self.pieces.iter().map(String::len).sum();
        let mut out = String::with_capacity(fixed + 16 * 1024 * self.endpoints.len());
        for (i, piece) in self.pieces.iter().enumerate() {
            out.push_str(piece);
            if let Some(spec) = self.endpoints.get(i) {
                canary_line(&mut out, runtime, spec);
                out.push_str(&requests::section(runtime, spec, show));
            }
        }
        out
    }
}

/// A canary's weight now, and why it was rolled back if it was.
fn canary_line(out: &mut String, runtime: &Runtime, spec: &EndpointSpec) {
    let Some(canary) = &spec.canary else { return };
    let report = runtime.canaries().report().into_iter().find(|r| r.endpoint == spec.name);
    let state = match &report {
        Some(r) if r.rolled_back => format!("rolled back: {}", esc(r.reason.as_deref().unwrap_or_default())),
        Some(r) => {
            format!("serving {}% · {} recent requests, {} server errors", r.weight, r.recent_requests, r.recent_errors)
        }
        None => "not served by a router of this runtime".to_owned(),
    };
    let _ = writeln!(out, "<p class=\"muted\">Canary {} · {state}</p>", esc(&canary.describe()));
}

fn endpoint_section(out: &mut String, runtime: &Runtime, spec: &EndpointSpec, index: usize) {
    let nodes = nodes(spec, Some(runtime));
    let calls = nodes.iter().filter(|n| matches!(n.kind, Kind::Call(_))).count();
    let _ = writeln!(
        out,
        "<section id=\"{}\"><h2><span class=\"method\">{}</span><code>{}</code> <span class=\"muted\">{}</span></h2>\
         <p class=\"muted\">Total timeout {}ms · {calls} call{} · {} computed field{}{}{}{}</p>",
        anchor(spec),
        spec.method.as_str(),
        esc(spec.route),
        esc(spec.name),
        millis(spec.timeout),
        if calls == 1 { "" } else { "s" },
        nodes.len() - calls,
        if nodes.len() - calls == 1 { "" } else { "s" },
        spec.cache.map_or_else(String::new, |cache| format!(" · whole answer cached {}", esc(&cache.describe()))),
        replay(spec),
        if spec.has_compensations() {
            " · a saga: each request's journal record at <code>/_orchestrate/sagas/{request_id}</code>"
        } else {
            ""
        },
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
                InputSource::Claim(name) => format!("token claim <code>{}</code>", esc(name)),
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
        let cached = rows.iter().any(|row| row.cache.is_some());
        out.push_str(
            "<h3>Call sequence</h3><table><tr><th>Order</th><th>Field</th><th>Service call</th><th>Required?</th>\
             <th>Timeout</th><th>Retries</th><th>Fallback</th>",
        );
        out.push_str(if cached { "<th>Cache TTL</th></tr>" } else { "</tr>" });
        for row in &rows {
            call_row(out, row, cached);
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
    // The section closes after the recent requests (see `Page::new`).
}

/// What a client's retry with an `Idempotency-Key` gets, for the summary line.
fn replay(spec: &EndpointSpec) -> String {
    match (spec.idempotent_requests, spec.idempotent_wait) {
        (false, _) => String::new(),
        (true, None) => " · client retries replayed by <code>Idempotency-Key</code>".to_owned(),
        (true, Some(wait)) => format!(
            " · client retries replayed by <code>Idempotency-Key</code>, waiting up to {}ms for a first still running",
            millis(wait)
        ),
    }
}

fn call_row(out: &mut String, row: &Row, cached: bool) {
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
         <td>{}</td><td class=\"nw\">{fallback}</td>",
        esc(&row.order()),
        esc(&row.field),
        if row.required { "Yes" } else { "No" },
        row.timeout_ms,
        esc(&row.retries),
    );
    if cached {
        let ttl = row.cache.map_or_else(|| "No cache".to_owned(), |cache| cache.describe());
        let _ = write!(out, "<td class=\"nw\">{}</td>", esc(&ttl));
    }
    out.push_str("</tr>");
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
        let breaker = service.breaker.map_or_else(|| "none".to_owned(), |b| b.describe());
        let bulkhead = service.max_in_flight.describe();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::spec::json;
    use crate::ops::spec::tests::{HOSTILE, SERVICES};

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
    fn sizes_read_in_binary_units() {
        assert_eq!(bytes(8 * 1024 * 1024), "8 MiB");
        assert_eq!(bytes(1536), "1536 B");
        assert_eq!(bytes(2048), "2 KiB");
    }
}

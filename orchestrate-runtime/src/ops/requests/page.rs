//! The "Recent requests" part of an endpoint's section of `/_orchestrate`: what is kept, the
//! filters, then one item per shown request (its head line, its ids, its waterfall and what the
//! waterfall says). Its stylesheet is `style.css`, which the page inlines with its own.

use super::super::esc;
use super::waterfall::svg;
use super::{Shown, civil, shown_of, wall_clock};
use crate::Runtime;
use crate::recent::{Analysis, Filter, RecentRequest};
use crate::spec::EndpointSpec;
use orchestrate_core::duration::format_duration;
use std::fmt::Write as _;
use std::time::UNIX_EPOCH;
use tokio::time::Instant;

/// The stylesheet of the recent requests, inlined in the page's `<style>`.
///
/// ```
/// assert!(orchestrate_runtime::ops::requests::STYLE.contains(".requests"));
/// ```
pub const STYLE: &str = include_str!("style.css");

/// A fragment id for the recent requests of an endpoint.
pub(crate) fn anchor(spec: &EndpointSpec) -> String {
    let name: String = spec.name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    format!("recent-{name}")
}

/// The "Recent requests" part of `spec`'s section of `/_orchestrate`, as `show` filters it: the
/// settings and counts, the filter links (`?show=..`), and each shown request with its waterfall
/// ([`svg`](super::svg)). Every string from a request or a spec is HTML-escaped.
///
/// ```
/// # use orchestrate_runtime::{EndpointSpec, Method, Runtime};
/// # use orchestrate_runtime::recent::Filter;
/// # use std::time::Duration;
/// static EMPTY: EndpointSpec = EndpointSpec::new("Empty", Method::Get, "/", Duration::from_millis(500), &[], &[]);
/// let runtime = Runtime::builder(&[]).read_env(false).build().unwrap();
/// let html = orchestrate_runtime::ops::requests::section(&runtime, &EMPTY, Filter::All);
/// assert!(html.contains("<h3 id=\"recent-Empty\">Recent requests</h3>") && html.contains("No requests yet"));
/// ```
pub fn section(runtime: &Runtime, spec: &'static EndpointSpec, show: Filter) -> String {
    let mut out = String::with_capacity(4096);
    let recent = runtime.recent();
    let anchor = anchor(spec);
    let _ = write!(
        out,
        "<div class=\"recent\" data-endpoint=\"{}\"><h3 id=\"{anchor}\">Recent requests</h3>",
        esc(spec.name)
    );
    if !recent.is_recording() {
        out.push_str(
            "<p class=\"muted\">Recording is off (<code>[recent] enabled = false</code> in the configuration, or \
             <code>RuntimeBuilder::recent_requests(RecentRequests::OFF)</code>).</p></div>",
        );
        return out;
    }
    let kept = recent.settings();
    let shown = shown_of(runtime, spec, show);
    let store = recent.store_bytes(spec);
    let _ = write!(
        out,
        "<p class=\"muted\">The last {} requests, plus the {} slowest and the last {} with a failed call of the last {} \
         · {} recorded · {} B per request, {} for this endpoint · also as \
         <a href=\"_orchestrate/requests.json\">JSON</a>.</p>",
        kept.last,
        kept.slowest,
        kept.failed,
        format_duration(kept.within),
        shown.recorded,
        crate::recent::Recent::entry_bytes(spec),
        kib(store),
    );
    out.push_str("<p class=\"filters\">Show:");
    for (filter, count) in shown.counts {
        let current = filter == show;
        let _ = write!(
            out,
            " <a href=\"?show={name}#{anchor}\" class=\"filter{on}\" data-filter=\"{name}\"{aria}>{title} <span>{count}</span></a>",
            name = filter.as_str(),
            on = if current { " on" } else { "" },
            aria = if current { " aria-current=\"true\"" } else { "" },
            title = filter.title(),
        );
    }
    out.push_str("</p>");
    legend(&mut out);
    if shown.requests.is_empty() {
        let what = match show {
            Filter::All => "No requests yet: they appear here as the endpoint serves them.",
            Filter::Slow => "No slow requests kept.",
            Filter::Failed => "No failed requests kept.",
            Filter::Partial => "No partial requests kept.",
        };
        let _ = write!(out, "<p class=\"none muted\">{what}</p></div>");
        return out;
    }
    let _ = write!(out, "<ol class=\"requests\" data-show=\"{}\">", show.as_str());
    for (request, analysis) in &shown.requests {
        item(&mut out, request, analysis, &shown);
    }
    out.push_str("</ol></div>");
    out
}

fn legend(out: &mut String) {
    out.push_str(
        "<p class=\"legend muted\">\
         <span class=\"sw\" style=\"background:#3b6fd8;border-color:#1d2330\"></span>critical path\
         <span class=\"sw\" style=\"background:#3b6fd8;opacity:.72;border-color:transparent\"></span>ok\
         <span class=\"sw\" style=\"background:#d92d20;border-color:transparent\"></span>failed ✕\
         <span class=\"sw\" style=\"background:#b42318;border-color:transparent\"></span>timed out ✕\
         <span class=\"sw\" style=\"background:#dc8a00;border-color:#5b6475;border-style:dashed\"></span>fallback ↩\
         <span class=\"sw\" style=\"background:#9aa1ad;border-color:#5b6475;border-style:dashed\"></span>cancelled\
         <span class=\"sw seg\"></span>attempts (light gaps: backoff)\
         <span class=\"sw\" style=\"border:0;border-left:2px dashed #b42318;width:0\"></span>target</p>",
    );
}

fn kib(bytes: usize) -> String {
    if bytes >= 10 * 1024 { format!("{} KiB", bytes / 1024) } else { format!("{bytes} B") }
}

fn item(out: &mut String, request: &RecentRequest, analysis: &Analysis, shown: &Shown) {
    let mut class = String::from("request");
    for (on, name) in [
        (request.failed(), "failed"),
        (request.partial, "partial"),
        (request.kept.slowest, "slowest"),
        (analysis.missed, "missed"),
    ] {
        if on {
            class.push(' ');
            class.push_str(name);
        }
    }
    let request_id = esc(&request.request_id);
    let trace_id = request.trace_id.to_string();
    let _ = write!(
        out,
        "<li class=\"{class}\" id=\"request-{seq}\" data-request-id=\"{request_id}\" data-trace-id=\"{trace_id}\">\
         <div class=\"head\"><span class=\"status s{family}\">{status}</span> <b class=\"took\">{took}</b> \
         <span class=\"muted\">{when}</span>",
        seq = request.seq,
        family = request.status / 100,
        status = request.status,
        took = format_ms(request.duration.as_secs_f64() * 1000.0),
        when = when(request.started, shown.now),
    );
    // Why a request the ring has forgotten is still here.
    let kept_for = !request.kept.last;
    for (on, tag) in [
        (request.failed(), "failed"),
        (request.partial, "partial"),
        (analysis.missed, "missed target"),
        (kept_for && request.kept.slowest, "kept: among the slowest"),
        (kept_for && request.kept.failed, "kept: a call failed"),
    ] {
        if on {
            let _ = write!(out, " <span class=\"tag\">{tag}</span>");
        }
    }
    let _ = write!(
        out,
        "</div><div class=\"ids\">request <code class=\"request-id\">{request_id}</code> · trace \
         <code class=\"trace-id\">{trace_id}</code></div><div class=\"body\"><div class=\"chart\">{}</div><div class=\"why\">",
        svg(request, analysis),
    );
    if analysis.critical_path.is_empty() {
        out.push_str("<p class=\"muted\">No call started.</p>");
    } else {
        // Each call's part of the request: what "why was this slow" reads off.
        let graph = request.graph.as_secs_f64();
        let path: Vec<String> = analysis
            .critical_path
            .iter()
            .map(|&i| {
                let call = &request.calls[i];
                let share = if graph > 0.0 { call.duration().as_secs_f64() / graph * 100.0 } else { 0.0 };
                format!(
                    "<code>{}</code> {} <span class=\"share\">({share:.0}%)</span>",
                    esc(call.call),
                    format_ms(call.duration().as_secs_f64() * 1000.0)
                )
            })
            .collect();
        let _ = write!(
            out,
            "<p class=\"critical\"><b>Critical path: {:.0}%</b> of the request's {}:</p><p class=\"path\">{}</p>",
            analysis.critical_share * 100.0,
            format_ms(graph * 1000.0),
            path.join(" → "),
        );
    }
    let target = format!("{} of {}", analysis.target.source.as_str(), format_duration(analysis.target.limit));
    match (analysis.missed, analysis.missed_during) {
        (true, Some(i)) => {
            let _ = write!(
                out,
                "<p class=\"miss\">Missed its target ({target}) during <code>{}</code>.</p>",
                esc(request.calls[i].call)
            );
        }
        (true, None) => {
            let _ = write!(out, "<p class=\"miss\">Missed its target ({target}) outside its calls.</p>");
        }
        (false, _) => {
            let _ = write!(out, "<p class=\"met muted\">Within its target ({target}).</p>");
        }
    }
    let failed: Vec<String> = request
        .calls
        .iter()
        .filter(|c| c.ending.is_failure())
        .map(|c| {
            let why = c.error.map(|e| e.as_str()).unwrap_or("failed");
            let status = c.status.map(|s| format!(" {s}")).unwrap_or_default();
            format!("<code>{}</code> ({}{status})", esc(c.call), esc(why))
        })
        .collect();
    if !failed.is_empty() {
        let _ = write!(out, "<p class=\"failed-calls\">Failed: {}</p>", failed.join(", "));
    }
    out.push_str("</div></div></li>");
}

/// `12:04:05.123 UTC · 3s ago`.
fn when(started: Instant, now: Instant) -> String {
    let at = wall_clock(started, now).duration_since(UNIX_EPOCH).unwrap_or_default();
    let (_, clock) = civil(at);
    let ago = now.saturating_duration_since(started);
    let ago = if ago.as_secs() >= 1 {
        format_duration(std::time::Duration::from_secs(ago.as_secs()))
    } else {
        "now".to_owned()
    };
    if ago == "now" { format!("{clock} UTC · just now") } else { format!("{clock} UTC · {ago} ago") }
}

fn format_ms(ms: f64) -> String {
    if ms >= 1000.0 { format!("{:.2} s", ms / 1000.0) } else { format!("{ms:.1} ms") }
}

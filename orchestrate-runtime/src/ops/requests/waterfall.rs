//! One request's waterfall as inline SVG: a time axis, one lane per call in the order they
//! started, and in each lane one bar from the call's start to its end, coloured by how it ended,
//! outlined when on the critical path, split into its attempts when it made several.

use super::super::esc;
use crate::recent::{Analysis, RecentCall, RecentRequest};
use crate::timeline::Ending;
use std::fmt::Write as _;
use std::time::Duration;

const WIDTH: f64 = 760.0;
/// The column of call names.
const LABEL: f64 = 130.0;
/// Room right of the plot for the text after the longest bar.
const RIGHT: f64 = 170.0;
const PLOT: f64 = WIDTH - LABEL - RIGHT;
const AXIS: f64 = 22.0;
const LANE: f64 = 22.0;
const BAR: f64 = 13.0;
const FONT: &str = "font-family=\"ui-monospace,Menlo,Consolas,monospace\"";

/// The fill of a bar that ended as `ending`. (No catch-all arm: a way of ending added to
/// [`Ending`] does not compile until it has its colour and its word here.)
fn colour(ending: Ending) -> &'static str {
    match ending {
        Ending::Ok => "#3b6fd8",
        Ending::Cached => "#12b76a",
        Ending::Failed => "#d92d20",
        Ending::TimedOut => "#b42318",
        Ending::Shed => "#7a5af8",
        Ending::Fallback => "#dc8a00",
        Ending::Skipped | Ending::Cancelled => "#9aa1ad",
    }
}

/// How the text after a bar names the ending (nothing for a success).
fn said(ending: Ending) -> &'static str {
    match ending {
        Ending::Ok => "",
        Ending::Cached => "cached",
        Ending::Failed => "failed",
        Ending::TimedOut => "timed out",
        Ending::Shed => "shed (limit)",
        Ending::Fallback => "fallback",
        Ending::Skipped => "skipped (when)",
        Ending::Cancelled => "cancelled",
    }
}

/// A step for about five ticks over `max` milliseconds: 1, 2 or 5 times a power of ten.
fn tick_step(max: f64) -> f64 {
    let rough = (max / 5.0).max(0.001);
    let power = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|step| *step >= rough).unwrap_or(10.0 * power)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A tick: `50 ms`, `2.5 ms`, `1.5 s`.
fn tick_label(ms: f64) -> String {
    let (value, unit) = if ms >= 1000.0 { (ms / 1000.0, "s") } else { (ms, "ms") };
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} {unit}")
}

/// `12.3 ms`, `850 ms`, `2.00 s`.
fn label_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// The waterfall of `request` (a kept request of its endpoint) with what `analysis` read off it.
///
/// Each call is a `<g class="call ..">` (classes: its ending, `critical` on the critical path,
/// `optional`, `retried`) holding one `<rect class="bar">` and, for a call that made several
/// attempts, one `<rect class="attempt">` per recorded attempt; a failed or timed-out call has a
/// `<text class="mark">✕</text>`, a fallback `↩`. When the request missed its target and the
/// target falls on the axis, a dashed `<line class="target">` marks it.
///
/// ```
/// # use orchestrate_runtime::recent::{Recent, RecentRequests, Served, analyse};
/// # use orchestrate_runtime::{CallErrorKind, CallOutcome, CallRecord, CallSpec, CallTarget, EndpointSpec, Method, NodeKind, NodeSpec, Timeline};
/// # use orchestrate_runtime::telemetry::TraceId;
/// # use std::time::Duration;
/// # const fn call(service: &'static str) -> CallSpec {
/// #     CallSpec::new(service, 0, CallTarget::Http { method: Method::Get, path: "/" }, Duration::from_millis(100))
/// #         .with_required(true)
/// # }
/// static SPEC: EndpointSpec = EndpointSpec::new("Ab", Method::Get, "/ab", Duration::from_millis(500), &[], &[
///     NodeSpec::new("a", "A", &[], &[], NodeKind::Call(call("a"))),
///     NodeSpec::new("b", "B", &[0], &[], NodeKind::Call(call("b"))),
/// ]);
/// let ms = Duration::from_millis;
/// let failed = CallOutcome::Failed(CallErrorKind::Status);
/// let timeline = Timeline::new(
///     vec![CallRecord::new("a", "a", ms(0), ms(40), CallOutcome::Ok), CallRecord::new("b", "b", ms(40), ms(45), failed)],
///     ms(46),
/// );
/// let (recent, now) = (Recent::new(RecentRequests::DEFAULT), tokio::time::Instant::now());
/// recent.record(&SPEC, &Served::new(&timeline, 502, b"r-1", TraceId([1; 16]), now, ms(47)), now);
/// let request = &recent.requests(&SPEC, now)[0];
/// let svg = orchestrate_runtime::ops::requests::svg(request, &analyse(&SPEC, request));
/// assert_eq!(svg.matches("<rect class=\"bar\"").count(), 2);
/// assert!(svg.contains("<g class=\"call failed critical\" data-call=\"b\""));
/// assert!(svg.contains("<text class=\"mark\""));
/// ```
pub fn svg(request: &RecentRequest, analysis: &Analysis) -> String {
    let mut calls: Vec<(usize, &RecentCall)> = request.calls.iter().enumerate().collect();
    calls.sort_by(|(_, a), (_, b)| a.start.cmp(&b.start).then(a.node.cmp(&b.node)));
    let ends = calls.iter().map(|(_, c)| ms(c.end)).fold(0.0, f64::max);
    let mut max = ms(request.graph).max(ends).max(0.1);
    let target = ms(analysis.target.limit);
    let show_target = analysis.missed && target <= max * 1.05;
    if show_target {
        max = max.max(target);
    }
    let x = |ms: f64| LABEL + (ms / max).clamp(0.0, 1.0) * PLOT;
    let height = AXIS + LANE * calls.len().max(1) as f64 + 8.0;

    let mut out = String::with_capacity(1200 + 700 * calls.len());
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"waterfall\" data-request-id=\"{id}\" width=\"{WIDTH:.0}\" \
         height=\"{height:.0}\" viewBox=\"0 0 {WIDTH:.0} {height:.0}\" role=\"img\" aria-label=\"Calls of request {id}\">",
        id = esc(&request.request_id),
    );
    // The axis: ticks and their grid lines over every lane.
    let step = tick_step(max);
    let mut tick = 0.0;
    while tick <= max + step * 1e-6 {
        let tx = x(tick);
        let anchor = if tick == 0.0 { "start" } else { "middle" };
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#e6e9ef\"/>\
             <text x=\"{tx:.1}\" y=\"13\" text-anchor=\"{anchor}\" {FONT} font-size=\"10\" fill=\"#667085\">{}</text>",
            AXIS - 4.0,
            height - 4.0,
            if tick == 0.0 { "0".to_owned() } else { tick_label(tick) },
        );
        tick += step;
    }
    for (lane, &(i, call)) in calls.iter().enumerate() {
        let y = AXIS + lane as f64 * LANE;
        let critical = analysis.critical_path.contains(&i);
        let (start, end) = (ms(call.start), ms(call.end));
        let (x1, x2) = (x(start), x(end));
        let width = (x2 - x1).max(2.0);
        let fill = colour(call.ending);
        let mut class = call.ending.as_str().to_owned();
        if critical {
            class.push_str(" critical");
        }
        if !call.required {
            class.push_str(" optional");
        }
        let segments = call.attempt_times.len() > 1;
        if segments {
            class.push_str(" retried");
        }
        let mut title = format!(
            "{} ({}): {} after {}, from +{}",
            call.call,
            call.service,
            if call.ending == Ending::Ok { "ok" } else { call.ending.as_str() },
            label_ms(end - start),
            label_ms(start)
        );
        if let Some(error) = call.error {
            let _ = write!(title, ", {}", error.as_str());
        }
        let _ = write!(title, "; {} attempt{}", call.attempts, if call.attempts == 1 { "" } else { "s" });
        if let Some(status) = call.status {
            let _ = write!(title, ", last status {status}");
        }
        if let Some(breaker) = call.breaker {
            let _ = write!(title, "; breaker {}", breaker.as_str());
        }
        if critical {
            title.push_str("; on the critical path");
        }
        let _ = write!(
            out,
            "<g class=\"call {class}\" data-call=\"{name}\" data-outcome=\"{outcome}\"><title>{title}</title>\
             <text x=\"6\" y=\"{ty:.1}\" {FONT} font-size=\"11\" font-weight=\"{weight}\" fill=\"#1d2330\">{label}</text>",
            name = esc(call.call),
            outcome = call.ending.as_str(),
            title = esc(&title),
            ty = y + 14.5,
            weight = if critical { 700 } else { 400 },
            label = esc(&fit(call.call, 17)),
        );
        let (stroke, dash) = match (critical, call.ending) {
            (true, _) => (" stroke=\"#1d2330\" stroke-width=\"1.6\"", ""),
            (false, Ending::Cancelled | Ending::Skipped | Ending::Fallback) => {
                (" stroke=\"#5b6475\" stroke-width=\"1\"", " stroke-dasharray=\"3 2\"")
            }
            (false, _) => ("", ""),
        };
        // With several attempts, the bar is the call's track (the backoff between attempts stays
        // light) and each attempt a solid segment on it.
        let (opacity, bar_fill) = match call.ending {
            Ending::Skipped => ("1", "#ffffff"),
            _ if segments => ("0.28", fill),
            _ if critical => ("1", fill),
            _ => ("0.72", fill),
        };
        let _ = write!(
            out,
            "<rect class=\"bar\" x=\"{x1:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{BAR:.0}\" rx=\"2\" fill=\"{bar_fill}\" \
             fill-opacity=\"{opacity}\"{stroke}{dash}/>",
            y + (LANE - BAR) / 2.0,
        );
        if segments {
            let attempts: Vec<(Duration, Duration)> = call.attempt_times.iter().collect();
            for (k, (a_start, a_end)) in attempts.iter().enumerate() {
                let last = k + 1 == attempts.len();
                // Every attempt before the last failed (it was retried).
                let segment = if last { fill } else { colour(Ending::Failed) };
                let (s1, s2) = (x(ms(*a_start)), x(ms(*a_end)));
                let _ = write!(
                    out,
                    "<rect class=\"attempt\" x=\"{s1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.0}\" fill=\"{segment}\"/>",
                    y + (LANE - BAR) / 2.0 + 2.0,
                    (s2 - s1).max(1.5),
                    BAR - 4.0,
                );
            }
        }
        // After the bar: a mark for a failure or a fallback, the duration, status, attempts.
        let mut text_x = x1 + width + 5.0;
        let mark = match call.ending {
            Ending::Failed | Ending::TimedOut => Some(("✕", colour(call.ending))),
            Ending::Fallback => Some(("↩", colour(Ending::Fallback))),
            _ => None,
        };
        if let Some((mark, colour)) = mark {
            let _ = write!(
                out,
                "<text class=\"mark\" x=\"{text_x:.1}\" y=\"{:.1}\" font-size=\"12\" font-weight=\"700\" fill=\"{colour}\">{mark}</text>",
                y + 15.0,
            );
            text_x += 13.0;
        }
        let mut detail = label_ms(end - start);
        if let Some(status) = call.status {
            let _ = write!(detail, " · {status}");
        }
        let word = said(call.ending);
        if !word.is_empty() {
            let _ = write!(detail, " {word}");
        }
        if call.attempts > 1 {
            let _ = write!(detail, " · ×{}", call.attempts);
        }
        let _ = write!(
            out,
            "<text x=\"{text_x:.1}\" y=\"{:.1}\" {FONT} font-size=\"10.5\" fill=\"#4a5365\">{}</text></g>",
            y + 14.5,
            esc(&detail),
        );
    }
    if show_target {
        let tx = x(target);
        let _ = write!(
            out,
            "<line class=\"target\" x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#b42318\" \
             stroke-width=\"1.5\" stroke-dasharray=\"4 3\"><title>{}: {}</title></line>",
            AXIS - 6.0,
            height - 2.0,
            analysis.target.source.as_str(),
            label_ms(target),
        );
    }
    out.push_str("</svg>");
    out
}

/// `text` cut to `chars` characters, with an ellipsis when cut.
fn fit(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        text.to_owned()
    } else {
        text.chars().take(chars.saturating_sub(1)).chain(['…']).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(165.0), 50.0);
        assert_eq!(tick_step(2000.0), 500.0);
        assert_eq!(tick_step(9.0), 2.0);
        assert!((tick_step(0.3) - 0.1).abs() < 1e-9);
        assert_eq!(label_ms(2000.0), "2.00 s");
        assert_eq!(label_ms(45.04), "45.0 ms");
        assert_eq!(
            (tick_label(50.0), tick_label(2.5), tick_label(1500.0)),
            ("50 ms".into(), "2.5 ms".into(), "1.5 s".into())
        );
    }
}

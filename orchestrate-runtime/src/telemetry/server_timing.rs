//! The `Server-Timing` header (<https://www.w3.org/TR/server-timing/>) of one request.

use crate::timeline::{Ending, Timeline};
use http::HeaderValue;
use std::fmt::Write;

/// `Server-Timing` for a request's timeline: one metric per call, named by its field, with its
/// duration in milliseconds and a description giving its service, its start from the start of the
/// request, unless it succeeded how it ended, and `hedged` when it sent a hedge (`hedge(..)`);
/// then `total`, the time of the whole graph.
///
/// A browser's network panel shows each description beside a bar of the call's duration.
///
/// ```
/// use orchestrate_runtime::{CallErrorKind, CallOutcome, CallRecord, Timeline};
/// use std::time::Duration;
/// let ms = Duration::from_millis;
/// let record = |call, start, end, outcome| CallRecord::new(call, call, ms(start), ms(end), outcome);
/// let timeline = Timeline::new(
///     vec![record("cart", 0, 45, CallOutcome::Ok), record("shipping", 45, 50, CallOutcome::Failed(CallErrorKind::Status))],
///     ms(60),
/// );
/// let header = orchestrate_runtime::telemetry::server_timing(&timeline);
/// assert_eq!(
///     header,
///     "cart;dur=45.0;desc=\"cart +0.0ms\", shipping;dur=5.0;desc=\"shipping +45.0ms failed\", total;dur=60.0"
/// );
/// ```
pub fn server_timing(timeline: &Timeline) -> HeaderValue {
    let mut text = String::with_capacity(48 * (timeline.calls.len() + 1));
    for record in &timeline.calls {
        let _ = write!(
            text,
            "{};dur={:.1};desc=\"{} +{:.1}ms",
            record.call,
            ms(record.duration()),
            record.service,
            ms(record.start)
        );
        if record.ending() != Ending::Ok {
            text.push(' ');
            text.push_str(record.outcome_label());
        }
        if record.hedges > 0 {
            text.push_str(" hedged");
        }
        text.push_str("\", ");
    }
    let _ = write!(text, "total;dur={:.1}", ms(timeline.total));
    // Field names, service names and numbers only: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn ms(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

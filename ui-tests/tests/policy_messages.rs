//! One wording for every bad policy value, wherever it is written.
//!
//! Each row is a bad value written in `services!` (as in `fail/policy_values.rs`, whose reviewed
//! `.stderr` is checked by `tests/ui.rs`) and in the configuration file, and the message both must
//! give. The rules and their wording live once, in `orchestrate_core::policy`; this test holds the
//! two readers to them. Messages that end in an example give it in the syntax of the place
//! (`retry(..)` in Rust, `retry = { .. }` in TOML); the rest of their wording is the same.

use orchestrate::{Runtime, ServiceSpec};
use orchestrate_core::policy::{Entry, Reader, Syntax, Value, hedge, slo};
use std::time::Duration;

struct Row {
    /// The policy as written inside `services! { sN: ".." { .. } }`.
    dsl: &'static str,
    /// The same policy as written under `[services.cart]`.
    toml: &'static str,
    /// The message of both.
    message: &'static str,
    /// For messages that end in an example: the message as the configuration file gives it.
    toml_message: Option<&'static str>,
}

const fn row(dsl: &'static str, toml: &'static str, message: &'static str) -> Row {
    Row { dsl, toml, message, toml_message: None }
}

const ROWS: &[Row] = &[
    row(
        "retry(attempts = 0, backoff = \"100ms\")",
        "retry = { attempts = 0, backoff = \"100ms\" }",
        "`attempts` must be at least 1",
    ),
    row(
        "retry(attempts = 11, backoff = \"100ms\")",
        "retry = { attempts = 11, backoff = \"100ms\" }",
        "more than 10 attempts multiplies load on a failing service; use at most 10",
    ),
    row(
        "retry(attempts = \"3\", backoff = \"100ms\")",
        "retry = { attempts = \"3\", backoff = \"100ms\" }",
        "`attempts` takes a whole number, e.g. `attempts = 3`; found a string",
    ),
    row(
        "retry(attempts = 3, backoff = \"100 ms\")",
        "retry = { attempts = 3, backoff = \"100 ms\" }",
        "invalid `backoff`: durations have no spaces; write \"100ms\"",
    ),
    row(
        "retry(attempts = 3, backoff = \"2.5s\")",
        "retry = { attempts = 3, backoff = \"2.5s\" }",
        "invalid `backoff`: durations are whole numbers: write \"2500ms\"",
    ),
    row(
        "retry(attempts = 3, backoff = 100)",
        "retry = { attempts = 3, backoff = 100 }",
        "`backoff` takes a duration, e.g. `backoff = \"100ms\"`; found a number",
    ),
    row(
        "retry(attempts = 3, backoff = \"1s\", max_backoff = \"100ms\")",
        "retry = { attempts = 3, backoff = \"1s\", max_backoff = \"100ms\" }",
        "`max_backoff` is smaller than `backoff`; raise it or remove it",
    ),
    row(
        "retry(attempts = 3, backoff = \"100ms\", on = [4xx])",
        "retry = { attempts = 3, backoff = \"100ms\", on = [\"4xx\"] }",
        "unknown retry condition `4xx`; use `5xx`, `timeout`, `connect` or `429` (4xx other than 429 are never retried)",
    ),
    row(
        "retry(attempts = 3, backof = \"100ms\")",
        "retry = { attempts = 3, backof = \"100ms\" }",
        "unknown key `backof` in `retry`; did you mean `backoff`? (expected one of: attempts, backoff, max_backoff, on)",
    ),
    Row {
        dsl: "retry(attempts = 3)",
        toml: "retry = { attempts = 3 }",
        message: "`retry` needs `backoff`, e.g. `retry(attempts = 3, backoff = \"100ms\")`",
        toml_message: Some("`retry` needs `backoff`, e.g. `retry = { attempts = 3, backoff = \"100ms\" }`"),
    },
    row(
        "breaker(failures = 0, within = \"60s\", open_for = \"30s\", probes = 3)",
        "breaker = { failures = 0, within = \"60s\", open_for = \"30s\", probes = 3 }",
        "`failures` must be at least 1",
    ),
    row(
        "breaker(failures = 5, within = \"1 minute\", open_for = \"30s\", probes = 3)",
        "breaker = { failures = 5, within = \"1 minute\", open_for = \"30s\", probes = 3 }",
        "invalid `within`: durations have no spaces; write \"1m\"",
    ),
    Row {
        dsl: "breaker(failures = 5)",
        toml: "breaker = { failures = 5 }",
        message: "`breaker` needs `within`, `open_for` and `probes`, e.g. `breaker(failure_rate = \"50%\", min_calls = 20, within = \"10s\", open_for = \"30s\", probes = 3)`",
        toml_message: Some(
            "`breaker` needs `within`, `open_for` and `probes`, e.g. `breaker = { failure_rate = \"50%\", min_calls = 20, within = \"10s\", open_for = \"30s\", probes = 3 }`",
        ),
    },
    row(
        "retry_budget(percent = 150)",
        "retry_budget = { percent = 150 }",
        "`percent` is a share of calls, at most 100",
    ),
    row("max_in_flight = 0", "max_in_flight = 0", "`max_in_flight` must be at least 1"),
    row(
        "max_in_flight = \"8\"",
        "max_in_flight = \"8\"",
        "`max_in_flight` is `auto` or a whole number of at least 1, e.g. `max_in_flight = 64`; found `8`",
    ),
    row("max_body = \"8 MiB\"", "max_body = \"8 MiB\"", "invalid `max_body`: sizes have no spaces; write \"8MiB\""),
    row(
        "max_body = \"8mb\"",
        "max_body = \"8mb\"",
        "invalid `max_body`: unknown size unit `mb`; use `B`, `KiB`, `MiB`, `GiB`, `KB`, `MB` or `GB`",
    ),
    row(
        "forward_headers = [\"Connection\"]",
        "forward_headers = [\"Connection\"]",
        "`connection` is a hop-by-hop header and is never forwarded",
    ),
    row("http2 = \"yes\"", "http2 = \"yes\"", "`http2` takes `true` or `false`; found a string"),
    row("balance(failures = 0)", "balance = { failures = 0 }", "`failures` must be at least 1"),
    row(
        "balance(max_ejected = \"150%\")",
        "balance = { max_ejected = \"150%\" }",
        "`max_ejected` is a percentage, at most \"100%\"",
    ),
    Row {
        dsl: "max_in_flite = 4",
        toml: "max_in_flite = 4",
        message: "unknown key `max_in_flite` in `service policies`; did you mean `max_in_flight`? (expected one of: retry, breaker, max_in_flight, max_body, retry_budget, forward_headers, http2, rate_limit, balance, hedge_budget)",
        // The configuration file also takes the service's `url`.
        toml_message: Some(
            "unknown key `max_in_flite` in `service policies`; did you mean `max_in_flight`? (expected one of: url, retry, breaker, max_in_flight, max_body, retry_budget, forward_headers, http2, rate_limit, balance, hedge_budget)",
        ),
    },
    row(
        "rate_limit = \"200/sek\"",
        "rate_limit = \"200/sek\"",
        "invalid `rate_limit`: unknown unit `sek`; use `s`, `min`, `h` or `d`, e.g. \"200/min\"",
    ),
    row("hedge_budget = \"150%\"", "hedge_budget = \"150%\"", "`hedge_budget` is a percentage, at most \"100%\""),
    row(
        "hedge_budget = \"10\"",
        "hedge_budget = \"10\"",
        "invalid `hedge_budget`: write the share with `%`, e.g. \"10%\"",
    ),
];

const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://cart.internal:8080")];

fn config_error(toml: &str) -> String {
    let text = format!("[services.cart]\n{toml}\n");
    match Runtime::builder(SERVICES).read_env(false).config_str(text).build() {
        Ok(_) => panic!("`{toml}` was accepted"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn the_macro_and_the_configuration_file_say_the_same_about_each_bad_value() {
    let source = include_str!("../fail/policy_values.rs");
    let stderr = include_str!("../fail/policy_values.stderr");
    let mut failures = Vec::new();
    for (i, row) in ROWS.iter().enumerate() {
        let declared = format!("s{i}: \"http://s{i}.internal\" {{ {} }},", row.dsl);
        if !source.contains(&declared) {
            failures.push(format!("fail/policy_values.rs lacks row {i}: `{declared}`"));
        }
        let compile_error = format!("error: {}\n", row.message);
        if !stderr.contains(&compile_error) {
            failures.push(format!("the compiler does not say, for `{}`:\n  {}", row.dsl, row.message));
        }
        let expected = row.toml_message.unwrap_or(row.message);
        let config = config_error(row.toml);
        if !config.ends_with(&format!("): {expected}")) {
            failures.push(format!("the configuration reader says, for `{}`:\n  {config}\nnot\n  {expected}", row.toml));
        }
        if let Some(toml_message) = row.toml_message {
            let stem = |m: &'static str| m.split(", e.g.").next().unwrap_or(m).split(" (expected").next().unwrap_or(m);
            assert_eq!(stem(row.message), stem(toml_message), "row {i}: the two wordings differ beyond their example");
        }
    }
    // Every error of the compile-fail case is a row of the table.
    let errors = stderr.lines().filter(|l| l.starts_with("error")).count();
    if errors != ROWS.len() {
        failures.push(format!("fail/policy_values.stderr has {errors} errors for {} rows", ROWS.len()));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A bad inbound rate limit: as written inside `rate_limit(..)` (in `fail/rate_limit_values.rs`,
/// on an endpoint or an `#[api]` module), the same under `[rate_limit]`, and the message of both.
struct RateRow {
    dsl: &'static str,
    toml: &'static str,
    message: &'static str,
}

const RATE_ROWS: &[RateRow] = &[
    RateRow {
        dsl: "per_user = \"100/mins\"",
        toml: "per_user = \"100/mins\"",
        message: "invalid `per_user`: unknown unit `mins`; use `s`, `min`, `h` or `d`, e.g. \"100/min\"",
    },
    RateRow {
        dsl: "per_ip = \"500\"",
        toml: "per_ip = \"500\"",
        message: "invalid `per_ip`: a rate needs its period; write e.g. \"500/min\"",
    },
    RateRow {
        dsl: "global = 10000",
        toml: "global = 10000",
        message: "`global` takes a rate, e.g. `global = \"100/min\"`; found a number",
    },
    RateRow {
        dsl: "per_endpoint = \"0/min\"",
        toml: "per_endpoint = \"0/min\"",
        message: "invalid `per_endpoint`: a limit admits at least 1 request; remove the limit instead of writing 0",
    },
    RateRow {
        dsl: "per_endpoint = \"50 / min\"",
        toml: "per_endpoint = \"50 / min\"",
        message: "invalid `per_endpoint`: rates have no spaces; write \"50/min\"",
    },
    RateRow {
        dsl: "global = \"many/min\"",
        toml: "global = \"many/min\"",
        message: "invalid `global`: `many` is not a whole number of requests; write e.g. \"100/min\"",
    },
];

#[test]
fn the_macro_and_the_configuration_file_say_the_same_about_each_bad_rate_limit() {
    let source = include_str!("../fail/rate_limit_values.rs");
    let stderr = include_str!("../fail/rate_limit_values.stderr");
    let mut failures = Vec::new();
    for row in RATE_ROWS {
        if !source.contains(&format!("rate_limit({})", row.dsl)) {
            failures.push(format!("fail/rate_limit_values.rs lacks `rate_limit({})`", row.dsl));
        }
        if !stderr.contains(&format!("error: {}\n", row.message)) {
            failures.push(format!("the compiler does not say, for `{}`:\n  {}", row.dsl, row.message));
        }
        let config =
            match Runtime::builder(&[]).read_env(false).config_str(format!("[rate_limit]\n{}\n", row.toml)).build() {
                Ok(_) => panic!("`{}` was accepted", row.toml),
                Err(error) => error.to_string(),
            };
        if !config.ends_with(&format!("): {}", row.message)) {
            failures.push(format!(
                "the configuration reader says, for `{}`:\n  {config}\nnot\n  {}",
                row.toml, row.message
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An `slo(..)` of `#[endpoint]` as written in `fail/slo_values.rs`, and the message the policy
/// grammar gives for the same value (read here with `orchestrate_core::policy::slo`).
struct SloRow {
    dsl: &'static str,
    core: fn() -> String,
}

/// What `slo::read` says about `slo(key = value)` (or `slo()` without a key).
fn slo_message(entry: Option<(&str, Value<()>)>) -> String {
    let entries = entry.map(|(key, value)| Entry::new(key, (), value)).into_iter().collect();
    let mut reader = Reader::new(Syntax::Dsl);
    assert_eq!(slo::read(&mut reader, &(), &Value::Table(entries, ())), None);
    reader.problems()[0].message.clone()
}

fn text(s: &str) -> Value<()> {
    Value::Str(s.to_owned(), ())
}

const SLO_ROWS: &[SloRow] = &[
    SloRow { dsl: "slo(availability = \"100%\")", core: || slo_message(Some(("availability", text("100%")))) },
    SloRow { dsl: "slo(availability = \"99.9\")", core: || slo_message(Some(("availability", text("99.9")))) },
    SloRow {
        dsl: "slo(availability = \"99.99999%\")",
        core: || slo_message(Some(("availability", text("99.99999%")))),
    },
    SloRow { dsl: "slo(availability = 99)", core: || slo_message(Some(("availability", Value::Number(99, ())))) },
    SloRow { dsl: "slo(availabilty = \"99.9%\")", core: || slo_message(Some(("availabilty", text("99.9%")))) },
    SloRow { dsl: "slo(p99 = \"300 ms\")", core: || slo_message(Some(("p99", text("300 ms")))) },
    SloRow { dsl: "slo(p99 = \"0ms\")", core: || slo_message(Some(("p99", text("0ms")))) },
    SloRow {
        dsl: "timeout = \"2s\", slo(p99 = \"3s\")",
        core: || slo::p99_over_timeout(Duration::from_secs(3), Duration::from_secs(2)).unwrap(),
    },
    SloRow { dsl: "slo()", core: || slo_message(None) },
];

#[test]
fn the_macro_says_what_the_slo_grammar_says_about_each_bad_objective() {
    let source = include_str!("../fail/slo_values.rs");
    let stderr = include_str!("../fail/slo_values.stderr");
    let mut failures = Vec::new();
    for row in SLO_ROWS {
        if !source.contains(row.dsl) {
            failures.push(format!("fail/slo_values.rs lacks `{}`", row.dsl));
        }
        let message = (row.core)();
        if !stderr.contains(&format!("error: {message}\n")) {
            failures.push(format!("the compiler does not say, for `{}`:\n  {message}", row.dsl));
        }
    }
    let errors = stderr.lines().filter(|l| l.starts_with("error")).count();
    if errors != SLO_ROWS.len() {
        failures.push(format!("fail/slo_values.stderr has {errors} errors for {} rows", SLO_ROWS.len()));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A `hedge(..)` of `#[call]` as written in `fail/hedge_misuse.rs`, and the message the policy
/// grammar gives for it (read here with `orchestrate_core::policy::hedge`).
struct HedgeRow {
    dsl: &'static str,
    core: fn() -> String,
}

/// What `hedge::read` says about `hedge(entries)`.
fn hedge_message(entries: Vec<(&str, Value<()>)>) -> String {
    let entries = entries.into_iter().map(|(key, value)| Entry::new(key, (), value)).collect();
    let mut reader = Reader::new(Syntax::Dsl);
    assert_eq!(hedge::read(&mut reader, &(), &Value::Table(entries, ())), None);
    reader.problems()[0].message.clone()
}

const HEDGE_ROWS: &[HedgeRow] = &[
    HedgeRow {
        dsl: "post = \"/charges\", body = &order_id, hedge(after = \"50ms\")",
        core: || hedge::unsafe_call_hedge("charge", Some("POST")),
    },
    HedgeRow { dsl: "hedge(after = \"200ms\")", core: || hedge::after_not_below_timeout("late", 200, 200) },
    HedgeRow {
        dsl: "hedge(after = \"50ms\", max = 4)",
        core: || hedge_message(vec![("after", text("50ms")), ("max", Value::Number(4, ()))]),
    },
    HedgeRow { dsl: "hedge(max = 2)", core: || hedge_message(vec![("max", Value::Number(2, ()))]) },
];

#[test]
fn the_macro_says_what_the_hedge_grammar_says_about_each_bad_hedge() {
    let source = include_str!("../fail/hedge_misuse.rs");
    let stderr = include_str!("../fail/hedge_misuse.stderr");
    let mut failures = Vec::new();
    for row in HEDGE_ROWS {
        if !source.contains(row.dsl) {
            failures.push(format!("fail/hedge_misuse.rs lacks `{}`", row.dsl));
        }
        let message = (row.core)();
        if !stderr.contains(&format!("error: {message}\n")) {
            failures.push(format!("the compiler does not say, for `{}`:\n  {message}", row.dsl));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

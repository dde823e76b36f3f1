//! The Prometheus rules generated from the checkout summary's SLO (`/_orchestrate/alerts.yml`):
//! valid for `promtool check rules`, firing as `tests/alerts/checkout.test.yml` says on
//! synthetic series (`promtool test rules`), and reading the metrics `/metrics` really serves.
//!
//! Without `promtool` installed (Debian package `prometheus`; `scripts/test` installs it) the
//! promtool test prints a notice and returns, except under `CI=true`, where it fails.

mod support;

#[path = "../examples/checkout/app.rs"]
mod app;

use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use support::mocks::Mocks;

/// `promtool`, or `None` (with a notice) when it is not installed and `CI` is not `true`.
fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join("promtool")).find(|path| path.is_file()));
    if found.is_none() {
        let message = "promtool is not installed (Debian package `prometheus`; `scripts/test` installs it)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}: CI must run the alert rule tests");
        let _ = writeln!(std::io::stderr(), "skipped: {message}");
    }
    found
}

/// A directory of its own under the target directory's temporary space.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("orchestrate-alerts-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(promtool: &PathBuf, dir: &PathBuf, args: &[&str]) -> String {
    let output = Command::new(promtool).args(args).current_dir(dir).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "promtool {} failed:\n{text}", args.join(" "));
    text
}

#[test]
fn the_checkout_rules_pass_promtool_and_fire_as_the_unit_tests_say() {
    let Some(promtool) = promtool() else { return };
    let dir = scratch("promtool");
    std::fs::write(dir.join("alerts.yml"), orchestrate::ops::alert_rules(app::checkout::ENDPOINTS)).unwrap();
    std::fs::write(dir.join("checkout.test.yml"), include_str!("alerts/checkout.test.yml")).unwrap();
    let checked = run(&promtool, &dir, &["check", "rules", "alerts.yml"]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    run(&promtool, &dir, &["test", "rules", "checkout.test.yml"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The PromQL expressions of a rule file.
fn expressions(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|line| line.trim().strip_prefix("expr: "))
        .map(|quoted| serde_json::from_str::<String>(quoted).unwrap())
        .collect()
}

/// The metrics an expression reads, each with the labels its selector names (`name` →
/// `label` → the value it must equal, `None` for a regex match).
fn selectors(expr: &str) -> Vec<(String, BTreeMap<String, Option<String>>)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("orchestrate_") {
        rest = &rest[at..];
        let end = rest.find(|c: char| !(c.is_ascii_lowercase() || c == '_')).unwrap_or(rest.len());
        let name = rest[..end].to_owned();
        rest = &rest[end..];
        let mut labels = BTreeMap::new();
        if let Some(inner) = rest.strip_prefix('{') {
            let close = inner.find('}').unwrap();
            for matcher in inner[..close].split(',') {
                let (label, value) = matcher.split_once('=').unwrap();
                let exact = (!value.starts_with('~')).then(|| value.trim_matches('"').to_owned());
                labels.insert(label.to_owned(), exact);
            }
        }
        out.push((name, labels));
    }
    out
}

/// The labels of `by (..)` clauses.
fn grouped_by(expr: &str) -> BTreeSet<String> {
    expr.match_indices("by (")
        .flat_map(|(at, _)| {
            let inner = &expr[at + 4..];
            inner[..inner.find(')').unwrap()].split(',').map(|l| l.trim().to_owned()).collect::<Vec<_>>()
        })
        .collect()
}

/// One sample line of the text format: name and labels.
fn sample(line: &str) -> (String, BTreeMap<String, String>) {
    let (series, _) = line.rsplit_once(' ').unwrap();
    let (name, labels) = series.split_once('{').unwrap_or((series, ""));
    let labels = labels
        .trim_end_matches('}')
        .split("\",")
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap();
            (key.to_owned(), value.trim_matches('"').to_owned())
        })
        .collect();
    (name.to_owned(), labels)
}

#[tokio::test]
async fn the_rules_read_the_metrics_and_labels_that_metrics_serves() {
    orchestrate::ops::metrics::install().unwrap();
    let mocks = Mocks::start(0.0).await.unwrap();
    let runtime = mocks.runtime(app::services::ALL).build().unwrap();
    let ops = orchestrate::ops::router(&runtime, app::checkout::ENDPOINTS);
    let url = support::serve(orchestrate::router::app(app::checkout::router(&runtime).merge(ops))).await;
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{url}/checkout/summary"))
        .header("content-type", "application/json")
        .body(json!({"cartId": "c1", "userId": "u1"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let served = http.get(format!("{url}/_orchestrate/alerts.yml")).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert!(served.headers()["content-type"].to_str().unwrap().starts_with("application/yaml"));
    let rules = served.text().await.unwrap();
    assert_eq!(rules, orchestrate::ops::alert_rules(app::checkout::ENDPOINTS));

    let spec: serde_json::Value =
        http.get(format!("{url}/_orchestrate.json")).send().await.unwrap().json().await.unwrap();
    let summary = spec["endpoints"].as_array().unwrap().iter().find(|e| e["name"] == "Summary").unwrap();
    assert_eq!(summary["slo"], json!({"availability": "99.95%", "p99Ms": 300}));

    let text = http.get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
    let samples: Vec<_> = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).map(sample).collect();
    let mut read = BTreeSet::new();
    for expr in expressions(&rules) {
        let by = grouped_by(&expr);
        for (name, labels) in selectors(&expr) {
            read.insert(name.clone());
            let fits = samples.iter().any(|(have, have_labels)| {
                *have == name
                    && by.iter().all(|l| have_labels.contains_key(l))
                    && labels.iter().all(|(label, value)| match (have_labels.get(label), value) {
                        (None, _) => false,
                        (Some(have), Some(want)) => have == want,
                        (Some(_), None) => true,
                    })
            });
            assert!(
                fits,
                "`{expr}` reads `{name}` with {labels:?} (by {by:?}), which /metrics does not serve:\n{text}"
            );
        }
    }
    let expected = [
        "orchestrate_request_duration_seconds_count",
        "orchestrate_request_duration_seconds_bucket",
        "orchestrate_calls_total",
        "orchestrate_breaker_state",
    ];
    assert_eq!(read, expected.into_iter().map(str::to_owned).collect::<BTreeSet<_>>());
}

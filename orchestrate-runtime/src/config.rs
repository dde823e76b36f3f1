//! Start-up configuration: base URLs and policy overrides from the environment and a TOML file,
//! checked by the same rules as `services!`.
//!
//! # Sources, strongest first
//!
//! 1. `ORCHESTRATE_<SERVICE>_URL` (see [`env_var_name`](crate::env_var_name)): a service's base URL.
//! 2. The configuration file: the path in `ORCHESTRATE_CONFIG`, else the one given to
//!    [`RuntimeBuilder::config_file`](crate::RuntimeBuilder::config_file) (or the text given to
//!    [`config_str`](crate::RuntimeBuilder::config_str)).
//! 3. [`RuntimeBuilder::base_url`](crate::RuntimeBuilder::base_url).
//! 4. The `services!` declaration.
//!
//! [`RuntimeBuilder::read_env(false)`](crate::RuntimeBuilder::read_env) ignores both environment
//! variables.
//!
//! # File format
//!
//! One table per service under `services`, with the keys and the grammar of `services!`
//! (durations like `"100ms"`, sizes like `"8MiB"`), plus `url`:
//!
//! ```toml
//! [services.cart]
//! url = "http://cart.prod.internal:8080"
//! max_in_flight = 64
//! max_body = "16MiB"
//! http2 = false
//! forward_headers = ["x-tenant-id"]
//! retry = { attempts = 2, backoff = "50ms", max_backoff = "400ms", on = ["5xx", "timeout", "connect"] }
//! breaker = { failures = 10, within = "60s", open_for = "15s", probes = 2 }
//! retry_budget = { percent = 10, within = "10s", min_retries = 5 }
//!
//! [services.shipping.breaker]
//! open_for = "2m"
//! ```
//!
//! A policy table is merged key by key into what `services!` declares, so `open_for` alone
//! changes only that; a service that declares no retry (or no breaker) needs every key that
//! `services!` would need. `forward_headers` replaces the declared list. Giving `backoff` without `max_backoff` sets the cap to ten times the
//! backoff, as `services!` does.
//!
//! # Checks
//!
//! [`RuntimeBuilder::build`](crate::RuntimeBuilder::build) refuses to start, with a
//! [`ConfigError`] naming the file, line and column, on: a service or key that does not exist
//! (with the closest name suggested), a value of the wrong type, a malformed duration, size, URL or
//! header name, a value out of range (`attempts` from 1 to 10, `percent` up to 100, `max_backoff`
//! not below `backoff`, ...). Given the application's endpoints
//! ([`RuntimeBuilder::endpoints`](crate::RuntimeBuilder::endpoints)), it also recomputes each
//! endpoint's worst case with the configured retries, as `#[endpoint]` does at compile time, and
//! refuses a configuration under which a critical path can no longer meet its endpoint's
//! `timeout`.
//!
//! ```
//! use orchestrate_runtime::{RetryPolicy, Runtime, ServiceSpec};
//! use std::time::Duration;
//! const SERVICES: &[ServiceSpec] =
//!     &[ServiceSpec::new("cart", "http://cart.internal:8080").with_retry(RetryPolicy::new(3, Duration::from_millis(100)))];
//! let err = Runtime::builder(SERVICES)
//!     .read_env(false)
//!     .config_str("[services.cart.retry]\nattempts = 2\nbackof = \"50ms\"\n")
//!     .build()
//!     .unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "`retry.backof` of service `cart` (from <config>:3:1): unknown key `backof` in `retry`; did you mean `backoff`? \
//!      expected one of: attempts, backoff, max_backoff, on"
//! );
//! ```

use crate::endpoint::{EndpointSpec, NodeKind};
use crate::runtime::{ConfigError, validate_base_url};
use crate::service::{BreakerPolicy, RetryBudget, RetryOn, RetryPolicy, ServiceSpec};
use orchestrate_core::budget::{Cost, over_budget};
use orchestrate_core::suggest::did_you_mean;
use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The environment variable naming the configuration file.
///
/// ```
/// assert_eq!(orchestrate_runtime::config::CONFIG_ENV, "ORCHESTRATE_CONFIG");
/// ```
pub const CONFIG_ENV: &str = "ORCHESTRATE_CONFIG";

const SERVICE_KEYS: &[&str] =
    &["url", "retry", "breaker", "max_in_flight", "max_body", "retry_budget", "forward_headers", "http2"];
const RETRY_KEYS: &[&str] = &["attempts", "backoff", "max_backoff", "on"];
const BREAKER_KEYS: &[&str] = &["failures", "within", "open_for", "probes"];
const BUDGET_KEYS: &[&str] = &["percent", "within", "min_retries"];

/// A base URL from the file, with where it was written.
pub(crate) type FileUrls = HashMap<&'static str, (String, String)>;

/// Applies the configuration `text` (named `name` in messages) to `specs`; returns the base URLs
/// it sets.
pub(crate) fn apply(name: &str, text: &str, specs: &mut [ServiceSpec]) -> Result<FileUrls, ConfigError> {
    let document = DeTable::parse(text).map_err(|error| ConfigError::Syntax {
        origin: error.span().map_or_else(|| name.to_owned(), |span| position(name, text, &span)),
        reason: error.message().to_owned(),
    })?;
    let mut reader = Reader { name, text, errors: Vec::new() };
    let mut urls = FileUrls::new();
    for (key, value) in document.get_ref() {
        if key.get_ref() != "services" {
            reader.fail(
                key.span(),
                None,
                key.get_ref(),
                format!("unknown key `{}`; expected `services`", key.get_ref()),
            );
            continue;
        }
        let Some(services) = reader.table(value, None, "services") else { continue };
        for (service, table) in services {
            let known: Vec<&'static str> = specs.iter().map(|s| s.name).collect();
            let Some(spec) = specs.iter_mut().find(|s| s.name == service.get_ref()) else {
                let name = service.get_ref();
                let reason = unknown_service(name, &known);
                reader.fail(service.span(), None, &format!("services.{name}"), reason);
                continue;
            };
            if let Some(table) = reader.table(table, Some(spec.name), "") {
                reader.service(spec, table, &mut urls);
            }
        }
    }
    reader.finish().map(|()| urls)
}

/// Checks every endpoint's worst case against its timeout under `specs`.
pub(crate) fn check_budgets(endpoints: &[&'static EndpointSpec], specs: &[ServiceSpec]) -> Result<(), ConfigError> {
    let mut errors = Vec::new();
    for endpoint in endpoints {
        let mut costs = Vec::with_capacity(endpoint.nodes.len());
        let mut deps = Vec::with_capacity(endpoint.nodes.len());
        for node in endpoint.nodes {
            deps.push(node.deps);
            let NodeKind::Call(call) = &node.kind else {
                costs.push(Cost::free(node.name));
                continue;
            };
            let Some(spec) = specs.iter().find(|s| s.name == call.service) else {
                errors.push(ConfigError::Budget {
                    endpoint: endpoint.name,
                    reason: format!(
                        "its call `{}` goes to service `{}`, which this runtime does not declare; build the runtime from the `services!` the endpoint uses",
                        node.name, call.service
                    ),
                });
                continue;
            };
            let retry = if call.retryable { call.effective_retry(&spec.retry) } else { RetryPolicy::NONE };
            costs.push(Cost::call(
                node.name,
                millis(call.timeout),
                retry.attempts,
                millis(retry.backoff),
                millis(retry.max_backoff),
            ));
        }
        if costs.len() != endpoint.nodes.len() {
            continue;
        }
        if let Some(message) = over_budget(endpoint.name, &costs, &deps, millis(endpoint.timeout)) {
            errors.push(ConfigError::Budget { endpoint: endpoint.name, reason: message.as_str().to_owned() });
        }
    }
    collect(errors)
}

/// `; did you mean `x`? ` or `; `, to go before the rest of a message.
fn hint(name: &str, candidates: &[&str]) -> String {
    match did_you_mean(name, candidates.iter().copied()) {
        hint if hint.is_empty() => "; ".to_owned(),
        hint => hint + " ",
    }
}

/// "unknown service `carts`; did you mean `cart`? declared services are: cart, shipping".
pub(crate) fn unknown_service(name: &str, known: &[&str]) -> String {
    format!("unknown service `{name}`{}declared services are: {}", hint(name, known), known.join(", "))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn collect(mut errors: Vec<ConfigError>) -> Result<(), ConfigError> {
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(ConfigError::Several(errors)),
    }
}

/// `name:line:column` of the byte offset `span.start` in `text`.
fn position(name: &str, text: &str, span: &Range<usize>) -> String {
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{name}:{line}:{column}")
}

type Table<'i> = DeTable<'i>;

/// Walks the document, collecting every mistake with its position.
struct Reader<'a> {
    name: &'a str,
    text: &'a str,
    errors: Vec<(usize, ConfigError)>,
}

impl<'a> Reader<'a> {
    fn fail(&mut self, span: Range<usize>, service: Option<&str>, key: &str, reason: String) {
        let error = ConfigError::Invalid {
            service: service.map(str::to_owned),
            key: key.to_owned(),
            origin: position(self.name, self.text, &span),
            reason,
        };
        self.errors.push((span.start, error));
    }

    fn finish(mut self) -> Result<(), ConfigError> {
        self.errors.sort_by_key(|(at, _)| *at);
        collect(self.errors.into_iter().map(|(_, e)| e).collect())
    }

    fn table<'v, 'i>(
        &mut self,
        value: &'v Spanned<DeValue<'i>>,
        service: Option<&str>,
        key: &str,
    ) -> Option<&'v Table<'i>> {
        match value.get_ref() {
            DeValue::Table(table) => Some(table),
            other => {
                let what =
                    if key.is_empty() { format!("`services.{}`", service.unwrap_or("")) } else { format!("`{key}`") };
                let reason = format!("{what} must be a table, e.g. `{{ .. }}`; found {}", other.type_str());
                self.fail(value.span(), service, key, reason);
                None
            }
        }
    }

    /// Reads one service's table into its spec.
    fn service(&mut self, spec: &mut ServiceSpec, table: &Table<'_>, urls: &mut FileUrls) {
        let service = Some(spec.name);
        for (key, value) in table {
            let name = key.get_ref().as_ref();
            match name {
                "url" => {
                    if let Some(url) = self.string(value, service, "url") {
                        match validate_base_url(url) {
                            Ok(()) => {
                                urls.insert(spec.name, (url.to_owned(), position(self.name, self.text, &value.span())));
                            }
                            Err(reason) => self.fail(value.span(), service, "url", format!("`{url}` {reason}")),
                        }
                    }
                }
                "max_in_flight" => {
                    if let Some(n) = self.int(value, service, "max_in_flight", 1, u64::from(u32::MAX)) {
                        spec.max_in_flight = Some(n as u32);
                    }
                }
                "max_body" => {
                    if let Some(text) = self.string(value, service, "max_body") {
                        match orchestrate_core::size::parse_size(text) {
                            Ok(bytes) => spec.max_body = bytes,
                            Err(e) => self.fail(value.span(), service, "max_body", format!("invalid `max_body`: {e}")),
                        }
                    }
                }
                "http2" => match value.get_ref() {
                    DeValue::Boolean(b) => spec.http2 = *b,
                    _ => self.fail(value.span(), service, "http2", "`http2` takes `true` or `false`".to_owned()),
                },
                "forward_headers" => {
                    if let Some(headers) = self.headers(value, service) {
                        spec.forward_headers = headers;
                    }
                }
                "retry" => {
                    if let Some(t) = self.table(value, service, "retry") {
                        let span = value.span();
                        if let Some(retry) = self.retry(t, service, spec.retry, span) {
                            spec.retry = retry;
                        }
                    }
                }
                "breaker" => {
                    if let Some(t) = self.table(value, service, "breaker")
                        && let Some(breaker) = self.breaker(t, service, spec.breaker, value.span())
                    {
                        spec.breaker = Some(breaker);
                    }
                }
                "retry_budget" => {
                    if let Some(t) = self.table(value, service, "retry_budget") {
                        spec.retry_budget = self.budget(t, service, spec.retry_budget);
                    }
                }
                _ => self.unknown(key, service, "", SERVICE_KEYS),
            }
        }
    }

    fn unknown(
        &mut self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        service: Option<&str>,
        within: &str,
        valid: &[&str],
    ) {
        let name = key.get_ref();
        let (path, what) = if within.is_empty() {
            (name.to_string(), "service policies".to_owned())
        } else {
            (format!("{within}.{name}"), within.to_owned())
        };
        let reason =
            format!("unknown key `{name}` in `{what}`{}expected one of: {}", hint(name, valid), valid.join(", "));
        self.fail(key.span(), service, &path, reason);
    }

    fn string<'v>(&mut self, value: &'v Spanned<DeValue<'_>>, service: Option<&str>, key: &str) -> Option<&'v str> {
        match value.get_ref() {
            DeValue::String(s) => Some(s),
            other => {
                let example = match key.rsplit('.').next().unwrap_or(key) {
                    "url" => "\"http://cart.internal:8080\"",
                    "max_body" => "\"8MiB\"",
                    _ => "\"100ms\"",
                };
                let short = key.rsplit('.').next().unwrap_or(key);
                let reason =
                    format!("`{short}` takes a string, e.g. `{short} = {example}`; found {}", other.type_str());
                self.fail(value.span(), service, key, reason);
                None
            }
        }
    }

    fn int(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        service: Option<&str>,
        key: &str,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let short = key.rsplit('.').next().unwrap_or(key);
        let parsed = match value.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok(),
            _ => {
                let reason = format!("`{short}` takes a whole number, e.g. `{short} = 3`");
                self.fail(value.span(), service, key, reason);
                return None;
            }
        };
        match parsed.and_then(|n| u64::try_from(n).ok()) {
            Some(n) if n < min => {
                self.fail(value.span(), service, key, format!("`{short}` must be at least {min}"));
                None
            }
            Some(n) if n > max => {
                let reason = match short {
                    "attempts" => {
                        "more than 10 attempts multiplies load on a failing service; use at most 10".to_owned()
                    }
                    "percent" => "`percent` is a share of calls, at most 100".to_owned(),
                    _ => format!("`{short}` must be at most {max}"),
                };
                self.fail(value.span(), service, key, reason);
                None
            }
            Some(n) => Some(n),
            None => {
                self.fail(value.span(), service, key, format!("`{short}` must be at least {min}"));
                None
            }
        }
    }

    fn duration(&mut self, value: &Spanned<DeValue<'_>>, service: Option<&str>, key: &str) -> Option<Duration> {
        let text = self.string(value, service, key)?;
        let short = key.rsplit('.').next().unwrap_or(key);
        match orchestrate_core::duration::parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.fail(value.span(), service, key, format!("invalid `{short}`: {e}"));
                None
            }
        }
    }

    fn headers(&mut self, value: &Spanned<DeValue<'_>>, service: Option<&str>) -> Option<&'static [&'static str]> {
        let DeValue::Array(items) = value.get_ref() else {
            let reason = "`forward_headers` takes a list, e.g. `forward_headers = [\"x-tenant-id\"]`".to_owned();
            self.fail(value.span(), service, "forward_headers", reason);
            return None;
        };
        let mut out = Vec::new();
        let before = self.errors.len();
        for item in items.iter() {
            let Some(text) = self.string(item, service, "forward_headers") else { continue };
            match orchestrate_core::headers::forwardable(text) {
                Ok(name) => out.push(name),
                Err(reason) => self.fail(item.span(), service, "forward_headers", reason),
            }
        }
        if self.errors.len() != before {
            return None;
        }
        // Start-up configuration lives as long as the process: leaking it once gives the
        // `&'static` lists `ServiceSpec` holds.
        let leaked: Vec<&'static str> = out.into_iter().map(|h| &*Box::leak(h.into_boxed_str())).collect();
        Some(Box::leak(leaked.into_boxed_slice()))
    }

    fn retry(
        &mut self,
        table: &Table<'_>,
        service: Option<&str>,
        declared: RetryPolicy,
        span: Range<usize>,
    ) -> Option<RetryPolicy> {
        let before = self.errors.len();
        let mut retry = declared;
        let (mut attempts, mut backoff, mut max_backoff) = (None, None, None);
        for (key, value) in table {
            match key.get_ref().as_ref() {
                "attempts" => attempts = self.int(value, service, "retry.attempts", 1, 10).map(|n| n as u32),
                "backoff" => backoff = self.duration(value, service, "retry.backoff").map(|d| (d, value.span())),
                "max_backoff" => {
                    max_backoff = self.duration(value, service, "retry.max_backoff").map(|d| (d, value.span()))
                }
                "on" => {
                    if let Some(on) = self.retry_on(value, service) {
                        retry.on = on;
                    }
                }
                _ => self.unknown(key, service, "retry", RETRY_KEYS),
            }
        }
        let fresh = declared == RetryPolicy::NONE;
        for (key, missing) in [("attempts", attempts.is_none()), ("backoff", backoff.is_none())] {
            if fresh && missing && !table.contains_key(key) {
                let reason = format!(
                    "`retry` needs `{key}` (the service declares no retry to start from), e.g. `retry = {{ attempts = 3, backoff = \"100ms\" }}`"
                );
                self.fail(span.clone(), service, "retry", reason);
            }
        }
        if self.errors.len() != before {
            return None;
        }
        if let Some(a) = attempts {
            retry.attempts = a;
        }
        if let Some((b, _)) = backoff {
            retry.backoff = b;
            retry.max_backoff = b.saturating_mul(10);
        }
        if let Some((m, _)) = max_backoff {
            retry.max_backoff = m;
        }
        if retry.max_backoff < retry.backoff {
            let at = max_backoff.or(backoff).map_or(span, |(_, s)| s);
            let reason = "`max_backoff` is smaller than `backoff`; raise it or remove it".to_owned();
            self.fail(at, service, "retry.max_backoff", reason);
            return None;
        }
        Some(retry)
    }

    fn retry_on(&mut self, value: &Spanned<DeValue<'_>>, service: Option<&str>) -> Option<RetryOn> {
        let DeValue::Array(items) = value.get_ref() else {
            let reason = "`on` takes a list, e.g. `on = [\"5xx\", \"timeout\", \"connect\"]`".to_owned();
            self.fail(value.span(), service, "retry.on", reason);
            return None;
        };
        let mut on = RetryOn { server_errors: false, timeouts: false, connect_errors: false, too_many_requests: false };
        let before = self.errors.len();
        for item in items.iter() {
            let Some(text) = self.string(item, service, "retry.on") else { continue };
            match text {
                "5xx" => on.server_errors = true,
                "timeout" => on.timeouts = true,
                "connect" => on.connect_errors = true,
                "429" => on.too_many_requests = true,
                other => {
                    let reason = format!(
                        "unknown retry condition `{other}`; use `5xx`, `timeout`, `connect` or `429` (4xx other than 429 are never retried)"
                    );
                    self.fail(item.span(), service, "retry.on", reason);
                }
            }
        }
        (self.errors.len() == before).then_some(on)
    }

    fn breaker(
        &mut self,
        table: &Table<'_>,
        service: Option<&str>,
        declared: Option<BreakerPolicy>,
        span: Range<usize>,
    ) -> Option<BreakerPolicy> {
        let before = self.errors.len();
        let mut policy = declared.unwrap_or(BreakerPolicy {
            failures: 1,
            within: Duration::ZERO,
            open_for: Duration::ZERO,
            probes: 1,
        });
        for (key, value) in table {
            match key.get_ref().as_ref() {
                "failures" => {
                    if let Some(n) = self.int(value, service, "breaker.failures", 1, u64::from(u32::MAX)) {
                        policy.failures = n as u32;
                    }
                }
                "probes" => {
                    if let Some(n) = self.int(value, service, "breaker.probes", 1, u64::from(u32::MAX)) {
                        policy.probes = n as u32;
                    }
                }
                "within" => {
                    if let Some(d) = self.duration(value, service, "breaker.within") {
                        policy.within = d;
                    }
                }
                "open_for" => {
                    if let Some(d) = self.duration(value, service, "breaker.open_for") {
                        policy.open_for = d;
                    }
                }
                _ => self.unknown(key, service, "breaker", BREAKER_KEYS),
            }
        }
        if declared.is_none() {
            for key in BREAKER_KEYS {
                if !table.contains_key(*key) {
                    let reason = format!(
                        "`breaker` needs `{key}` (the service declares no breaker to start from), e.g. `breaker = {{ failures = 5, within = \"60s\", open_for = \"30s\", probes = 3 }}`"
                    );
                    self.fail(span.clone(), service, "breaker", reason);
                }
            }
        }
        (self.errors.len() == before).then_some(policy)
    }

    fn budget(&mut self, table: &Table<'_>, service: Option<&str>, declared: RetryBudget) -> RetryBudget {
        let mut budget = declared;
        for (key, value) in table {
            match key.get_ref().as_ref() {
                "percent" => {
                    if let Some(n) = self.int(value, service, "retry_budget.percent", 0, 100) {
                        budget.percent = n as u32;
                    }
                }
                "min_retries" => {
                    if let Some(n) = self.int(value, service, "retry_budget.min_retries", 0, u64::from(u32::MAX)) {
                        budget.min_retries = n as u32;
                    }
                }
                "within" => {
                    if let Some(d) = self.duration(value, service, "retry_budget.within") {
                        budget.within = d;
                    }
                }
                _ => self.unknown(key, service, "retry_budget", BUDGET_KEYS),
            }
        }
        budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICES: [ServiceSpec; 2] = [
        ServiceSpec::new("cart", "http://cart.internal:8080")
            .with_retry(RetryPolicy::new(3, Duration::from_millis(100)))
            .with_breaker(BreakerPolicy {
                failures: 5,
                within: Duration::from_secs(60),
                open_for: Duration::from_secs(30),
                probes: 3,
            }),
        ServiceSpec::new("shipping", "http://shipping.internal:8080"),
    ];

    fn apply_to(text: &str) -> Result<(Vec<ServiceSpec>, FileUrls), String> {
        let mut specs = SERVICES.to_vec();
        apply("app.toml", text, &mut specs).map(|urls| (specs, urls)).map_err(|e| e.to_string())
    }

    #[test]
    fn overrides_merge_into_the_declaration() {
        let (specs, urls) = apply_to(
            r#"
[services.cart]
url = "http://10.0.0.7:8080"
max_in_flight = 64
max_body = "16MiB"
http2 = true
forward_headers = ["X-Tenant-Id"]
retry = { attempts = 2, on = ["5xx", "429"] }

[services.cart.breaker]
open_for = "2m"

[services.shipping]
retry = { attempts = 4, backoff = "50ms" }
breaker = { failures = 3, within = "30s", open_for = "60s", probes = 2 }
retry_budget = { percent = 10 }
"#,
        )
        .unwrap();
        let cart = &specs[0];
        assert_eq!(urls["cart"], ("http://10.0.0.7:8080".to_owned(), "app.toml:3:7".to_owned()));
        assert_eq!((cart.max_in_flight, cart.max_body, cart.http2), (Some(64), 16 << 20, true));
        assert_eq!(cart.forward_headers, ["x-tenant-id"]);
        assert_eq!((cart.retry.attempts, cart.retry.backoff), (2, Duration::from_millis(100)));
        assert!(cart.retry.on.too_many_requests && !cart.retry.on.timeouts);
        let breaker = cart.breaker.unwrap();
        assert_eq!((breaker.open_for, breaker.failures), (Duration::from_secs(120), 5));
        let shipping = &specs[1];
        assert_eq!(shipping.retry, RetryPolicy::new(4, Duration::from_millis(50)));
        assert_eq!(shipping.breaker.unwrap().probes, 2);
        assert_eq!((shipping.retry_budget.percent, shipping.retry_budget.min_retries), (10, 10));
    }

    #[test]
    fn every_mistake_is_reported_with_its_position() {
        let err = apply_to(
            r#"[services.carts]
max_in_flight = 4

[services.cart]
max_in_flite = 4
retry = { attempts = 11, backoff = "100 ms" }
max_body = "8 MB"
url = "cart.internal"

[services.shipping]
breaker = { failures = 3 }
retry = { attempts = 2 }
retry_budget = { percent = 150 }
http2 = "yes"
"#,
        )
        .unwrap_err();
        let expected = [
            "`services.carts` (from app.toml:1:11): unknown service `carts`; did you mean `cart`? declared services are: cart, shipping",
            "`max_in_flite` of service `cart` (from app.toml:5:1): unknown key `max_in_flite` in `service policies`; did you mean `max_in_flight`? expected one of: url, retry, breaker, max_in_flight, max_body, retry_budget, forward_headers, http2",
            "`retry.attempts` of service `cart` (from app.toml:6:22): more than 10 attempts multiplies load on a failing service; use at most 10",
            "`retry.backoff` of service `cart` (from app.toml:6:36): invalid `backoff`: durations have no spaces; write \"100ms\"",
            "`max_body` of service `cart` (from app.toml:7:12): invalid `max_body`: sizes have no spaces; write \"8MB\"",
            "`url` of service `cart` (from app.toml:8:7): `cart.internal` must start with `http://` or `https://`",
            "`breaker` of service `shipping` (from app.toml:11:11): `breaker` needs `within` (the service declares no breaker to start from), e.g. `breaker = { failures = 5, within = \"60s\", open_for = \"30s\", probes = 3 }`",
        ];
        for line in expected {
            assert!(err.contains(line), "missing\n{line}\nin\n{err}");
        }
        assert!(err.contains("`retry` needs `backoff`"), "{err}");
        assert!(err.contains("`percent` is a share of calls, at most 100"), "{err}");
        assert!(err.contains("`http2` takes `true` or `false`"), "{err}");
    }

    #[test]
    fn syntax_errors_and_wrong_types_are_explained() {
        let err = apply_to("[services.cart\nurl = 1").unwrap_err();
        assert!(err.starts_with("the configuration at app.toml:1:"), "{err}");
        let err = apply_to("[services.cart]\nretry = 3").unwrap_err();
        assert_eq!(
            err,
            "`retry` of service `cart` (from app.toml:2:9): `retry` must be a table, e.g. `{ .. }`; found integer"
        );
        let err = apply_to("[services.cart]\nretry = { backoff = \"1s\", max_backoff = \"100ms\" }").unwrap_err();
        assert!(err.contains("`max_backoff` is smaller than `backoff`"), "{err}");
        let err = apply_to("listen = \"0.0.0.0:80\"").unwrap_err();
        assert!(err.contains("unknown key `listen`; expected `services`"), "{err}");
    }
}

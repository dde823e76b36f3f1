//! The policies of one downstream service, as a whole: the keys inside `services! { name: ".."
//! { .. } }` and inside `[services.name]` of the configuration file.

use super::value::{Entry, Example, Reader, Syntax, Value};
use super::{
    BalancePolicy, BreakerPolicy, Concurrency, HedgeBudget, RetryBudget, RetryPolicy, balance, breaker, bulkhead,
    hedge, retry, retry_budget,
};

/// Default response body cap: 8 MiB.
pub const DEFAULT_MAX_BODY: u64 = 8 * 1024 * 1024;

/// Every policy of a service, with the defaults of a service that declares none.
///
/// ```
/// use orchestrate_core::policy::ServicePolicies;
/// let defaults = ServicePolicies::default();
/// assert_eq!((defaults.max_body, defaults.breaker, defaults.http2), (8 << 20, None, false));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ServicePolicies {
    /// The base URL (configuration file only; `services!` writes it before the policies).
    pub url: Option<String>,
    /// Retries of idempotent calls.
    pub retry: RetryPolicy,
    /// Circuit breaker, if any.
    pub breaker: Option<BreakerPolicy>,
    /// Concurrency limit (adaptive unless fixed).
    pub max_in_flight: Concurrency,
    /// Response body cap in bytes.
    pub max_body: u64,
    /// Share of calls that may be retries.
    pub retry_budget: RetryBudget,
    /// Inbound headers forwarded besides the default allow-list, lower-cased.
    pub forward_headers: Vec<String>,
    /// HTTP/2 only.
    pub http2: bool,
    /// Outbound rate limit (`rate_limit = "200/s"`), if any.
    pub rate_limit: Option<super::rate_limit::Outbound>,
    /// Balancing over several instances and their ejection.
    pub balance: BalancePolicy,
    /// Share of the hedged calls that may send a hedge.
    pub hedge_budget: HedgeBudget,
}

impl Default for ServicePolicies {
    fn default() -> Self {
        Self {
            url: None,
            retry: RetryPolicy::NONE,
            breaker: None,
            max_in_flight: Concurrency::AUTO,
            max_body: DEFAULT_MAX_BODY,
            retry_budget: RetryBudget::DEFAULT,
            forward_headers: Vec::new(),
            http2: false,
            rate_limit: None,
            balance: BalancePolicy::DEFAULT,
            hedge_budget: HedgeBudget::DEFAULT,
        }
    }
}

/// The policy keys of a service (the configuration file also takes `url`).
pub const KEYS: &[&str] = &[
    "retry",
    "breaker",
    "max_in_flight",
    "max_body",
    "retry_budget",
    "forward_headers",
    "http2",
    "rate_limit",
    "balance",
    "hedge_budget",
];

const TOML_KEYS: &[&str] = &[
    "url",
    "retry",
    "breaker",
    "max_in_flight",
    "max_body",
    "retry_budget",
    "forward_headers",
    "http2",
    "rate_limit",
    "balance",
    "hedge_budget",
];

const HEADERS_EXAMPLE: Example =
    Example { dsl: "forward_headers = [\"x-tenant-id\"]", toml: "forward_headers = [\"x-tenant-id\"]" };

/// Reads the policies of a service from `entries`.
///
/// With `declared` (the configuration file over `services!`), each policy group is merged key by
/// key into what is declared: `open_for` alone changes only that; a group the declaration lacks
/// (no retry, no breaker) needs every key `services!` would need. Without it (in `services!`),
/// every group needs its keys. `forward_headers` replaces the declared list.
///
/// ```
/// use orchestrate_core::policy::{Entry, Reader, Syntax, Value, service};
/// let mut reader = Reader::new(Syntax::Dsl);
/// let entries = vec![Entry::new("max_in_flite", 1, Value::Number(4, 2))];
/// service::read(&mut reader, &entries, None);
/// assert_eq!(
///     reader.problems()[0].message,
///     "unknown key `max_in_flite` in `service policies`; did you mean `max_in_flight`? \
///      (expected one of: retry, breaker, max_in_flight, max_body, retry_budget, forward_headers, http2, rate_limit, balance, hedge_budget)"
/// );
/// ```
pub fn read<P: Clone>(
    reader: &mut Reader<P>,
    entries: &[Entry<P>],
    declared: Option<&ServicePolicies>,
) -> Option<ServicePolicies> {
    let before = reader.seen();
    let valid = match reader.syntax() {
        Syntax::Dsl => KEYS,
        Syntax::Toml => TOML_KEYS,
    };
    let keys = reader.keys("", entries, valid);
    let mut policies = declared.cloned().unwrap_or_default();
    let merge = declared.is_some();
    for entry in &keys.entries {
        let (at, v) = (&entry.at, &entry.value);
        match entry.key.as_str() {
            "url" => {
                // Several instances: a list of URLs, or one string with them separated by commas.
                let joined = match v {
                    Value::List(items, _) if items.iter().all(|i| matches!(i, Value::Str(..))) => Some(
                        items
                            .iter()
                            .filter_map(|i| if let Value::Str(s, _) = i { Some(s.as_str()) } else { None })
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                    _ => reader.string(v, "url", "\"http://cart.internal:8080\"").map(str::to_owned),
                };
                if let Some(url) = joined {
                    match crate::url::check_base_urls(&url) {
                        Ok(()) => policies.url = Some(url),
                        Err(reason) => reader.fail(v.at(), "url", format!("`{url}` {reason}")),
                    }
                }
            }
            "balance" => {
                let base = merge.then_some(policies.balance);
                if let Some(b) = balance::read(reader, v, base) {
                    policies.balance = b;
                }
            }
            "retry" => {
                let base = (merge && policies.retry != RetryPolicy::NONE).then_some(policies.retry);
                if let Some(r) = retry::read(reader, at, v, base) {
                    policies.retry = r;
                }
            }
            "breaker" => {
                let base = if merge { policies.breaker } else { None };
                if let Some(b) = breaker::read(reader, at, v, base) {
                    policies.breaker = Some(b);
                }
            }
            "retry_budget" => {
                let base = merge.then_some(policies.retry_budget);
                if let Some(b) = retry_budget::read(reader, at, v, base) {
                    policies.retry_budget = b;
                }
            }
            "rate_limit" => {
                if let Some(limit) = super::rate_limit::outbound(reader, v) {
                    policies.rate_limit = Some(limit);
                }
            }
            "hedge_budget" => {
                if let Some(budget) = hedge::read_budget(reader, v) {
                    policies.hedge_budget = budget;
                }
            }
            "max_in_flight" => {
                if let Some(limit) = bulkhead::read(reader, v) {
                    policies.max_in_flight = limit;
                }
            }
            "max_body" => {
                if let Some(bytes) = reader.size(v, "max_body") {
                    policies.max_body = bytes;
                }
            }
            "http2" => {
                if let Some(on) = reader.switch(v, "http2") {
                    policies.http2 = on;
                }
            }
            "forward_headers" => {
                if let Some(headers) = read_headers(reader, v) {
                    policies.forward_headers = headers;
                }
            }
            _ => {}
        }
    }
    (reader.seen() == before).then_some(policies)
}

fn read_headers<P: Clone>(reader: &mut Reader<P>, value: &Value<P>) -> Option<Vec<String>> {
    let items = reader.list(value, "forward_headers", &HEADERS_EXAMPLE)?;
    let before = reader.seen();
    let mut out = Vec::new();
    for item in items {
        let Some(text) = reader.string(item, "forward_headers", "\"x-tenant-id\"") else { continue };
        match crate::headers::forwardable(text) {
            Ok(name) => {
                if !out.contains(&name) {
                    out.push(name);
                }
            }
            Err(reason) => reader.fail(item.at(), "forward_headers", reason),
        }
    }
    (reader.seen() == before).then_some(out)
}

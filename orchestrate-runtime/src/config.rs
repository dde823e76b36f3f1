//! Start-up configuration: base URLs and policy overrides from the environment and a TOML file,
//! checked by the same rules as `services!`.
//!
//! # Sources, strongest first
//!
//! 1. `ORCHESTRATE_<SERVICE>_URL` (see [`env_var_name`]): a service's base URL.
//! 2. The configuration file: the path in `ORCHESTRATE_CONFIG`, else the one given to
//!    [`RuntimeBuilder::config_file`](crate::RuntimeBuilder::config_file) (or the text given to
//!    [`config_str`](crate::RuntimeBuilder::config_str)).
//! 3. [`RuntimeBuilder::base_url`](crate::RuntimeBuilder::base_url).
//! 4. The `services!` declaration.
//!
//! The shared store's Redis URL comes the same way: `ORCHESTRATE_REDIS_URL` ([`REDIS_URL_ENV`]),
//! then `[store] redis_url` in the file, then
//! [`RuntimeBuilder::redis_url`](crate::RuntimeBuilder::redis_url) (or the `redis_url` of
//! [`RuntimeBuilder::store`](crate::RuntimeBuilder::store)); without any, the state stays in
//! memory. The other `[store]` keys are merged key by key into the builder's
//! [`StoreSettings`], as a service's policies are into `services!`.
//!
//! [`RuntimeBuilder::read_env(false)`](crate::RuntimeBuilder::read_env) ignores every environment
//! variable.
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
//!
//! [store]
//! redis_url = "redis://127.0.0.1:6379/0"   # absent: the state stays in memory
//! command_timeout = "50ms"                 # each command, pipeline or script, connecting included
//! connect_timeout = "1s"                   # each connection attempt (in the background)
//! key_prefix = "checkout:"                 # before every key (default `orchestrate:`)
//! ```
//!
//! The keys of `[store]`, their ranges and messages are those of
//! [`orchestrate_core::policy::store`].
//!
//! Inbound rate limits (see [`rate_limit`](crate::rate_limit)), every key optional: the limits
//! override every endpoint's declaration key by key (`"off"` removes one), an endpoint's own table
//! overrides them for that endpoint:
//!
//! ```toml
//! [rate_limit]
//! global = "20000/min"
//! trusted_proxies = ["10.0.0.0/8"]   # whose X-Forwarded-For / Forwarded is believed
//! instances = 3                      # the local share of a shared limit while Redis is down
//! user_header = "x-user-id"          # absent: the `authorization` header identifies the user
//! max_keys = 100000                  # keys kept in memory per limit
//!
//! [rate_limit.endpoints.Summary]
//! per_user = "20/min"
//! per_ip = "off"
//! ```
//!
//! And, optionally, the saga journal's lease and how long it keeps records (see
//! [`saga`](crate::saga)):
//!
//! ```toml
//! [saga]
//! lease = "10s"
//! keep = "24h"
//! ```
//!
//! And, optionally, what the runtime keeps of recent requests for `/_orchestrate` (see
//! [`recent`](crate::recent); every key optional, merged into what the runtime builder set):
//!
//! ```toml
//! [recent]
//! enabled = true
//! last = 50
//! slowest = 10
//! failed = 20
//! within = "5m"
//! ```
//!
//! And the listener's limits on slow and abusive clients (see [`server`](crate::server); every
//! key optional, merged into what the runtime builder set):
//!
//! ```toml
//! [server]
//! header_read_timeout = "10s"
//! body_read_timeout = "30s"
//! max_connections = 10000
//! max_requests = 4096
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
//! header name or Redis URL, a value out of range (`attempts` from 1 to 10, `percent` up to 100,
//! `max_backoff` not below `backoff`, `command_timeout` up to 10 s, ...). Given the application's endpoints
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
//!      (expected one of: attempts, backoff, max_backoff, on)"
//! );
//! ```

use crate::service::ServiceSpec;
use crate::spec::{EndpointSpec, NodeKind};
use orchestrate_core::budget::{Cost, over_budget};
use orchestrate_core::policy::{
    self, CacheSettings, Entry, Problem, RateLimitSettings, Reader, RecentRequests, ServicePolicies, StoreSettings,
    Syntax, Value,
};
use orchestrate_core::suggest::did_you_mean;
use std::collections::HashMap;
use std::fmt;
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

/// The environment variable with the shared store's Redis URL (see [`crate::store`]).
///
/// ```
/// assert_eq!(orchestrate_runtime::config::REDIS_URL_ENV, "ORCHESTRATE_REDIS_URL");
/// ```
pub const REDIS_URL_ENV: &str = "ORCHESTRATE_REDIS_URL";

/// The top-level keys of the configuration file.
const TOP_LEVEL: &[&str] = &[
    "services",
    policy::store::SECTION,
    policy::recent::SECTION,
    policy::cache::SECTION,
    policy::rate_limit::SECTION,
    policy::auth::SECTION,
    policy::auth::OPS_SECTION,
    policy::server::SECTION,
    policy::canary::SECTION,
    policy::saga::SECTION,
];

/// A base URL from the file, with where it was written.
pub(crate) type FileUrls = HashMap<&'static str, (String, String)>;

/// What the file sets besides the specs and the store settings it changes in place.
#[derive(Debug, Default)]
pub(crate) struct FileConfig {
    /// The services' base URLs.
    pub(crate) urls: FileUrls,
    /// Where `[store] redis_url` is written, if it is.
    pub(crate) redis_url_at: Option<String>,
}

/// The builder's settings of the file's sections, which the file's tables merge into key by key.
#[derive(Debug, Clone)]
pub(crate) struct Sections {
    /// `[store]`: the shared store.
    pub(crate) store: StoreSettings,
    /// `[recent]`: what is kept of recent requests.
    pub(crate) recent: RecentRequests,
    /// `[cache]`: where cached answers live.
    pub(crate) cache: CacheSettings,
    /// `[rate_limit]`: overrides of the endpoints' limits and how they apply.
    pub(crate) rate_limit: RateLimitSettings,
    /// `[auth]`: how bearer tokens are verified.
    pub(crate) auth: Option<policy::AuthSettings>,
    /// `[ops] token`: the bearer token of the operations endpoints.
    pub(crate) ops_token: Option<String>,
    /// `[server]`: what the listener allows a client.
    pub(crate) server: policy::ServerLimits,
    /// `[canary.<Endpoint>]`: changed weights and rollback rules of canary versions.
    pub(crate) canary: policy::CanarySettings,
    /// `[saga]`: the journal's lease and how long it keeps records.
    pub(crate) saga: policy::SagaSettings,
}

impl Default for Sections {
    /// What a runtime has when neither its builder nor a file sets anything.
    fn default() -> Self {
        Self {
            store: StoreSettings::default(),
            recent: RecentRequests::DEFAULT,
            cache: CacheSettings::DEFAULT,
            rate_limit: RateLimitSettings::default(),
            auth: None,
            ops_token: None,
            server: policy::ServerLimits::DEFAULT,
            canary: Vec::new(),
            saga: policy::SagaSettings::DEFAULT,
        }
    }
}

/// Applies the configuration `text` (named `name` in messages) to `specs` and `sections`; returns
/// the base URLs it sets and where the store's URL is written.
pub(crate) fn apply(
    name: &str,
    text: &str,
    specs: &mut [ServiceSpec],
    sections: &mut Sections,
) -> Result<FileConfig, ConfigError> {
    let document = DeTable::parse(text).map_err(|error| ConfigError::Syntax {
        origin: error.span().map_or_else(|| name.to_owned(), |span| position(name, text, &span)),
        reason: error.message().to_owned(),
    })?;
    let mut errors: Vec<(usize, ConfigError)> = Vec::new();
    let fail = |errors: &mut Vec<(usize, ConfigError)>, at: Range<usize>, service: Option<&str>, key: &str, reason| {
        let origin = position(name, text, &at);
        errors.push((
            at.start,
            ConfigError::Invalid { service: service.map(str::to_owned), key: key.to_owned(), origin, reason },
        ));
    };
    let mut urls = FileUrls::new();
    let mut redis_url_at = None;
    let mut section_problems = Vec::new();
    for (key, value) in document.get_ref() {
        let problems = &mut section_problems;
        let value_of = || to_value(value);
        match key.get_ref() {
            k if k == policy::store::SECTION => {
                if let Some(settings) =
                    section(problems, |r| policy::store::read(r, &value_of(), Some(&sections.store)))
                {
                    if let DeValue::Table(table) = value.get_ref()
                        && let Some((_, url)) = table.iter().find(|(key, _)| key.get_ref() == "redis_url")
                    {
                        redis_url_at = Some(position(name, text, &url.span()));
                    }
                    sections.store = settings;
                }
                continue;
            }
            k if k == policy::cache::SECTION => {
                if let Some(read) = section(problems, |r| policy::cache::settings(r, &value_of(), Some(sections.cache)))
                {
                    sections.cache = read;
                }
                continue;
            }
            k if k == policy::rate_limit::SECTION => {
                let declared = sections.rate_limit.clone();
                if let Some(read) = section(problems, |r| policy::rate_limit::settings(r, &value_of(), Some(declared)))
                {
                    sections.rate_limit = read;
                }
                continue;
            }
            k if k == policy::auth::SECTION => {
                if let Some(read) = section(problems, |r| policy::auth::read(r, &value_of(), sections.auth.as_ref())) {
                    sections.auth = Some(read);
                }
                continue;
            }
            k if k == policy::auth::OPS_SECTION => {
                let ops = |r: &mut Reader<Range<usize>>| {
                    policy::auth::read_ops(r, &value_of(), sections.ops_token.as_deref())
                };
                if let Some(read) = section(problems, ops) {
                    sections.ops_token = read;
                }
                continue;
            }
            k if k == policy::server::SECTION => {
                if let Some(read) = section(problems, |r| policy::server::read(r, &value_of(), Some(sections.server))) {
                    sections.server = read;
                }
                continue;
            }
            k if k == policy::canary::SECTION => {
                let declared = sections.canary.clone();
                if let Some(read) = section(problems, |r| policy::canary::settings(r, &value_of(), declared)) {
                    sections.canary = read;
                }
                continue;
            }
            k if k == policy::saga::SECTION => {
                if let Some(read) =
                    section(problems, |r| policy::saga::read_settings(r, &value_of(), Some(sections.saga)))
                {
                    sections.saga = read;
                }
                continue;
            }
            k if k == policy::recent::SECTION => {
                if let Some(read) = section(problems, |r| policy::recent::read(r, &value_of(), Some(sections.recent))) {
                    sections.recent = read;
                }
                continue;
            }
            _ => {}
        }
        if key.get_ref() != "services" {
            let name = key.get_ref();
            let reason =
                format!("unknown key `{name}`{}expected one of: {}", hint(name, TOP_LEVEL), TOP_LEVEL.join(", "));
            fail(&mut errors, key.span(), None, name, reason);
            continue;
        }
        let DeValue::Table(services) = value.get_ref() else {
            let reason =
                format!("`services` must be a table, e.g. `[services.cart]`; found {}", value.get_ref().type_str());
            fail(&mut errors, value.span(), None, "services", reason);
            continue;
        };
        for (service, table) in services {
            let known: Vec<&'static str> = specs.iter().map(|s| s.name).collect();
            let Some(spec) = specs.iter_mut().find(|s| s.name == service.get_ref()) else {
                let name = service.get_ref();
                fail(&mut errors, service.span(), None, &format!("services.{name}"), unknown_service(name, &known));
                continue;
            };
            let DeValue::Table(table) = table.get_ref() else {
                let reason = format!(
                    "`services.{}` must be a table, e.g. `{{ .. }}`; found {}",
                    spec.name,
                    table.get_ref().type_str()
                );
                fail(&mut errors, table.span(), Some(spec.name), "", reason);
                continue;
            };
            let entries = entries(table);
            let mut reader = Reader::new(Syntax::Toml);
            let declared = policies_of(spec);
            match policy::service::read(&mut reader, &entries, Some(&declared)) {
                Some(policies) => {
                    if let (Some(url), Some(entry)) = (&policies.url, entries.iter().find(|e| e.key == "url")) {
                        urls.insert(spec.name, (url.clone(), position(name, text, entry.value.at())));
                    }
                    apply_policies(spec, policies);
                }
                None => {
                    for Problem { at, key, message, .. } in reader.into_problems() {
                        fail(&mut errors, at, Some(spec.name), &key, message);
                    }
                }
            }
        }
    }
    for Problem { at, key, message, .. } in section_problems {
        fail(&mut errors, at, None, &key, message);
    }
    errors.sort_by_key(|(at, _)| *at);
    collect(errors.into_iter().map(|(_, e)| e).collect()).map(|()| FileConfig { urls, redis_url_at })
}

/// Reads one top-level section with its policy's `read`: its settings, or `None` with what is
/// wrong added to `problems` (the section then keeps what it had).
fn section<T>(
    problems: &mut Vec<Problem<Range<usize>>>,
    read: impl FnOnce(&mut Reader<Range<usize>>) -> Option<T>,
) -> Option<T> {
    let mut reader = Reader::new(Syntax::Toml);
    let settings = read(&mut reader);
    if settings.is_none() {
        problems.extend(reader.into_problems());
    }
    settings
}

/// A TOML table as policy entries, each value with its byte range in the file.
fn entries(table: &DeTable<'_>) -> Vec<Entry<Range<usize>>> {
    table.iter().map(|(key, value)| Entry::new(key.get_ref().to_string(), key.span(), to_value(value))).collect()
}

fn to_value(value: &Spanned<DeValue<'_>>) -> Value<Range<usize>> {
    let at = value.span();
    match value.get_ref() {
        DeValue::String(text) => Value::Str(text.to_string(), at),
        DeValue::Integer(i) => {
            let n = i128::from_str_radix(&i.as_str().replace('_', ""), i.radix()).unwrap_or(i128::MAX);
            Value::Number(n, at)
        }
        DeValue::Boolean(b) => Value::Bool(*b, at),
        DeValue::Array(items) => Value::List(items.iter().map(to_value).collect(), at),
        DeValue::Table(table) => Value::Table(entries(table), at),
        DeValue::Float(_) => Value::Other("a decimal number", at),
        DeValue::Datetime(_) => Value::Other("a date", at),
    }
}

/// What a service declares, as the policy grammar reads it.
fn policies_of(spec: &ServiceSpec) -> ServicePolicies {
    let mut policies = ServicePolicies::default();
    policies.retry = spec.retry;
    policies.breaker = spec.breaker;
    policies.max_in_flight = spec.max_in_flight;
    policies.max_body = spec.max_body;
    policies.retry_budget = spec.retry_budget;
    policies.forward_headers = spec.forward_headers.iter().map(|h| (*h).to_owned()).collect();
    policies.http2 = spec.http2;
    policies.rate_limit = spec.rate_limit;
    policies.balance = spec.balance;
    policies.hedge_budget = spec.hedge_budget;
    policies
}

fn apply_policies(spec: &mut ServiceSpec, policies: ServicePolicies) {
    spec.retry = policies.retry;
    spec.breaker = policies.breaker;
    spec.max_in_flight = policies.max_in_flight;
    spec.max_body = policies.max_body;
    spec.retry_budget = policies.retry_budget;
    spec.http2 = policies.http2;
    spec.rate_limit = policies.rate_limit;
    spec.balance = policies.balance;
    spec.hedge_budget = policies.hedge_budget;
    let unchanged = policies.forward_headers.iter().map(String::as_str).eq(spec.forward_headers.iter().copied());
    if !unchanged {
        // Start-up configuration lives as long as the process: leaking the list once gives the
        // `&'static` list `ServiceSpec` holds.
        let leaked: Vec<&'static str> =
            policies.forward_headers.into_iter().map(|h| &*Box::leak(h.into_boxed_str())).collect();
        spec.forward_headers = Box::leak(leaked.into_boxed_slice());
    }
}

/// Checks every endpoint against the policies in `specs`: its worst case fits its timeout, and no
/// call that is unsafe to repeat gets its service's retries.
pub(crate) fn check_endpoints(endpoints: &[&'static EndpointSpec], specs: &[ServiceSpec]) -> Result<(), ConfigError> {
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
            if call.retry.is_none() && !call.retryable && spec.retry.retries() {
                let method = match call.target {
                    crate::spec::CallTarget::Http { method, .. } => Some(method.as_str()),
                    crate::spec::CallTarget::With { .. } => None,
                };
                let reason = policy::retry::unsafe_service_retry(node.name, method, spec.name, "the configuration");
                errors.push(ConfigError::Budget { endpoint: endpoint.name, reason });
            }
            let retry = call.effective_retry(&spec.retry);
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

/// No error, the one error, or [`ConfigError::Several`].
pub(crate) fn collect(mut errors: Vec<ConfigError>) -> Result<(), ConfigError> {
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

/// `ORCHESTRATE_<NAME>_URL`, with the name upper-cased and every other character than letters and
/// digits turned into `_`.
///
/// ```
/// assert_eq!(orchestrate_runtime::env_var_name("order-history"), "ORCHESTRATE_ORDER_HISTORY_URL");
/// ```
pub fn env_var_name(service: &str) -> String {
    let upper: String =
        service.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("ORCHESTRATE_{upper}_URL")
}

/// Checks that `url` is an absolute `http://` or `https://` URL with a host and no query (the
/// rule of `services!`), and that this build can speak its scheme.
///
/// ```
/// use orchestrate_runtime::validate_base_url;
/// assert!(validate_base_url("http://cart.internal:8080").is_ok());
/// assert_eq!(validate_base_url("cart.internal").unwrap_err(), "must start with `http://` or `https://`");
/// ```
///
/// # Errors
///
/// A sentence saying what is wrong.
pub fn validate_base_url(url: &str) -> Result<(), String> {
    orchestrate_core::url::check_base_urls(url)?;
    if url.contains("https://") && !cfg!(feature = "tls") {
        return Err("needs the `tls` feature of orchestrate (https)".to_owned());
    }
    Ok(())
}

/// A start-up configuration mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting names a service that `services!` does not declare.
    UnknownService {
        /// The name given.
        name: String,
        /// The declared services.
        known: Vec<&'static str>,
    },
    /// A base URL is not usable.
    BaseUrl {
        /// The service.
        service: &'static str,
        /// The URL given.
        url: String,
        /// Where it came from (an environment variable, a file, the builder).
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// A setting's value is not valid.
    Invalid {
        /// The service, if the setting is per service.
        service: Option<String>,
        /// The setting.
        key: String,
        /// Where it came from.
        origin: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The HTTP client of a service cannot be built.
    Client {
        /// The service.
        service: &'static str,
        /// Why.
        reason: String,
    },
    /// The configuration file cannot be read.
    Unreadable {
        /// The path given.
        path: String,
        /// Why.
        reason: String,
    },
    /// The configuration file is not valid TOML.
    Syntax {
        /// `file:line:column` of the mistake.
        origin: String,
        /// What the TOML parser expected.
        reason: String,
    },
    /// Under the configured policies an endpoint cannot meet its `timeout` (or calls a service the
    /// runtime does not declare).
    Budget {
        /// The endpoint.
        endpoint: &'static str,
        /// The critical path with its arithmetic, and the fix.
        reason: String,
    },
    /// More than one mistake, in the order they appear.
    Several(Vec<ConfigError>),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownService { name, known } => f.write_str(&unknown_service(name, known)),
            Self::BaseUrl { service, url, origin, reason } => {
                write!(f, "base URL `{url}` of service `{service}` (from {origin}) {reason}")
            }
            Self::Invalid { service: Some(service), key, origin, reason } => {
                write!(f, "`{key}` of service `{service}` (from {origin}): {reason}")
            }
            Self::Invalid { service: None, key, origin, reason } => write!(f, "`{key}` (from {origin}): {reason}"),
            Self::Client { service, reason } => {
                write!(f, "the HTTP client of service `{service}` cannot be built: {reason}")
            }
            Self::Unreadable { path, reason } => write!(f, "cannot read the configuration file `{path}`: {reason}"),
            Self::Syntax { origin, reason } => write!(f, "the configuration at {origin} is not valid TOML: {reason}"),
            Self::Budget { endpoint, reason } => {
                write!(f, "endpoint `{endpoint}` cannot run under the start-up configuration: {reason}")
            }
            Self::Several(errors) => {
                write!(f, "{} configuration errors:", errors.len())?;
                for error in errors {
                    write!(f, "\n  - {error}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{BreakerPolicy, Concurrency, RetryPolicy};

    const SERVICES: [ServiceSpec; 2] = [
        ServiceSpec::new("cart", "http://cart.internal:8080")
            .with_retry(RetryPolicy::new(3, Duration::from_millis(100)))
            .with_breaker(BreakerPolicy::new(5, Duration::from_secs(60), Duration::from_secs(30), 3)),
        ServiceSpec::new("shipping", "http://shipping.internal:8080"),
    ];

    /// Applies `text` (as `app.toml`) to `specs` and `sections`.
    fn apply_text(text: &str, specs: &mut [ServiceSpec], sections: &mut Sections) -> Result<FileConfig, String> {
        apply("app.toml", text, specs, sections).map_err(|e| e.to_string())
    }

    fn apply_to(text: &str) -> Result<(Vec<ServiceSpec>, FileUrls), String> {
        let mut specs = SERVICES.to_vec();
        let file = apply_text(text, &mut specs, &mut Sections::default())?;
        Ok((specs, file.urls))
    }

    fn store_of(text: &str, builder: StoreSettings) -> Result<(StoreSettings, Option<String>), String> {
        let mut sections = Sections { store: builder, ..Sections::default() };
        let file = apply_text(text, &mut SERVICES.to_vec(), &mut sections)?;
        Ok((sections.store, file.redis_url_at))
    }

    fn recent_of(text: &str) -> Result<RecentRequests, String> {
        let mut sections = Sections { recent: RecentRequests::DEFAULT.with_enabled(false), ..Sections::default() };
        apply_text(text, &mut SERVICES.to_vec(), &mut sections)?;
        Ok(sections.recent)
    }

    fn saga_of(text: &str) -> Result<policy::SagaSettings, String> {
        let mut sections = Sections::default();
        apply_text(text, &mut SERVICES.to_vec(), &mut sections)?;
        Ok(sections.saga)
    }

    #[test]
    fn the_saga_table_sets_the_journals_lease_and_keep_at_their_positions() {
        let saga = saga_of("[saga]\nlease = \"3s\"\n").unwrap();
        assert_eq!((saga.lease, saga.ttl), (Duration::from_secs(3), policy::SagaSettings::DEFAULT.ttl));
        let err = saga_of("[saga]\nlease = \"20m\"\nkeep = \"30s\"\nleese = 1\n").unwrap_err();
        assert_eq!(
            err.lines().collect::<Vec<_>>(),
            [
                "3 configuration errors:",
                "  - `saga.lease` (from app.toml:2:9): `lease` is at most \"10m\": a crashed instance's sagas wait that long to be resumed",
                "  - `saga.keep` (from app.toml:3:8): `keep` must be at least \"1m\"",
                // `lease` is written too, so it is not suggested.
                "  - `saga.leese` (from app.toml:4:1): unknown key `leese` in `saga` (expected one of: lease, keep)",
            ]
        );
    }

    fn cache_of(text: &str) -> Result<CacheSettings, String> {
        let mut sections = Sections { cache: CacheSettings::DEFAULT.with_shared(false), ..Sections::default() };
        apply_text(text, &mut SERVICES.to_vec(), &mut sections)?;
        Ok(sections.cache)
    }

    fn server_of(text: &str) -> Result<policy::ServerLimits, String> {
        let mut sections =
            Sections { server: policy::ServerLimits::DEFAULT.with_max_requests(100), ..Sections::default() };
        apply_text(text, &mut SERVICES.to_vec(), &mut sections)?;
        Ok(sections.server)
    }

    #[test]
    fn the_server_table_merges_into_the_builders_limits_and_reports_its_mistakes() {
        let server = server_of("[server]\nheader_read_timeout = \"2s\"\n").unwrap();
        assert_eq!(server.header_read_timeout, Duration::from_secs(2));
        assert_eq!(server.max_requests, 100, "unset keys keep the builder's");
        let err =
            server_of("[server]\nbody_read_timeout = \"1ms\"\nmax_connections = 0\nmax_request = 5\n").unwrap_err();
        for line in [
            "`server.body_read_timeout` (from app.toml:2:21): `body_read_timeout` must be at least \"50ms\": a shorter one cuts ordinary clients on a slow network",
            "`server.max_connections` (from app.toml:3:19): `max_connections` must be at least 1",
            "`server.max_request` (from app.toml:4:1): unknown key `max_request` in `server`; did you mean `max_requests`?",
        ] {
            assert!(err.contains(line), "{line}\nnot in\n{err}");
        }
    }

    #[test]
    fn the_cache_table_merges_into_the_builders_settings_and_reports_its_mistakes() {
        let cache = cache_of("[cache]\ncapacity = \"8MiB\"\n").unwrap();
        assert_eq!((cache.capacity, cache.shared), (8 << 20, false), "unset keys keep the builder's");
        assert!(cache_of("[cache]\nshared = true\n").unwrap().shared);
        let err = cache_of("[cache]\ncapacity = \"1KiB\"\nshared = \"yes\"\nsize = 1\n").unwrap_err();
        for line in [
            "`cache.capacity` (from app.toml:2:12): `capacity` must be at least 64KiB: smaller, the cache holds a handful of answers",
            "`cache.shared` (from app.toml:3:10): `shared` takes `true` or `false`; found a string",
            "`cache.size` (from app.toml:4:1): unknown key `size` in `cache`",
        ] {
            assert!(err.contains(line), "missing\n{line}\nin\n{err}");
        }
    }

    #[test]
    fn the_recent_table_merges_into_the_builders_setting_and_reports_its_mistakes() {
        let recent = recent_of("[recent]\nenabled = true\nlast = 8\nwithin = \"90s\"\n").unwrap();
        assert_eq!((recent.enabled, recent.last, recent.slowest), (true, 8, 10));
        assert_eq!(recent.within, Duration::from_secs(90));
        assert!(!recent_of("[recent]\nlast = 8\n").unwrap().enabled, "unset keys keep the builder's");
        let err = recent_of("[recent]\nlast = 0\nslowest = 101\nwithin = \"10 s\"\nsize = 3\n").unwrap_err();
        for line in [
            "`recent.last` (from app.toml:2:8): `last` must be at least 1",
            "`recent.slowest` (from app.toml:3:11): `slowest` keeps requests beside the last ones; at most 100 (raise `last` to see more)",
            "`recent.within` (from app.toml:4:10): invalid `within`: durations have no spaces; write \"10s\"",
            "`recent.size` (from app.toml:5:1): unknown key `size` in `recent`",
        ] {
            assert!(err.contains(line), "missing\n{line}\nin\n{err}");
        }
        let err = recent_of("[recnet]\nlast = 8\n").unwrap_err();
        assert_eq!(
            err,
            "`recnet` (from app.toml:1:2): unknown key `recnet`; did you mean `recent`? expected one of: services, store, recent, cache, rate_limit, auth, ops, server, canary, saga"
        );
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
hedge_budget = "5%"
"#,
        )
        .unwrap();
        let cart = &specs[0];
        assert_eq!(urls["cart"], ("http://10.0.0.7:8080".to_owned(), "app.toml:3:7".to_owned()));
        assert_eq!((cart.max_in_flight, cart.max_body, cart.http2), (Concurrency::Fixed(64), 16 << 20, true));
        assert_eq!(cart.forward_headers, ["x-tenant-id"]);
        assert_eq!((cart.retry.attempts, cart.retry.backoff), (2, Duration::from_millis(100)));
        assert!(cart.retry.on.too_many_requests && !cart.retry.on.timeouts);
        let breaker = cart.breaker.unwrap();
        assert_eq!(
            (breaker.open_for, breaker.trip),
            (Duration::from_secs(120), crate::service::Trip::Failures { failures: 5 })
        );
        let shipping = &specs[1];
        assert_eq!(shipping.retry, RetryPolicy::new(4, Duration::from_millis(50)));
        assert_eq!(shipping.breaker.unwrap().probes, 2);
        assert_eq!((shipping.retry_budget.percent, shipping.retry_budget.min_retries), (10, 10));
        assert_eq!((shipping.hedge_budget.percent, cart.hedge_budget.percent), (5, 10));
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
            "`max_in_flite` of service `cart` (from app.toml:5:1): unknown key `max_in_flite` in `service policies`; did you mean `max_in_flight`? (expected one of: url, retry, breaker, max_in_flight, max_body, retry_budget, forward_headers, http2, rate_limit, balance, hedge_budget)",
            "`retry.attempts` of service `cart` (from app.toml:6:22): more than 10 attempts multiplies load on a failing service; use at most 10",
            "`retry.backoff` of service `cart` (from app.toml:6:36): invalid `backoff`: durations have no spaces; write \"100ms\"",
            "`max_body` of service `cart` (from app.toml:7:12): invalid `max_body`: sizes have no spaces; write \"8MB\"",
            "`url` of service `cart` (from app.toml:8:7): `cart.internal` must start with `http://` or `https://`",
            "`breaker` of service `shipping` (from app.toml:11:1): `breaker` needs `within`, `open_for` and `probes`, e.g. `breaker = { failure_rate = \"50%\", min_calls = 20, within = \"10s\", open_for = \"30s\", probes = 3 }`",
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
            "`retry` of service `cart` (from app.toml:2:9): `retry` is a group of settings, e.g. `retry = { attempts = 3, backoff = \"100ms\" }`; found a number"
        );
        let err = apply_to("[services.cart]\nretry = { backoff = \"1s\", max_backoff = \"100ms\" }").unwrap_err();
        assert!(err.contains("`max_backoff` is smaller than `backoff`"), "{err}");
        let err = apply_to("listen = \"0.0.0.0:80\"").unwrap_err();
        assert_eq!(
            err,
            "`listen` (from app.toml:1:1): unknown key `listen`; expected one of: services, store, recent, cache, rate_limit, auth, ops, server, canary, saga"
        );
        let err = apply_to("[stor]\nredis_url = \"redis://cache\"").unwrap_err();
        assert!(
            err.contains(
                "unknown key `stor`; did you mean `store`? expected one of: services, store, recent, cache, rate_limit, auth, ops, server, canary, saga"
            ),
            "{err}"
        );
    }

    #[test]
    fn the_store_table_merges_into_the_builders_settings() {
        let builder = StoreSettings::default().with_redis_url("redis://builder:6379").with_key_prefix("app:");
        let (store, at) = store_of("[store]\ncommand_timeout = \"20ms\"\n", builder.clone()).unwrap();
        assert_eq!(store, builder.clone().with_command_timeout(Duration::from_millis(20)));
        assert_eq!(at, None, "the URL is the builder's");
        let (store, at) = store_of("[store]\nredis_url = \"redis://file:6379/1\"\n", builder).unwrap();
        assert_eq!((store.redis_url.as_deref(), store.key_prefix.as_str()), (Some("redis://file:6379/1"), "app:"));
        assert_eq!(at.as_deref(), Some("app.toml:2:13"));
        let (store, _) = store_of("", StoreSettings::default()).unwrap();
        assert_eq!(store, StoreSettings::default(), "no `[store]`: memory");
    }

    #[test]
    fn store_mistakes_are_reported_at_their_position() {
        let err = store_of(
            "[store]\nredis_url = \"redis://:hunter2@cache:70000\"\ncommand_timeout = \"50 ms\"\nconnect_timeout = \"0ms\"\nkey_prefix = \"my app:\"\nprefix = \"x\"\n",
            StoreSettings::default(),
        )
        .unwrap_err();
        let expected = [
            "`store.redis_url` (from app.toml:2:13): `redis://:***@cache:70000` has an invalid port `70000`",
            "`store.command_timeout` (from app.toml:3:19): invalid `command_timeout`: durations have no spaces; write \"50ms\"",
            "`store.connect_timeout` (from app.toml:4:19): invalid `connect_timeout`: a duration of zero is not allowed here; use at least \"1ms\"",
            "`store.key_prefix` (from app.toml:5:14): `key_prefix` has whitespace or a control character; write e.g. \"checkout:\"",
            "`store.prefix` (from app.toml:6:1): unknown key `prefix` in `store` (expected one of: redis_url, command_timeout, connect_timeout, key_prefix)",
        ];
        for line in expected {
            assert!(err.contains(line), "missing\n{line}\nin\n{err}");
        }
        assert!(!err.contains("hunter2"), "{err}");
        let err = store_of("store = \"redis://cache\"", StoreSettings::default()).unwrap_err();
        assert!(err.starts_with("`store` (from app.toml:1:9): `store` is a group of settings"), "{err}");
        let err = store_of("[store]\ncommand_timeout = \"11s\"", StoreSettings::default()).unwrap_err();
        assert!(
            err.ends_with("`command_timeout` must be at most 10s: a store command holds the request that waits for it"),
            "{err}"
        );
    }
}

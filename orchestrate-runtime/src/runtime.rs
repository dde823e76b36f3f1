//! The runtime handle: one client per declared service, built and validated at start-up.

use crate::cache::Cache;
use crate::client::{HttpTransport, ServiceClient, Transport};
use crate::config::{self, CONFIG_ENV, ConfigError, env_var_name, validate_base_url};
use crate::service::ServiceSpec;
use crate::spec::EndpointSpec;
use crate::tls::install_tls_provider;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Shared state of every endpoint run: the clients of the downstream services.
///
/// Cheap to clone (an `Arc`). Build it once at start-up:
///
/// ```
/// use orchestrate_runtime::{Runtime, ServiceSpec};
/// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://127.0.0.1:9")];
/// let runtime = Runtime::builder(SERVICES).base_url("cart", "http://127.0.0.1:8081").build().unwrap();
/// assert_eq!(runtime.service("cart").unwrap().base_url(), "http://127.0.0.1:8081");
/// ```
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    services: Box<[ServiceClient]>,
    server_timing: bool,
    cache: Cache,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("services", &self.inner.services.iter().map(ServiceClient::name).collect::<Vec<_>>())
            .finish()
    }
}

impl Runtime {
    /// A runtime for `services` with start-up overrides from the environment
    /// (`ORCHESTRATE_<SERVICE>_URL`).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the service and the value at fault.
    pub fn new(services: &'static [ServiceSpec]) -> Result<Self, ConfigError> {
        Self::builder(services).build()
    }

    /// Starts configuring a runtime for `services` (usually `services::ALL`).
    pub fn builder(services: &'static [ServiceSpec]) -> RuntimeBuilder {
        RuntimeBuilder {
            specs: services.to_vec(),
            base_urls: HashMap::new(),
            transports: HashMap::new(),
            read_env: true,
            config: None,
            endpoints: Vec::new(),
            server_timing: None,
            cache_capacity: None,
        }
    }

    /// Whether responses carry a `Server-Timing` header (see
    /// [`RuntimeBuilder::server_timing`]).
    ///
    /// ```
    /// use orchestrate_runtime::Runtime;
    /// let runtime = Runtime::builder(&[]).read_env(false).build().unwrap();
    /// assert_eq!(runtime.server_timing(), cfg!(debug_assertions));
    /// ```
    pub fn server_timing(&self) -> bool {
        self.inner.server_timing
    }

    /// The client of the service named `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceClient> {
        self.inner.services.iter().find(|s| s.name() == name)
    }

    /// Every service client, in declaration order.
    pub fn services(&self) -> &[ServiceClient] {
        &self.inner.services
    }

    /// The response cache of the calls and endpoints that declare `cache(..)` (see [`Cache`]).
    pub fn cache(&self) -> &Cache {
        &self.inner.cache
    }

    /// The client at `index` when it is named `name` (the fast path for generated code), else the
    /// client named `name`.
    pub(crate) fn service_at(&self, index: usize, name: &str) -> Option<&ServiceClient> {
        match self.inner.services.get(index) {
            Some(client) if client.name() == name => Some(client),
            _ => self.service(name),
        }
    }
}

/// Configures a [`Runtime`].
pub struct RuntimeBuilder {
    specs: Vec<ServiceSpec>,
    base_urls: HashMap<&'static str, String>,
    transports: HashMap<&'static str, Transport>,
    read_env: bool,
    config: Option<ConfigSource>,
    endpoints: Vec<&'static EndpointSpec>,
    server_timing: Option<bool>,
    cache_capacity: Option<u64>,
}

/// Turns the `Server-Timing` header on or off: `1`/`true`/`on`/`yes` or `0`/`false`/`off`/`no`.
pub const SERVER_TIMING_ENV: &str = "ORCHESTRATE_SERVER_TIMING";

/// Where the configuration file's content comes from.
#[derive(Debug)]
enum ConfigSource {
    File(PathBuf),
    Text(String),
}

impl fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("services", &self.specs.iter().map(|s| s.name).collect::<Vec<_>>())
            .field("base_urls", &self.base_urls)
            .field("read_env", &self.read_env)
            .field("config", &self.config)
            .field("endpoints", &self.endpoints.iter().map(|e| e.name).collect::<Vec<_>>())
            .field("server_timing", &self.server_timing)
            .finish()
    }
}

impl RuntimeBuilder {
    fn known(&self, name: &str) -> Option<&'static str> {
        self.specs.iter().find(|s| s.name == name).map(|s| s.name)
    }

    /// Overrides a service's base URL (validated by [`build`](Self::build)); an unknown service is
    /// reported there too.
    pub fn base_url(mut self, service: &str, url: impl Into<String>) -> Self {
        let name = self.known(service).unwrap_or_else(|| leak_unknown(service));
        self.base_urls.insert(name, url.into());
        self
    }

    /// Replaces the transport of one service (an in-memory service in tests, extra layers, ...).
    pub fn transport(mut self, service: &str, transport: Transport) -> Self {
        let name = self.known(service).unwrap_or_else(|| leak_unknown(service));
        self.transports.insert(name, transport);
        self
    }

    /// Whether the environment is read (default: yes): `ORCHESTRATE_<SERVICE>_URL` variables and
    /// `ORCHESTRATE_CONFIG`.
    pub fn read_env(mut self, read: bool) -> Self {
        self.read_env = read;
        self
    }

    /// Reads base URLs and policy overrides from the TOML file at `path` (see [`config`] for the
    /// format and the checks). `ORCHESTRATE_CONFIG`, when set, names the file instead.
    ///
    /// ```no_run
    /// use orchestrate_runtime::{Runtime, ServiceSpec};
    /// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://cart.internal:8080")];
    /// let runtime = Runtime::builder(SERVICES).config_file("/etc/checkout/orchestrate.toml").build()?;
    /// # Ok::<(), orchestrate_runtime::ConfigError>(())
    /// ```
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = Some(ConfigSource::File(path.into()));
        self
    }

    /// Like [`config_file`](Self::config_file), with the file's content given directly (e.g. from
    /// `include_str!`); messages call it `<config>`.
    ///
    /// ```
    /// use orchestrate_runtime::{Runtime, ServiceSpec};
    /// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://cart.internal:8080")];
    /// let runtime = Runtime::builder(SERVICES)
    ///     .read_env(false)
    ///     .config_str("[services.cart]\nurl = \"http://127.0.0.1:8081\"\nmax_in_flight = 16\n")
    ///     .build()
    ///     .unwrap();
    /// let cart = runtime.service("cart").unwrap();
    /// assert_eq!((cart.base_url(), cart.spec().max_in_flight.fixed()), ("http://127.0.0.1:8081", Some(16)));
    /// ```
    pub fn config_str(mut self, text: impl Into<String>) -> Self {
        self.config = Some(ConfigSource::Text(text.into()));
        self
    }

    /// The application's endpoints: [`build`](Self::build) recomputes each one's worst-case
    /// critical path with the configured retry policies, as `#[endpoint]` does at compile time
    /// with the declared ones, and refuses a configuration under which an endpoint's `timeout`
    /// can no longer be met.
    ///
    /// ```
    /// use orchestrate_runtime::{CallSpec, CallTarget, EndpointSpec, Method, NodeKind, NodeSpec, Runtime, ServiceSpec};
    /// use std::time::Duration;
    /// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://cart.internal:8080")];
    /// const CART: CallSpec =
    ///     CallSpec::new("cart", 0, CallTarget::Http { method: Method::Get, path: "/carts/1" }, Duration::from_millis(200))
    ///         .with_required(true);
    /// static SUMMARY: EndpointSpec = EndpointSpec::new(
    ///     "Summary", Method::Get, "/summary", Duration::from_millis(500), &[],
    ///     &[NodeSpec::new("cart", "Cart", &[], &[], NodeKind::Call(CART))],
    /// );
    /// let err = Runtime::builder(SERVICES)
    ///     .read_env(false)
    ///     .config_str("[services.cart]\nretry = { attempts = 3, backoff = \"100ms\" }")
    ///     .endpoints(&[&SUMMARY])
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("the worst case of `Summary` exceeds its timeout of 500ms: \
    ///     cart (200ms × 3 attempts + 300ms backoff = 900ms) = 900ms"), "{err}");
    /// ```
    pub fn endpoints(mut self, endpoints: &[&'static EndpointSpec]) -> Self {
        self.endpoints.extend_from_slice(endpoints);
        self
    }

    /// Whether responses carry a `Server-Timing` header listing each call's duration (and its
    /// start, in the description), so a browser's network panel shows the request's timeline.
    ///
    /// Default: on in debug builds, off in release builds, where it would tell every client the
    /// names and timings of the internal calls. `ORCHESTRATE_SERVER_TIMING` (`1`/`0`,
    /// `true`/`false`, `on`/`off`, `yes`/`no`), when set and the environment is read, takes
    /// precedence, like the other start-up overrides.
    ///
    /// ```
    /// use orchestrate_runtime::Runtime;
    /// let runtime = Runtime::builder(&[]).read_env(false).server_timing(true).build().unwrap();
    /// assert!(runtime.server_timing());
    /// ```
    pub fn server_timing(mut self, on: bool) -> Self {
        self.server_timing = Some(on);
        self
    }

    /// The most bytes of cached answers kept in memory (default
    /// [`DEFAULT_CAPACITY`](crate::cache::DEFAULT_CAPACITY), 64 MiB); the least recently used go
    /// first.
    ///
    /// ```
    /// use orchestrate_runtime::Runtime;
    /// let runtime = Runtime::builder(&[]).read_env(false).cache_capacity(8 << 20).build().unwrap();
    /// assert_eq!(runtime.cache().memory_bytes(), 0);
    /// ```
    pub fn cache_capacity(mut self, bytes: u64) -> Self {
        self.cache_capacity = Some(bytes);
        self
    }

    /// Validates the configuration and builds every client.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`]: an override for an unknown service, a base URL that is not an absolute
    /// `http(s)` URL, a configuration file that cannot be read or breaks a rule of [`config`], an
    /// endpoint whose worst case no longer fits its timeout, or an HTTP client that cannot be built.
    pub fn build(mut self) -> Result<Runtime, ConfigError> {
        install_tls_provider();
        for name in self.base_urls.keys().chain(self.transports.keys()) {
            if self.known(name).is_none() {
                return Err(ConfigError::UnknownService {
                    name: (*name).to_owned(),
                    known: self.specs.iter().map(|s| s.name).collect(),
                });
            }
        }
        let file_urls = self.apply_config()?;
        let server_timing = self.server_timing_setting()?;
        config::check_endpoints(&self.endpoints, &self.specs)?;
        if self.read_env {
            warn_unknown_env(&self.specs);
        }
        let mut clients = Vec::with_capacity(self.specs.len());
        for spec in &self.specs {
            let env_name = env_var_name(spec.name);
            let env_url = self.read_env.then(|| std::env::var(&env_name).ok()).flatten();
            let (url, origin) = match (env_url, file_urls.get(spec.name), self.base_urls.get(spec.name)) {
                (Some(url), _, _) => (url, env_name),
                (None, Some((url, at)), _) => (url.clone(), at.clone()),
                (None, None, Some(url)) => (url.clone(), "the runtime builder".to_owned()),
                (None, None, None) => (spec.base_url.to_owned(), "`services!`".to_owned()),
            };
            validate_base_url(&url).map_err(|reason| ConfigError::BaseUrl {
                service: spec.name,
                url: url.clone(),
                origin,
                reason,
            })?;
            let transport = match self.transports.remove(spec.name) {
                Some(transport) => transport,
                None => Transport::new(
                    HttpTransport::for_service(spec)
                        .map_err(|e| ConfigError::Client { service: spec.name, reason: e.to_string() })?,
                ),
            };
            clients.push(ServiceClient::new(*spec, &url, transport));
        }
        let cache = Cache::in_memory(self.cache_capacity.unwrap_or(crate::cache::DEFAULT_CAPACITY));
        Ok(Runtime { inner: Arc::new(Inner { services: clients.into_boxed_slice(), server_timing, cache }) })
    }
}

impl RuntimeBuilder {
    /// `ORCHESTRATE_SERVER_TIMING`, else the builder's setting, else on in debug builds.
    fn server_timing_setting(&self) -> Result<bool, ConfigError> {
        let from_env = self.read_env.then(|| std::env::var(SERVER_TIMING_ENV).ok()).flatten();
        let Some(text) = from_env else {
            return Ok(self.server_timing.unwrap_or(cfg!(debug_assertions)));
        };
        match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "on" | "yes" => Ok(true),
            "0" | "false" | "off" | "no" => Ok(false),
            _ => Err(ConfigError::Invalid {
                service: None,
                key: SERVER_TIMING_ENV.to_owned(),
                origin: "the environment".to_owned(),
                reason: format!("`{text}` is not a switch; use `1` or `0`"),
            }),
        }
    }

    /// Reads the configuration file, if any, into the specs; returns the base URLs it sets.
    fn apply_config(&mut self) -> Result<config::FileUrls, ConfigError> {
        let from_env = self.read_env.then(|| std::env::var_os(CONFIG_ENV)).flatten().filter(|p| !p.is_empty());
        let named_by_env = from_env.is_some();
        let source = match from_env {
            Some(path) => Some(ConfigSource::File(path.into())),
            None => self.config.take(),
        };
        match source {
            None => Ok(config::FileUrls::new()),
            Some(ConfigSource::Text(text)) => config::apply("<config>", &text, &mut self.specs),
            Some(ConfigSource::File(path)) => {
                let name = path.display().to_string();
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    let from =
                        if named_by_env { format!(" (the path comes from `{CONFIG_ENV}`)") } else { String::new() };
                    ConfigError::Unreadable { path: name.clone(), reason: format!("{e}{from}") }
                })?;
                config::apply(&name, &text, &mut self.specs)
            }
        }
    }
}

/// Logs `ORCHESTRATE_*_URL` variables that name no declared service: likely a typo, but maybe meant
/// for another application sharing the environment, so not an error.
fn warn_unknown_env(specs: &[ServiceSpec]) {
    let known: Vec<String> = specs.iter().map(|s| env_var_name(s.name)).collect();
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("ORCHESTRATE_") && name.ends_with("_URL") && !known.iter().any(|k| k == name) {
            let hint = orchestrate_core::suggest::did_you_mean(name, known.iter().map(String::as_str));
            tracing::warn!("`{name}` names no declared service and is ignored{hint}");
        }
    }
}

fn leak_unknown(name: &str) -> &'static str {
    // Unknown names are rejected by `build`; keep the name for its message. Builders run once at
    // start-up, so this small leak is bounded.
    Box::leak(name.to_owned().into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICES: &[ServiceSpec] = &[
        ServiceSpec::new("cart", "http://cart.internal:8080"),
        ServiceSpec::new("order-history", "http://orders.internal"),
    ];

    #[test]
    fn env_names_are_upper_snake() {
        assert_eq!(env_var_name("cart"), "ORCHESTRATE_CART_URL");
        assert_eq!(env_var_name("order-history"), "ORCHESTRATE_ORDER_HISTORY_URL");
    }

    #[test]
    fn base_urls_are_validated() {
        assert!(validate_base_url("http://cart.internal:8080").is_ok());
        assert!(validate_base_url("http://127.0.0.1:3000/prefix").is_ok());
        assert!(validate_base_url("cart.internal").unwrap_err().contains("http://"));
        assert!(validate_base_url("ftp://x").unwrap_err().contains("http://"));
        assert!(validate_base_url("http://x/?a=1").unwrap_err().contains("query"));
        assert!(validate_base_url("http://exa mple").is_err());
    }

    #[test]
    fn builder_rejects_unknown_services_and_bad_urls() {
        let err = Runtime::builder(SERVICES).read_env(false).base_url("carts", "http://x").build().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown service `carts`; did you mean `cart`? declared services are: cart, order-history"
        );
        let err = Runtime::builder(SERVICES).read_env(false).base_url("cart", "localhost:1").build().unwrap_err();
        assert!(
            err.to_string().starts_with("base URL `localhost:1` of service `cart` (from the runtime builder)"),
            "{err}"
        );
    }

    #[test]
    fn generated_index_lookup_falls_back_to_names() {
        let rt = Runtime::builder(SERVICES).read_env(false).build().unwrap();
        assert_eq!(rt.service_at(1, "order-history").unwrap().name(), "order-history");
        assert_eq!(rt.service_at(0, "order-history").unwrap().name(), "order-history");
        assert!(rt.service_at(0, "nope").is_none());
    }
}

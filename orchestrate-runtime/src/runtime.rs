//! The runtime handle: one client per declared service and the shared store, built and validated
//! at start-up.

use crate::auth::{AuthSettings, Authenticator};
use crate::cache::{Cache, CacheSettings};
use crate::canary::Canaries;
use crate::client::{HttpTransport, ServiceClient, Transport};
use crate::config::{self, CONFIG_ENV, ConfigError, REDIS_URL_ENV, env_var_name, validate_base_url};
use crate::idempotency::Idempotency;
use crate::journal::Journal;
use crate::rate_limit::{RateLimitSettings, RateLimiter};
use crate::recent::{Recent, RecentRequests};
use crate::service::ServiceSpec;
use crate::spec::EndpointSpec;
use crate::store::{Store, StoreSettings};
use crate::tls::install_tls_provider;
use orchestrate_core::policy::store::redact;
use orchestrate_core::policy::{SagaSettings, ServerLimits};
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Shared state of every endpoint run: the clients of the downstream services and the
/// [shared store](crate::store).
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
    store: Store,
    server_timing: bool,
    cache: Cache,
    recent: Recent,
    rate_limiter: RateLimiter,
    auth: Option<Authenticator>,
    ops_token: Option<String>,
    idempotency: Idempotency,
    server_limits: ServerLimits,
    canaries: Canaries,
    journal: Journal,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("services", &self.inner.services.iter().map(ServiceClient::name).collect::<Vec<_>>())
            .field("store", &self.inner.store)
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
            sections: config::Sections::default(),
        }
    }

    /// The routes with canary versions and the file's changes to them (see
    /// [`canary`](crate::canary)).
    ///
    /// ```
    /// use orchestrate_runtime::Runtime;
    /// let runtime = Runtime::builder(&[]).read_env(false).build().unwrap();
    /// assert!(runtime.canaries().report().is_empty());
    /// ```
    pub fn canaries(&self) -> &Canaries {
        &self.inner.canaries
    }

    /// How bearer tokens are verified for the endpoints with `auth = jwt` (see
    /// [`auth`](crate::auth)); `None` when nothing configures it.
    ///
    /// ```
    /// use orchestrate_runtime::Runtime;
    /// let runtime = Runtime::builder(&[]).read_env(false).build().unwrap();
    /// assert!(runtime.auth().is_none());
    /// ```
    pub fn auth(&self) -> Option<&Authenticator> {
        self.inner.auth.as_ref()
    }

    /// What the listener allows a client (see [`server`](crate::server)): the builder's
    /// [`server_limits`](RuntimeBuilder::server_limits) with the file's `[server]` merged in.
    /// The body read timeout applies wherever an endpoint reads a body; pass the whole to
    /// [`server::serve`](crate::server::serve) for the rest.
    ///
    /// ```
    /// use orchestrate_runtime::Runtime;
    /// use std::time::Duration;
    /// let runtime = Runtime::builder(&[]).read_env(false).config_str("[server]\nmax_requests = 64\n").build().unwrap();
    /// assert_eq!(runtime.server_limits().max_requests, 64);
    /// assert_eq!(runtime.server_limits().header_read_timeout, Duration::from_secs(10));
    /// ```
    pub fn server_limits(&self) -> ServerLimits {
        self.inner.server_limits
    }

    /// The bearer token the operations endpoints require (`[ops] token`,
    /// [`RuntimeBuilder::ops_token`]), if one is set.
    ///
    /// ```
    /// use orchestrate_runtime::Runtime;
    /// let runtime = Runtime::builder(&[]).read_env(false).config_str("[ops]\ntoken = \"0123456789abcdef\"\n").build().unwrap();
    /// assert_eq!(runtime.ops_token(), Some("0123456789abcdef"));
    /// ```
    pub fn ops_token(&self) -> Option<&str> {
        self.inner.ops_token.as_deref()
    }

    /// The inbound rate limiter (see [`rate_limit`](crate::rate_limit)) that
    /// [`router::serve`](crate::router::serve) checks every request with.
    ///
    /// ```
    /// use orchestrate_runtime::Runtime;
    /// let runtime = Runtime::builder(&[]).read_env(false).config_str("[rate_limit]\ninstances = 3\n").build().unwrap();
    /// assert_eq!(runtime.rate_limiter().settings().instances, 3);
    /// ```
    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.inner.rate_limiter
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

    /// The recent requests of every endpoint (see [`recent`](crate::recent)): what
    /// [`router::serve`](crate::router::serve) records and `/_orchestrate` shows.
    ///
    /// ```
    /// use orchestrate_runtime::Runtime;
    /// let runtime = Runtime::builder(&[]).read_env(false).build().unwrap();
    /// assert_eq!(runtime.recent().settings().last, 50);
    /// ```
    pub fn recent(&self) -> &Recent {
        &self.inner.recent
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

    /// The saga journal: what the requests of endpoints with compensations committed and how
    /// their compensations went (see [`journal`](crate::journal)), in the store.
    ///
    /// ```
    /// let runtime = orchestrate_runtime::Runtime::builder(&[]).read_env(false).build().unwrap();
    /// assert_eq!(runtime.journal().settings(), &orchestrate_runtime::journal::SagaSettings::DEFAULT);
    /// ```
    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    /// The records of idempotency keys, for replaying client retries.
    pub(crate) fn idempotency(&self) -> &Idempotency {
        &self.inner.idempotency
    }

    /// Where the state shared between instances lives: [`Store::Memory`] unless a Redis URL is
    /// configured (see [`RuntimeBuilder::redis_url`]). The features that keep such state take
    /// their connection from here.
    ///
    /// ```
    /// use orchestrate_runtime::Runtime;
    /// use orchestrate_runtime::store::Backend;
    /// let runtime = Runtime::builder(&[]).read_env(false).redis_url("redis://127.0.0.1:6379/0").build().unwrap();
    /// let redis = runtime.store().redis().unwrap();
    /// assert_eq!((runtime.store().backend(), redis.target()), (Backend::Redis, "redis://127.0.0.1:6379/0"));
    /// ```
    pub fn store(&self) -> &Store {
        &self.inner.store
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
    /// What the builder and the configuration file set of the file's sections.
    sections: config::Sections,
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
            .field("redis_url", &self.sections.store.redis_url.as_deref().map(redact))
            .field("recent", &self.sections.recent)
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
        self.sections.cache.capacity = bytes;
        self
    }

    /// Where cached answers live (see [`cache`](crate::cache)): the in-memory capacity and
    /// whether they go to the shared store when one is configured (the default). The
    /// configuration file's `[cache]` table is merged into this key by key.
    ///
    /// ```
    /// use orchestrate_runtime::Runtime;
    /// use orchestrate_runtime::cache::CacheSettings;
    /// let runtime = Runtime::builder(&[])
    ///     .read_env(false)
    ///     .redis_url("redis://127.0.0.1:6379/0")
    ///     .cache(CacheSettings::DEFAULT.with_shared(false))
    ///     .build()
    ///     .unwrap();
    /// assert!(!runtime.cache().is_shared(), "each instance keeps its own");
    /// ```
    pub fn cache(mut self, settings: CacheSettings) -> Self {
        self.sections.cache = settings;
        self
    }

    /// Keeps the shared state in the Redis server at `url` (`redis://[user:password@]host[:port][/db]`
    /// or `redis+unix:///path`), checked by [`build`](Self::build). `ORCHESTRATE_REDIS_URL` and
    /// `[store] redis_url` in the configuration file take precedence, like the other start-up
    /// overrides. Building connects nothing: an unreachable server makes store operations fail
    /// (the features degrade), not start-up.
    ///
    /// ```
    /// use orchestrate_runtime::Runtime;
    /// let runtime = Runtime::builder(&[]).read_env(false).redis_url("redis://127.0.0.1:1/0").build().unwrap();
    /// assert!(runtime.store().redis().is_some());
    /// let err = Runtime::builder(&[]).read_env(false).redis_url("127.0.0.1:6379").build().unwrap_err();
    /// assert!(err.to_string().starts_with("`store.redis_url` (from the runtime builder): `127.0.0.1:6379` must start with `redis://`"), "{err}");
    /// ```
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.sections.store.redis_url = Some(url.into());
        self
    }

    /// The shared store's settings (Redis URL, timeouts, key prefix); the configuration file's
    /// `[store]` keys are merged into them key by key and `ORCHESTRATE_REDIS_URL` replaces the URL.
    /// Checked by [`build`](Self::build) with the rules of the file. Replaces an earlier
    /// [`redis_url`](Self::redis_url).
    ///
    /// ```
    /// use orchestrate_runtime::Runtime;
    /// use orchestrate_runtime::store::StoreSettings;
    /// use std::time::Duration;
    /// let settings = StoreSettings::default()
    ///     .with_redis_url("redis://127.0.0.1:6379/0")
    ///     .with_command_timeout(Duration::from_millis(20))
    ///     .with_key_prefix("checkout:");
    /// let runtime = Runtime::builder(&[])
    ///     .read_env(false)
    ///     .store(settings)
    ///     .config_str("[store]\ncommand_timeout = \"30ms\"\n")
    ///     .build()
    ///     .unwrap();
    /// let redis = runtime.store().redis().unwrap();
    /// assert_eq!((redis.command_timeout(), redis.prefix()), (Duration::from_millis(30), "checkout:"));
    /// ```
    pub fn store(mut self, settings: StoreSettings) -> Self {
        self.sections.store = settings;
        self
    }

    /// What the runtime keeps of recent requests for `/_orchestrate` (see
    /// [`recent`](crate::recent)): by default the last 50 requests of each endpoint plus the 10
    /// slowest and the last 20 with a failed call of the last five minutes.
    /// [`RecentRequests::OFF`] switches recording off. The `[recent]` table of the configuration
    /// file, when present, is merged over this, key by key.
    ///
    /// ```
    /// use orchestrate_runtime::Runtime;
    /// use orchestrate_runtime::recent::RecentRequests;
    /// use std::time::Duration;
    /// let runtime = Runtime::builder(&[])
    ///     .read_env(false)
    ///     .recent_requests(RecentRequests::new(100, 5, 5, Duration::from_secs(600)))
    ///     .config_str("[recent]\nfailed = 30\n")
    ///     .build()
    ///     .unwrap();
    /// let kept = runtime.recent().settings();
    /// assert_eq!((kept.last, kept.slowest, kept.failed), (100, 5, 30));
    ///
    /// let off = Runtime::builder(&[]).read_env(false).recent_requests(RecentRequests::OFF).build().unwrap();
    /// assert!(!off.recent().is_recording());
    /// ```
    pub fn recent_requests(mut self, settings: RecentRequests) -> Self {
        self.sections.recent = settings;
        self
    }

    /// What the listener allows a client (see [`server`](crate::server)): by default heads in
    /// 10 s, bodies in 30 s, 10 000 connections and 4096 requests at once. The `[server]` table of
    /// the configuration file, when present, is merged over this, key by key.
    ///
    /// ```
    /// use orchestrate_runtime::Runtime;
    /// use orchestrate_runtime::server::ServerLimits;
    /// use std::time::Duration;
    /// let runtime = Runtime::builder(&[])
    ///     .read_env(false)
    ///     .server_limits(ServerLimits::DEFAULT.with_body_read_timeout(Duration::from_secs(5)))
    ///     .config_str("[server]\nmax_connections = 500\n")
    ///     .build()
    ///     .unwrap();
    /// let limits = runtime.server_limits();
    /// assert_eq!((limits.body_read_timeout, limits.max_connections), (Duration::from_secs(5), 500));
    /// ```
    pub fn server_limits(mut self, limits: ServerLimits) -> Self {
        self.sections.server = limits;
        self
    }

    /// How inbound rate limits apply (see [`rate_limit`](crate::rate_limit)): overrides of the
    /// endpoints' declared limits, trusted proxies, the instance count for the fallback when the
    /// shared store is down, the user header, the keys kept. The `[rate_limit]` table of the
    /// configuration file is merged over this, key by key.
    ///
    /// ```
    /// use orchestrate_runtime::Runtime;
    /// use orchestrate_runtime::rate_limit::RateLimitSettings;
    /// let mut settings = RateLimitSettings::default();
    /// settings.user_header = Some("x-user-id".to_owned());
    /// let runtime = Runtime::builder(&[])
    ///     .read_env(false)
    ///     .rate_limit(settings)
    ///     .config_str("[rate_limit]\ntrusted_proxies = [\"10.0.0.0/8\"]\n")
    ///     .build()
    ///     .unwrap();
    /// let applied = runtime.rate_limiter().settings();
    /// assert_eq!((applied.user_header.as_deref(), applied.trusted_proxies.len()), (Some("x-user-id"), 1));
    /// ```
    pub fn rate_limit(mut self, settings: RateLimitSettings) -> Self {
        self.sections.rate_limit = settings;
        self
    }

    /// Verifies bearer tokens with `settings` for the endpoints with `auth = jwt`; the
    /// configuration file's `[auth]` merges into them (its `keys` are added).
    ///
    /// ```
    /// use orchestrate_runtime::Runtime;
    /// use orchestrate_runtime::auth::{AuthSettings, StaticKey};
    /// let settings = AuthSettings::default()
    ///     .with_issuer("https://auth.example.com")
    ///     .with_key(StaticKey::secret("0123456789abcdef0123456789abcdef").with_kid("dev"));
    /// let runtime = Runtime::builder(&[]).read_env(false).auth(settings).build().unwrap();
    /// assert!(runtime.auth().is_some());
    /// ```
    pub fn auth(mut self, settings: AuthSettings) -> Self {
        self.sections.auth = Some(settings);
        self
    }

    /// Requires `Authorization: Bearer <token>` on the operations endpoints (`/metrics`,
    /// `/health`, `/_orchestrate`, cache invalidation); `[ops] token` in the file overrides it.
    ///
    /// ```
    /// use orchestrate_runtime::Runtime;
    /// let runtime = Runtime::builder(&[]).read_env(false).ops_token("a long random string").build().unwrap();
    /// assert_eq!(runtime.ops_token(), Some("a long random string"));
    /// ```
    pub fn ops_token(mut self, token: impl Into<String>) -> Self {
        self.sections.ops_token = Some(token.into());
        self
    }

    /// The saga journal's lease and how long it keeps records (see [`journal`](crate::journal));
    /// `[saga]` in the file overrides it key by key.
    ///
    /// ```
    /// use orchestrate_runtime::journal::SagaSettings;
    /// use std::time::Duration;
    /// let settings = SagaSettings::new(Duration::from_secs(3), Duration::from_secs(3600));
    /// let runtime = orchestrate_runtime::Runtime::builder(&[]).read_env(false).saga(settings).build().unwrap();
    /// assert_eq!(runtime.journal().settings().lease.as_secs(), 3);
    /// ```
    pub fn saga(mut self, settings: SagaSettings) -> Self {
        self.sections.saga = settings;
        self
    }

    /// Validates the configuration and builds every client and the store.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`]: an override for an unknown service, a base URL that is not an absolute
    /// `http(s)` URL, a store setting that breaks a rule (a malformed Redis URL, a timeout out of
    /// range), a configuration file that cannot be read or breaks a rule of [`config`], an
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
        let file = self.apply_config()?;
        let file_urls = file.urls;
        let redis_url_env = self.read_env.then(|| std::env::var(REDIS_URL_ENV).ok()).flatten();
        let store = self.open_store(redis_url_env, file.redis_url_at)?;
        let server_timing = self.server_timing_setting()?;
        config::check_endpoints(&self.endpoints, &self.specs)?;
        let auth = self.authenticator()?;
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
        let cache = Cache::new(self.sections.cache, &store);
        let recent = Recent::new(self.sections.recent);
        self.check_rate_limit_endpoints()?;
        let idempotency = Idempotency::new(&store);
        let journal = Journal::new(&store, self.sections.saga);
        let rate_limiter = RateLimiter::new(std::mem::take(&mut self.sections.rate_limit), &store);
        let ops_token = self.sections.ops_token.take();
        self.check_canaries()?;
        let canaries = Canaries::new(std::mem::take(&mut self.sections.canary));
        let inner = Inner {
            services: clients.into_boxed_slice(),
            store,
            server_timing,
            cache,
            recent,
            rate_limiter,
            auth,
            ops_token,
            idempotency,
            server_limits: self.sections.server,
            canaries,
            journal,
        };
        Ok(Runtime { inner: Arc::new(inner) })
    }
}

impl RuntimeBuilder {
    /// Refuses a `[canary.<Name>]` that names no canary endpoint, and changed weights of one
    /// route adding up to more than 100 (when the endpoints are known: [`RuntimeBuilder::endpoints`]).
    fn check_canaries(&self) -> Result<(), ConfigError> {
        if self.endpoints.is_empty() || self.sections.canary.is_empty() {
            return Ok(());
        }
        let invalid = |key: String, reason: String| ConfigError::Invalid {
            service: None,
            key,
            origin: "the configuration".to_owned(),
            reason,
        };
        let known: Vec<&str> = self.endpoints.iter().filter(|e| e.canary.is_some()).map(|e| e.name).collect();
        for (name, _) in &self.sections.canary {
            if !known.contains(&name.as_str()) {
                let near = orchestrate_core::suggest::did_you_mean(name, known.iter().copied());
                let reason = format!("no canary endpoint is named `{name}`{near} (canaries: {})", known.join(", "));
                return Err(invalid(format!("canary.{name}"), reason));
            }
        }
        let mut routes: Vec<(String, u32)> = Vec::new();
        for spec in &self.endpoints {
            let Some(canary) = spec.canary else { continue };
            let change =
                self.sections.canary.iter().find(|(name, _)| name == spec.name).map(|(_, c)| *c).unwrap_or_default();
            let route = format!("{} {}", spec.method.as_str(), spec.route);
            let weight = change.apply(canary).weight;
            match routes.iter_mut().find(|(r, _)| *r == route) {
                Some((_, total)) => *total += weight,
                None => routes.push((route, weight)),
            }
        }
        for (route, total) in routes {
            if total > 100 {
                return Err(invalid(
                    "canary".to_owned(),
                    orchestrate_core::policy::canary::weights_over(&route, total),
                ));
            }
        }
        Ok(())
    }

    /// Refuses a `[rate_limit.endpoints.<Name>]` that names none of the endpoints (when they are
    /// known: [`RuntimeBuilder::endpoints`]).
    fn check_rate_limit_endpoints(&self) -> Result<(), ConfigError> {
        if self.endpoints.is_empty() {
            return Ok(());
        }
        let known: Vec<&str> = self.endpoints.iter().map(|e| e.name).collect();
        for (name, _) in &self.sections.rate_limit.endpoints {
            if !known.contains(&name.as_str()) {
                let near = orchestrate_core::suggest::did_you_mean(name, known.iter().copied());
                return Err(ConfigError::Invalid {
                    service: None,
                    key: format!("rate_limit.endpoints.{name}"),
                    origin: "the configuration".to_owned(),
                    reason: format!("no endpoint is named `{name}`{near} (endpoints: {})", known.join(", ")),
                });
            }
        }
        Ok(())
    }

    /// The authenticator of the settings (the builder's with the file's merged in), started (its
    /// JWK Set fetched in the background) when a tokio runtime runs; an endpoint with
    /// `auth = jwt` and no keys to verify with is a start-up error.
    fn authenticator(&self) -> Result<Option<Authenticator>, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            service: None,
            key: "auth".to_owned(),
            origin: "the configuration".to_owned(),
            reason,
        };
        let needs = self.endpoints.iter().find(|e| e.auth == orchestrate_core::policy::Auth::Jwt);
        match (&self.sections.auth, needs) {
            (Some(settings), _) if settings.has_keys() => {
                let auth = Authenticator::new(settings.clone()).map_err(invalid)?;
                auth.start();
                Ok(Some(auth))
            }
            (_, Some(endpoint)) => Err(invalid(format!(
                "endpoint `{}` requires a bearer token (`auth = jwt`), but no key is configured to verify one; add `[auth]` with `jwks_url` or `[[auth.keys]]`, or `RuntimeBuilder::auth`",
                endpoint.name
            ))),
            (_, None) => Ok(None),
        }
    }

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

    /// The store of the settings (the builder's with the file's merged in) and `from_env`, the
    /// value of `ORCHESTRATE_REDIS_URL` (empty is unset); `redis_url_at` is where the file sets
    /// the URL, if it does.
    fn open_store(&self, from_env: Option<String>, redis_url_at: Option<String>) -> Result<Store, ConfigError> {
        let mut settings = self.sections.store.clone();
        let from_env = from_env.filter(|url| !url.trim().is_empty());
        let (url_key, url_origin) = match (&from_env, redis_url_at) {
            (Some(_), _) => (REDIS_URL_ENV, "the environment".to_owned()),
            (None, Some(at)) => ("store.redis_url", at),
            (None, None) => ("store.redis_url", "the runtime builder".to_owned()),
        };
        if let Some(url) = from_env {
            if let Some(spec) = self.specs.iter().find(|s| env_var_name(s.name) == REDIS_URL_ENV) {
                return Err(ConfigError::Invalid {
                    service: None,
                    key: REDIS_URL_ENV.to_owned(),
                    origin: "the environment".to_owned(),
                    reason: format!(
                        "names both the shared store and the base URL of service `{}`; rename the service in `services!`",
                        spec.name
                    ),
                });
            }
            settings.redis_url = Some(url);
        }
        // What the file sets was checked where it is written: a problem left is the builder's
        // (or the environment's URL).
        let invalid = |key: &str, reason: String| {
            let (key, origin) = if key == "store.redis_url" {
                (url_key, url_origin.clone())
            } else {
                (key, "the runtime builder".to_owned())
            };
            ConfigError::Invalid { service: None, key: key.to_owned(), origin, reason }
        };
        config::collect(settings.problems().into_iter().map(|(key, reason)| invalid(key, reason)).collect())?;
        Store::open(&settings).map_err(|reason| {
            let url = settings.redis_url.as_deref().map(redact).unwrap_or_default();
            invalid("store.redis_url", format!("`{url}` {reason}"))
        })
    }

    /// Reads the configuration file, if any, into the specs and the sections' settings; returns what
    /// else it sets.
    fn apply_config(&mut self) -> Result<config::FileConfig, ConfigError> {
        let from_env = self.read_env.then(|| std::env::var_os(CONFIG_ENV)).flatten().filter(|p| !p.is_empty());
        let named_by_env = from_env.is_some();
        let source = match from_env {
            Some(path) => Some(ConfigSource::File(path.into())),
            None => self.config.take(),
        };
        let (name, text) = match source {
            None => return Ok(config::FileConfig::default()),
            Some(ConfigSource::Text(text)) => ("<config>".to_owned(), text),
            Some(ConfigSource::File(path)) => {
                let name = path.display().to_string();
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    let from =
                        if named_by_env { format!(" (the path comes from `{CONFIG_ENV}`)") } else { String::new() };
                    ConfigError::Unreadable { path: name.clone(), reason: format!("{e}{from}") }
                })?;
                (name, text)
            }
        };
        config::apply(&name, &text, &mut self.specs, &mut self.sections)
    }
}

/// Logs `ORCHESTRATE_*_URL` variables that name no declared service (nor the store): likely a
/// typo, but maybe meant for another application sharing the environment, so not an error.
fn warn_unknown_env(specs: &[ServiceSpec]) {
    let known: Vec<String> = specs.iter().map(|s| env_var_name(s.name)).collect();
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("ORCHESTRATE_")
            && name.ends_with("_URL")
            && name != REDIS_URL_ENV
            && !known.iter().any(|k| k == name)
        {
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
    use std::time::Duration;

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
    fn the_files_canary_weights_of_one_route_may_not_add_up_to_more_than_100() {
        use crate::spec::{Canary, CanaryKey, Method, Rollback};
        const fn canary(name: &'static str, version: &'static str) -> EndpointSpec {
            EndpointSpec::new(name, Method::Get, "/quote", Duration::from_secs(1), &[], &[]).with_canary(Canary::new(
                version,
                10,
                CanaryKey::RequestId,
                Rollback::DEFAULT,
            ))
        }
        static STABLE: EndpointSpec =
            EndpointSpec::new("Quote", Method::Get, "/quote", Duration::from_secs(1), &[], &[]);
        static V2: EndpointSpec = canary("QuoteV2", "v2");
        static V3: EndpointSpec = canary("QuoteV3", "v3");
        let build = |config: &str| {
            Runtime::builder(&[]).read_env(false).endpoints(&[&STABLE, &V2, &V3]).config_str(config).build()
        };
        assert!(build("[canary.QuoteV2]\nweight = 90\n").is_ok(), "90 + 10");
        let err = build("[canary.QuoteV2]\nweight = 60\n[canary.QuoteV3]\nweight = 50\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`canary` (from the configuration): the canary weights of `GET /quote` add up to 110%; at most 100% can go to canaries (the stable version gets the rest): lower a `weight`"
        );
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

    /// The store a builder gets with `env` as `ORCHESTRATE_REDIS_URL`: its target, or the error.
    fn store_with(builder: RuntimeBuilder, env: Option<&str>) -> Result<String, String> {
        let mut builder = builder.read_env(false);
        let file = builder.apply_config().map_err(|e| e.to_string())?;
        let store = builder.open_store(env.map(str::to_owned), file.redis_url_at).map_err(|e| e.to_string())?;
        Ok(store.redis().map_or_else(|| "memory".to_owned(), |r| r.target().to_owned()))
    }

    #[test]
    fn the_redis_url_comes_from_the_environment_then_the_file_then_the_builder() {
        let builder = || Runtime::builder(SERVICES).redis_url("redis://builder:6379");
        let file = "[store]\nredis_url = \"redis://file:6379\"\n";
        assert_eq!(store_with(Runtime::builder(SERVICES), None).unwrap(), "memory");
        assert_eq!(store_with(builder(), None).unwrap(), "redis://builder:6379");
        assert_eq!(store_with(builder().config_str(file), None).unwrap(), "redis://file:6379");
        assert_eq!(store_with(builder().config_str(file), Some("redis://env:6379")).unwrap(), "redis://env:6379");
        assert_eq!(store_with(builder().config_str(file), Some("")).unwrap(), "redis://file:6379", "empty is unset");
        assert_eq!(store_with(Runtime::builder(SERVICES), Some("redis://env:6379")).unwrap(), "redis://env:6379");
    }

    #[test]
    fn store_mistakes_name_where_the_value_comes_from() {
        let err = store_with(Runtime::builder(SERVICES), Some("redis//:pw@env")).unwrap_err();
        assert_eq!(
            err,
            "`ORCHESTRATE_REDIS_URL` (from the environment): `redis//:pw@env` must start with `redis://` \
             (or `rediss://`, `redis+unix://`), e.g. \"redis://127.0.0.1:6379/0\""
        );
        let err = store_with(Runtime::builder(SERVICES).redis_url("redis://:pw@cache:99999"), None).unwrap_err();
        assert_eq!(
            err,
            "`store.redis_url` (from the runtime builder): `redis://:***@cache:99999` has an invalid port `99999`"
        );
        let file = "\n[store]\nredis_url = \"rediss://cache:6380\"\n";
        let err = store_with(Runtime::builder(SERVICES).config_str(file), None).unwrap_err();
        assert!(err.starts_with("`store.redis_url` (from <config>:3:13): `rediss://cache:6380` needs TLS"), "{err}");
        let settings = StoreSettings::default().with_command_timeout(Duration::from_secs(30)).with_key_prefix("a b");
        let err = store_with(Runtime::builder(SERVICES).store(settings.clone()), None).unwrap_err();
        assert_eq!(
            err,
            "2 configuration errors:\n  - `store.command_timeout` (from the runtime builder): `command_timeout` must be at most 10s: \
             a store command holds the request that waits for it\n  - `store.key_prefix` (from the runtime builder): \
             `key_prefix` has whitespace or a control character; write e.g. \"checkout:\""
        );
        // The file's value replaces the builder's, so the builder's mistake no longer matters.
        let file = "[store]\ncommand_timeout = \"20ms\"\nkey_prefix = \"ab:\"\n";
        assert_eq!(store_with(Runtime::builder(SERVICES).store(settings).config_str(file), None).unwrap(), "memory");
    }

    #[test]
    fn a_service_named_redis_cannot_share_the_stores_variable() {
        const REDIS: &[ServiceSpec] = &[ServiceSpec::new("redis", "http://redis-http.internal")];
        assert_eq!(store_with(Runtime::builder(REDIS), None).unwrap(), "memory");
        let err = store_with(Runtime::builder(REDIS), Some("redis://cache")).unwrap_err();
        assert!(err.contains("names both the shared store and the base URL of service `redis`"), "{err}");
    }

    #[test]
    fn generated_index_lookup_falls_back_to_names() {
        let rt = Runtime::builder(SERVICES).read_env(false).build().unwrap();
        assert_eq!(rt.service_at(1, "order-history").unwrap().name(), "order-history");
        assert_eq!(rt.service_at(0, "order-history").unwrap().name(), "order-history");
        assert!(rt.service_at(0, "nope").is_none());
    }
}

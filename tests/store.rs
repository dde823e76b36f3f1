//! The shared store against a real `redis-server` on loopback: commands, pipelines, scripts and
//! keys; an outage (the server killed mid-test) and the recovery of the same handle; a URL where
//! nothing listens; a command slower than the timeout; `/health`.
//!
//! Each test starts its own server ([`support::redis::RedisServer`]); without `redis-server`
//! installed they are skipped, except under `CI=true`, where they fail.

mod support;

use orchestrate::Runtime;
use orchestrate::ops::health::{self, HealthReport, Status};
use orchestrate::store::{RedisStore, Script, Store, StoreError, StoreErrorKind, StoreSettings};
use redis::cmd;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use support::redis::{RedisServer, refusing_port};

/// A runtime whose store is the Redis at `url` with `settings`' timeouts and prefix.
fn runtime_with(url: &str, settings: StoreSettings) -> Runtime {
    Runtime::builder(&[]).read_env(false).store(settings.with_redis_url(url)).build().unwrap()
}

/// A runtime on the Redis at `url` with a generous timeout: for the tests that are not about
/// timeouts, on a machine other builds may be keeping busy.
fn runtime(url: &str) -> Runtime {
    runtime_with(
        url,
        StoreSettings::default().with_command_timeout(Duration::from_secs(2)).with_key_prefix("store-test:"),
    )
}

fn redis_of(runtime: &Runtime) -> &RedisStore {
    match runtime.store() {
        Store::Redis(redis) => redis,
        other => panic!("expected the Redis store, got {other:?}"),
    }
}

/// The answer of `attempt`, tried every 50 ms until it succeeds (at most 10 s).
async fn eventually<T, F, Fut>(mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut last = None;
    for _ in 0..200 {
        match attempt().await {
            Ok(value) => return value,
            Err(error) => last = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the store did not answer within 10 s; last error: {last:?}");
}

#[tokio::test]
async fn commands_and_pipelines_round_trip_under_the_key_prefix() {
    let Some(server) = RedisServer::start() else { return };
    let runtime = runtime(&server.url());
    let redis = redis_of(&runtime);
    eventually(|| redis.ping()).await;

    let key = redis.key(&["round-trip", "a"]);
    assert_eq!(key, "store-test:round-trip:a");
    let () = redis.query(cmd("SET").arg(&key).arg("hello").arg("PX").arg(60_000)).await.unwrap();
    let value: Option<String> = redis.query(cmd("GET").arg(&key)).await.unwrap();
    assert_eq!(value.as_deref(), Some("hello"));
    let missing: Option<String> = redis.query(cmd("GET").arg(redis.key(&["round-trip", "none"]))).await.unwrap();
    assert_eq!(missing, None);
    // The key is stored under the prefix, and only there.
    let exists: (bool, bool) =
        redis.pipeline(redis::pipe().exists("store-test:round-trip:a").exists("round-trip:a")).await.unwrap();
    assert_eq!(exists, (true, false));

    // A pipeline, and one in MULTI/EXEC.
    let counter = redis.key(&["round-trip", "counter"]);
    let (n, text): (i64, String) =
        redis.pipeline(redis::pipe().incr(&counter, 5).pexpire(&counter, 60_000).ignore().get(&key)).await.unwrap();
    assert_eq!((n, text.as_str()), (5, "hello"));
    let (n,): (i64,) = redis.pipeline(redis::pipe().atomic().incr(&counter, 1)).await.unwrap();
    assert_eq!(n, 6);

    // The server's error and an answer of another type are reply errors, not outages.
    let error = redis.query::<i64>(cmd("INCR").arg(&key)).await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Reply, "{error}");
    assert!(
        matches!(&error, StoreError::Reply { operation, code: Some(code), .. } if operation == "INCR" && code == "ERR"),
        "{error:?}"
    );
    let error = redis.query::<i64>(cmd("GET").arg(&key)).await.unwrap_err();
    assert_eq!((error.kind(), error.operation()), (StoreErrorKind::Reply, "GET"), "{error}");
    let health = runtime.store().health();
    assert!(health.available, "a reply error is an answer: {health:?}");
    assert_eq!((health.status(), health.consecutive_failures, health.failures), ("ok", 0, 2));
    assert_eq!(health.target.as_deref(), Some(server.url().as_str()));
}

#[tokio::test]
async fn scripts_run_and_are_loaded_again_after_a_script_flush() {
    static ADD_TO: Script = Script::new("add_to", "return redis.call('INCRBY', KEYS[1], ARGV[1])");
    static FAILS: Script = Script::new("fails", "return redis.error_reply('NOPE not today')");
    let Some(server) = RedisServer::start() else { return };
    let runtime = runtime(&server.url());
    let redis = redis_of(&runtime);
    eventually(|| redis.ping()).await;

    let key = redis.key(&["script"]);
    let n: i64 = redis.invoke(&ADD_TO.key(&key).arg(2)).await.unwrap();
    assert_eq!(n, 2);
    let loaded: Vec<bool> = redis.query(cmd("SCRIPT").arg("EXISTS").arg(ADD_TO.hash())).await.unwrap();
    assert_eq!(loaded, [true]);
    // The server forgets every script (as a restart does): `NOSCRIPT`, then loaded again.
    let () = redis.query(cmd("SCRIPT").arg("FLUSH")).await.unwrap();
    let n: i64 = redis.invoke(&ADD_TO.key(&key).arg(3)).await.unwrap();
    assert_eq!(n, 5);
    let error = redis.invoke::<()>(&FAILS.prepare()).await.unwrap_err();
    assert_eq!((error.kind(), error.operation()), (StoreErrorKind::Reply, "script:fails"), "{error}");
    assert!(error.to_string().contains("not today"), "{error}");
}

/// The sum of `orchestrate_store_errors_total` for `operation`, every kind.
fn counted(metrics: &orchestrate::ops::metrics::Metrics, operation: &str) -> f64 {
    let label = format!("operation=\"{operation}\"");
    metrics
        .render()
        .lines()
        .filter(|line| line.starts_with("orchestrate_store_errors_total{") && line.contains(&label))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Every log line of this test binary (a global subscriber: a scoped one would miss lines whose
/// callsite another test's thread registered first).
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn global() -> &'static Self {
        static LOG: OnceLock<Log> = OnceLock::new();
        LOG.get_or_init(|| {
            let log = Log::default();
            let writer = log.clone();
            let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
            tracing::subscriber::set_global_default(subscriber).expect("no other subscriber in this binary");
            log
        })
    }

    /// The lines about the store at `target` that contain `text`.
    fn lines(&self, target: &str, text: &str) -> Vec<String> {
        let store = format!("store={target}");
        let all = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        all.lines().filter(|l| l.contains(&store) && l.contains(text)).map(str::to_owned).collect()
    }
}

#[tokio::test]
async fn an_outage_fails_fast_is_counted_and_the_same_handle_recovers() {
    let Some(mut server) = RedisServer::start() else { return };
    let metrics = orchestrate::ops::metrics::install().unwrap();
    // The default command timeout (50 ms).
    let runtime = runtime_with(&server.url(), StoreSettings::default());
    let redis = redis_of(&runtime);
    let key = redis.key(&["outage"]);
    let mut set = cmd("SET");
    set.arg(&key).arg(1);
    eventually(|| redis.query::<()>(&set)).await;
    let before = counted(&metrics, "GET");
    let log = Log::global();
    let target = server.url();
    let logged_before = log.lines(&target, "WARN").len();

    server.kill();
    let down = [StoreErrorKind::Unavailable, StoreErrorKind::Timeout];
    let mut get = cmd("GET");
    get.arg(&key);
    for _ in 0..20 {
        // The first finds the connection broken; the next fail at once while the store is paused.
        let error = redis.query::<Option<i64>>(&get).await.unwrap_err();
        assert!(down.contains(&error.kind()), "{error:?}");
    }
    assert!(counted(&metrics, "GET") >= before + 20.0, "every failure is counted");
    let health = runtime.store().health();
    assert_eq!(health.status(), "unavailable", "{health:?}");
    assert!(health.consecutive_failures >= 1 && health.failures >= 20, "{health:?}");
    assert_eq!(health.last_error.as_ref().map(|e| e.operation.as_str()), Some("GET"));

    // Back on the same port: the same handle answers again (the restarted server is empty).
    server.restart();
    let value: Option<i64> = eventually(|| redis.query(&get)).await;
    assert_eq!(value, None);
    let health = runtime.store().health();
    assert_eq!((health.status(), health.consecutive_failures), ("ok", 0), "{health:?}");
    assert!(health.last_success.is_some());
    // One line when it started failing, one when it answered again: not one per failure.
    let lines = &log.lines(&target, "WARN")[logged_before..];
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].contains("the shared store failed") && lines[1].contains("the shared store answers again"),
        "{lines:#?}"
    );
    eventually(|| redis.query::<()>(&set)).await;
}

#[tokio::test]
async fn a_url_where_nothing_listens_degrades_instead_of_failing_start_up() {
    // No redis-server needed: this port refuses connections.
    let (_bound, port) = refusing_port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let runtime = runtime(&url);
    let redis = redis_of(&runtime);
    let error = redis.query::<Option<String>>(cmd("GET").arg(redis.key(&["k"]))).await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{error:?}");
    assert!(error.to_string().contains("refused"), "{error}");
    assert_eq!(runtime.store().health().status(), "unavailable");

    // `/health` shows it, and stays 200: the BFF is degraded, not down.
    let report = HealthReport::of(&runtime, &[]);
    assert_eq!((report.status, report.store.backend, report.store.status), (Status::Degraded, "redis", "unavailable"));
    let url = support::serve(health::routes(&runtime, &[])).await;
    let response = reqwest::get(format!("{url}/health")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(
        (&body["store"]["backend"], &body["store"]["status"]),
        (&"redis".into(), &"unavailable".into()),
        "{body}"
    );
    assert!(body["store"]["consecutiveFailures"].as_u64().unwrap() >= 1, "{body}");
    // The route pinged the store: a second failure (paused after the `GET`, or a new attempt
    // once the pause is over; a paused one keeps the `GET` as the last error).
    assert_eq!(body["store"]["failures"], 2, "{body}");
    let last = body["store"]["lastError"]["operation"].as_str().unwrap();
    assert!(["GET", "PING"].contains(&last), "{body}");
}

#[tokio::test]
async fn a_command_slower_than_the_timeout_is_a_timeout() {
    let Some(server) = RedisServer::start() else { return };
    let runtime = runtime_with(&server.url(), StoreSettings::default());
    let redis = redis_of(&runtime);
    eventually(|| redis.ping()).await;
    let error = redis.query::<()>(cmd("DEBUG").arg("SLEEP").arg(0.2)).await.unwrap_err();
    match &error {
        StoreError::Timeout { operation, after } => {
            assert_eq!((operation.as_str(), *after), ("DEBUG", Duration::from_millis(50)))
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // Once the server is done sleeping, the same handle answers again.
    eventually(|| redis.ping()).await;
    assert_eq!(runtime.store().health().status(), "ok");
}

#[tokio::test]
async fn health_shows_a_store_that_answers() {
    let Some(server) = RedisServer::start() else { return };
    let runtime = runtime(&server.url());
    let url = support::serve(health::routes(&runtime, &[])).await;
    let body: serde_json::Value = reqwest::get(format!("{url}/health")).await.unwrap().json().await.unwrap();
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(
        body["store"],
        serde_json::json!({"backend": "redis", "status": "ok", "target": server.url(), "consecutiveFailures": 0,
            "failures": 0, "lastError": null})
    );
}

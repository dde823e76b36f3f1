//! Call forms end to end over real HTTP on loopback: a conditional call (`when`) whose condition
//! is false is never sent and is not a failure; `after = [..]` orders a call behind another
//! without delaying the independent ones; and a downstream answer over the service's body cap is
//! that call's failure, refused at its `content-length` or cut off as it streams past the cap.

mod support;

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A runtime for `services` pointed at `(service, base URL)`s, with `Server-Timing` on and the
/// environment ignored.
fn runtime(services: &'static [orchestrate::ServiceSpec], urls: &[(&str, &str)]) -> orchestrate::Runtime {
    let builder = orchestrate::Runtime::builder(services).read_env(false).server_timing(true);
    urls.iter().fold(builder, |b, (service, url)| b.base_url(service, *url)).build().unwrap()
}

/// One metric of a `Server-Timing` header.
#[derive(Debug)]
struct Timing {
    name: String,
    start_ms: f64,
    dur_ms: f64,
    desc: String,
}

/// The metrics of a response's `Server-Timing` header, e.g.
/// `a;dur=101.2;desc="steps +0.0ms", .., total;dur=115.0`.
fn server_timing(response: &reqwest::Response) -> Vec<Timing> {
    let header = response.headers().get("server-timing").expect("a Server-Timing header").to_str().unwrap();
    header
        .split(", ")
        .map(|metric| {
            let mut parts = metric.split(';');
            let name = parts.next().unwrap().to_owned();
            let (mut dur_ms, mut desc) = (None, String::new());
            for param in parts {
                match param.split_once('=') {
                    Some(("dur", value)) => dur_ms = Some(value.parse::<f64>().unwrap()),
                    Some(("desc", value)) => desc = value.trim_matches('"').to_owned(),
                    other => panic!("unexpected parameter {other:?} in {header}"),
                }
            }
            // desc: "<service> +<start>ms[ <outcome>]"
            let start_ms = desc
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.strip_prefix('+')?.strip_suffix("ms")?.parse().ok())
                .unwrap_or(0.0);
            Timing { name, start_ms, dur_ms: dur_ms.unwrap_or_else(|| panic!("no dur in {metric}")), desc }
        })
        .collect()
}

fn timing<'a>(timings: &'a [Timing], name: &str) -> &'a Timing {
    timings.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no `{name}` in {timings:?}"))
}

mod conditional {
    //! `when = profile.gold`: the perks call is made for gold members only.
    use super::*;
    use orchestrate::CallOutcome;
    use orchestrate::prelude::*;

    orchestrate::services! {
        profiles: "http://profiles.internal",
        perks: "http://perks.internal",
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub struct Profile {
        pub gold: bool,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    pub struct Perks {
        pub names: Vec<String>,
    }

    #[orchestrate::api]
    pub mod members {
        use super::*;

        #[endpoint(GET "/members/{user}", timeout = "2s")]
        #[derive(Debug, Serialize)]
        pub struct Member {
            #[input(path)]
            #[serde(skip)]
            pub user: String,

            #[call(service = "profiles", timeout = "500ms", required, get = "/profiles/{user}")]
            pub profile: Profile,

            #[call(service = "perks", timeout = "500ms", get = "/perks/{user}", when = profile.gold)]
            pub perks: Option<Perks>,
        }
    }

    use members::{Member, MemberInputs};

    /// The two services on loopback, counting the requests each receives. Users whose name starts
    /// with `gold` are gold members.
    struct Bff {
        url: String,
        runtime: Runtime,
        profile_requests: Arc<AtomicUsize>,
        perks_requests: Arc<AtomicUsize>,
    }

    async fn start() -> Bff {
        let profile_requests = Arc::new(AtomicUsize::new(0));
        let perks_requests = Arc::new(AtomicUsize::new(0));
        let count = profile_requests.clone();
        let profiles = Router::new().route(
            "/profiles/{user}",
            get(move |axum::extract::Path(user): axum::extract::Path<String>| async move {
                count.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({ "gold": user.starts_with("gold") }))
            }),
        );
        let count = perks_requests.clone();
        let perks = Router::new().route(
            "/perks/{user}",
            get(move || async move {
                count.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({ "names": ["lounge", "free shipping"] }))
            }),
        );
        let profiles = support::serve(profiles).await;
        let perks = support::serve(perks).await;
        let runtime = super::runtime(services::ALL, &[("profiles", &profiles), ("perks", &perks)]);
        let url = support::serve(orchestrate::router::app(members::router(&runtime))).await;
        Bff { url, runtime, profile_requests, perks_requests }
    }

    #[tokio::test]
    async fn a_false_condition_gives_none_without_a_request_and_is_no_failure() {
        let bff = start().await;
        let response = reqwest::get(format!("{}/members/basic-1", bff.url)).await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("x-partial-data").is_none(), "{:?}", response.headers());
        let timings = server_timing(&response);
        let body: Value = response.json().await.unwrap();
        // No `failedServices`, not partial: a skipped call did not fail.
        assert_eq!(body, json!({ "profile": { "gold": false }, "perks": null, "partialData": false }));
        assert_eq!(bff.profile_requests.load(Ordering::SeqCst), 1);
        assert_eq!(bff.perks_requests.load(Ordering::SeqCst), 0, "the perks service was called");
        let perks = timing(&timings, "perks");
        assert!(perks.desc.ends_with(" skipped"), "{perks:?}");

        // The timeline of the same run, from code.
        let outcome = Member::run(&bff.runtime, MemberInputs { user: "basic-2".into() }).await.unwrap();
        assert_eq!(outcome.value.perks, None);
        assert!(!outcome.is_partial());
        assert!(outcome.failed.is_empty(), "{:?}", outcome.failed);
        let record = outcome.timeline.get("perks").expect("the skipped call is in the timeline");
        assert_eq!((record.outcome, record.attempts, record.status), (CallOutcome::Skipped, 0, None));
        assert_eq!(outcome.timeline.get("profile").unwrap().outcome, CallOutcome::Ok);
        assert_eq!(bff.profile_requests.load(Ordering::SeqCst), 2);
        assert_eq!(bff.perks_requests.load(Ordering::SeqCst), 0, "the perks service was called");
    }

    #[tokio::test]
    async fn a_true_condition_makes_the_call_once_its_input_is_ready() {
        let bff = start().await;
        let response = reqwest::get(format!("{}/members/gold-1", bff.url)).await.unwrap();
        assert_eq!(response.status(), 200);
        let timings = server_timing(&response);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({
                "profile": { "gold": true },
                "perks": { "names": ["lounge", "free shipping"] },
                "partialData": false,
            })
        );
        assert_eq!(bff.perks_requests.load(Ordering::SeqCst), 1);
        let (profile, perks) = (timing(&timings, "profile"), timing(&timings, "perks"));
        assert!(!perks.desc.contains("skipped"), "{perks:?}");
        // The condition reads the profile, so the perks call starts once it is in (0.1 ms rounding).
        assert!(perks.start_ms + 0.15 >= profile.start_ms + profile.dur_ms, "{timings:?}");

        let outcome = Member::run(&bff.runtime, MemberInputs { user: "gold-2".into() }).await.unwrap();
        assert_eq!(outcome.value.perks.as_ref().map(|p| p.names.len()), Some(2));
        let record = outcome.timeline.get("perks").unwrap();
        assert_eq!((record.outcome, record.attempts, record.status), (CallOutcome::Ok, 1, Some(200)));
        assert_eq!(bff.perks_requests.load(Ordering::SeqCst), 2);
    }
}

mod ordering {
    //! `after = [a]`: `b` waits for `a` to finish without reading it; `c` waits for nothing.
    use super::*;
    use orchestrate::prelude::*;
    use std::sync::Mutex;
    use std::time::Instant;
    use tokio::sync::watch;

    orchestrate::services! {
        steps: "http://steps.internal",
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub struct Step {
        pub step: String,
    }

    #[orchestrate::api]
    pub mod flow {
        use super::*;

        #[endpoint(GET "/flow", timeout = "5s")]
        #[derive(Debug, Serialize)]
        pub struct Flow {
            #[call(service = "steps", timeout = "2s", required, get = "/a")]
            pub a: Step,

            #[call(service = "steps", timeout = "2s", required, get = "/b", after = [a])]
            pub b: Step,

            #[call(service = "steps", timeout = "2s", required, get = "/c")]
            pub c: Step,
        }
    }

    use flow::{Flow, FlowInputs};

    /// When the service started and finished answering one request.
    #[derive(Debug, Clone)]
    struct Served {
        step: String,
        start: Instant,
        end: Instant,
    }

    /// What the steps service saw, and whether `/c` has arrived since the last `clear`.
    struct Log {
        served: Mutex<Vec<Served>>,
        c_arrived: watch::Sender<bool>,
    }

    impl Log {
        fn new() -> Self {
            Self { served: Mutex::default(), c_arrived: watch::Sender::new(false) }
        }

        fn of(&self, step: &str) -> Served {
            let served = self.served.lock().unwrap();
            let mut of = served.iter().filter(|s| s.step == step);
            let first = of.next().unwrap_or_else(|| panic!("no request for {step}: {served:?}")).clone();
            assert!(of.next().is_none(), "more than one request for {step}: {served:?}");
            first
        }

        fn clear(&self) {
            self.served.lock().unwrap().clear();
            self.c_arrived.send_replace(false);
        }
    }

    /// The steps service: `/a` takes at least 100 ms and, so that "c runs beside a" does not
    /// depend on how busy the machine is, does not answer before `/c` has arrived (giving up
    /// after a second, when c was held back); `/b` and `/c` take 10 ms.
    async fn steps(log: Arc<Log>) -> String {
        let app = Router::new().route(
            "/{step}",
            get(move |axum::extract::Path(step): axum::extract::Path<String>| {
                let log = log.clone();
                async move {
                    let start = Instant::now();
                    match step.as_str() {
                        "a" => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            let mut c_arrived = log.c_arrived.subscribe();
                            let _ = tokio::time::timeout(Duration::from_secs(1), c_arrived.wait_for(|c| *c)).await;
                        }
                        "c" => {
                            log.c_arrived.send_replace(true);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        _ => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                    log.served.lock().unwrap().push(Served { step: step.clone(), start, end: Instant::now() });
                    axum::Json(json!({ "step": step }))
                }
            }),
        );
        support::serve(app).await
    }

    #[tokio::test]
    async fn after_waits_for_the_end_of_its_call_and_delays_nothing_else() {
        let log = Arc::new(Log::new());
        let steps = steps(log.clone()).await;
        let runtime = super::runtime(services::ALL, &[("steps", &steps)]);
        let url = support::serve(orchestrate::router::app(flow::router(&runtime))).await;

        let response = reqwest::get(format!("{url}/flow")).await.unwrap();
        assert_eq!(response.status(), 200);
        let timings = server_timing(&response);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({ "a": { "step": "a" }, "b": { "step": "b" }, "c": { "step": "c" }, "partialData": false })
        );

        // What the service saw.
        let (a, b, c) = (log.of("a"), log.of("b"), log.of("c"));
        assert!(b.start >= a.end, "b started {:?} before a finished", a.end - b.start);
        assert!(c.start < a.end, "c was held back until a finished: {:?} after", c.start - a.end);
        assert!(c.start < b.start, "c was held back behind b");

        // What Server-Timing shows (starts and durations rounded to 0.1 ms).
        let (ta, tb, tc) = (timing(&timings, "a"), timing(&timings, "b"), timing(&timings, "c"));
        assert!(tb.start_ms + 0.15 >= ta.start_ms + ta.dur_ms, "{timings:?}");
        assert!(tc.start_ms < ta.start_ms + ta.dur_ms, "{timings:?}");

        // The executor's own timeline agrees.
        log.clear();
        let outcome = Flow::run(&runtime, FlowInputs {}).await.unwrap();
        let record = |call: &str| outcome.timeline.get(call).unwrap().clone();
        let (ra, rb, rc) = (record("a"), record("b"), record("c"));
        assert!(rb.start >= ra.end, "{:?}", outcome.timeline);
        assert!(rc.start < ra.end, "{:?}", outcome.timeline);
        let (a, b) = (log.of("a"), log.of("b"));
        assert!(b.start >= a.end);
    }
}

mod body_cap {
    //! A downstream answer larger than its service's `max_body` fails the call, whether it says
    //! so in its `content-length` (refused before its body is read) or streams without one (cut
    //! off at the cap, so the BFF holds at most the cap, not the answer).
    use super::*;
    use axum::body::Body;
    use hyper::body::{Frame, SizeHint};
    use orchestrate::prelude::*;
    use orchestrate::{CallErrorKind, ServiceSpec};
    use std::pin::Pin;
    use std::sync::atomic::AtomicU64;
    use std::task::{Context, Poll};
    use tokio::sync::watch;

    orchestrate::services! {
        // The default cap, 8 MiB.
        big: "http://big.internal",
        // A small cap, and retries that must not repeat an oversized answer.
        small: "http://small.internal" { max_body = "64KiB", retry(attempts = 3, backoff = "10ms") },
    }

    const MIB: u64 = 1024 * 1024;
    const CAP: u64 = ServiceSpec::DEFAULT_MAX_BODY;
    const SMALL_CAP: u64 = 64 * 1024;
    /// How much the streaming mock would send if nobody stopped reading.
    const STREAM_LIMIT: u64 = 64 * MIB;
    const CHUNK: u64 = 64 * 1024;

    /// `{"data":"xxx…"}`: valid JSON of any length, so only the cap can make it fail.
    #[derive(Debug, Serialize, Deserialize)]
    pub struct Blob {
        pub data: String,
    }

    const OPEN: &[u8] = b"{\"data\":\"";
    const CLOSE: &[u8] = b"\"}";

    /// The byte at `at` of the `len` bytes `{"data":"xxx…"}`.
    fn blob_byte(at: u64, len: u64) -> u8 {
        let close = len - CLOSE.len() as u64;
        match at {
            at if at < OPEN.len() as u64 => OPEN[at as usize],
            at if at >= close => CLOSE[(at - close) as usize],
            _ => b'x',
        }
    }

    #[orchestrate::api]
    pub mod blobs {
        use super::*;

        #[endpoint(GET "/big/{kind}", timeout = "20s")]
        #[derive(Debug, Serialize)]
        pub struct Big {
            #[input(path)]
            #[serde(skip)]
            pub kind: String,

            #[call(service = "big", timeout = "10s", required, get = "/{kind}")]
            pub blob: Blob,
        }

        #[endpoint(GET "/big-optional/{kind}", timeout = "20s")]
        #[derive(Debug, Serialize)]
        pub struct BigOptional {
            #[input(path)]
            #[serde(skip)]
            pub kind: String,

            #[call(service = "big", timeout = "10s", get = "/{kind}")]
            pub blob: Option<Blob>,
        }

        #[endpoint(GET "/small/{kind}", timeout = "20s")]
        #[derive(Debug, Serialize)]
        pub struct Small {
            #[input(path)]
            #[serde(skip)]
            pub kind: String,

            #[call(service = "small", timeout = "2s", required, get = "/{kind}")]
            pub blob: Blob,
        }
    }

    /// A response body of `len` bytes of `{"data":"xxx…"}`, sent in `CHUNK`s as fast as the
    /// client reads, with no declared length (chunked encoding). Counts what it handed to the
    /// server in `written`, and reports that count in `gone` when the server drops it (the answer
    /// was sent or the client went away).
    struct Streamed {
        len: u64,
        sent: u64,
        written: Arc<AtomicU64>,
        gone: Arc<watch::Sender<Option<u64>>>,
    }

    impl hyper::body::Body for Streamed {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<bytes::Bytes>, Self::Error>>> {
            if self.sent >= self.len {
                return Poll::Ready(None);
            }
            let end = (self.sent + CHUNK).min(self.len);
            let chunk: Vec<u8> = (self.sent..end).map(|at| blob_byte(at, self.len)).collect();
            self.sent += chunk.len() as u64;
            self.written.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            Poll::Ready(Some(Ok(Frame::data(chunk.into()))))
        }

        fn size_hint(&self) -> SizeHint {
            SizeHint::default()
        }
    }

    impl Drop for Streamed {
        fn drop(&mut self) {
            self.gone.send_replace(Some(self.written.load(Ordering::SeqCst)));
        }
    }

    /// A body that declares `len` bytes in its `content-length` and never sends one of them.
    struct Declared {
        len: u64,
        written: Arc<AtomicU64>,
        gone: Arc<watch::Sender<Option<u64>>>,
    }

    impl hyper::body::Body for Declared {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<bytes::Bytes>, Self::Error>>> {
            Poll::Pending
        }

        fn size_hint(&self) -> SizeHint {
            SizeHint::with_exact(self.len)
        }
    }

    impl Drop for Declared {
        fn drop(&mut self) {
            self.gone.send_replace(Some(self.written.load(Ordering::SeqCst)));
        }
    }

    /// `{"data":"xxx…"}` of exactly `len` bytes, with its `content-length`.
    fn exact(len: u64) -> Vec<u8> {
        (0..len).map(|at| blob_byte(at, len)).collect()
    }

    /// A downstream service answering `GET /<kind>`:
    /// - `stream-<n>`: `n` bytes, chunked ([`Streamed`]);
    /// - `exact-<n>`: `n` bytes with their `content-length`;
    /// - `declared-<n>`: `content-length: n` and no body ([`Declared`]).
    struct Mock {
        url: String,
        requests: Arc<AtomicUsize>,
        written: Arc<AtomicU64>,
        gone: watch::Receiver<Option<u64>>,
    }

    impl Mock {
        async fn start() -> Self {
            let requests = Arc::new(AtomicUsize::new(0));
            let written = Arc::new(AtomicU64::new(0));
            let (gone, gone_rx) = watch::channel(None);
            let gone = Arc::new(gone);
            let state = (requests.clone(), written.clone(), gone);
            let app = Router::new().route(
                "/{kind}",
                get(move |axum::extract::Path(kind): axum::extract::Path<String>| {
                    let (requests, written, gone) = state.clone();
                    async move {
                        requests.fetch_add(1, Ordering::SeqCst);
                        let (form, len) = kind.rsplit_once('-').unwrap();
                        let len: u64 = len.parse().unwrap();
                        let body = match form {
                            "stream" => Body::new(Streamed { len, sent: 0, written, gone }),
                            "declared" => Body::new(Declared { len, written, gone }),
                            "exact" => Body::from(exact(len)),
                            other => panic!("unknown form {other}"),
                        };
                        ([(http::header::CONTENT_TYPE, "application/json")], body)
                    }
                }),
            );
            Self { url: serve_with_small_send_buffer(app).await, requests, written, gone: gone_rx }
        }

        fn requests(&self) -> usize {
            self.requests.load(Ordering::SeqCst)
        }

        /// Waits until the server dropped the answer's body (sent, or the client went away), then
        /// what it had handed to the connection by then.
        async fn written_when_gone(&mut self) -> u64 {
            let gone = tokio::time::timeout(Duration::from_secs(30), self.gone.wait_for(Option::is_some))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "the client neither read the answer nor went away ({} bytes written)",
                        self.written.load(Ordering::SeqCst)
                    )
                })
                .unwrap();
            gone.unwrap()
        }
    }

    /// Like `support::serve`, with the connections' kernel send buffer pinned to 64 KiB (Linux
    /// gives accepted sockets the listener's size). Otherwise the kernel grows it to several MiB
    /// on loopback, and "what the mock wrote" would mostly count what sat in its own socket
    /// (observed: 12 to 21 MiB written for an 8 MiB cap, against 8.3 to 8.5 MiB with the pin).
    async fn serve_with_small_send_buffer(app: Router) -> String {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(64 * 1024).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(128).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    struct Bff {
        url: String,
        runtime: Runtime,
        http: reqwest::Client,
    }

    async fn start(big: &Mock, small: &Mock) -> Bff {
        let runtime = super::runtime(services::ALL, &[("big", &big.url), ("small", &small.url)]);
        let url = support::serve(orchestrate::router::app(blobs::router(&runtime))).await;
        Bff { url, runtime, http: reqwest::Client::new() }
    }

    impl Bff {
        async fn get(&self, path: &str) -> (u16, Vec<Timing>, Value) {
            let response = self.http.get(format!("{}{path}", self.url)).send().await.unwrap();
            let status = response.status().as_u16();
            let timings = server_timing(&response);
            let text = response.text().await.unwrap();
            let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text:.200}"));
            (status, timings, body)
        }
    }

    /// `body` for a failure message, its long strings cut.
    fn short(body: &Value) -> String {
        let text = body.to_string();
        match text.char_indices().nth(300) {
            Some((at, _)) => format!("{}… ({} bytes)", &text[..at], text.len()),
            None => text,
        }
    }

    fn assert_downstream_failure(body: &Value, service: &str) {
        assert_eq!(body["error"]["code"], "DOWNSTREAM_FAILURE", "{}", short(body));
        assert_eq!(body["error"]["failedServices"], json!([service]), "{}", short(body));
        assert_eq!(body["error"]["partialData"], false, "{}", short(body));
        let text = body.to_string();
        assert!(!text.contains("127.0.0.1") && !text.contains("http://"), "an internal URL leaked: {text}");
    }

    /// What may sit between the mock and the BFF's reader besides the cap: the mock's (pinned)
    /// and the BFF's socket buffers, and hyper's write queue.
    const BUFFERS: u64 = 4 * MIB;

    #[tokio::test]
    async fn a_required_call_streaming_past_the_default_cap_fails_the_endpoint_and_is_cut_off() {
        let (mut big, small) = (Mock::start().await, Mock::start().await);
        let bff = start(&big, &small).await;
        let (status, timings, body) = bff.get(&format!("/big/stream-{STREAM_LIMIT}")).await;
        assert_eq!(status, 502, "{}", short(&body));
        assert_downstream_failure(&body, "big");
        assert!(timing(&timings, "blob").desc.ends_with(" failed"), "{timings:?}");

        let written = big.written_when_gone().await;
        assert!(written > CAP, "the mock sent only {written} bytes, the cap is {CAP}");
        assert!(
            written <= CAP + BUFFERS,
            "the BFF read {:.1} MiB of an answer capped at {} MiB",
            written as f64 / MIB as f64,
            CAP / MIB
        );
        assert_eq!(big.requests(), 1);
    }

    #[tokio::test]
    async fn an_optional_call_streaming_past_the_cap_is_a_partial_success() {
        let (mut big, small) = (Mock::start().await, Mock::start().await);
        let bff = start(&big, &small).await;
        let (status, _, body) = bff.get(&format!("/big-optional/stream-{STREAM_LIMIT}")).await;
        assert_eq!(status, 200, "{}", short(&body));
        assert_eq!(body, json!({ "blob": null, "partialData": true, "failedServices": ["big"] }));
        let written = big.written_when_gone().await;
        assert!(written <= CAP + BUFFERS, "the BFF read {written} bytes of an answer capped at {CAP}");

        // From code: the call's failure is the cap.
        let outcome =
            blobs::BigOptional::run(&bff.runtime, blobs::BigOptionalInputs { kind: format!("stream-{}", CAP + 1) })
                .await
                .unwrap();
        assert!(outcome.value.blob.is_none());
        assert_eq!(
            outcome.failed.iter().map(|f| (f.service, f.kind)).collect::<Vec<_>>(),
            [("big", CallErrorKind::BodyTooLarge)]
        );
    }

    #[tokio::test]
    async fn a_declared_length_over_the_cap_is_refused_without_waiting_for_the_body() {
        let (mut big, small) = (Mock::start().await, Mock::start().await);
        let bff = start(&big, &small).await;
        // The body never comes: a client that waited for it would time out (504) after 10 s.
        let (status, _, body) = bff.get(&format!("/big/declared-{}", CAP + 1)).await;
        assert_eq!(status, 502, "{}", short(&body));
        assert_downstream_failure(&body, "big");
        assert_eq!(big.written_when_gone().await, 0);
        assert_eq!(big.requests(), 1);

        let failure = blobs::Big::run(&bff.runtime, blobs::BigInputs { kind: format!("declared-{}", CAP + 1) })
            .await
            .unwrap_err();
        assert_eq!(failure.failed_call().map(|f| f.kind), Some(CallErrorKind::BodyTooLarge));
    }

    #[tokio::test]
    async fn a_per_service_cap_accepts_exactly_its_size_and_refuses_one_byte_more_without_retrying() {
        let (big, small) = (Mock::start().await, Mock::start().await);
        let bff = start(&big, &small).await;

        for form in ["stream", "exact"] {
            let (status, _, body) = bff.get(&format!("/small/{form}-{SMALL_CAP}")).await;
            assert_eq!(status, 200, "{form}: {}", short(&body));
            let data = body["blob"]["data"].as_str().unwrap();
            assert_eq!(data.len() as u64, SMALL_CAP - (OPEN.len() + CLOSE.len()) as u64, "{form}");
            assert_eq!(body["partialData"], false);
        }
        assert_eq!(small.requests(), 2);

        // One byte over: chunked, with its content-length, or declared and never sent. Each is
        // asked for once: an oversized answer is not retried, though the service retries GETs.
        for (form, len) in [("stream", SMALL_CAP + 1), ("exact", SMALL_CAP + 1), ("declared", SMALL_CAP + 1)] {
            let before = small.requests();
            let (status, _, body) = bff.get(&format!("/small/{form}-{len}")).await;
            assert_eq!(status, 502, "{form}: {}", short(&body));
            assert_downstream_failure(&body, "small");
            assert_eq!(small.requests() - before, 1, "{form}: requests to small");

            let failure = blobs::Small::run(&bff.runtime, blobs::SmallInputs { kind: format!("{form}-{len}") })
                .await
                .unwrap_err();
            assert_eq!(failure.failed_call().map(|f| f.kind), Some(CallErrorKind::BodyTooLarge), "{form}");
        }
        // The default cap does not apply to `small`, nor `small`'s to `big`.
        let (status, _, body) = bff.get(&format!("/big/stream-{}", 4 * SMALL_CAP)).await;
        assert_eq!(status, 200, "{}", short(&body));
    }
}

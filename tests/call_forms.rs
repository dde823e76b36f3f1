//! Call forms end to end over real HTTP on loopback: a conditional call (`when`) whose condition
//! is false is never sent and is not a failure; `after = [..]` orders a call behind another
//! without delaying the independent ones.

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

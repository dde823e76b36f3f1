//! Graceful shutdown of `orchestrate::server`: on SIGTERM the listener stops accepting, the
//! request in flight finishes, and the client's idle keep-alive connection does not hold the
//! exit up. (Its own test binary: the signal is sent to this process.)

mod support;

#[path = "../examples/checkout/app.rs"]
mod app;

use std::time::Duration;

#[cfg(unix)]
#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish() {
    let mocks = support::mocks::Mocks::start(2.0).await.unwrap(); // critical path 330 ms
    let builder = mocks.runtime(app::services::ALL);
    let runtime = builder.build().unwrap();
    let app = orchestrate::router::app(app::checkout::router(&runtime));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        orchestrate::server::serve(listener, app).with_graceful_shutdown(orchestrate::router::shutdown_signal()).await
    });

    // Kept alive to the end, so its connection stays open (idle) in its pool after the answer.
    let client = reqwest::Client::new();
    let request = tokio::spawn(
        client
            .post(format!("{url}/checkout/summary"))
            .header("content-type", "application/json")
            .body(r#"{"cartId":"c1","userId":"u1"}"#)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = std::process::Command::new("kill").args(["-TERM", &std::process::id().to_string()]).status().unwrap();
    assert!(status.success());

    let response = request.await.unwrap().expect("the request in flight was cut by the shutdown");
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["total"], 16234);
    // Within less than the header read timeout (10 s) that would close the client's idle
    // connection: shutting down closes it at once.
    tokio::time::timeout(Duration::from_secs(5), server).await.expect("the server did not stop").unwrap().unwrap();
    assert!(reqwest::get(format!("{url}/checkout/summary")).await.is_err(), "still accepting after shutdown");
}

//! Generated routers are plain axum routers: they merge, nest, take any tower layer and serve
//! with `axum::serve`.

mod support;

#[path = "../examples/checkout/app.rs"]
mod checkout_app;
#[path = "../examples/dashboard/app.rs"]
mod dashboard_app;

use axum::http::HeaderValue;
use orchestrate::Runtime;
use serde_json::Value;

#[tokio::test]
async fn routers_merge_nest_and_take_layers() {
    let mocks = support::mocks::Mocks::start(0.0).await.unwrap();
    let checkout = mocks.runtime(checkout_app::services::ALL);
    let checkout = checkout.build().unwrap();
    let dashboard_mocks = support::serve(dashboard_app::mock_services(Default::default(), 0.0)).await;
    // The dashboard verifies its development tokens; here with the key configured statically.
    let key = orchestrate::auth::StaticKey::pem(orchestrate::auth::Algorithm::EdDsa, dashboard_app::DEV_PUBLIC_KEY)
        .with_kid("dev-1");
    let auth = orchestrate::auth::AuthSettings::default()
        .with_issuer(dashboard_app::DEV_ISSUER)
        .with_audience(dashboard_app::AUDIENCE)
        .with_key(key);
    let mut dashboard = Runtime::builder(dashboard_app::services::ALL).read_env(false).auth(auth);
    for service in dashboard_app::services::ALL {
        dashboard = dashboard.base_url(service.name, &dashboard_mocks);
    }
    let dashboard = dashboard.build().unwrap();

    let api = checkout_app::checkout::router(&checkout).merge(dashboard_app::dashboard::router(&dashboard));
    let app = orchestrate::router::app(axum::Router::new().nest("/api/v1", api)).layer(
        tower::util::MapResponseLayer::new(|mut response: axum::response::Response| {
            response.headers_mut().insert("x-served-by", HeaderValue::from_static("orchestrate"));
            response
        }),
    );
    let url = support::serve(app).await;
    let http = reqwest::Client::new();

    let response = http
        .post(format!("{url}/api/v1/checkout/summary"))
        .header("content-type", "application/json")
        .body(r#"{"cartId":"c1","userId":"u1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-served-by"], "orchestrate");
    assert_eq!(response.json::<Value>().await.unwrap()["total"], 16234);

    let token = dashboard_app::dev_token("u7");
    let response = http.get(format!("{url}/api/v1/dashboard")).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["profile"]["id"], "u7");

    // The un-nested path is unknown: a JSON 404, with the layer applied too.
    let response = http.post(format!("{url}/checkout/summary")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["x-served-by"], "orchestrate");
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], "NOT_FOUND");
}

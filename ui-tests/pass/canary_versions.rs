//! A stable endpoint and two canaries of its route, by a header and by request, with their
//! rollback rules; the router dispatches between them.

use orchestrate::prelude::*;

orchestrate::services! {
    pricing: "http://pricing.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Price {
    pub amount: u64,
}

#[orchestrate::api]
pub mod quotes {
    use super::*;

    #[endpoint(GET "/quote", timeout = "1s")]
    #[derive(Serialize)]
    pub struct Quote {
        #[call(service = "pricing", timeout = "200ms", required, get = "/price")]
        pub price: Price,
    }

    #[endpoint(GET "/quote", timeout = "1s", canary(version = "v2", weight = 5, key = "header:x-user-id", error_margin = "2%", p99_margin = "50ms", window = "30s", min_requests = 100))]
    #[derive(Serialize)]
    pub struct QuoteV2 {
        #[call(service = "pricing", timeout = "200ms", required, get = "/price")]
        pub price: Price,
    }

    #[endpoint(GET "/quote", timeout = "1s", canary(version = "v3", weight = 10))]
    #[derive(Serialize)]
    pub struct QuoteV3 {
        #[call(service = "pricing", timeout = "200ms", required, get = "/price")]
        pub price: Price,
    }
}

fn main() {
    const _: &[&orchestrate::EndpointSpec] = quotes::ENDPOINTS;
    let _ = quotes::router;
}

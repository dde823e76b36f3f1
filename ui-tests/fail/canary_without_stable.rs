//! A canary whose route has no stable version (an endpoint without `canary(..)`).

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

    #[endpoint(GET "/quote", timeout = "1s", canary(version = "v2", weight = 5))]
    #[derive(Serialize)]
    pub struct QuoteV2 {
        #[call(service = "pricing", timeout = "200ms", required, get = "/price")]
        pub price: Price,
    }
}

fn main() {}

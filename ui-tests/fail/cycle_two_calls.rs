//! `pricing` uses `tax` and `tax` uses `pricing`: neither could ever start.

use orchestrate::prelude::*;

orchestrate::services! {
    pricing: "http://pricing.internal:8080",
    tax: "http://tax.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Pricing {
    pub subtotal: u64,
}

#[derive(Serialize, Deserialize)]
pub struct Tax {
    pub amount: u64,
}

#[endpoint(GET "/total", timeout = "1s")]
#[derive(Serialize)]
pub struct Total {
    #[call(service = "pricing", timeout = "200ms", required, get = "/price?tax={tax.amount}")]
    pub pricing: Pricing,

    #[call(service = "tax", timeout = "200ms", required, get = "/tax?subtotal={pricing.subtotal}")]
    pub tax: Tax,
}

fn main() {}

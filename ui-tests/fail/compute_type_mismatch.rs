//! A computed field receives each dependency as `&T` of the producer's exact type, so a type
//! mistake is rustc's own error at the user's expression.

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
    pub label: String,
}

#[endpoint(GET "/total", timeout = "1s")]
#[derive(Serialize)]
pub struct Total {
    #[call(service = "pricing", timeout = "200ms", required, get = "/price")]
    pub pricing: Pricing,

    #[call(service = "tax", timeout = "200ms", required, get = "/tax/{pricing.subtotal}")]
    pub tax: Tax,

    #[compute(tax.label.clone())]
    pub total: u64,
}

fn main() {}

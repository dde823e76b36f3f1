//! `cart` → `pricing` → `tax` → `cart`: every edge of the cycle is named at its use.

use orchestrate::prelude::*;

orchestrate::services! {
    cart: "http://cart.internal:8080",
    pricing: "http://pricing.internal:8080",
    tax: "http://tax.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Cart {
    pub id: String,
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
    #[call(service = "cart", timeout = "200ms", required, get = "/carts?after_tax={tax.amount}")]
    pub cart: Cart,

    #[call(service = "pricing", timeout = "200ms", required, post = "/calculate", body = &cart.id)]
    pub pricing: Pricing,

    #[call(service = "tax", timeout = "200ms", required, post = "/calculate", body = pricing.subtotal)]
    pub tax: Tax,
}

fn main() {}

//! Four mistakes in one struct are four errors in one build, with nothing cascading from them
//! (the struct is still emitted, so `main` compiles against it).

use orchestrate::prelude::*;

orchestrate::services! {
    cart: "http://cart.internal:8080",
    pricing: "http://pricing.internal:8080",
    shipping: "http://shipping.internal:8080",
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
pub struct Shipping {
    pub cost: u64,
}

#[endpoint(GET "/carts/{cart_id}/summary", timeout = "1s")]
#[derive(Serialize)]
pub struct Summary {
    #[input(path)]
    pub cart_id: String,

    #[call(service = "cart", timeout = "200 ms", required, get = "/carts/{cart_id}")]
    pub cart: Cart,

    #[call(service = "pricing", timeout = "200ms", required, get = "/price/{carts.id}")]
    pub pricing: Pricing,

    #[call(service = "shipping", timeout = "200ms", required, get = "/estimate/{cart.id}", memo = "60s")]
    pub shipping: Option<Shipping>,
}

fn main() {
    let summary: Option<Summary> = None;
    let _ = summary.map(|s| (s.cart_id, s.cart.id, s.pricing.subtotal, s.shipping.map(|s| s.cost)));
}

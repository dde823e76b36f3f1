//! A call reads `carts`, which is no field of the endpoint; the closest field is suggested.

use orchestrate::prelude::*;

orchestrate::services! {
    cart: "http://cart.internal:8080",
    pricing: "http://pricing.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Cart {
    pub items: Vec<String>,
}

#[derive(Serialize, Deserialize)]
pub struct Pricing {
    pub subtotal: u64,
}

#[derive(Serialize)]
pub struct Items<'a> {
    pub items: &'a [String],
}

impl<'a> Items<'a> {
    pub fn of(cart: &'a Cart) -> Self {
        Items { items: &cart.items }
    }
}

#[endpoint(GET "/carts/{cart_id}/price", timeout = "1s")]
#[derive(Serialize)]
pub struct Price {
    #[input(path)]
    pub cart_id: String,

    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart_id}")]
    pub cart: Cart,

    #[call(service = "pricing", timeout = "200ms", required, post = "/calculate", body = Items::of(&carts))]
    pub pricing: Pricing,
}

fn main() {}

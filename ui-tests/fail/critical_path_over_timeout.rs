//! The worst case of `cart` (3 attempts of 200ms and their backoff) then `tax` (300ms) is longer
//! than the endpoint's 1s: the macro reports the path and the sum at the endpoint's `timeout`.

use orchestrate::prelude::*;

orchestrate::services! {
    cart: "http://cart.internal:8080",
    tax: "http://tax.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Cart {
    pub id: String,
}

#[derive(Serialize, Deserialize)]
pub struct Tax {
    pub amount: u64,
}

#[endpoint(GET "/carts/{cart_id}/tax", timeout = "1s")]
#[derive(Serialize)]
pub struct CartTax {
    #[input(path)]
    pub cart_id: String,

    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart_id}", retry(attempts = 3, backoff = "100ms"))]
    pub cart: Cart,

    #[call(service = "tax", timeout = "300ms", required, get = "/tax/{cart.id}")]
    pub tax: Tax,
}

fn main() {}

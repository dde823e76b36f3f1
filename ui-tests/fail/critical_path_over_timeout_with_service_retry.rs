//! The same path is only too long with the `retry` policy `cart` declares in `services!`, which the
//! endpoint macro cannot see: the const-evaluated check reports it at the endpoint's `timeout`.

use orchestrate::prelude::*;

orchestrate::services! {
    cart: "http://cart.internal:8080" { retry(attempts = 3, backoff = "100ms") },
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

    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart_id}")]
    pub cart: Cart,

    #[call(service = "tax", timeout = "300ms", required, get = "/tax/{cart.id}")]
    pub tax: Tax,
}

fn main() {}

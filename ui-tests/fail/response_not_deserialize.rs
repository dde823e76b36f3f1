//! A call's answer is decoded from JSON into the field's type, which must implement
//! `Deserialize`.

use orchestrate::prelude::*;

orchestrate::services! {
    cart: "http://cart.internal:8080",
}

#[derive(Serialize)]
pub struct Cart {
    pub id: String,
}

#[endpoint(GET "/carts/{cart_id}", timeout = "1s")]
#[derive(Serialize)]
pub struct Show {
    #[input(path)]
    pub cart_id: String,

    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart_id}")]
    pub cart: Cart,
}

fn main() {}

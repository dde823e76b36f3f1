//! An endpoint route with an empty `{}`.

use orchestrate::prelude::*;

orchestrate::services! {
    cart: "http://cart.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Cart {
    pub id: String,
}

#[endpoint(GET "/carts/{}", timeout = "1s")]
#[derive(Serialize)]
pub struct Show {
    #[call(service = "cart", timeout = "200ms", required, get = "/carts/1")]
    pub cart: Cart,
}

fn main() {}

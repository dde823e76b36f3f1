//! A downstream path with an empty `{}`.

use orchestrate::prelude::*;

orchestrate::services! {
    cart: "http://cart.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Cart {
    pub id: String,
}

#[endpoint(GET "/carts/{cart_id}", timeout = "1s")]
#[derive(Serialize)]
pub struct Show {
    #[input(path)]
    pub cart_id: String,

    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{}")]
    pub cart: Cart,
}

fn main() {}

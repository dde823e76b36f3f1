//! Two endpoints of one `#[api]` module on the same method and path (axum would panic at start-up).

use orchestrate::prelude::*;

orchestrate::services! {
    cart: "http://cart.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Cart {
    pub id: String,
}

#[orchestrate::api]
pub mod carts {
    use super::*;

    #[endpoint(GET "/carts/{cart_id}", timeout = "1s")]
    #[derive(Serialize)]
    pub struct Show {
        #[input(path)]
        pub cart_id: String,

        #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart_id}")]
        pub cart: Cart,
    }

    #[endpoint(GET "/carts/{cart_id}", timeout = "1s")]
    #[derive(Serialize)]
    pub struct ShowAgain {
        #[input(path)]
        pub cart_id: String,

        #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart_id}")]
        pub cart: Cart,
    }
}

fn main() {}

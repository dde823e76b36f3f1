//! `headers = ..` naming `host`, `content-length` or a hop-by-hop header: the client owns them.

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

    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart_id}",
           headers = [("Host", "evil.example"), ("x-tenant", "t1"), ("connection", "close")])]
    pub cart: Cart,

    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart_id}",
           headers = vec![("content-length", "0".to_owned())])]
    pub again: Cart,
}

fn main() {}

//! In a `saga` endpoint, a side-effecting call with no `compensate`, after which a required call
//! can fail: the reservation would stay in place when the charge fails. A pure computation marked
//! `idempotent` and the last step (nothing can fail after it) need none.

use orchestrate::prelude::*;

orchestrate::services! {
    inventory: "http://inventory.internal:8080",
    payments: "http://payments.internal:8080",
    pricing: "http://pricing.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Done {
    pub id: String,
}

#[endpoint(POST "/orders/{order_id}", timeout = "3s", saga)]
#[derive(Serialize)]
pub struct Order {
    #[input(path)]
    pub order_id: String,

    #[call(service = "pricing", timeout = "200ms", required, post = "/calculate", body = &order_id, idempotent)]
    pub quote: Done,

    #[call(service = "inventory", timeout = "200ms", required, post = "/reservations", body = &quote, idempotency_key = order_id)]
    pub reservation: Done,

    #[call(service = "payments", timeout = "200ms", required, post = "/charges", body = &reservation, idempotency_key = order_id)]
    pub charge: Done,
}

fn main() {}

//! `compensate` on a GET, a compensation that is not safe to repeat (a POST without an
//! idempotency key), `compensate` on a fan-out, and a compensation that reads a field which may
//! not exist when it runs.

use orchestrate::prelude::*;

orchestrate::services! {
    carts: "http://carts.internal:8080",
    payments: "http://payments.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Charge {
    pub id: String,
}

#[endpoint(POST "/orders/{order_id}", timeout = "3s")]
#[derive(Serialize)]
pub struct Order {
    #[input(path)]
    pub order_id: String,

    #[call(service = "carts", timeout = "200ms", required, get = "/carts/{order_id}", compensate = delete("/carts/{order_id}"))]
    pub cart: Charge,

    #[call(service = "payments", timeout = "200ms", required, post = "/charges", body = &cart, idempotency_key = order_id,
           compensate = post("/charges/{charge.id}/refund"))]
    pub charge: Charge,

    #[call(service = "payments", timeout = "200ms", required, post = "/holds/{id}", for_each = id in [1, 2], idempotency_key = id,
           compensate = delete("/holds"))]
    pub holds: Vec<Charge>,

    #[call(service = "payments", timeout = "200ms", required, post = "/receipts", body = &charge, idempotency_key = order_id,
           compensate = delete("/receipts/{receipt.id}/{holds.len()}"))]
    pub receipt: Charge,
}

fn main() {}

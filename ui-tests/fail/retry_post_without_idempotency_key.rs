//! Retrying a POST or a PATCH could repeat its effect unless it carries an idempotency key.

use orchestrate::prelude::*;

orchestrate::services! {
    payments: "http://payments.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Receipt {
    pub id: String,
}

#[endpoint(POST "/orders/{order_id}/pay", timeout = "2s")]
#[derive(Serialize)]
pub struct Pay {
    #[input(path)]
    pub order_id: String,

    #[call(service = "payments", timeout = "200ms", required, post = "/charges", body = &order_id, retry(attempts = 2, backoff = "50ms"))]
    pub receipt: Receipt,

    #[call(service = "payments", timeout = "200ms", required, patch = "/orders/{order_id}", body = &receipt.id, retry(attempts = 2, backoff = "50ms"))]
    pub marked: Receipt,
}

fn main() {}

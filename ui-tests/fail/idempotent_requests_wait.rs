//! `idempotent_requests(wait = ..)`: a wait above zero and at most a minute, and no other key.

use orchestrate::prelude::*;

orchestrate::services! {
    payments: "http://payments.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Receipt {
    pub id: String,
}

#[derive(Serialize, Deserialize)]
pub struct Order {
    pub id: String,
}

#[endpoint(POST "/orders", timeout = "2s", idempotent_requests(wait = "2m"))]
#[derive(Serialize)]
pub struct Place {
    #[input(body)]
    #[serde(skip)]
    pub req: Order,

    #[call(service = "payments", timeout = "200ms", required, post = "/charges", body = req, idempotency_key = req.id)]
    pub receipt: Receipt,
}

#[endpoint(POST "/refunds", timeout = "2s", idempotent_requests(wait = "0s", wiat = "1s"))]
#[derive(Serialize)]
pub struct Refund {
    #[input(body)]
    #[serde(skip)]
    pub req: Order,

    #[call(service = "payments", timeout = "200ms", required, post = "/refunds", body = req, idempotency_key = req.id)]
    pub receipt: Receipt,
}

fn main() {}

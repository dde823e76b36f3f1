//! A service that retries (`retry(..)` in `services!`) and a call that is unsafe to repeat: a
//! `POST` without an idempotency key and custom logic not marked `idempotent`. Each is an error
//! at the call, naming the three fixes. The safe forms beside them compile.

use orchestrate::prelude::*;

orchestrate::services! {
    payments: "http://payments.internal:8080" { retry(attempts = 3, backoff = "50ms") },
}

#[derive(Serialize, Deserialize)]
pub struct Charge {
    pub id: String,
}

async fn refund(client: CallClient<'_>, charge: &Charge) -> Result<Charge, CallError> {
    client.post(format!("/refunds/{}", charge.id).as_str()).send().await
}

#[endpoint(POST "/orders/{order_id}", timeout = "2s")]
#[derive(Serialize)]
pub struct Order {
    #[input(path)]
    pub order_id: String,

    #[call(service = "payments", timeout = "200ms", required, post = "/charges", body = &order_id)]
    pub charge: Charge,

    #[call(service = "payments", timeout = "200ms", required, with = refund(&charge))]
    pub refund: Charge,

    // Safe: an idempotency key, a call marked `idempotent`, an explicit single attempt.
    #[call(service = "payments", timeout = "200ms", required, post = "/charges", body = &order_id, idempotency_key = &order_id)]
    pub keyed: Charge,
    #[call(service = "payments", timeout = "200ms", required, post = "/quote", body = &order_id, idempotent)]
    pub quote: Charge,
    #[call(service = "payments", timeout = "200ms", required, post = "/notify", body = &order_id, retry(attempts = 1))]
    pub notified: Charge,
}

fn main() {}

//! `hedge` sends the request a second time: refused on a POST without an idempotency key, on
//! custom logic, without parentheses, with a delay that is not below the call's timeout, and with
//! a bad value of its own.

use orchestrate::prelude::*;

orchestrate::services! {
    payments: "http://payments.internal:8080",
    catalog: "http://catalog.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Charge {
    pub id: String,
}

async fn lookup(_client: CallClient<'_>) -> Result<Charge, CallError> {
    Ok(Charge { id: String::new() })
}

#[endpoint(POST "/orders/{order_id}", timeout = "2s")]
#[derive(Serialize)]
pub struct Order {
    #[input(path)]
    pub order_id: String,

    #[call(service = "payments", timeout = "200ms", required, post = "/charges", body = &order_id, hedge(after = "50ms"))]
    pub charge: Charge,

    // Safe: the same charge with an idempotency key.
    #[call(service = "payments", timeout = "200ms", required, post = "/charges", body = &order_id, idempotency_key = &order_id, hedge(after = "50ms"))]
    pub keyed: Charge,

    #[call(service = "catalog", timeout = "200ms", required, with = lookup(), hedge(after = "50ms"))]
    pub custom: Charge,

    #[call(service = "catalog", timeout = "200ms", required, get = "/a", hedge = "50ms")]
    pub bare: Charge,

    #[call(service = "catalog", timeout = "200ms", required, get = "/b", hedge(after = "200ms"))]
    pub late: Charge,

    #[call(service = "catalog", timeout = "200ms", required, get = "/c", hedge(after = "50ms", max = 4))]
    pub many: Charge,

    #[call(service = "catalog", timeout = "200ms", required, get = "/d", hedge(max = 2))]
    pub undelayed: Charge,
}

fn main() {}

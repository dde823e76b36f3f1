//! Retrying custom logic (`with`) that is not marked `idempotent`.

use orchestrate::prelude::*;

orchestrate::services! {
    payments: "http://payments.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Receipt {
    pub id: String,
}

pub async fn charge(client: CallClient<'_>, order_id: &str) -> Result<Receipt, CallError> {
    client.post("/charges").json(order_id).send().await
}

#[endpoint(POST "/orders/{order_id}/pay", timeout = "2s")]
#[derive(Serialize)]
pub struct Pay {
    #[input(path)]
    pub order_id: String,

    #[call(service = "payments", timeout = "200ms", required, with = charge(&order_id), retry(attempts = 2, backoff = "50ms"))]
    pub receipt: Receipt,
}

fn main() {}

//! Custom logic must return `Result<T, CallError>` for the field's type `T`; a function that
//! returns another type is rustc's own error at the `with` expression.

use orchestrate::prelude::*;

orchestrate::services! {
    loyalty: "http://loyalty.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Tier {
    pub name: String,
}

pub async fn tier_name(client: CallClient<'_>, user_id: &str) -> Result<String, CallError> {
    client.get(format!("/tiers/{user_id}").as_str()).send().await
}

#[endpoint(GET "/users/{user_id}/tier", timeout = "1s")]
#[derive(Serialize)]
pub struct UserTier {
    #[input(path)]
    pub user_id: String,

    #[call(service = "loyalty", timeout = "200ms", required, with = tier_name(&user_id))]
    pub tier: Tier,
}

fn main() {}

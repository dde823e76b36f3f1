//! Custom logic of the wrong shape (no client parameter, the client not first, not `async`) is
//! one error each, at the function, naming the shape expected. A function of the right shape
//! still takes its arguments by coercion (`&String` to `&str`).

use orchestrate::prelude::*;

orchestrate::services! {
    loyalty: "http://loyalty.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Tier {
    pub name: String,
}

pub async fn no_client(user_id: &str) -> Result<Tier, CallError> {
    Ok(Tier { name: user_id.to_owned() })
}

pub async fn client_last(user_id: &str, client: CallClient<'_>) -> Result<Tier, CallError> {
    client.get(format!("/tiers/{user_id}").as_str()).send().await
}

pub fn not_async(_client: CallClient<'_>, user_id: &str) -> Result<Tier, CallError> {
    Ok(Tier { name: user_id.to_owned() })
}

pub async fn fits(client: CallClient<'_>, user_id: &str) -> Result<Tier, CallError> {
    client.get(format!("/tiers/{user_id}").as_str()).send().await
}

#[endpoint(GET "/users/{user_id}/tier", timeout = "1s")]
#[derive(Serialize)]
pub struct UserTier {
    #[input(path)]
    pub user_id: String,
    #[call(service = "loyalty", timeout = "200ms", required, with = no_client(&user_id))]
    pub a: Tier,
    #[call(service = "loyalty", timeout = "200ms", required, with = client_last(&user_id))]
    pub b: Tier,
    #[call(service = "loyalty", timeout = "200ms", required, with = not_async(&user_id))]
    pub c: Tier,
    #[call(service = "loyalty", timeout = "200ms", required, with = fits(&user_id))]
    pub d: Tier,
}

fn main() {}

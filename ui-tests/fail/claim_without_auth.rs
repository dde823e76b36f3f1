//! A claim read by an endpoint that verifies no token: one that never asked for one, and one
//! that opts out of its module's `auth = jwt`; and a misspelled `auth` word.

use orchestrate::prelude::*;

orchestrate::services! {
    profile: "http://profile.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Profile {
    pub id: String,
}

#[endpoint(GET "/me", timeout = "1s")]
#[derive(Serialize)]
pub struct Me {
    #[input(claim = "sub")]
    pub user_id: String,

    #[call(service = "profile", timeout = "200ms", required, get = "/profiles/{user_id}")]
    pub profile: Profile,
}

#[orchestrate::api(auth = jwt)]
pub mod app {
    use super::*;

    #[endpoint(GET "/public", timeout = "1s", auth = none)]
    #[derive(Serialize)]
    pub struct Public {
        #[input(claim = "sub")]
        pub user_id: Option<String>,
    }

    #[endpoint(GET "/other", timeout = "1s", auth = jtw)]
    #[derive(Serialize)]
    pub struct Other {
        #[input(query = "q")]
        pub q: String,
    }
}

fn main() {}

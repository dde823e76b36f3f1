//! Every bad rate limit of `tests/policy_messages.rs` (`RATE_ROWS`), one per endpoint or module:
//! each is one error at the value (inside the string where the compiler supports it), worded as
//! the configuration file words it; and an unknown key of `#[api]`.

use orchestrate::prelude::*;

orchestrate::services! {}

#[orchestrate::api(rate_limit(per_user = "100/mins"))]
pub mod m0 {
    use super::*;

    #[endpoint(GET "/r1/{id}", timeout = "1s", rate_limit(per_ip = "500"))]
    #[derive(Serialize)]
    pub struct R1 {
        #[input(path)]
        id: String,
        #[compute(id.len())]
        n: usize,
    }

    #[endpoint(GET "/r2/{id}", timeout = "1s", rate_limit(global = 10000))]
    #[derive(Serialize)]
    pub struct R2 {
        #[input(path)]
        id: String,
        #[compute(id.len())]
        n: usize,
    }

    #[endpoint(GET "/r3/{id}", timeout = "1s", rate_limit(per_endpoint = "0/min"))]
    #[derive(Serialize)]
    pub struct R3 {
        #[input(path)]
        id: String,
        #[compute(id.len())]
        n: usize,
    }

    #[endpoint(GET "/r4/{id}", timeout = "1s", rate_limit(per_endpoint = "50 / min"))]
    #[derive(Serialize)]
    pub struct R4 {
        #[input(path)]
        id: String,
        #[compute(id.len())]
        n: usize,
    }

    #[endpoint(GET "/r5/{id}", timeout = "1s", rate_limit(per_usr = "1/s"))]
    #[derive(Serialize)]
    pub struct R5 {
        #[input(path)]
        id: String,
        #[compute(id.len())]
        n: usize,
    }

    #[endpoint(GET "/r6/{id}", timeout = "1s", rate_limit(global = "many/min"))]
    #[derive(Serialize)]
    pub struct R6 {
        #[input(path)]
        id: String,
        #[compute(id.len())]
        n: usize,
    }
}

#[orchestrate::api(ratelimit(global = "1/s"))]
pub mod m1 {}

fn main() {}

//! Every bad policy value of `tests/policy_messages.rs`, one per service: each is one error at the
//! value (or the policy), worded as the configuration file words it.

orchestrate::services! {
    s0: "http://s0.internal" { retry(attempts = 0, backoff = "100ms") },
    s1: "http://s1.internal" { retry(attempts = 11, backoff = "100ms") },
    s2: "http://s2.internal" { retry(attempts = "3", backoff = "100ms") },
    s3: "http://s3.internal" { retry(attempts = 3, backoff = "100 ms") },
    s4: "http://s4.internal" { retry(attempts = 3, backoff = "2.5s") },
    s5: "http://s5.internal" { retry(attempts = 3, backoff = 100) },
    s6: "http://s6.internal" { retry(attempts = 3, backoff = "1s", max_backoff = "100ms") },
    s7: "http://s7.internal" { retry(attempts = 3, backoff = "100ms", on = [4xx]) },
    s8: "http://s8.internal" { retry(attempts = 3, backof = "100ms") },
    s9: "http://s9.internal" { retry(attempts = 3) },
    s10: "http://s10.internal" { breaker(failures = 0, within = "60s", open_for = "30s", probes = 3) },
    s11: "http://s11.internal" { breaker(failures = 5, within = "1 minute", open_for = "30s", probes = 3) },
    s12: "http://s12.internal" { breaker(failures = 5) },
    s13: "http://s13.internal" { retry_budget(percent = 150) },
    s14: "http://s14.internal" { max_in_flight = 0 },
    s15: "http://s15.internal" { max_in_flight = "8" },
    s16: "http://s16.internal" { max_body = "8 MiB" },
    s17: "http://s17.internal" { max_body = "8mb" },
    s18: "http://s18.internal" { forward_headers = ["Connection"] },
    s19: "http://s19.internal" { http2 = "yes" },
    s20: "http://s20.internal" { balance(failures = 0) },
    s21: "http://s21.internal" { balance(max_ejected = "150%") },
    s22: "http://s22.internal" { max_in_flite = 4 },
    s23: "http://s23.internal" { rate_limit = "200/sek" },
    s24: "http://s24.internal" { hedge_budget = "150%" },
    s25: "http://s25.internal" { hedge_budget = "10" },
}

fn main() {}

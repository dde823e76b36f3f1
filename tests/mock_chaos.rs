//! The mocks' fault injection and stats, as `examples/checkout/mocks.rs` documents them (the chaos
//! run, `bench/chaos.sh`, relies on both): 1 in N requests by the request counter or a seed, the
//! command-line form, and `GET /_mock/stats` counting a hung request in flight until its client
//! goes away.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::mocks::{Chaos, Fault, Mocks, Pick, parse_chaos};

#[test]
fn the_command_line_form_reads_every_fault() {
    let spec = "cart=500:20,inventory=reset:17,pricing=hang:31,shipping=hang:7,tax=500:19,inventory=slow300ms:10";
    assert_eq!(
        parse_chaos(spec).unwrap(),
        vec![
            ("cart", 20, Fault::Status(500)),
            ("inventory", 17, Fault::Reset),
            ("pricing", 31, Fault::Hang),
            ("shipping", 7, Fault::Hang),
            ("tax", 19, Fault::Status(500)),
            ("inventory", 10, Fault::Slow(Duration::from_millis(300))),
        ]
    );
    assert_eq!(parse_chaos("cart=slow2s:3,tax=malformed:1,pricing=429:4").unwrap().len(), 3);
    for bad in ["cart=500", "cart:500:2", "nope=500:2", "cart=500:0", "cart=boom:2", "cart=slow3x:2", "cart=99:2"] {
        assert!(parse_chaos(bad).is_err(), "{bad} was accepted");
    }
}

#[test]
fn the_counter_hits_every_nth_request_and_shifts_the_next_fault() {
    let chaos = Chaos { faults: vec![(4, Fault::Status(500)), (4, Fault::Reset)], pick: Pick::Counter };
    let hits: Vec<Option<&Fault>> = (1..=8).map(|n| chaos.fault_for("cart", n)).collect();
    let (e, r, none) = (Some(&Fault::Status(500)), Some(&Fault::Reset), None);
    assert_eq!(hits, vec![none, none, r, e, none, none, r, e]);
}

#[test]
fn a_seed_hits_one_in_n_on_average_and_reproducibly() {
    let chaos = Chaos { faults: vec![(20, Fault::Status(500)), (10, Fault::Hang)], pick: Pick::Random { seed: 7 } };
    let draws = 100_000;
    let count = |fault: &Fault| (1..=draws).filter(|n| chaos.fault_for("cart", *n) == Some(fault)).count();
    let (errors, hangs) = (count(&Fault::Status(500)), count(&Fault::Hang));
    assert!((4_500..5_500).contains(&errors), "{errors} 500s in {draws}");
    assert!((9_400..10_600).contains(&hangs), "{hangs} hangs in {draws}");
    let again = Chaos { faults: chaos.faults.clone(), pick: Pick::Random { seed: 7 } };
    assert!((1..=1000).all(|n| chaos.fault_for("cart", n) == again.fault_for("cart", n)));
}

#[tokio::test]
async fn stats_count_a_hung_request_in_flight_until_its_client_goes_away() {
    orchestrate::install_tls_provider();
    let mocks = Mocks::start(0.0).await.unwrap();
    let shipping = mocks.get("shipping");
    shipping.set_chaos(Chaos { faults: vec![(2, Fault::Hang)], pick: Pick::Counter });
    let http = reqwest::Client::new();
    let stats = || async {
        let url = format!("{}/_mock/stats", mocks.url("shipping"));
        http.get(url).send().await.unwrap().json::<Value>().await.unwrap()
    };
    let estimate = || {
        http.post(format!("{}/estimate", mocks.url("shipping")))
            .body(r#"{"items":[]}"#)
            .timeout(Duration::from_millis(300))
            .send()
    };

    assert_eq!(estimate().await.unwrap().status(), 200); // request 1
    let hung = tokio::spawn(estimate()); // request 2: hangs until the client's timeout
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(stats().await, serde_json::json!({"requests": 2, "inFlight": 1, "faults": 1}));
    assert!(hung.await.unwrap().unwrap_err().is_timeout());
    // The client dropped the connection; the mock notices the end of the stream.
    let mut in_flight = Value::Null;
    for _ in 0..50 {
        in_flight = stats().await["inFlight"].clone();
        if in_flight == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(in_flight, 0);
    assert_eq!(shipping.requests(), 2);
}

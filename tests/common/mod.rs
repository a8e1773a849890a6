//! Shared by the integration tests: keys, a fast simulator, a client tuned to it.
#![allow(dead_code)]

use std::time::Duration;

use exona::Client;
use exona::Policy;
use exona_sim::{Config, SimHandle};

/// A test key of the documented shape; `n` makes keys distinct so request counts are per test.
pub fn key(n: u32) -> String {
    format!("exo_test_{:0>36}", format!("k{n}"))
}

pub mod virtual_api;

pub fn sim() -> SimHandle {
    sim_with(Config::fast())
}

pub fn sim_with(config: Config) -> SimHandle {
    exona_sim::spawn(config).expect("the simulator starts")
}

/// Engine settings matched to `Config::fast()`: scans of 50–150 ms, short backoff.
pub fn fast_policy() -> Policy {
    Policy {
        expected_duration: (Duration::from_millis(50), Duration::from_millis(150)),
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(200),
        attempt_timeout: Duration::from_secs(5),
        ..Policy::default()
    }
}

pub fn client(sim: &SimHandle, key: &str) -> Client {
    Client::with_policy(key, Some(&sim.base_url), fast_policy()).expect("client")
}

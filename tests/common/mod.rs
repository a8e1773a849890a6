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

/// A sink that keeps every outcome of the calls submitted with it.
#[derive(Default)]
pub struct Collect {
    pub outcomes: std::sync::Mutex<Vec<exona::Outcome>>,
}

impl exona::Sink for Collect {
    fn progress(&self, _event: exona::Progress) {}
    fn finish(&self, outcome: exona::Outcome) {
        self.outcomes.lock().unwrap().push(outcome);
    }
}

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

/// Records that a check of the running test cannot run because `tool` is missing: a skip,
/// written to `EXONA_SKIP_LOG` for the suite's summary (scripts/summary.sh) and to stderr.
/// With `EXONA_REQUIRE_TOOLS` set (CI) a missing tool fails the test instead. `whole_test`:
/// nothing else of the test runs, so it counts as skipped, not passed.
pub fn tool_missing(tool: &str, whole_test: bool) {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    assert!(
        std::env::var_os("EXONA_REQUIRE_TOOLS").is_none(),
        "{test}: EXONA_REQUIRE_TOOLS is set but {tool} is not available"
    );
    let kind = if whole_test { "skip-test" } else { "skip-check" };
    let line = format!("{kind} {test}: {tool} is not available\n");
    eprint!("{line}");
    if let Some(path) = std::env::var_os("EXONA_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).create(true).open(path) {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

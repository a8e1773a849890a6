//! The state store shared by clients on one directory (as the processes of a host share it):
//! stored results answer with no request, a scan in flight is joined instead of twinned,
//! durations are learned from earlier clients, and a broken store costs no scan.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{fast_policy, key};
use exona::{Client, ClientConfig, Code, ScanRequest, WaitOptions};
use exona_sim::SimHandle;

fn state_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("state-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A client as a separate process would make one: its own engine and governor registration,
/// the shared directory.
fn client(sim: &SimHandle, k: &str, dir: &PathBuf) -> Client {
    ClientConfig {
        policy: fast_policy(),
        state_dir: Some(dir.clone()),
        ..ClientConfig::new(k, Some(&sim.base_url))
    }
    .build()
    .expect("client")
}

fn reusing(website: &str) -> ScanRequest {
    ScanRequest { max_age_days: Some(30), ..ScanRequest::new("Acme", website) }
}

fn within(ms: u64) -> WaitOptions {
    WaitOptions { deadline: Some(Duration::from_millis(ms)), ..WaitOptions::default() }
}

#[test]
fn a_stored_result_answers_with_no_request() {
    let sim = common::sim();
    let (k, dir) = (key(11_001), state_dir("answer"));
    let first = client(&sim, &k, &dir);
    assert!(first.uses_state_store());
    let scan = first.scan_and_wait(&reusing("https://acme.ai"), &within(10_000)).unwrap();
    assert!(!scan.from_store);
    let before = sim.stats(&k);
    // Another client on the directory, a different spelling of the same website.
    let second = client(&sim, &k, &dir);
    let again = second.scan_and_wait(&reusing("https://ACME.ai/"), &within(10_000)).unwrap();
    assert!(again.from_store && again.cached());
    assert_eq!(again.id(), scan.id());
    assert_eq!(
        again.get_str("/result/risk_assessment/overall_risk_level"),
        scan.get_str("/result/risk_assessment/overall_risk_level")
    );
    assert_eq!(sim.stats(&k), before, "no request was sent");
    // max_age_days 0 (or a questionnaire, or force_refresh) always asks the API.
    let fresh = second.scan_and_wait(&ScanRequest::new("Acme", "https://acme.ai"), &within(10_000)).unwrap();
    assert!(!fresh.from_store);
    assert_eq!(sim.stats(&k).posts, before.posts + 1);
}

#[test]
fn a_scan_in_flight_is_joined_not_twinned() {
    let sim = common::sim();
    let (k, dir) = (key(11_002), state_dir("join"));
    let a = client(&sim, &k, &dir);
    // A scan that stays processing; created by one client and left running.
    let created = a.create_scan_with(&reusing("https://stuck.join.example"), &within(10_000)).unwrap();
    let b = client(&sim, &k, &dir);
    let e = b.scan_and_wait(&reusing("https://stuck.join.example"), &within(500)).unwrap_err();
    assert_eq!(e.code, Code::Timeout, "{}", e.message);
    assert_eq!(e.scan_id.as_deref(), Some(created.id()), "the second client waited on the first one's scan");
    assert_eq!(sim.stats(&k).scans_created, 1, "no twin was created");
}

#[test]
fn durations_learned_by_one_client_teach_the_next() {
    let sim = common::sim();
    let (k, dir) = (key(11_003), state_dir("durations"));
    let a = client(&sim, &k, &dir);
    for i in 0..3 {
        a.scan_and_wait(&ScanRequest::new("Acme", format!("https://d{i}.example")), &within(10_000)).unwrap();
    }
    let b = client(&sim, &k, &dir);
    assert_eq!(b.durations_learned(), 3, "a new client starts from what the last one learned");
    let elsewhere = client(&sim, &key(11_004), &dir);
    assert_eq!(elsewhere.durations_learned(), 0, "another key's durations are its own");
}

#[test]
fn a_broken_store_costs_no_scan() {
    let sim = common::sim();
    let k = key(11_005);
    // A file where the directory should be, and a corrupt database file.
    let dir = state_dir("broken");
    std::fs::write(&dir, b"not a directory").unwrap();
    let c = client(&sim, &k, &dir);
    assert!(!c.uses_state_store());
    c.scan_and_wait(&reusing("https://acme.ai"), &within(10_000)).unwrap();
    let corrupt = state_dir("corrupt");
    std::fs::create_dir_all(&corrupt).unwrap();
    std::fs::write(corrupt.join("exona-state.sqlite3"), vec![0x42u8; 8192]).unwrap();
    let c = client(&sim, &k, &corrupt);
    assert!(!c.uses_state_store());
    c.scan_and_wait(&reusing("https://acme.ai"), &within(10_000)).unwrap();
    // Deleted while in use: the client goes on (SQLite keeps the open file; nothing fails).
    let gone = state_dir("deleted");
    let c = client(&sim, &k, &gone);
    assert!(c.uses_state_store());
    std::fs::remove_dir_all(&gone).unwrap();
    c.scan_and_wait(&reusing("https://gone-dir.example"), &within(10_000)).unwrap();
    let _ = std::fs::remove_file(&dir);
}

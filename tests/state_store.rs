//! The state store shared by clients on one directory (as the processes of a host share it):
//! stored results answer with no request, a scan in flight is joined instead of twinned,
//! durations are learned from earlier clients, and a broken store costs no scan.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{fast_policy, key};
use exona::{Batch, Client, ClientConfig, Code, Next, ScanRequest, WaitOptions};
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

/// A batch row is answered from the store, or joined to a scan in flight, as a single call is.
#[test]
fn a_batch_uses_the_store_as_a_single_call_does() {
    let sim = common::sim();
    let (k, dir) = (key(11_007), state_dir("batch"));
    let a = client(&sim, &k, &dir);
    let stored = a.scan_and_wait(&reusing("https://stored.batch.example"), &within(10_000)).unwrap();
    let running = a.create_scan_with(&reusing("https://stuck.batch.example"), &within(10_000)).unwrap();
    let before = sim.stats(&k);
    let b = client(&sim, &k, &dir);
    let batch = Batch::new(&b);
    let stored_row = batch.add(reusing("https://STORED.batch.example/"), &within(500));
    let joined_row = batch.add(reusing("https://stuck.batch.example"), &within(500));
    let mut seen = 0;
    while let Next::Ready(index, outcome) = batch.next(Some(Duration::from_secs(10))) {
        seen += 1;
        if index == stored_row {
            let scan = outcome.unwrap();
            assert!(scan.from_store && scan.id() == stored.id());
        } else {
            assert_eq!(index, joined_row);
            let e = outcome.unwrap_err();
            assert_eq!((e.code, e.scan_id.as_deref()), (Code::Timeout, Some(running.id())), "{}", e.message);
        }
    }
    assert_eq!(seen, 2);
    let after = sim.stats(&k);
    assert_eq!((after.posts, after.scans_created), (before.posts, before.scans_created), "no POST, no twin");
}

/// Two callers asking at once for the same companies (two batches, and two blocking calls):
/// one creates each scan, the other waits on it; no twin.
#[test]
fn callers_asking_at_once_create_each_scan_once() {
    let sim = common::sim();
    let (k, dir) = (key(11_008), state_dir("at-once"));
    let (a, b) = (client(&sim, &k, &dir), client(&sim, &k, &dir));
    let sites: Vec<String> = (0..4).map(|i| format!("https://same-{i}.example")).collect();
    let (batch_a, batch_b) = (Batch::new(&a), Batch::new(&b));
    for site in &sites {
        batch_a.add(reusing(site), &within(10_000));
        batch_b.add(reusing(site), &within(10_000));
    }
    for batch in [&batch_a, &batch_b] {
        let mut ids = Vec::new();
        while let Next::Ready(_, outcome) = batch.next(Some(Duration::from_secs(20))) {
            ids.push(outcome.unwrap().id().to_owned());
        }
        assert_eq!(ids.len(), 4);
    }
    assert_eq!(sim.stats(&k).scans_created, 4, "{:?}", sim.stats(&k));
    let calls: Vec<_> = [a, b]
        .into_iter()
        .map(|c| {
            std::thread::spawn(move || c.scan_and_wait(&reusing("https://once.example"), &within(10_000)))
        })
        .collect();
    let ids: Vec<String> = calls.into_iter().map(|t| t.join().unwrap().unwrap().id().to_owned()).collect();
    assert_eq!(ids[0], ids[1], "both calls have the one scan");
    assert_eq!(sim.stats(&k).scans_created, 5);
}

/// Set in the child process of the test below: the directory whose store it locks.
const HOLD_TRANSACTION_IN: &str = "EXONA_TEST_HOLD_TRANSACTION_IN";

/// A process killed (SIGKILL) in the middle of a store transaction: what it began writing is
/// gone, its lock with it, and the next process finds the store whole and usable. The child is
/// this same test binary, run for this one test with the variable above set.
#[test]
fn a_process_killed_mid_transaction_leaves_the_store_whole() {
    if let Some(dir) = std::env::var_os(HOLD_TRANSACTION_IN) {
        let conn = rusqlite::Connection::open(PathBuf::from(dir).join("exona-state.sqlite3")).unwrap();
        conn.execute_batch(
            "BEGIN IMMEDIATE; UPDATE ledger SET remaining = 0; DELETE FROM results; DELETE FROM durations;",
        )
        .unwrap();
        println!("holding the write lock");
        std::thread::sleep(Duration::from_secs(60));
        panic!("the parent did not kill this process");
    }
    let sim = common::sim();
    let (k, dir) = (key(11_006), state_dir("killed"));
    let first = client(&sim, &k, &dir);
    let scan = first.scan_and_wait(&reusing("https://killed.example"), &within(10_000)).unwrap();
    drop(first);

    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_process_killed_mid_transaction_leaves_the_store_whole", "--nocapture"])
        .env(HOLD_TRANSACTION_IN, &dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    while !line.contains("holding the write lock") {
        line.clear();
        let n = std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert!(n > 0, "the child ended before taking the lock");
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no rollback by the child
    child.wait().unwrap();

    let next = client(&sim, &k, &dir);
    assert!(next.uses_state_store());
    assert_eq!(next.durations_learned(), 1, "the killed transaction's delete did not happen");
    let before = sim.stats(&k);
    let again = next.scan_and_wait(&reusing("https://killed.example"), &within(10_000)).unwrap();
    assert!(again.from_store && again.id() == scan.id(), "the stored result survived");
    assert_eq!(sim.stats(&k), before);
    // The budget is as the last committed transaction left it: a new scan goes at once.
    next.scan_and_wait(&reusing("https://after-kill.example"), &within(10_000)).unwrap();
    assert!(next.uses_state_store(), "the store was never bypassed");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Set in the child process of the test below: the simulator's URL it scans against.
const HOLD_CLAIM_AT: &str = "EXONA_TEST_HOLD_CLAIM_AT";

/// A process killed (SIGKILL) while it holds a claim to create a scan (its create waits for
/// the key's window): the next process asking for the same company creates it one lease
/// later, not after the 15 minutes a claim used to hold (an outside check saw a batch send
/// nothing for 90 s with budget free, and a scan wait 897 s). The child is this test binary.
#[test]
fn a_killed_processs_claim_is_free_within_one_lease() {
    let k = key(11_007);
    let dir = state_dir("lease");
    if let Some(url) = std::env::var_os(HOLD_CLAIM_AT) {
        let dir = PathBuf::from(std::env::var_os("EXONA_TEST_DIR").unwrap());
        let c = ClientConfig {
            policy: fast_policy(),
            state_dir: Some(dir),
            ..ClientConfig::new(&k, Some(url.to_str().unwrap()))
        }
        .build()
        .unwrap();
        let _ = c.scan_and_wait(&reusing("https://claimed.example"), &within(600_000));
        panic!("the parent did not kill this process");
    }
    // The key's one request of the window is spent: the child's create waits for the window.
    let sim = common::sim_with(exona_sim::Config {
        rate_limit: 1,
        rate_window: Duration::from_secs(8),
        ..exona_sim::Config::fast()
    });
    let _ = Client::with_policy(&k, Some(&sim.base_url), fast_policy()).unwrap().get_scan("scn_test_spent");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_killed_processs_claim_is_free_within_one_lease", "--nocapture"])
        .env(HOLD_CLAIM_AT, &sim.base_url)
        .env("EXONA_TEST_DIR", &dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The event: the child's claim is in the store.
    let claimed = || {
        rusqlite::Connection::open(dir.join("exona-state.sqlite3"))
            .and_then(|c| {
                c.query_row("SELECT COUNT(*) FROM in_flight WHERE scan_id = ''", [], |r| r.get::<_, i64>(0))
            })
            .unwrap_or(0)
            > 0
    };
    let waiting = std::time::Instant::now();
    while !claimed() && waiting.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(claimed(), "the child never claimed the scan");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(sim.stats(&k).scans_created, 0, "the child was killed before its create");

    // Two minutes of patience: a claim held 15 minutes ends this call by its deadline.
    let next = client(&sim, &k, &dir);
    let started = std::time::Instant::now();
    let scan = next.scan_and_wait(&reusing("https://claimed.example"), &within(120_000));
    assert!(scan.is_ok(), "{:?} after {:?}", scan.err(), started.elapsed());
    assert_eq!(sim.stats(&k).scans_created, 1, "created once, by the next process");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A batch row that found another process's claim waits until the claim lapses, then creates
/// the scan itself, once. It used to ask the store again with its own new claim in place,
/// find that claim, and wait on it: a row waiting on its own claim (for 15 minutes then, and
/// for ever once the process's own heartbeat renews it).
#[test]
fn a_batch_row_that_waited_on_a_lapsed_claim_creates_the_scan_once() {
    let sim = common::sim();
    let (k, dir) = (key(11_008), state_dir("own-claim"));
    let request = reusing("https://lapsed.example");
    {
        // Another process that claimed the company, then died (its heartbeat stops with it).
        let other = exona::store::open(&dir, &exona::store::fingerprint(&k, &sim.base_url)).unwrap();
        let identity = exona::store::calls::shareable_identity(&request.normalized().unwrap()).unwrap();
        let now = std::time::SystemTime::now();
        assert_eq!(other.claim(&identity, now, now), exona::store::Claim::Mine);
    }
    let c = client(&sim, &k, &dir);
    let batch = Batch::new(&c);
    batch.add(request, &within(120_000));
    let outcome = match batch.next(Some(Duration::from_secs(150))) {
        Next::Ready(_, outcome) => outcome,
        other => panic!("the row never ended: {other:?}"),
    };
    assert!(outcome.is_ok(), "{:?}", outcome.err());
    assert_eq!(sim.stats(&k).scans_created, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

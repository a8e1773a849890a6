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

/// A claim's ask with no settling time (a lapsed claim is free as soon as its lease lapses).
fn ask(token: &str, since: std::time::SystemTime, at: std::time::SystemTime) -> exona::store::Ask<'_> {
    exona::store::Ask { token, since, at, settle: std::time::Duration::ZERO }
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

/// A process killed (SIGKILL) while it holds a claim to create a scan (its create is on the
/// wire, unanswered): the next process asking for the same company creates it one lease
/// later, not after the 15 minutes a claim used to hold (an outside check saw a batch send
/// nothing for 90 s with budget free, and a scan wait 897 s). The child is this test binary;
/// its requests go to a proxy that never answers, so its create never reaches the simulator.
#[test]
fn a_killed_processs_claim_is_free_within_one_lease() {
    let k = key(11_007);
    let dir = state_dir("lease");
    if let Some(proxy) = std::env::var_os(HOLD_CLAIM_AT) {
        let dir = PathBuf::from(std::env::var_os("EXONA_TEST_DIR").unwrap());
        let url = std::env::var("EXONA_TEST_URL").unwrap();
        let c = ClientConfig {
            policy: exona::Policy { attempt_timeout: Duration::from_secs(600), ..fast_policy() },
            connect: exona::ConnectOptions {
                proxy: Some(proxy.to_str().unwrap().to_owned()),
                ..Default::default()
            },
            state_dir: Some(dir),
            ..ClientConfig::new(&k, Some(&url))
        }
        .build()
        .unwrap();
        let _ = c.scan_and_wait(&reusing("https://claimed.example"), &within(600_000));
        panic!("the parent did not kill this process");
    }
    let sim = common::sim();
    let silent = black_hole();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_killed_processs_claim_is_free_within_one_lease", "--nocapture"])
        .env(HOLD_CLAIM_AT, format!("http://{}", silent.local_addr().unwrap()))
        .env("EXONA_TEST_URL", &sim.base_url)
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
    assert_eq!(sim.stats(&k).scans_created, 0, "the child's create never reached the server");
    // What the store says: the dead process's claim is free one lease after the kill at the
    // latest (issue 32: this test asserted only the 120 s deadline below, not the lease).
    let killed_at_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let lease_until_ms: i64 = rusqlite::Connection::open(dir.join("exona-state.sqlite3"))
        .unwrap()
        .query_row("SELECT MAX(lease_until_ms) FROM in_flight WHERE scan_id = ''", [], |r| r.get(0))
        .unwrap();
    let lease_ms = exona::store::LEASE.as_millis() as i64;
    assert!(
        lease_until_ms - killed_at_ms <= lease_ms,
        "the claim holds {} ms past the kill, more than one lease ({lease_ms} ms)",
        lease_until_ms - killed_at_ms
    );

    // Two minutes of patience: a claim held 15 minutes ends this call by its deadline.
    let next = client(&sim, &k, &dir);
    let started = std::time::Instant::now();
    let scan = next.scan_and_wait(&reusing("https://claimed.example"), &within(120_000));
    assert!(scan.is_ok(), "{:?} after {:?}", scan.err(), started.elapsed());
    assert_eq!(sim.stats(&k).scans_created, 1, "created once, by the next process");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A listener that accepts connections and never answers: a proxy on which requests hang.
fn black_hole() -> std::net::TcpListener {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let accepting = listener.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in accepting.incoming().flatten() {
            held.push(conn);
        }
    });
    listener
}

/// A call waiting for its turn (here `start_after`, as a batch row waits for the key's
/// window) holds no claim: another process asking for the same company creates it at once
/// instead of waiting on a create that has not been sent. Claims used to be taken when the
/// call was submitted, so this second call waited (here until its deadline).
#[test]
fn a_call_waiting_for_its_turn_holds_no_claim() {
    let sim = common::sim();
    let (k, dir) = (key(11_009), state_dir("turn"));
    let request = reusing("https://turn.example");
    let waiting = client(&sim, &k, &dir);
    let batch = Batch::new(&waiting);
    batch.add(
        request.clone(),
        &WaitOptions { start_after: Some(Duration::from_secs(3600)), ..within(7_200_000) },
    );
    let other = client(&sim, &k, &dir);
    let scan = other.scan_and_wait(&request, &within(60_000));
    assert!(scan.is_ok(), "the second process waited on a create not sent: {:?}", scan.err());
    assert_eq!(sim.stats(&k).scans_created, 1);
    batch.cancel_all();
    let _ = std::fs::remove_dir_all(&dir);
}

const CLAIM_WAITERS_CHILD: &str = "EXONA_TEST_CLAIM_WAITERS";

/// Twenty rows of one company while another process creates it: they wait as timers in the
/// engine (no thread each: there used to be one `exona-claim` thread per row), and when the
/// other process's create is given up, one of them creates the scan and the others join it.
/// Run in a child process, so that other tests' threads do not count.
#[test]
fn rows_waiting_on_another_process_create_cost_no_thread_and_make_one_scan() {
    let threads = || std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0);
    let Some(url) = std::env::var_os(CLAIM_WAITERS_CHILD) else {
        let sim = common::sim();
        let dir = state_dir("waiters");
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "rows_waiting_on_another_process_create_cost_no_thread_and_make_one_scan"])
            .args(["--nocapture", "--test-threads=1"])
            .env(CLAIM_WAITERS_CHILD, &sim.base_url)
            .env("EXONA_TEST_DIR", &dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert_eq!(sim.stats(&key(11_010)).scans_created, 1, "{text}");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    };
    let (k, dir) = (key(11_010), PathBuf::from(std::env::var_os("EXONA_TEST_DIR").unwrap()));
    let url = url.to_str().unwrap().to_owned();
    let request = reusing("https://waiters.example");
    // The other process: a live owner (its heartbeat renews the claim) creating the company.
    let other = exona::store::open(&dir, &exona::store::fingerprint(&k, &url)).unwrap();
    let identity = exona::store::calls::shareable_identity(&request.normalized().unwrap()).unwrap();
    let now = std::time::SystemTime::now();
    assert_eq!(other.claim(&identity, ask("other-call", now, now)), exona::store::Claim::Mine);
    let c = ClientConfig {
        policy: fast_policy(),
        state_dir: Some(dir.clone()),
        ..ClientConfig::new(&k, Some(&url))
    }
    .build()
    .unwrap();
    let batch = Batch::new(&c);
    let before = threads();
    for _ in 0..20 {
        batch.add(request.clone(), &within(120_000));
    }
    // The event: every row says it waits on the other process's create (the progress line's
    // count).
    let waiting = std::time::Instant::now();
    while batch.status().waiting_on_other_create < 20 && waiting.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(batch.status().waiting_on_other_create, 20, "rows seen waiting on the other create");
    let during = threads();
    assert!(during <= before + 2, "{before} threads before the 20 rows, {during} while they wait");
    // The other process gives its create up: a waiting row takes over, the rest join it.
    other.clear_in_flight(&identity, "", "other-call");
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..20 {
        match batch.next(Some(Duration::from_secs(120))) {
            Next::Ready(_, Ok(scan)) => ids.insert(scan.id().to_owned()),
            other => panic!("a row ended {other:?}"),
        };
    }
    assert_eq!(ids.len(), 1, "one scan for twenty rows: {ids:?}");
    assert_eq!(batch.status().waiting_on_other_create, 0);
}

/// A call that joins a scan another process polls learns of its end from the store, with no
/// request of its own. It used to poll the API itself on its own schedule (an outside check
/// saw processes learn of a finished scan up to 79 s late, paying polls for it).
#[test]
fn a_joined_call_learns_the_scans_end_from_the_store_without_a_request() {
    let sim = common::sim_with(exona_sim::Config {
        scan_duration_min: Duration::from_secs(3),
        scan_duration_max: Duration::from_secs(3),
        ..exona_sim::Config::fast()
    });
    let (k, dir) = (key(11_011), state_dir("joined"));
    let request = reusing("https://joined.example");
    let creator = {
        let (sim_url, k, dir, request) = (sim.base_url.clone(), k.clone(), dir.clone(), request.clone());
        std::thread::spawn(move || {
            let c = ClientConfig {
                policy: fast_policy(),
                state_dir: Some(dir),
                ..ClientConfig::new(&k, Some(&sim_url))
            }
            .build()
            .unwrap();
            c.scan_and_wait(&request, &within(60_000))
        })
    };
    // The event: the creator's scan is in flight in the store.
    let fingerprint = exona::store::fingerprint(&k, &sim.base_url);
    let in_flight = || {
        exona::store::snapshot(&dir, &fingerprint)
            .ok()
            .flatten()
            .and_then(|s| s.in_flight.iter().find_map(|f| f.scan_id.clone()))
    };
    let waiting = std::time::Instant::now();
    while in_flight().is_none() && waiting.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let running = in_flight().expect("the creator's scan was never recorded in flight");
    let joiner = client(&sim, &k, &dir);
    let mut requests = 0;
    let joined = joiner.scan_and_wait_with_progress(&request, &within(60_000), &mut |p| {
        requests = requests.max(p.requests);
        true
    });
    let created = creator.join().unwrap().expect("the creator's scan");
    let joined = joined.expect("the joined scan");
    assert_eq!((joined.id(), created.id()), (running.as_str(), running.as_str()));
    assert_eq!(requests, 0, "the joined call polled the API while the creator did");
    assert_eq!(sim.stats(&k).scans_created, 1);
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
        assert_eq!(other.claim(&identity, ask("other-call", now, now)), exona::store::Claim::Mine);
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

/// DESIGN.md 9.1 (issue 32): another process claimed a company and sent its create, then
/// stopped renewing its lease with the create on the wire (paused, or killed), while its scan
/// runs on the server. Its claim lapses after one lease (20 s), before that scan (25–26 s)
/// completes. Taking the claim over then and creating at once made a twin (the API's cache
/// holds completed scans only). The row now waits until the scan would have completed (its
/// learned p90 after the claim's send: here the expected 25–40 s, so about 38 s), then asks
/// with its `max_age_days`: the API's cache answers with the first scan, at no credit.
#[test]
fn a_lapsed_claim_whose_create_was_sent_is_taken_over_through_the_apis_cache() {
    let sim = common::sim_with(exona_sim::Config {
        scan_duration_min: Duration::from_secs(25),
        scan_duration_max: Duration::from_secs(26),
        retry_after_secs: 1.0,
        ..exona_sim::Config::fast()
    });
    let (k, dir) = (key(11_012), state_dir("sent-claim"));
    let request = reusing("https://sent-claim.example");
    let first = {
        // The other process: its claim (taken right before its create goes), its create, then
        // silence (its heartbeat stops with its store).
        let other = exona::store::open(&dir, &exona::store::fingerprint(&k, &sim.base_url)).unwrap();
        let identity = exona::store::calls::shareable_identity(&request.normalized().unwrap()).unwrap();
        let now = std::time::SystemTime::now();
        assert_eq!(other.claim(&identity, ask("other-call", now, now)), exona::store::Claim::Mine);
        let storeless = common::client(&sim, &k);
        storeless.create_scan(&request).expect("the other process's create").id().to_owned()
    };
    let c = ClientConfig {
        policy: exona::Policy {
            expected_duration: (Duration::from_secs(25), Duration::from_secs(40)),
            ..fast_policy()
        },
        state_dir: Some(dir.clone()),
        ..ClientConfig::new(&k, Some(&sim.base_url))
    }
    .build()
    .unwrap();
    let batch = Batch::new(&c);
    batch.add(request, &within(180_000));
    let outcome = match batch.next(Some(Duration::from_secs(200))) {
        Next::Ready(_, outcome) => outcome,
        other => panic!("the row never ended: {other:?}"),
    };
    let scan = outcome.expect("the row completes");
    assert_eq!(sim.stats(&k).scans_created, 1, "a twin of the other process's scan was created");
    assert_eq!(scan.id(), first, "the row's scan is the other process's, from the API's cache");
    let _ = std::fs::remove_dir_all(&dir);
}

//! Durable batches (DESIGN.md 7.2): a row's deadline counts from its scan's creation, and a
//! batch reopened on its journal resumes: finished rows cost nothing, created rows are waited
//! for by id, a row a crash left in "creating" is reported ambiguous unless reconciling.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{fast_policy, key};
use exona::{Batch, Client, Code, Next, Outcome, ScanRequest, WaitOptions};
use exona_sim::{Config, SimHandle};

fn journal(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("journal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d.join("batch.journal")
}

fn client(sim: &SimHandle, k: &str) -> Client {
    Client::with_policy(k, Some(&sim.base_url), fast_policy()).unwrap()
}

fn rows() -> Vec<ScanRequest> {
    ["https://a.journal.example", "https://b.journal.example", "https://stuck.journal.example"]
        .iter()
        .map(|w| ScanRequest { max_age_days: Some(30), ..ScanRequest::new("Journal Co", *w) })
        .collect()
}

fn within(ms: u64) -> WaitOptions {
    WaitOptions { deadline: Some(Duration::from_millis(ms)), ..WaitOptions::default() }
}

/// Runs `rows` in a batch on `path`; returns (index, outcome) in finishing order, after
/// `collect` of them have finished (the rest are cancelled when the batch is dropped).
fn run(
    client: &Client,
    path: &std::path::Path,
    reconcile: bool,
    collect: usize,
    options: &WaitOptions,
) -> Vec<(usize, Outcome)> {
    let batch = Batch::new(client);
    batch.set_journal(path).unwrap();
    batch.set_reconcile(reconcile);
    for r in rows() {
        batch.add(r, options);
    }
    let mut out = Vec::new();
    while out.len() < collect {
        match batch.next(Some(Duration::from_secs(20))) {
            Next::Ready(i, o) => out.push((i, o)),
            other => panic!("{other:?}"),
        }
    }
    out
}

#[test]
fn a_reopened_journal_resumes_without_creating_again() {
    let sim = common::sim();
    let k = key(12_001);
    let path = journal("resume");
    // First run: two rows complete, the stuck one is left running when the batch stops.
    let first = run(&client(&sim, &k), &path, false, 2, &within(60_000));
    assert!(first.iter().all(|(_, o)| o.is_ok()));
    std::thread::sleep(Duration::from_millis(300));
    let before = sim.stats(&k);
    assert_eq!(before.posts, 3);
    // Second run, same journal, same rows: the finished rows come back with no request; the
    // stuck one is waited for by its id (GETs only) until its short deadline.
    let second = run(&client(&sim, &k), &path, false, 3, &within(500));
    let after = sim.stats(&k);
    assert_eq!(after.posts, 3, "no row was created again");
    for (index, outcome) in &second {
        match index {
            0 | 1 => assert!(outcome.is_ok(), "{outcome:?}"),
            _ => {
                let e = outcome.as_ref().unwrap_err();
                assert_eq!(e.code, Code::Timeout, "{}", e.message);
                assert!(e.scan_id.is_some());
            }
        }
    }
    assert!(after.gets > before.gets, "the stuck row was polled by id");
}

#[test]
fn a_row_left_creating_is_ambiguous_unless_reconciled() {
    let sim = common::sim();
    let k = key(12_002);
    let path = journal("ambiguous");
    run(&client(&sim, &k), &path, false, 2, &within(60_000));
    // What a crash between sending a create and journaling its answer leaves behind.
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute(
        "UPDATE batch_rows SET state = 'creating', scan_id = NULL, scan_json = NULL WHERE row = 0",
        [],
    )
    .unwrap();
    drop(db);
    let posts = sim.stats(&k).posts;
    let again = run(&client(&sim, &k), &path, false, 2, &within(60_000));
    let row0 = &again.iter().find(|(i, _)| *i == 0).unwrap().1;
    assert_eq!(row0.as_ref().unwrap_err().code, Code::AmbiguousCreate);
    assert_eq!(sim.stats(&k).posts, posts, "nothing is created blind");
    // Reconciling re-creates it with max_age_days: the API returns the scan that completed.
    let created = sim.stats(&k).scans_created;
    let reconciled = run(&client(&sim, &k), &path, true, 2, &within(60_000));
    let row0 = reconciled.iter().find(|(i, _)| *i == 0).unwrap().1.as_ref().unwrap();
    assert!(row0.cached(), "the completed twin was reused");
    assert_eq!(sim.stats(&k).scans_created, created, "no new scan");
}

#[test]
fn a_journal_of_other_rows_is_refused_row_by_row() {
    let sim = common::sim();
    let k = key(12_003);
    let path = journal("mismatch");
    run(&client(&sim, &k), &path, false, 2, &within(60_000));
    let batch = Batch::new(&client(&sim, &k));
    batch.set_journal(&path).unwrap();
    batch.add(ScanRequest::new("Other Co", "https://other.example"), &within(1000));
    match batch.next(Some(Duration::from_secs(5))) {
        Next::Ready(0, Err(e)) => {
            assert_eq!(e.code, Code::InvalidArgument);
            assert!(e.message.contains("row 0 of the journal was another request"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
    let late = Batch::new(&client(&sim, &k));
    late.add(ScanRequest::new("A", "https://a.example"), &within(1000));
    assert!(late.set_journal(&path).is_err(), "a journal is set before the first row");
}

/// Rows waiting for the key's budget are not failed by their deadline: it counts from each
/// scan's creation (here 6 s: a created scan's polls wait at most a window or two, while the
/// whole batch needs about seven 2 s windows).
#[test]
fn a_row_waits_its_turn_beyond_its_deadline() {
    let sim =
        common::sim_with(Config { rate_limit: 6, rate_window: Duration::from_secs(2), ..Config::fast() });
    let k = key(12_004);
    let c = client(&sim, &k);
    let batch = Batch::new(&c);
    for i in 0..16 {
        batch.add(ScanRequest::new("Turn Co", format!("https://turn-{i}.example")), &within(6000));
    }
    let mut completed = 0;
    while let Next::Ready(_, outcome) = batch.next(Some(Duration::from_secs(60))) {
        let scan = outcome.unwrap_or_else(|e| panic!("{:?}: {}", e.code, e.message));
        assert!(scan.id().starts_with("scn_"));
        completed += 1;
    }
    assert_eq!(completed, 16);
    let status = batch.status();
    assert_eq!((status.completed, status.failed, status.queued), (16, 0, 0));
    assert!(status.requests >= 32, "{status:?}");
    assert_eq!(sim.stats(&k).rate_limited, 0);
}

#[test]
fn a_second_batch_on_a_journal_in_use_is_refused_naming_its_holder() {
    let sim = exona_sim::spawn(Config::fast()).unwrap();
    let c = client(&sim, &key(7_001));
    let path = journal("locked");
    let first = Batch::new(&c);
    first.set_journal(&path).unwrap();
    let second = Batch::new(&c);
    let e = second.set_journal(&path).unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(
        e.message.contains("in use by another run") && e.message.contains(&std::process::id().to_string()),
        "{e}"
    );
    drop(first);
    Batch::new(&c).set_journal(&path).expect("the lock ends with the batch that held it");
}

#[cfg(unix)]
#[test]
fn a_journal_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let sim = exona_sim::spawn(Config::fast()).unwrap();
    let path = journal("mode");
    Batch::new(&client(&sim, &key(7_002))).set_journal(&path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
}

#[test]
fn a_changed_input_is_found_before_anything_is_sent_but_max_age_days_may_change() {
    let sim = exona_sim::spawn(Config::fast()).unwrap();
    let (k, path) = (key(7_003), journal("changed"));
    let c = client(&sim, &k);
    let all = run(&c, &path, false, 3, &within(800));
    assert_eq!(all.len(), 3);
    let before = sim.stats(&k);
    let batch = Batch::new(&c);
    batch.set_journal(&path).unwrap();
    let rows = rows();
    // The same rows, max_age_days changed: the same scans.
    let relaxed: Vec<ScanRequest> =
        rows.iter().map(|r| ScanRequest { max_age_days: Some(7), ..r.clone() }).collect();
    let same: Vec<(u64, &ScanRequest)> = relaxed.iter().enumerate().map(|(i, r)| (i as u64, r)).collect();
    assert_eq!(batch.changed_rows(&same).unwrap(), Vec::<u64>::new());
    // A row inserted at the top: every journaled row now names another company.
    let inserted = ScanRequest::new("New Co", "https://new.journal.example");
    let shifted: Vec<(u64, &ScanRequest)> =
        std::iter::once(&inserted).chain(rows.iter()).enumerate().map(|(i, r)| (i as u64, r)).collect();
    assert_eq!(batch.changed_rows(&shifted).unwrap(), vec![0, 1, 2]);
    assert_eq!(sim.stats(&k), before, "nothing was sent");
    // Resumed with max_age_days changed, a finished row is that row, not a mismatch.
    for r in relaxed {
        batch.add(r, &within(800));
    }
    let mut codes = Vec::new();
    while let Next::Ready(_, o) = batch.next(Some(Duration::from_secs(20))) {
        codes.push(o.err().map(|e| e.code));
    }
    assert!(!codes.contains(&Some(Code::InvalidArgument)), "{codes:?}");
}

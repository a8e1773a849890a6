//! The store's contract, one suite run against both backends: the SQLite file (a host) and
//! PostgreSQL (a fleet; a throwaway server started by the test). Each test opens the store
//! more than once on the same backing: each opening is another owner, as another process (on
//! another host, for PostgreSQL) would be.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Claim, Guarded, Store, StoredResult, LEASE};
use crate::engine::ledger::{Holds, Ledger, SharedWindow};

#[path = "../../tests/common/postgres.rs"]
mod pg_server;

type Open = Box<dyn Fn() -> Box<dyn Store>>;

fn sqlite(name: &str) -> (Open, impl Drop) {
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let dir = std::env::temp_dir().join(format!("exona-contract-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.clone();
    let open: Open = Box::new(move || Box::new(super::sqlite::SqliteStore::open(&d, "fp").unwrap()));
    (open, Cleanup(dir))
}

fn postgres() -> Option<(Open, pg_server::PgServer)> {
    let server = pg_server::PgServer::start_or_skip()?;
    let url = server.url();
    super::postgres::init(&url).unwrap();
    let open: Open = Box::new(move || Box::new(super::postgres::PgStore::new(&url, "fp").unwrap()));
    Some((open, server))
}

/// Runs `check` against both backends (PostgreSQL where it is installed; CI requires it).
fn on_both(name: &str, check: impl Fn(&Open)) {
    let (open, _cleanup) = sqlite(name);
    check(&open);
    if let Some((open, _server)) = postgres() {
        check(&open);
    }
}

/// A claim's ask with no settling time (a lapsed claim is free as soon as its lease lapses).
fn ask(token: &str, since: std::time::SystemTime, at: std::time::SystemTime) -> super::Ask<'_> {
    super::Ask { token, since, at, settle: std::time::Duration::ZERO }
}

fn t(secs: u64) -> SystemTime {
    // Times from when the tests began (leases are compared on them, not on the clock): recent,
    // so that no store's pruning of hour-old rows takes them for stale.
    static BASE: std::sync::OnceLock<SystemTime> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| {
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        SystemTime::UNIX_EPOCH + Duration::from_secs(now) // whole seconds: stores keep milliseconds
    });
    base + Duration::from_secs(secs)
}

fn result_at(secs: u64, json: &str) -> StoredResult {
    StoredResult { json: json.to_owned(), completed_at: t(secs) }
}

#[test]
fn results_are_shared_and_the_newest_wins() {
    on_both("results", |open| {
        let (a, b) = (open(), open());
        assert_eq!(a.result("acme", t(0)).unwrap(), None);
        a.record_result("acme", &result_at(100, "{\"v\":1}")).unwrap();
        assert_eq!(b.result("acme", t(50)).unwrap(), Some(result_at(100, "{\"v\":1}")));
        assert_eq!(b.result("acme", t(101)).unwrap(), None, "older than since");
        b.record_result("acme", &result_at(90, "{\"v\":0}")).unwrap();
        assert_eq!(
            a.result("acme", t(0)).unwrap().unwrap().json,
            "{\"v\":1}",
            "an older result does not replace"
        );
        b.record_result("acme", &result_at(200, "{\"v\":2}")).unwrap();
        assert_eq!(a.result("acme", t(0)).unwrap().unwrap().json, "{\"v\":2}");
    });
}

#[test]
fn durations_count_once_per_scan_newest_first() {
    on_both("durations", |open| {
        let (a, b) = (open(), open());
        a.record_duration("scn_1", Duration::from_secs(30), t(1)).unwrap();
        b.record_duration("scn_1", Duration::from_secs(30), t(2)).unwrap();
        b.record_duration("scn_2", Duration::from_secs(60), t(3)).unwrap();
        assert_eq!(a.durations(10).unwrap(), [Duration::from_secs(60), Duration::from_secs(30)]);
        assert_eq!(a.durations(1).unwrap(), [Duration::from_secs(60)]);
    });
}

/// Issue 35: a process learns the durations the others record on the key, through its
/// heartbeat's read, once each, and none its model was seeded with at its start.
#[test]
fn each_process_is_handed_the_durations_the_others_record_once() {
    on_both("learned", |open| {
        let (a, b) = (open(), Guarded::new(open()));
        a.record_duration("scn_old", Duration::from_secs(9), t(1)).unwrap();
        assert_eq!(b.seed_durations(512), [Duration::from_secs(9)]);
        a.record_duration("scn_new", Duration::from_secs(4), t(2)).unwrap();
        b.read_learned();
        b.read_learned();
        assert_eq!(b.take_learned(), [("scn_new".to_owned(), Duration::from_secs(4))]);
        assert!(b.take_learned().is_empty(), "handed once");
        b.read_learned();
        assert!(b.take_learned().is_empty(), "read once");
    });
}

/// Issue 32 (`exona-bench crash-pause-pg`): a process stopped inside a transaction keeps the
/// claim's row locked until the server ends its session (5 s). Another process's claim waited
/// on the lock until the client's 2 s statement bound, took the store for gone, and created
/// blind: two companies created twice. The server's lock timeout now ends first and says so:
/// the claim waits (`Creating`), as beside a held SQLite file.
#[test]
fn a_claim_beside_a_row_a_stopped_process_locks_waits_rather_than_going_blind() {
    let Some((open, server)) = postgres() else { return };
    let b = Guarded::new(open());
    // Stopped inside its claim of the same company: the claim's lock is held.
    let mut stopped = postgres::Client::connect(&server.url(), postgres::NoTls).unwrap();
    let mut tx = stopped.transaction().unwrap();
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended('exona-claim:fp:x', 0))", &[]).unwrap();
    assert_eq!(b.claim("x", ask("tb", t(2), t(2))), Claim::Creating, "a claim went blind beside a held lock");
    tx.rollback().unwrap();
    assert_eq!(b.claim("x", ask("tb", t(3), t(3))), Claim::Mine, "and claims once it is free");
}

/// The key's history of creates (the arrivals a process expects, issue 23): a scan counts/// The key's history of creates (the arrivals a process expects, issue 23): a scan counts
/// once, whichever owner recorded it, where it was created (its end less its duration).
#[test]
fn the_history_counts_each_scan_where_it_was_created() {
    on_both("history", |open| {
        let (a, b) = (open(), open());
        let ms = |secs: u64| t(secs).duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as i64;
        a.record_duration("scn_1", Duration::from_secs(10), t(100)).unwrap(); // created at 90
        b.record_duration("scn_1", Duration::from_secs(10), t(101)).unwrap(); // the same scan
        b.record_duration("scn_2", Duration::from_millis(30_500), t(100)).unwrap(); // at 69.5
        assert_eq!(a.created_between(ms(60), ms(95)).unwrap(), 2);
        assert_eq!(b.created_between(ms(70), ms(95)).unwrap(), 1);
        assert_eq!(a.created_between(ms(60), ms(90)).unwrap(), 1, "from inclusive, to exclusive");
        assert_eq!(a.created_between(ms(91), ms(200)).unwrap(), 0, "ended after, created before");
    });
}

#[test]
fn one_owner_claims_the_others_wait_then_join_its_scan() {
    on_both("claims", |open| {
        let (a, b) = (open(), open());
        assert_eq!(b.peek_claim("acme", ask("tb", t(0), t(10))).unwrap(), None);
        assert_eq!(a.claim("acme", ask("ta", t(0), t(10))).unwrap(), Claim::Mine);
        assert_eq!(b.claim("acme", ask("tb", t(0), t(11))).unwrap(), Claim::Creating);
        assert_eq!(b.peek_claim("acme", ask("tb", t(0), t(11))).unwrap(), Some(Claim::Creating));
        a.record_in_flight("acme", "scn_a", t(12)).unwrap();
        assert_eq!(b.claim("acme", ask("tb", t(0), t(13))).unwrap(), Claim::Running("scn_a".into()));
        assert!(b.watched("acme", "scn_a", t(13)).unwrap());
        a.unwatch_in_flight("acme", "scn_a").unwrap();
        assert!(!b.watched("acme", "scn_a", t(13)).unwrap(), "unwatched: joiners poll it themselves");
        b.clear_in_flight("acme", "scn_a", "tb").unwrap();
        assert_eq!(b.peek_claim("acme", ask("tb", t(0), t(14))).unwrap(), None);
    });
}

#[test]
fn a_lapsed_lease_is_taken_over_and_a_renewed_one_holds() {
    on_both("leases", |open| {
        let (a, b) = (open(), open());
        let lease = LEASE.as_secs();
        assert_eq!(a.claim("acme", ask("ta", t(0), t(100))).unwrap(), Claim::Mine);
        a.renew_leases(t(100 + lease - 1)).unwrap();
        assert_eq!(b.claim("acme", ask("tb", t(0), t(100 + lease + 1))).unwrap(), Claim::Creating, "renewed");
        // Its owner died (no more renewals): once its lease lapses, the claim is taken over.
        assert_eq!(b.claim("acme", ask("tb", t(0), t(100 + 2 * lease))).unwrap(), Claim::Mine);
        // A claim is cleared only by its owner: the dead one's clear does not remove b's.
        a.clear_in_flight("acme", "", "ta").unwrap();
        assert_eq!(
            a.peek_claim("acme", ask("ta", t(0), t(100 + 2 * lease + 1))).unwrap(),
            Some(Claim::Creating)
        );
    });
}

/// Two calls of one process for one company (the same company twice in a batch, or a
/// cancelled `asyncio.wait_for` around one of two calls): the one that only waited on its
/// sibling's claim and then timed out or was cancelled clears nothing of it (the audit's
/// repro: it deleted the sibling's claim while the sibling's POST was out).
#[test]
fn a_waiting_calls_clear_leaves_its_siblings_claim() {
    on_both("sibling", |open| {
        let a = open();
        assert_eq!(a.claim("acme", ask("first", t(0), t(10))).unwrap(), Claim::Mine);
        assert_eq!(a.claim("acme", ask("second", t(0), t(11))).unwrap(), Claim::Creating);
        a.clear_in_flight("acme", "", "second").unwrap();
        a.clear_in_flight("acme", "", "").unwrap();
        assert_eq!(
            a.peek_claim("acme", ask("third", t(0), t(12))).unwrap(),
            Some(Claim::Creating),
            "cleared"
        );
        assert_eq!(a.peek_claim("acme", ask("first", t(0), t(12))).unwrap(), Some(Claim::Mine));
        a.keep_ambiguous_claim("acme", "second", t(200)).unwrap();
        a.clear_in_flight("acme", "", "first").unwrap();
        assert_eq!(a.peek_claim("acme", ask("third", t(0), t(13))).unwrap(), None, "its own call clears it");
        // A scan recorded over another call's scan of the same company is named: a twin.
        assert_eq!(a.record_in_flight("acme", "scn_1", t(14)).unwrap(), None);
        assert_eq!(a.record_in_flight("acme", "scn_1", t(15)).unwrap(), None, "the same scan again");
        assert_eq!(a.record_in_flight("acme", "scn_2", t(16)).unwrap(), Some("scn_1".into()));
    });
}

/// A claim is taken right before its create is sent: when its lease lapses (its owner slept
/// or died with the create on the wire), a scan may exist. Another call waits until that scan
/// would have completed (`settle` after the send), then takes the claim over (DESIGN.md 9.1).
#[test]
fn a_lapsed_claim_whose_create_was_sent_settles_before_it_is_taken_over() {
    on_both("settle", |open| {
        let (a, b) = (open(), open());
        let lease = LEASE.as_secs();
        let settle = |token, at| super::Ask { token, since: t(0), at, settle: Duration::from_secs(60) };
        assert_eq!(a.claim("acme", ask("ta", t(0), t(100))).unwrap(), Claim::Mine);
        assert_eq!(
            b.claim("acme", settle("tb", t(100 + lease + 1))).unwrap(),
            Claim::Creating,
            "lapsed, just sent"
        );
        assert_eq!(b.peek_claim("acme", settle("tb", t(159))).unwrap(), Some(Claim::Creating));
        assert_eq!(
            b.claim("acme", settle("tb", t(161))).unwrap(),
            Claim::Mine,
            "its scan would have completed"
        );
        // Taken over: the claim is b's now, a create on the wire of b's.
        assert_eq!(a.claim("acme", settle("ta", t(162))).unwrap(), Claim::Creating, "a, back, does not send");
    });
}

#[test]
fn an_ambiguous_creates_claim_is_kept_until_its_time() {
    on_both("ambiguous", |open| {
        let (a, b) = (open(), open());
        assert_eq!(a.claim("acme", ask("ta", t(0), t(100))).unwrap(), Claim::Mine);
        a.keep_ambiguous_claim("acme", "ta", t(160)).unwrap();
        a.renew_leases(t(150)).unwrap(); // no longer a's: not renewed past its time
        assert_eq!(b.claim("acme", ask("tb", t(0), t(159))).unwrap(), Claim::Creating);
        assert_eq!(b.claim("acme", ask("tb", t(0), t(161))).unwrap(), Claim::Mine);
    });
}

/// A wall-clock millisecond near now: the ledger's own times are the engine's wall clock.
fn now_ms() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn the_ledger_shares_the_window_and_each_owners_holds() {
    on_both("ledger", |open| {
        let (a, b) = (open(), open());
        let now = now_ms();
        let mut seen = SharedWindow::default();
        b.peek(now, &mut |w| seen = w.clone()).unwrap();
        assert!(!seen.known, "nothing written yet");
        a.transact(now, &mut |w, mine| {
            assert!(!w.known);
            *w = SharedWindow {
                known: true,
                limit: 100,
                remaining: 40,
                reset_wall_ms: now + 60_000,
                reset_unix: Some(1_900_000_000),
                ended_unix: None,
                window_ms: 3_600_000,
                informed: true,
                cooldown_wall_ms: now + 1_000,
                last_grant_wall_ms: Some(now),
                others_outstanding: 0,
                others_reserved: 0,
                others_expected: 0,
                others_queued: 0,
            };
            *mine = Holds { outstanding: 2, reserved: 5, expected: 3, queued: 8 };
        })
        .unwrap();
        b.transact(now + 10, &mut |w, _| {
            assert!(w.known && w.limit == 100 && w.remaining == 40 && w.informed);
            // Times come back as written, whatever the database's clock says.
            assert!(
                (w.reset_wall_ms - (now + 60_000)).abs() <= 50,
                "{} vs {}",
                w.reset_wall_ms,
                now + 60_000
            );
            assert!((w.cooldown_wall_ms - (now + 1_000)).abs() <= 50);
            assert_eq!((w.others_outstanding, w.others_reserved), (2, 5), "a's holds");
            assert_eq!((w.others_expected, w.others_queued), (3, 8), "a's work in sight");
            w.remaining = 39;
        })
        .unwrap();
        a.peek(now + 20, &mut |w| seen = w.clone()).unwrap();
        assert_eq!((seen.remaining, seen.others_outstanding), (39, 0), "b holds nothing");
        b.peek(now + 20, &mut |w| seen = w.clone()).unwrap();
        assert_eq!((seen.others_expected, seen.others_queued), (3, 8), "a read-only view has it too");
    });
}

#[test]
fn a_dead_owners_holds_lapse_with_its_lease() {
    on_both("holds", |open| {
        let (a, b) = (open(), open());
        let now = now_ms();
        a.transact(now, &mut |w, mine| {
            w.known = true;
            w.limit = 10;
            w.remaining = 10;
            w.window_ms = 60_000;
            *mine = Holds { outstanding: 3, reserved: 4, expected: 2, queued: 6 };
        })
        .unwrap();
        let later = now + LEASE.as_millis() as i64 + 1_000;
        b.transact(later, &mut |w, _| {
            assert_eq!((w.others_outstanding, w.others_reserved), (0, 0), "a's lease lapsed");
            assert_eq!((w.others_expected, w.others_queued), (0, 0), "and its work in sight with it");
        })
        .unwrap();
    });
}

/// PostgreSQL only: a database that goes away mid-run is bypassed (calls answer "not known",
/// nothing fails), and the store is attached again once it answers.
#[test]
fn a_database_that_goes_away_is_bypassed_then_reattached() {
    let Some(server) = pg_server::PgServer::start_or_skip() else { return };
    super::postgres::init(&server.url()).unwrap();
    let store = Arc::new(Guarded::new(Box::new(super::postgres::PgStore::new(&server.url(), "fp").unwrap())));
    store.record_result("acme", &result_at(100, "{}"));
    assert!(store.result("acme", t(0)).is_some());
    server.stop();
    assert!(store.result("acme", t(0)).is_none(), "down: not known, no error");
    assert!(store.is_bypassed());
    // Unknown, never Mine (DESIGN.md 9.1): the caller may create blind, and knows it.
    assert_eq!(
        store.claim("beta", ask("tstore", t(0), t(1))),
        Claim::Unknown,
        "a store that fails is not mine"
    );
    server.start_again().unwrap();
    // Tried again after REATTACH_AFTER: it reconnects and answers.
    let deadline = std::time::Instant::now() + super::REATTACH_AFTER * 3;
    while store.result("acme", t(0)).is_none() {
        assert!(std::time::Instant::now() < deadline, "not re-attached");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!store.is_bypassed());
}

/// PostgreSQL only: no DDL at run time (DESIGN.md 9.3): a missing schema is named with the
/// command that creates it; a schema written by a newer library is refused, not used.
#[test]
fn a_missing_schema_is_named_with_its_command_and_a_newer_one_refused() {
    let Some(server) = pg_server::PgServer::start_or_skip() else { return };
    let store = super::postgres::PgStore::new(&server.url(), "fp").unwrap();
    let e = store.durations(1).unwrap_err();
    assert!(e.contains("exona store init --state-url") && e.contains("schema exona"), "{e}");
    assert!(!e.contains("fleet-secret-pw"), "{e}");
    let mut admin = postgres::Client::connect(&server.url(), postgres::NoTls).unwrap();
    let schemas: i64 =
        admin.query_one("SELECT count(*) FROM pg_namespace WHERE nspname = 'exona'", &[]).unwrap().get(0);
    assert_eq!(schemas, 0, "the run created nothing");
    super::postgres::init(&server.url()).unwrap();
    assert_eq!(super::postgres::init(&server.url()).unwrap(), super::postgres::Initialized::UpToDate);
    store.durations(1).unwrap();
    let mut admin = postgres::Client::connect(&server.url(), postgres::NoTls).unwrap();
    admin.execute("UPDATE exona.meta SET value = 99 WHERE key = 'schema_version'", &[]).unwrap();
    let fresh = super::postgres::PgStore::new(&server.url(), "fp").unwrap();
    let e = fresh.durations(1).unwrap_err();
    assert!(e.contains("version 99") && !e.contains("fleet-secret-pw"), "{e}");
    // Another schema in the same database is a store of its own.
    let other_url = format!("{}?schema=fleet_b", server.url());
    super::postgres::init(&other_url).unwrap();
    let other = super::postgres::PgStore::new(&other_url, "fp").unwrap();
    assert_eq!(other.durations(1).unwrap(), []);
}

/// PostgreSQL only: a schema of version 1 (holds without the work in sight, claims without a
/// call's token) is refused at run time with the command that migrates it, and brought up to
/// date by that command; its holds count for nothing of the work in sight, and its claims are
/// no call's (they lapse with their lease).
#[test]
fn a_schema_of_version_1_is_migrated() {
    let Some(server) = pg_server::PgServer::start_or_skip() else { return };
    let mut admin = postgres::Client::connect(&server.url(), postgres::NoTls).unwrap();
    // An old claim whose lease holds until t(5).
    let until_ms = t(5).duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis();
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA exona;
             CREATE TABLE exona.meta (key text PRIMARY KEY, value bigint NOT NULL);
             CREATE TABLE exona.holds (fingerprint text NOT NULL, holder text NOT NULL,
                 outstanding bigint NOT NULL, outstanding_until_ms bigint NOT NULL,
                 reserved bigint NOT NULL, reserved_until_ms bigint NOT NULL,
                 lease_until_ms bigint NOT NULL, PRIMARY KEY (fingerprint, holder));
             CREATE TABLE exona.in_flight (fingerprint text NOT NULL, identity text NOT NULL,
                 scan_id text NOT NULL, since_ms bigint NOT NULL, owner text NOT NULL,
                 lease_until_ms bigint NOT NULL, PRIMARY KEY (fingerprint, identity));
             INSERT INTO exona.holds VALUES ('fp', 'old-1', 1, 9999999999999, 2, 9999999999999, 9999999999999);
             INSERT INTO exona.in_flight VALUES ('fp', 'old-claim', '', 0, 'old-1', {until_ms});
             INSERT INTO exona.meta VALUES ('schema_version', 1);"
        ))
        .unwrap();
    let store = super::postgres::PgStore::new(&server.url(), "fp").unwrap();
    let e = store.durations(1).unwrap_err();
    assert!(e.contains("version 1") && e.contains("exona store init"), "{e}");
    assert_eq!(
        super::postgres::init(&server.url()).unwrap(),
        super::postgres::Initialized::Migrated { from: 1 }
    );
    let mut seen = SharedWindow::default();
    store.peek(now_ms(), &mut |w| seen = w.clone()).unwrap();
    assert_eq!((seen.others_reserved, seen.others_expected, seen.others_queued), (2, 0, 0));
    let version: i64 =
        admin.query_one("SELECT value FROM exona.meta WHERE key = 'schema_version'", &[]).unwrap().get(0);
    assert_eq!(version, super::postgres::SCHEMA_VERSION);
    assert_eq!(store.claim("old-claim", ask("", t(0), t(4))).unwrap(), Claim::Creating, "its lease holds");
    assert_eq!(store.claim("old-claim", ask("new", t(0), t(6))).unwrap(), Claim::Mine, "lapsed: taken over");
}

/// PostgreSQL only: a role that owns its schema (and may create nothing else in the database)
/// creates it with `init`; a role with USAGE and DML only (no right to create or alter
/// anything) runs the store: claims, the ledger, results, leases, pruning. A role without
/// them is told which rights to ask for.
#[test]
fn a_role_with_dml_rights_only_runs_the_store() {
    let Some(server) = pg_server::PgServer::start_or_skip() else { return };
    let mut admin = postgres::Client::connect(&server.url(), postgres::NoTls).unwrap();
    admin
        .batch_execute(
            "CREATE ROLE fleet_owner LOGIN;
             CREATE ROLE fleet_dml LOGIN;
             CREATE ROLE stranger LOGIN;
             REVOKE CREATE ON DATABASE postgres FROM PUBLIC;
             REVOKE CREATE ON SCHEMA public FROM PUBLIC;
             CREATE SCHEMA fleet_store AUTHORIZATION fleet_owner;",
        )
        .unwrap();
    let as_role =
        |role: &str| format!("postgresql://{role}:pw@127.0.0.1:{}/postgres?schema=fleet_store", server.port);
    let e = super::postgres::init(&as_role("fleet_dml")).unwrap_err();
    assert!(e.contains("permission denied"), "{e}");
    super::postgres::init(&as_role("fleet_owner")).unwrap();
    admin
        .batch_execute(
            "GRANT USAGE ON SCHEMA fleet_store TO fleet_dml;
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA fleet_store TO fleet_dml;",
        )
        .unwrap();
    let (a, b) = (
        super::postgres::PgStore::new(&as_role("fleet_dml"), "fp").unwrap(),
        super::postgres::PgStore::new(&as_role("fleet_dml"), "fp").unwrap(),
    );
    assert_eq!(a.claim("acme", ask("ta", t(0), t(10))).unwrap(), Claim::Mine);
    assert_eq!(b.claim("acme", ask("tb", t(0), t(11))).unwrap(), Claim::Creating);
    a.transact(now_ms(), &mut |w, mine| {
        w.known = true;
        w.limit = 20;
        w.remaining = 19;
        mine.reserved = 1;
    })
    .unwrap();
    a.record_result("acme", &result_at(100, "{}")).unwrap();
    assert!(b.result("acme", t(0)).unwrap().is_some());
    a.record_duration("scn_1", Duration::from_secs(40), t(1)).unwrap();
    a.renew_leases(SystemTime::now()).unwrap();
    a.prune_now().unwrap();
    // A role without the rights is told which to ask for.
    let e = super::postgres::PgStore::new(&as_role("stranger"), "fp").unwrap().durations(1).unwrap_err();
    assert!(e.contains("grant it USAGE"), "{e}");
}

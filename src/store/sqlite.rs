//! The embedded store: one SQLite file (`exona-state.sqlite3`) in the state directory, in WAL
//! mode so the processes of a host read while one writes, each write one short transaction.
//! Rows carry the fingerprint of their key and URL, so one file serves every key of the host.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};

use super::snapshot::{HolderView, InFlightView, Snapshot, WindowView};
use super::{Ask, Claim, InFlightRow, Store, StoredResult, LEASE};
use crate::engine::ledger::{Holds, Ledger, SharedWindow, OUTSTANDING_TTL, RESERVED_TTL};

/// The schema this version writes; a file of a newer one is left alone (not used). Version 3
/// added owned leases (DESIGN.md 8.1): claims and holds carry their owner's lease expiry;
/// version 4, what each process's work in sight is expected to cost (`expected`, `queued`).
const SCHEMA_VERSION: i64 = 5;
/// How long a write waits for another process's transaction before giving up (the store is
/// then bypassed: a scan never waits on the disk for long).
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);
/// Durations kept per key (the most recent).
const KEEP_DURATIONS: i64 = 500;

pub struct SqliteStore {
    conn: Mutex<Connection>,
    fingerprint: String,
    /// This store's owner id: its name in the `holds` table and on its claims, one per open
    /// store (one per process and key, as the governor is). Its leases are renewed by the
    /// heartbeat while it lives; once they lapse, what it held is free on any host.
    holder: String,
    /// When the store was last pruned (`None`: not yet in this process).
    pruned_at: Mutex<Option<std::time::Instant>>,
}

/// How often what no call can use any more is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Why opening the store failed: SQLite's word, or the file's (a newer schema).
#[derive(Debug)]
enum OpenError {
    Sqlite(rusqlite::Error),
    Refused(String),
}

impl From<rusqlite::Error> for OpenError {
    fn from(e: rusqlite::Error) -> Self {
        OpenError::Sqlite(e)
    }
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Sqlite(e) => e.fmt(f),
            OpenError::Refused(why) => f.write_str(why),
        }
    }
}

/// Whether another connection held the file (worth trying again shortly).
fn is_busy(e: &OpenError) -> bool {
    matches!(
        e,
        OpenError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis().min(i64::MAX as u128) as i64)
}

fn from_unix_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

impl SqliteStore {
    pub fn open(dir: &Path, fingerprint: &str) -> Result<SqliteStore, String> {
        crate::private_files::create_dir(dir).map_err(|e| format!("cannot create the directory ({e})"))?;
        crate::private_files::create_file(&dir.join("exona-state.sqlite3"))
            .map_err(|e| format!("cannot create exona-state.sqlite3 ({e})"))?;
        // Processes that start together open a fresh file together: switching it to WAL and
        // creating the schema can meet "database is locked" without SQLite's busy handler
        // being asked (it is not, where waiting could deadlock). Such an open is tried again
        // for as long as a busy statement would wait; any other error is final.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match Self::open_once(dir, fingerprint) {
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10 + fastrand::u64(0..20)));
                }
                result => return result.map_err(err),
            }
        }
    }

    fn open_once(dir: &Path, fingerprint: &str) -> Result<SqliteStore, OpenError> {
        let err = OpenError::from;
        let conn = Connection::open(dir.join("exona-state.sqlite3")).map_err(err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(err)?;
        if version > SCHEMA_VERSION {
            return Err(OpenError::Refused(format!(
                "its schema is version {version}, newer than this library's {SCHEMA_VERSION}"
            )));
        }
        if version == SCHEMA_VERSION {
            // Nothing to write: a process that starts while another is stopped inside a
            // transaction (holding the write lock for as long as it is stopped) opens the store
            // all the same. It ran without it, alone, and made twins and 429s (`exona-bench
            // crash-pause`, a process killed and run again beside stopped ones).
            return Ok(SqliteStore::on(conn, fingerprint));
        }
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             CREATE TABLE IF NOT EXISTS durations (
                 fingerprint TEXT NOT NULL, seconds REAL NOT NULL, observed_ms INTEGER NOT NULL,
                 scan_id TEXT);
             CREATE INDEX IF NOT EXISTS durations_by_key ON durations (fingerprint, observed_ms);
             CREATE TABLE IF NOT EXISTS results (
                 fingerprint TEXT NOT NULL, identity TEXT NOT NULL, json TEXT NOT NULL,
                 completed_ms INTEGER NOT NULL, PRIMARY KEY (fingerprint, identity));
             CREATE TABLE IF NOT EXISTS in_flight (
                 fingerprint TEXT NOT NULL, identity TEXT NOT NULL, scan_id TEXT NOT NULL,
                 since_ms INTEGER NOT NULL, owner TEXT NOT NULL DEFAULT '',
                 lease_until_ms INTEGER NOT NULL DEFAULT 0, token TEXT NOT NULL DEFAULT '',
                 sent_ms INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (fingerprint, identity));
             CREATE TABLE IF NOT EXISTS ledger (
                 fingerprint TEXT PRIMARY KEY, budget_limit INTEGER NOT NULL,
                 remaining INTEGER NOT NULL, reset_ms INTEGER NOT NULL, reset_unix INTEGER,
                 ended_unix INTEGER, window_ms INTEGER NOT NULL, informed INTEGER NOT NULL,
                 cooldown_ms INTEGER NOT NULL, last_grant_ms INTEGER);
             CREATE TABLE IF NOT EXISTS holds (
                 fingerprint TEXT NOT NULL, holder TEXT NOT NULL,
                 outstanding INTEGER NOT NULL, outstanding_until_ms INTEGER NOT NULL,
                 reserved INTEGER NOT NULL, reserved_until_ms INTEGER NOT NULL,
                 lease_until_ms INTEGER NOT NULL DEFAULT 0, expected INTEGER NOT NULL DEFAULT 0,
                 queued INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (fingerprint, holder));
             COMMIT;",
        )
        .map_err(err)?;
        if version < SCHEMA_VERSION {
            migrate(&conn, version).map_err(err)?;
        }
        conn.execute_batch(
            "CREATE UNIQUE INDEX IF NOT EXISTS durations_once ON durations (fingerprint, scan_id);",
        )
        .map_err(err)?;
        Ok(SqliteStore::on(conn, fingerprint))
    }

    fn on(conn: Connection, fingerprint: &str) -> SqliteStore {
        SqliteStore {
            conn: Mutex::new(conn),
            fingerprint: fingerprint.to_owned(),
            holder: holder_name(),
            pruned_at: Mutex::new(None),
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Prunes when it is due (by the heartbeat, never on open: see `open_once`); a failure is
    /// only logged (housekeeping: the store is not bypassed for it).
    fn prune_if_due(&self, now: SystemTime) {
        {
            let mut at = self.pruned_at.lock().unwrap_or_else(|p| p.into_inner());
            if at.is_some_and(|t| t.elapsed() < PRUNE_EVERY) {
                return;
            }
            *at = Some(std::time::Instant::now());
        }
        if let Err(e) = prune(&self.conn(), unix_ms(now)) {
            crate::log::log(crate::log::Level::Info, || format!("state store: pruning old rows failed: {e}"));
        }
    }
}

/// From an older schema to this one, in one transaction (a process of the older library then
/// finds a newer schema and runs without the store, as it would on any newer file).
fn migrate(conn: &Connection, from: i64) -> rusqlite::Result<()> {
    let has_column = |table: &str, column: &str| -> rusqlite::Result<bool> {
        let mut q =
            conn.prepare(&format!("SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = ?1"))?;
        q.query_row([column], |r| r.get::<_, i64>(0)).map(|n| n > 0)
    };
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let done = (|| {
        if from < 3 {
            // Claims and holds written before leases have none: they lapse at once.
            if !has_column("in_flight", "owner")? {
                conn.execute_batch("ALTER TABLE in_flight ADD COLUMN owner TEXT NOT NULL DEFAULT ''")?;
            }
            if !has_column("in_flight", "lease_until_ms")? {
                conn.execute_batch(
                    "ALTER TABLE in_flight ADD COLUMN lease_until_ms INTEGER NOT NULL DEFAULT 0",
                )?;
            }
            if !has_column("holds", "lease_until_ms")? {
                conn.execute_batch("ALTER TABLE holds ADD COLUMN lease_until_ms INTEGER NOT NULL DEFAULT 0")?;
            }
            if !has_column("durations", "scan_id")? {
                conn.execute_batch("ALTER TABLE durations ADD COLUMN scan_id TEXT")?;
            }
        }
        if from < 4 {
            // Holds written before say nothing of the work in sight: none is counted.
            for column in ["expected", "queued"] {
                if !has_column("holds", column)? {
                    conn.execute_batch(&format!(
                        "ALTER TABLE holds ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0"
                    ))?;
                }
            }
        }
        if from < 5 {
            // Claims written before carry no call's token (no call's, lapsing with their lease)
            // and no send time (taken over as soon as they lapse, as before).
            if !has_column("in_flight", "token")? {
                conn.execute_batch("ALTER TABLE in_flight ADD COLUMN token TEXT NOT NULL DEFAULT ''")?;
            }
            if !has_column("in_flight", "sent_ms")? {
                conn.execute_batch("ALTER TABLE in_flight ADD COLUMN sent_ms INTEGER NOT NULL DEFAULT 0")?;
            }
        }
        conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
    })();
    match done {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// What no call can use any more, dropped when a store is opened: results older than the
/// API's longest `max_age_days` (365), claims and holds whose leases lapsed an hour ago, and
/// scans recorded in flight longer than any scan runs.
fn prune(conn: &Connection, now_ms: i64) -> rusqlite::Result<()> {
    const DAY_MS: i64 = 86_400_000;
    let hour_ago = now_ms - 3_600_000;
    conn.execute("DELETE FROM results WHERE completed_ms < ?1", [now_ms - 366 * DAY_MS])?;
    conn.execute("DELETE FROM in_flight WHERE scan_id = '' AND lease_until_ms < ?1", [hour_ago])?;
    conn.execute(
        "DELETE FROM in_flight WHERE scan_id <> '' AND since_ms < ?1",
        [now_ms - super::IN_FLIGHT_TTL.as_millis() as i64],
    )?;
    conn.execute("DELETE FROM holds WHERE lease_until_ms < ?1", [hour_ago])?;
    Ok(())
}

/// A name no other open store on the host has: the process id, the time, a counter.
pub(super) fn holder_name() -> String {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}-{nanos:x}-{n}", std::process::id())
}

/// See [`super::snapshot`]: a read-only connection, plain reads.
pub fn snapshot(dir: &Path, fingerprint: &str, now: SystemTime) -> Result<Option<Snapshot>, String> {
    let path = dir.join("exona-state.sqlite3");
    if !path.exists() {
        return Ok(None);
    }
    let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(err)?;
    if version != SCHEMA_VERSION {
        return Err(format!("its schema is version {version}; this library reads version {SCHEMA_VERSION}"));
    }
    let at = |ms: i64| UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    let now_ms = unix_ms(now);
    let window = Connection::query_row(
        &conn,
        "SELECT budget_limit, remaining, reset_ms, window_ms, informed, cooldown_ms FROM ledger
         WHERE fingerprint = ?1",
        params![fingerprint],
        |r| {
            let cooldown: i64 = r.get(5)?;
            Ok(WindowView {
                limit: r.get(0)?,
                remaining: r.get(1)?,
                resets_at: at(r.get(2)?),
                window: Duration::from_millis(r.get::<_, i64>(3)?.max(1) as u64),
                informed: r.get(4)?,
                cooldown_until: (cooldown > now_ms).then(|| at(cooldown)),
            })
        },
    )
    .optional()
    .map_err(err)?;
    let mut q = conn
        .prepare(
            "SELECT holder,
                    CASE WHEN outstanding_until_ms > ?2 THEN outstanding ELSE 0 END,
                    CASE WHEN reserved_until_ms > ?2 THEN reserved ELSE 0 END, lease_until_ms,
                    CASE WHEN reserved_until_ms > ?2 THEN expected ELSE 0 END,
                    CASE WHEN reserved_until_ms > ?2 THEN queued ELSE 0 END
             FROM holds WHERE fingerprint = ?1 AND lease_until_ms > ?2 ORDER BY holder",
        )
        .map_err(err)?;
    let holders = q
        .query_map(params![fingerprint, now_ms], |r| {
            let owner: String = r.get(0)?;
            Ok(HolderView {
                pid: super::snapshot::pid_of(&owner),
                owner,
                outstanding: r.get(1)?,
                reserved: r.get(2)?,
                expected: r.get(4)?,
                queued: r.get(5)?,
                lease_until: at(r.get(3)?),
            })
        })
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let mut q = conn
        .prepare(
            "SELECT identity, scan_id, since_ms, owner, lease_until_ms FROM in_flight
             WHERE fingerprint = ?1 AND (scan_id <> '' OR lease_until_ms > ?2) ORDER BY since_ms",
        )
        .map_err(err)?;
    let in_flight = q
        .query_map(params![fingerprint, now_ms], |r| {
            let scan_id: String = r.get(1)?;
            let owner: String = r.get(3)?;
            let lease: i64 = r.get(4)?;
            let claim = scan_id.is_empty();
            Ok(InFlightView {
                identity: r.get(0)?,
                scan_id: (!claim).then_some(scan_id),
                since: at(r.get(2)?),
                owner: (claim && !owner.is_empty()).then_some(owner),
                lease_until: claim.then(|| at(lease)),
            })
        })
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let mut q = conn
        .prepare("SELECT seconds FROM durations WHERE fingerprint = ?1 ORDER BY observed_ms DESC")
        .map_err(err)?;
    let durations = q
        .query_map(params![fingerprint], |r| r.get::<_, f64>(0))
        .map_err(err)?
        .filter_map(|s| s.ok().and_then(|s| Duration::try_from_secs_f64(s).ok()))
        .collect();
    let results: i64 = conn
        .query_row("SELECT COUNT(*) FROM results WHERE fingerprint = ?1", params![fingerprint], |r| r.get(0))
        .map_err(err)?;
    Ok(Some(Snapshot { window, holders, in_flight, durations, results: results.max(0) as usize }))
}

/// Who creates a scan of `identity` now, for the call `token`: the row, decided by the rule
/// every backend shares ([`crate::store::who_creates`]).
fn who_creates(
    conn: &Connection,
    fingerprint: &str,
    identity: &str,
    ask: Ask<'_>,
) -> rusqlite::Result<Option<Claim>> {
    let row = conn
        .query_row(
            "SELECT scan_id, since_ms, lease_until_ms, token, sent_ms FROM in_flight
             WHERE fingerprint = ?1 AND identity = ?2",
            params![fingerprint, identity],
            |r| {
                Ok(InFlightRow {
                    scan_id: r.get(0)?,
                    since_ms: r.get(1)?,
                    lease_until_ms: r.get(2)?,
                    token: r.get(3)?,
                    sent_ms: r.get(4)?,
                })
            },
        )
        .optional()?;
    Ok(crate::store::who_creates(row.as_ref(), ask.token, unix_ms(ask.since), unix_ms(ask.at), ask.settle))
}

impl Ledger for SqliteStore {
    fn peek(&self, wall_ms: i64, read: &mut dyn FnMut(&SharedWindow)) -> Result<(), String> {
        // A plain read (WAL: it neither waits for nor blocks a writer).
        let window =
            Self::read_window(&self.conn(), &self.fingerprint, &self.holder, wall_ms).map_err(err)?;
        read(&window);
        Ok(())
    }

    fn created_between(&self, from_wall_ms: i64, to_wall_ms: i64) -> Result<u32, String> {
        // From the durations kept (the most recent few hundred scans of the key): a scan was
        // created its duration before it was seen to end. A plain read, like `peek`.
        let conn = self.conn();
        let mut q = conn
            .prepare_cached(
                "SELECT count(*) FROM durations WHERE fingerprint = ?1 AND observed_ms >= ?2
                   AND observed_ms - CAST(seconds * 1000 AS INTEGER) >= ?2
                   AND observed_ms - CAST(seconds * 1000 AS INTEGER) < ?3",
            )
            .map_err(err)?;
        let n: i64 =
            q.query_row(params![self.fingerprint, from_wall_ms, to_wall_ms], |r| r.get(0)).map_err(err)?;
        Ok(n.clamp(0, i64::from(u32::MAX)) as u32)
    }

    fn transact(
        &self,
        wall_ms: i64,
        decide: &mut dyn FnMut(&mut SharedWindow, &mut Holds),
    ) -> Result<(), String> {
        let mut conn = self.conn();
        // IMMEDIATE: the write lock is taken before the read, so no other process decides on
        // the same window in between (two processes never take the last request together).
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        // A process that has died holds nothing once its lease lapses (it renews the lease on
        // a heartbeat while it lives): on any host, in any container, whatever became of its
        // process id. Its holds go, so a command killed and run again waits a lease at most.
        tx.prepare_cached(
            "DELETE FROM holds WHERE fingerprint = ?1 AND holder <> ?2 AND lease_until_ms <= ?3",
        )
        .map_err(err)?
        .execute(params![self.fingerprint, self.holder, wall_ms])
        .map_err(err)?;
        let mut window = Self::read_window(&tx, &self.fingerprint, &self.holder, wall_ms).map_err(err)?;
        let mut mine = Holds::default();
        decide(&mut window, &mut mine);
        let w = &window;
        tx.prepare_cached(
            "INSERT OR REPLACE INTO ledger (fingerprint, budget_limit, remaining, reset_ms, reset_unix,
                 ended_unix, window_ms, informed, cooldown_ms, last_grant_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(err)?
        .execute(params![
            self.fingerprint,
            w.limit,
            w.remaining,
            w.reset_wall_ms,
            w.reset_unix.map(|v| v.min(i64::MAX as u64) as i64),
            w.ended_unix.map(|v| v.min(i64::MAX as u64) as i64),
            w.window_ms.min(i64::MAX as u64) as i64,
            w.informed,
            w.cooldown_wall_ms,
            w.last_grant_wall_ms,
        ])
        .map_err(err)?;
        if mine == Holds::default() {
            tx.prepare_cached("DELETE FROM holds WHERE fingerprint = ?1 AND holder = ?2")
                .map_err(err)?
                .execute(params![self.fingerprint, self.holder])
                .map_err(err)?;
        } else {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO holds (fingerprint, holder, outstanding, outstanding_until_ms,
                     reserved, reserved_until_ms, lease_until_ms, expected, queued)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(err)?
            .execute(params![
                self.fingerprint,
                self.holder,
                mine.outstanding,
                wall_ms + OUTSTANDING_TTL.as_millis() as i64,
                mine.reserved,
                wall_ms + RESERVED_TTL.as_millis() as i64,
                wall_ms + LEASE.as_millis() as i64,
                mine.expected,
                mine.queued,
            ])
            .map_err(err)?;
        }
        crate::crash::point("store_mid_transaction");
        tx.commit().map_err(err)
    }
}

impl SqliteStore {
    /// The key's window as the ledger holds it, with the other owners' fresh holds.
    fn read_window(
        conn: &Connection,
        fingerprint: &str,
        holder: &str,
        wall_ms: i64,
    ) -> rusqlite::Result<SharedWindow> {
        let mut window = conn
            .prepare_cached(
                "SELECT budget_limit, remaining, reset_ms, reset_unix, ended_unix, window_ms,
                        informed, cooldown_ms, last_grant_ms FROM ledger WHERE fingerprint = ?1",
            )?
            .query_row(params![fingerprint], |r| {
                Ok(SharedWindow {
                    known: true,
                    limit: r.get(0)?,
                    remaining: r.get(1)?,
                    reset_wall_ms: r.get(2)?,
                    reset_unix: r.get::<_, Option<i64>>(3)?.map(|v| v.max(0) as u64),
                    ended_unix: r.get::<_, Option<i64>>(4)?.map(|v| v.max(0) as u64),
                    window_ms: r.get::<_, i64>(5)?.max(1) as u64,
                    informed: r.get(6)?,
                    cooldown_wall_ms: r.get(7)?,
                    last_grant_wall_ms: r.get(8)?,
                    others_outstanding: 0,
                    others_reserved: 0,
                    others_expected: 0,
                    others_queued: 0,
                })
            })
            .optional()?
            .unwrap_or_default();
        // The work in sight is as current as the promises: it lapses with them.
        let sums: [i64; 4] = conn
            .prepare_cached(
                "SELECT COALESCE(SUM(CASE WHEN outstanding_until_ms > ?3 THEN outstanding ELSE 0 END), 0),
                        COALESCE(SUM(CASE WHEN reserved_until_ms > ?3 THEN reserved ELSE 0 END), 0),
                        COALESCE(SUM(CASE WHEN reserved_until_ms > ?3 THEN expected ELSE 0 END), 0),
                        COALESCE(SUM(CASE WHEN reserved_until_ms > ?3 THEN queued ELSE 0 END), 0)
                 FROM holds WHERE fingerprint = ?1 AND holder <> ?2 AND lease_until_ms > ?3",
            )?
            .query_row(params![fingerprint, holder, wall_ms], |r| {
                Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?])
            })?;
        let [outstanding, reserved, expected, queued] = sums.map(|v| v.clamp(0, u32::MAX as i64) as u32);
        (window.others_outstanding, window.others_reserved) = (outstanding, reserved);
        (window.others_expected, window.others_queued) = (expected, queued);
        Ok(window)
    }
}

impl Store for SqliteStore {
    fn durations(&self, limit: usize) -> Result<Vec<Duration>, String> {
        let conn = self.conn();
        let mut q = conn
            .prepare_cached(
                "SELECT seconds FROM durations WHERE fingerprint = ?1 ORDER BY observed_ms DESC LIMIT ?2",
            )
            .map_err(err)?;
        let rows =
            q.query_map(params![self.fingerprint, limit as i64], |r| r.get::<_, f64>(0)).map_err(err)?;
        rows.map(|r| r.map_err(err).map(|s| Duration::from_secs_f64(s.max(0.0)))).collect()
    }

    fn recent_durations(&self, limit: usize) -> Result<Vec<(String, Duration)>, String> {
        let conn = self.conn();
        let mut q = conn
            .prepare_cached(
                "SELECT scan_id, seconds FROM durations WHERE fingerprint = ?1 AND scan_id IS NOT NULL
                 ORDER BY observed_ms DESC LIMIT ?2",
            )
            .map_err(err)?;
        let rows = q
            .query_map(params![self.fingerprint, limit as i64], |r| {
                Ok((r.get::<_, String>(0)?, Duration::from_secs_f64(r.get::<_, f64>(1)?.max(0.0))))
            })
            .map_err(err)?;
        rows.map(|r| r.map_err(err)).collect()
    }

    fn record_duration(&self, scan_id: &str, duration: Duration, at: SystemTime) -> Result<(), String> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        // Once per scan: the processes that joined one scan each see it end, and a scan
        // counted three times would weigh three times in every process's quantiles.
        tx.execute(
            "INSERT OR IGNORE INTO durations (fingerprint, seconds, observed_ms, scan_id) VALUES (?1, ?2, ?3, ?4)",
            params![self.fingerprint, duration.as_secs_f64(), unix_ms(at), scan_id],
        )
        .map_err(err)?;
        // Keep the most recent few hundred: the schedule wants today's durations, not history.
        tx.execute(
            "DELETE FROM durations WHERE fingerprint = ?1 AND rowid NOT IN (
                 SELECT rowid FROM durations WHERE fingerprint = ?1 ORDER BY observed_ms DESC LIMIT ?2)",
            params![self.fingerprint, KEEP_DURATIONS],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    fn result(&self, identity: &str, since: SystemTime) -> Result<Option<StoredResult>, String> {
        self.conn()
            .query_row(
                "SELECT json, completed_ms FROM results
                 WHERE fingerprint = ?1 AND identity = ?2 AND completed_ms >= ?3",
                params![self.fingerprint, identity, unix_ms(since)],
                |r| Ok(StoredResult { json: r.get(0)?, completed_at: from_unix_ms(r.get(1)?) }),
            )
            .optional()
            .map_err(err)
    }

    fn record_result(&self, identity: &str, result: &StoredResult) -> Result<(), String> {
        self.conn()
            .execute(
                "INSERT INTO results (fingerprint, identity, json, completed_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (fingerprint, identity) DO UPDATE SET json = excluded.json,
                     completed_ms = excluded.completed_ms WHERE excluded.completed_ms >= results.completed_ms",
                params![self.fingerprint, identity, result.json, unix_ms(result.completed_at)],
            )
            .map(|_| ())
            .map_err(err)
    }

    fn claim(&self, identity: &str, ask: Ask<'_>) -> Result<Claim, String> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        let claim = match who_creates(&tx, &self.fingerprint, identity, ask).map_err(err)? {
            Some(Claim::Mine) | None => {
                // Written, or this call's own claim leased again from now: taken (or confirmed)
                // right before the create is sent, so it is a create on the wire from now.
                let now = unix_ms(ask.at);
                tx.execute(
                    "INSERT OR REPLACE INTO in_flight
                         (fingerprint, identity, scan_id, since_ms, owner, lease_until_ms, token, sent_ms)
                     VALUES (?1, ?2, '', ?3, ?4, ?5, ?6, ?3)",
                    params![
                        self.fingerprint,
                        identity,
                        now,
                        self.holder,
                        now + LEASE.as_millis() as i64,
                        ask.token
                    ],
                )
                .map_err(err)?;
                Claim::Mine
            }
            Some(found) => found,
        };
        tx.commit().map_err(err)?;
        Ok(claim)
    }

    fn peek_claim(&self, identity: &str, ask: Ask<'_>) -> Result<Option<Claim>, String> {
        who_creates(&self.conn(), &self.fingerprint, identity, ask).map_err(err)
    }

    fn record_in_flight(
        &self,
        identity: &str,
        scan_id: &str,
        at: SystemTime,
    ) -> Result<Option<String>, String> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        let before: Option<String> = tx
            .query_row(
                "SELECT scan_id FROM in_flight WHERE fingerprint = ?1 AND identity = ?2",
                params![self.fingerprint, identity],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        tx.execute(
            "INSERT OR REPLACE INTO in_flight (fingerprint, identity, scan_id, since_ms, owner, lease_until_ms, token)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, '')",
            params![self.fingerprint, identity, scan_id, unix_ms(at), self.holder, unix_ms(at) + LEASE.as_millis() as i64],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(crate::store::twin_of(before, scan_id))
    }

    fn unwatch_in_flight(&self, identity: &str, scan_id: &str) -> Result<(), String> {
        self.conn()
            .execute(
                "UPDATE in_flight SET owner = '', lease_until_ms = 0
                 WHERE fingerprint = ?1 AND identity = ?2 AND scan_id = ?3 AND scan_id <> '' AND owner = ?4",
                params![self.fingerprint, identity, scan_id, self.holder],
            )
            .map(|_| ())
            .map_err(err)
    }

    fn watched(&self, identity: &str, scan_id: &str, at: SystemTime) -> Result<bool, String> {
        self.conn()
            .query_row(
                "SELECT COUNT(*) FROM in_flight WHERE fingerprint = ?1 AND identity = ?2 AND scan_id = ?3
                     AND scan_id <> '' AND owner <> '' AND lease_until_ms > ?4",
                params![self.fingerprint, identity, scan_id, unix_ms(at)],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(err)
    }

    fn renew_leases(&self, at: SystemTime) -> Result<(), String> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        let until = unix_ms(at) + LEASE.as_millis() as i64;
        tx.execute(
            "UPDATE in_flight SET lease_until_ms = ?3 WHERE fingerprint = ?1 AND owner = ?2",
            params![self.fingerprint, self.holder, until],
        )
        .map_err(err)?;
        tx.execute(
            "UPDATE holds SET lease_until_ms = ?3 WHERE fingerprint = ?1 AND holder = ?2",
            params![self.fingerprint, self.holder, until],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        drop(conn);
        // The heartbeat's thread does the housekeeping, so that no call waits for it.
        self.prune_if_due(at);
        Ok(())
    }

    fn keep_ambiguous_claim(&self, identity: &str, token: &str, until: SystemTime) -> Result<(), String> {
        // No owner: the heartbeat no longer renews it; it holds until `until`, then a waiter
        // creates with max_age_days (a twin that completed meanwhile is reused).
        self.conn()
            .execute(
                "UPDATE in_flight SET owner = '', lease_until_ms = ?4
                 WHERE fingerprint = ?1 AND identity = ?2 AND scan_id = '' AND token = ?3",
                params![self.fingerprint, identity, token, unix_ms(until)],
            )
            .map(|_| ())
            .map_err(err)
    }

    fn clear_in_flight(&self, identity: &str, scan_id: &str, token: &str) -> Result<(), String> {
        // A claim (no scan id) is cleared only by the call that holds it: another call (of
        // this process, or of another once this one's lease lapsed) may hold it now.
        self.conn()
            .execute(
                "DELETE FROM in_flight WHERE fingerprint = ?1 AND identity = ?2 AND scan_id = ?3
                     AND (?3 <> '' OR (token = ?4 AND ?4 <> ''))",
                params![self.fingerprint, identity, scan_id, token],
            )
            .map(|_| ())
            .map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A claim's ask with no settling time (a lapsed claim is free as soon as its lease lapses).
    fn ask(token: &str, since: std::time::SystemTime, at: std::time::SystemTime) -> Ask<'_> {
        Ask { token, since, at, settle: std::time::Duration::ZERO }
    }

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("exona-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// Processes that start together open a fresh store together: none may be turned away
    /// with "database is locked" (that process then ran without the store, and two processes
    /// created the same six scans in exona-bench store).
    #[test]
    fn handles_opening_a_fresh_store_at_once_all_get_it() {
        for round in 0..10 {
            let d = dir(&format!("race{round}"));
            let refused: Vec<String> = std::thread::scope(|s| {
                let opening: Vec<_> = (0..8).map(|_| s.spawn(|| SqliteStore::open(&d, "fp").err())).collect();
                opening.into_iter().filter_map(|h| h.join().unwrap()).collect()
            });
            assert!(refused.is_empty(), "round {round}: {refused:?}");
            let _ = std::fs::remove_dir_all(&d);
        }
    }

    #[test]
    fn what_one_handle_writes_another_reads() {
        let d = dir("share");
        let a = SqliteStore::open(&d, "fp1").unwrap();
        let b = SqliteStore::open(&d, "fp1").unwrap();
        let other_key = SqliteStore::open(&d, "fp2").unwrap();
        a.record_duration("scn_a", Duration::from_secs(4), SystemTime::now()).unwrap();
        assert_eq!(b.durations(10).unwrap(), vec![Duration::from_secs(4)]);
        assert!(other_key.durations(10).unwrap().is_empty(), "keys do not share rows");
        let r = StoredResult { json: "{\"id\":\"scn_1\"}".into(), completed_at: SystemTime::now() };
        a.record_result("acme|citations=0", &r).unwrap();
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        assert_eq!(b.result("acme|citations=0", hour_ago).unwrap().map(|r| r.json), Some(r.json.clone()));
        assert!(b.result("acme|citations=0", SystemTime::now() + Duration::from_secs(60)).unwrap().is_none());
        let now = SystemTime::now();
        a.record_in_flight("x", "scn_2", now).unwrap();
        assert_eq!(
            b.peek_claim("x", ask("tb", hour_ago, now)).unwrap(),
            Some(Claim::Running("scn_2".into()))
        );
        b.clear_in_flight("x", "scn_2", "tb").unwrap();
        assert!(a.peek_claim("x", ask("ta", hour_ago, now)).unwrap().is_none());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn only_the_most_recent_durations_are_kept() {
        let d = dir("keep");
        let s = SqliteStore::open(&d, "fp").unwrap();
        let t0 = SystemTime::now();
        for i in 0..(KEEP_DURATIONS + 20) {
            s.record_duration(
                &format!("scn_{i}"),
                Duration::from_secs(i as u64),
                t0 + Duration::from_millis(i as u64),
            )
            .unwrap();
        }
        let kept = s.durations(10_000).unwrap();
        assert_eq!(kept.len(), KEEP_DURATIONS as usize);
        assert_eq!(kept[0], Duration::from_secs((KEEP_DURATIONS + 19) as u64), "newest first");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn corrupt_newer_and_unwritable_stores_are_refused_with_a_reason() {
        let d = dir("bad");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("exona-state.sqlite3"), b"this is not a database, just some bytes....")
            .unwrap();
        assert!(SqliteStore::open(&d, "fp").is_err(), "a corrupt file is refused");
        std::fs::remove_file(d.join("exona-state.sqlite3")).unwrap();
        {
            let c = Connection::open(d.join("exona-state.sqlite3")).unwrap();
            c.pragma_update(None, "user_version", 99).unwrap();
        }
        let e = SqliteStore::open(&d, "fp").err().unwrap();
        assert!(e.contains("newer"), "{e}");
        let file = d.join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        assert!(SqliteStore::open(&file.join("sub"), "fp").is_err(), "a path that cannot be a directory");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_ledger_shares_a_window_and_lets_a_silent_process_holds_lapse() {
        let d = dir("holds");
        let (a, b) = (SqliteStore::open(&d, "fp").unwrap(), SqliteStore::open(&d, "fp").unwrap());
        let t = 1_700_000_000_000;
        a.transact(t, &mut |w, mine| {
            assert!(!w.known, "no window before the first write");
            (w.limit, w.remaining, w.window_ms, w.reset_wall_ms) = (10, 7, 60_000, t + 60_000);
            *mine = Holds { outstanding: 3, reserved: 4, ..Holds::default() };
        })
        .unwrap();
        let seen_by_b = |at: i64| {
            let mut seen = None;
            b.transact(at, &mut |w, _| seen = Some(w.clone())).unwrap();
            seen.unwrap()
        };
        let w = seen_by_b(t + 1_000);
        assert!(w.known);
        assert_eq!((w.limit, w.remaining, w.reset_wall_ms), (10, 7, t + 60_000));
        assert_eq!((w.others_outstanding, w.others_reserved), (3, 4));
        // a lives: its heartbeat renews its lease, and its holds stand past the first lease.
        let lease = LEASE.as_millis() as i64;
        a.renew_leases(from_unix_ms(t + lease - 1_000)).unwrap();
        let w = seen_by_b(t + lease + 1_000);
        assert_eq!((w.others_outstanding, w.others_reserved), (3, 4));
        // a stops renewing (killed): everything it held is free one lease after its last beat,
        // not when its grants' 2 minutes or its reservations' 15 minutes end.
        let w = seen_by_b(t + 2 * lease);
        assert_eq!((w.others_outstanding, w.others_reserved), (0, 0));
        assert!(2 * lease < OUTSTANDING_TTL.as_millis() as i64 && lease < RESERVED_TTL.as_millis() as i64);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn one_claimant_creates_and_the_others_learn_its_scan_id() {
        let d = dir("claim");
        let (a, b) = (SqliteStore::open(&d, "fp").unwrap(), SqliteStore::open(&d, "fp").unwrap());
        let now = SystemTime::now();
        let long_ago = now - Duration::from_secs(3600);
        assert_eq!(a.peek_claim("acme", ask("ta", long_ago, now)).unwrap(), None, "free");
        assert_eq!(a.claim("acme", ask("ta", long_ago, now)).unwrap(), Claim::Mine);
        assert_eq!(
            a.peek_claim("acme", ask("ta", long_ago, now)).unwrap(),
            Some(Claim::Mine),
            "its own call's"
        );
        assert_eq!(
            a.peek_claim("acme", ask("ta2", long_ago, now)).unwrap(),
            Some(Claim::Creating),
            "a sibling call of the same process waits too"
        );
        assert_eq!(b.claim("acme", ask("tb", long_ago, now)).unwrap(), Claim::Creating);
        assert_eq!(
            b.peek_claim("acme", ask("tb", long_ago, now)).unwrap(),
            Some(Claim::Creating),
            "a claim is not a scan"
        );
        a.record_in_flight("acme", "scn_1", now).unwrap();
        assert_eq!(b.claim("acme", ask("tb", long_ago, now)).unwrap(), Claim::Running("scn_1".into()));
        a.clear_in_flight("acme", "scn_1", "ta").unwrap();
        assert_eq!(b.claim("acme", ask("tb", long_ago, now)).unwrap(), Claim::Mine);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_claim_holds_while_its_owner_renews_its_lease_and_no_longer() {
        // The outside check: a batch killed with kill -9 left 24 claims, and the next run
        // sent nothing for 90 s with budget free (claims held 15 minutes).
        let d = dir("lease");
        let (a, b) = (SqliteStore::open(&d, "fp").unwrap(), SqliteStore::open(&d, "fp").unwrap());
        let t0 = SystemTime::now();
        let long_ago = t0 - Duration::from_secs(3600);
        assert_eq!(a.claim("acme", ask("ta", long_ago, t0)).unwrap(), Claim::Mine);
        assert_eq!(b.claim("acme", ask("tb", long_ago, t0 + LEASE / 2)).unwrap(), Claim::Creating);
        a.renew_leases(t0 + LEASE / 2).unwrap();
        assert_eq!(b.claim("acme", ask("tb", long_ago, t0 + LEASE)).unwrap(), Claim::Creating, "renewed");
        // a dies: one lease after its last beat, b takes the claim over.
        assert_eq!(
            b.peek_claim("acme", ask("tb", long_ago, t0 + LEASE / 2 + LEASE)).unwrap(),
            None,
            "lapsed"
        );
        assert_eq!(b.claim("acme", ask("tb", long_ago, t0 + LEASE / 2 + LEASE)).unwrap(), Claim::Mine);
        // a, come back, neither clears b's claim nor sees it as its own.
        a.clear_in_flight("acme", "", "ta").unwrap();
        assert_eq!(a.claim("acme", ask("ta", long_ago, t0 + LEASE / 2 + LEASE)).unwrap(), Claim::Creating);
        // b's create was ambiguous: the claim is kept for the reconciliation, unrenewed.
        let until = t0 + LEASE * 10;
        b.keep_ambiguous_claim("acme", "tb", until).unwrap();
        b.renew_leases(until - Duration::from_secs(1)).unwrap();
        assert_eq!(
            a.claim("acme", ask("ta", long_ago, until - Duration::from_secs(1))).unwrap(),
            Claim::Creating
        );
        assert_eq!(
            a.claim("acme", ask("ta", long_ago, until + Duration::from_secs(1))).unwrap(),
            Claim::Mine
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_status_read_neither_waits_for_nor_takes_the_write_lock() {
        let d = dir("peek");
        let a = SqliteStore::open(&d, "fp").unwrap();
        let t = 1_700_000_000_000;
        a.transact(t, &mut |w, _| {
            (w.limit, w.remaining, w.window_ms, w.reset_wall_ms) = (10, 6, 60_000, t + 60_000)
        })
        .unwrap();
        // Another process holds the write lock (a long decision, a stuck disk).
        let other = Connection::open(d.join("exona-state.sqlite3")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE; UPDATE ledger SET remaining = 0;").unwrap();
        let started = std::time::Instant::now();
        let mut seen = None;
        a.peek(t + 1, &mut |w| seen = Some((w.limit, w.remaining))).unwrap();
        assert_eq!(seen, Some((10, 6)), "the committed window, read beside the writer");
        assert!(started.elapsed() < BUSY_TIMEOUT, "it did not wait for the lock");
        other.execute_batch("ROLLBACK").unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Issue 32: a process killed and run again beside one stopped inside a transaction (it
    /// holds the write lock for as long as it is stopped) found "database is locked" on open,
    /// ran without the store, and made twins and 429s. An open of a current store writes
    /// nothing.
    #[test]
    fn a_store_opens_while_another_process_holds_its_write_lock() {
        let d = dir("held-open");
        drop(SqliteStore::open(&d, "fp").unwrap());
        let other = Connection::open(d.join("exona-state.sqlite3")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let opened = SqliteStore::open(&d, "fp");
        other.execute_batch("ROLLBACK").unwrap();
        assert!(opened.is_ok(), "{:?}", opened.err());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_duration_counts_once_per_scan_and_what_no_call_can_use_is_pruned() {
        let d = dir("once");
        let (a, b) = (SqliteStore::open(&d, "fp").unwrap(), SqliteStore::open(&d, "fp").unwrap());
        let now = SystemTime::now();
        // Three processes joined one scan and each saw it end.
        for s in [&a, &b, &a] {
            s.record_duration("scn_joined", Duration::from_secs(7), now).unwrap();
        }
        b.record_duration("scn_other", Duration::from_secs(9), now).unwrap();
        assert_eq!(a.durations(10).unwrap().len(), 2);
        // A result older than the API's longest max_age_days, and a claim long lapsed.
        let old = now - Duration::from_secs(400 * 86_400);
        a.record_result("old", &StoredResult { json: "{}".into(), completed_at: old }).unwrap();
        a.record_result("new", &StoredResult { json: "{}".into(), completed_at: now }).unwrap();
        a.claim("gone", ask("ta", old, old)).unwrap();
        drop((a, b));
        let c = SqliteStore::open(&d, "fp").unwrap();
        c.renew_leases(now).unwrap(); // the heartbeat prunes
        let count = |table: &str| -> i64 {
            c.conn().query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).unwrap()
        };
        assert_eq!(count("results"), 1, "the year-old result is gone, the new one kept");
        assert_eq!(count("in_flight"), 0, "the lapsed claim is gone");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_store_of_schema_2_is_migrated_and_its_old_claims_lapse() {
        let d = dir("migrate");
        std::fs::create_dir_all(&d).unwrap();
        {
            let c = Connection::open(d.join("exona-state.sqlite3")).unwrap();
            c.execute_batch(
                "CREATE TABLE in_flight (fingerprint TEXT NOT NULL, identity TEXT NOT NULL,
                     scan_id TEXT NOT NULL, since_ms INTEGER NOT NULL, PRIMARY KEY (fingerprint, identity));
                 CREATE TABLE holds (fingerprint TEXT NOT NULL, holder TEXT NOT NULL,
                     outstanding INTEGER NOT NULL, outstanding_until_ms INTEGER NOT NULL,
                     reserved INTEGER NOT NULL, reserved_until_ms INTEGER NOT NULL,
                     PRIMARY KEY (fingerprint, holder));
                 INSERT INTO in_flight VALUES ('fp', 'acme', '', 1);
                 PRAGMA user_version = 2;",
            )
            .unwrap();
        }
        let s = SqliteStore::open(&d, "fp").unwrap();
        let now = SystemTime::now();
        assert_eq!(s.claim("acme", ask("ts", now - Duration::from_secs(60), now)).unwrap(), Claim::Mine);
        let version: i64 = s.conn().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        // Holds carry the work in sight since version 4.
        s.transact(unix_ms(now), &mut |w, mine| {
            w.known = true;
            *mine = Holds { outstanding: 1, reserved: 2, expected: 3, queued: 4 };
        })
        .unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }
}

//! The fleet store: PostgreSQL shared by the hosts of a fleet on one key (DESIGN.md 8.4), the
//! same calls as the SQLite file (src/store/sqlite.rs) over one connection per client.
//!
//! - **Time is the database's.** Hosts' clocks disagree; leases, holds and the window's reset
//!   compared across hosts must not. Each connection measures how far the database's clock is
//!   from this host's (at connect and in every ledger transaction), and every time the store
//!   writes or compares is translated to the database's clock at this boundary, so the engine
//!   keeps its own wall clock and a host skewed by seconds still never over-spends a window.
//! - **One transaction per decision**: the ledger's read-modify-write runs under a transaction
//!   advisory lock on the key (so a window row that does not exist yet is serialized too), and
//!   a claim under one on the key and company.
//! - **Failure costs nothing, and seconds at most**: the connection is made lazily; every wait
//!   on it is bounded on this side (`conn.rs`), and one that did not answer is dropped; the
//!   store's guard (`Guarded`) bypasses it and tries again later, when it reconnects.
//! - **As DBAs run PostgreSQL** (DESIGN.md 9.3): libpq's settings (`settings.rs`), TLS with
//!   libpq's `sslmode` meanings (`tls.rs`), through PgBouncer in transaction pooling (no
//!   startup options, unnamed statements), and a schema created apart from its use
//!   (`schema.rs`: `exona store init`), so that a role with DML rights only runs a fleet.
//! - **A schema of its own** (`exona` unless the URL says `?schema=NAME`), versioned in
//!   `meta`; an older one is named with the command that migrates it, a newer one refused.

mod conn;
mod schema;
pub mod settings;
mod tls;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use conn::{params, Conn};
pub use schema::{Initialized, SCHEMA_VERSION};
use settings::Settings;

use super::snapshot::{HolderView, InFlightView, Snapshot, WindowView};
use super::{Ask, Claim, InFlightRow, Store, StoredResult, LEASE};
use crate::awake::Budget;
use crate::engine::ledger::{Holds, Ledger, SharedWindow, OUTSTANDING_TTL, RESERVED_TTL};

/// Durations kept per key (the most recent), as in the SQLite store.
const KEEP_DURATIONS: i64 = 500;
/// How often what no call can use any more is pruned (by the heartbeat, never on connect).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

pub struct PgStore {
    settings: Settings,
    fingerprint: String,
    holder: String,
    /// The connection, taken out by the call that uses it (so that no lock is held while the
    /// database is waited on) and put back after; `busy` while it is out.
    slot: Mutex<Slot>,
    returned: std::sync::Condvar,
    /// The database's clock less this host's, in milliseconds (measured on each connection
    /// and ledger transaction; a test's skew of the host's clock is in both).
    offset_ms: AtomicI64,
    /// When the store was last pruned (`None`: not yet in this process).
    pruned_at: Mutex<Option<Instant>>,
}

struct Slot {
    busy: bool,
    conn: Option<Conn>,
}

/// How long a call waits for the connection while another call of this client uses it: past
/// that, the database is slow (the other call waits on it), and this call goes on without it.
pub const BUSY_BOUND: Duration = Duration::from_secs(2);

/// A URL as it may be shown: its password, and every secret parameter, replaced by `***`.
pub fn redact(url: &str) -> String {
    settings::redact(url)
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis().min(i64::MAX as u128) as i64)
}

/// This host's clock (a test's skew included: [`crate::engine::clock::wall_now`]).
fn local_now_ms() -> i64 {
    unix_ms(crate::engine::clock::wall_now())
}

/// Creates or migrates the store's schema in the database `url` names (`exona store init`).
pub fn init(url: &str) -> Result<Initialized, String> {
    let settings = settings::parse(url, &settings::Env::process())?;
    let mut conn = Conn::open(&settings, None)?;
    schema::init(&mut conn, &settings)
}

impl PgStore {
    /// A store on the database `url` names, for the key `fingerprint` stands for. Only the URL
    /// is checked here: the database is reached on first use (one that is down at start is
    /// bypassed, then attached when it answers).
    pub fn new(url: &str, fingerprint: &str) -> Result<PgStore, String> {
        let settings = settings::parse(url, &settings::Env::process())?;
        Ok(PgStore {
            settings,
            fingerprint: fingerprint.to_owned(),
            holder: super::sqlite::holder_name(),
            slot: Mutex::new(Slot { busy: false, conn: None }),
            returned: std::sync::Condvar::new(),
            offset_ms: AtomicI64::new(0),
            pruned_at: Mutex::new(None),
        })
    }

    /// The database as messages name it (no secret).
    pub fn shown(&self) -> &str {
        &self.settings.shown
    }

    /// A connection to a schema of this version: no DDL is run here (DESIGN.md 9.3).
    /// The call's bound, `call`, is what connecting leaves of it.
    fn connect(&self, call: Budget) -> Result<Conn, String> {
        let mut conn = Conn::open(&self.settings, Some(call))?;
        schema::check(&mut conn, &self.settings)?;
        self.measure_offset(&mut conn)?;
        Ok(conn)
    }

    /// What no call can use any more (as the SQLite store drops on opening): results older
    /// than the API's longest `max_age_days`, claims and holds whose leases lapsed an hour ago,
    /// scans recorded in flight longer than any scan runs. Each by an index.
    fn prune(&self, c: &mut Conn) -> Result<(), String> {
        const DAY_MS: i64 = 86_400_000;
        let now = local_now_ms() + self.offset_ms.load(Ordering::Relaxed);
        let hour_ago = now - 3_600_000;
        let in_flight_ttl = super::IN_FLIGHT_TTL.as_millis() as i64;
        c.transaction(|c| {
            c.execute(
                &format!("DELETE FROM {} WHERE completed_ms < $1", self.t("results")),
                params![local_now_ms() - 366 * DAY_MS],
            )?;
            c.execute(
                &format!("DELETE FROM {} WHERE lease_until_ms < $1 AND scan_id = ''", self.t("in_flight")),
                params![hour_ago],
            )?;
            c.execute(
                &format!("DELETE FROM {} WHERE scan_id <> '' AND since_ms < $1", self.t("in_flight")),
                params![now - in_flight_ttl],
            )?;
            c.execute(
                &format!("DELETE FROM {} WHERE lease_until_ms < $1", self.t("holds")),
                params![hour_ago],
            )?;
            Ok(())
        })
        .map_err(String::from)
    }

    /// Prunes now (the tests' way to check a DML-only role may).
    #[cfg(test)]
    pub fn prune_now(&self) -> Result<(), String> {
        self.with(|c| self.prune(c))
    }

    /// Prunes when it is due; a failure is only logged (pruning is housekeeping: the store is
    /// not bypassed for it).
    fn prune_if_due(&self) {
        {
            let mut at = self.pruned_at.lock().unwrap_or_else(|p| p.into_inner());
            if at.is_some_and(|t| t.elapsed() < PRUNE_EVERY) {
                return;
            }
            *at = Some(Instant::now());
        }
        if let Err(e) = self.with(|c| self.prune(c)) {
            crate::log::log(crate::log::Level::Info, || format!("state store: pruning old rows failed: {e}"));
        }
    }

    /// Runs `f` on the connection (made if there is none); a connection that did not answer
    /// or broke is dropped, so the next use reconnects (after the guard's bypass).
    ///
    /// Bounded (DESIGN.md 9.3): at most [`BUSY_BOUND`] waiting for the connection, and
    /// [`conn::CALL_BOUND`] on the database, reconnection included. A call that waited more
    /// than a second says so at info (`exona-bench fleet-dba` reads it).
    fn with<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T, String>) -> Result<T, String> {
        let started = Instant::now();
        let taken = {
            // Counted in time awake, as the database's own bounds are (a pause is not the
            // other call's slowness).
            let mut busy = Budget::new(BUSY_BOUND);
            let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
            while slot.busy {
                if busy.is_spent() {
                    return Err(format!(
                        "{}: the database did not answer another call of this client within {} s",
                        self.settings.shown,
                        BUSY_BOUND.as_secs()
                    ));
                }
                let asked = busy.slice();
                let waited = Instant::now();
                slot = self.returned.wait_timeout(slot, asked).unwrap_or_else(|p| p.into_inner()).0;
                busy.count(asked, waited.elapsed());
            }
            slot.busy = true;
            slot.conn.take()
        };
        let mut conn = match taken {
            Some(mut c) => {
                c.start_call(conn::CALL_BOUND);
                Ok(c)
            }
            None => self.connect(Budget::new(conn::CALL_BOUND)),
        };
        let out = match &mut conn {
            Ok(c) => {
                let out = f(c);
                c.end_call();
                out
            }
            Err(e) => Err(e.clone()),
        };
        let waited = started.elapsed();
        if waited > Duration::from_secs(1) {
            crate::log::log(crate::log::Level::Info, || {
                format!(
                    "state store: a call waited {:.1} s on the database ({})",
                    waited.as_secs_f64(),
                    if out.is_ok() { "answered" } else { "no answer" }
                )
            });
        }
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        slot.busy = false;
        slot.conn = conn.ok().filter(|c| !c.is_broken());
        drop(slot);
        self.returned.notify_one();
        out
    }

    fn measure_offset(&self, c: &mut Conn) -> Result<(), String> {
        let before = local_now_ms();
        let row = c.query_one("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint", &[])?;
        let after = local_now_ms();
        let db: i64 = row.get(0);
        self.offset_ms.store(db - (before + after) / 2, Ordering::Relaxed);
        Ok(())
    }

    /// This host's time `t` on the database's clock.
    fn db_ms(&self, t: SystemTime) -> i64 {
        unix_ms(t) + self.offset_ms.load(Ordering::Relaxed)
    }

    fn t(&self, table: &str) -> String {
        format!("{}.{table}", self.settings.schema)
    }

    /// Who creates a scan of `identity` now, for the call `token`: the row, decided by the
    /// rule every backend shares ([`crate::store::who_creates`]).
    fn who_creates(&self, c: &mut Conn, identity: &str, ask: Ask<'_>) -> Result<Option<Claim>, String> {
        let row = c
            .query_opt(
                &format!(
                    "SELECT scan_id, since_ms, lease_until_ms, token, sent_ms FROM {}
                     WHERE fingerprint = $1 AND identity = $2",
                    self.t("in_flight")
                ),
                params![self.fingerprint, identity],
            )?
            .map(|r| InFlightRow {
                scan_id: r.get(0),
                since_ms: r.get(1),
                lease_until_ms: r.get(2),
                token: r.get(3),
                sent_ms: r.get(4),
            });
        Ok(crate::store::who_creates(
            row.as_ref(),
            ask.token,
            self.db_ms(ask.since),
            self.db_ms(ask.at),
            ask.settle,
        ))
    }

    /// The key's window on the database's clock, translated to this host's (`offset`).
    fn read_window(&self, c: &mut Conn, db_now: i64, offset: i64) -> Result<SharedWindow, String> {
        let row = c.query_opt(
            &format!(
                "SELECT budget_limit, remaining, reset_ms, reset_unix, ended_unix, window_ms, informed,
                        cooldown_ms, last_grant_ms FROM {} WHERE fingerprint = $1",
                self.t("ledger")
            ),
            params![self.fingerprint],
        )?;
        let mut window = match row {
            Some(r) => SharedWindow {
                known: true,
                limit: r.get::<_, i64>(0).clamp(0, u32::MAX as i64) as u32,
                remaining: r.get::<_, i64>(1).clamp(0, u32::MAX as i64) as u32,
                reset_wall_ms: r.get::<_, i64>(2) - offset,
                reset_unix: r.get::<_, Option<i64>>(3).map(|v| v.max(0) as u64),
                ended_unix: r.get::<_, Option<i64>>(4).map(|v| v.max(0) as u64),
                window_ms: r.get::<_, i64>(5).max(1) as u64,
                informed: r.get(6),
                cooldown_wall_ms: r.get::<_, i64>(7) - offset,
                last_grant_wall_ms: r.get::<_, Option<i64>>(8).map(|v| v - offset),
                others_outstanding: 0,
                others_reserved: 0,
                others_expected: 0,
                others_queued: 0,
            },
            None => SharedWindow::default(),
        };
        let r = c.query_one(
            &format!(
                "SELECT COALESCE(SUM(CASE WHEN outstanding_until_ms > $3 THEN outstanding ELSE 0 END), 0)::bigint,
                        COALESCE(SUM(CASE WHEN reserved_until_ms > $3 THEN reserved ELSE 0 END), 0)::bigint,
                        COALESCE(SUM(CASE WHEN reserved_until_ms > $3 THEN expected ELSE 0 END), 0)::bigint,
                        COALESCE(SUM(CASE WHEN reserved_until_ms > $3 THEN queued ELSE 0 END), 0)::bigint
                 FROM {} WHERE fingerprint = $1 AND holder <> $2 AND lease_until_ms > $3",
                self.t("holds")
            ),
            params![self.fingerprint, self.holder, db_now],
        )?;
        let sum = |i: usize| r.get::<_, i64>(i).clamp(0, u32::MAX as i64) as u32;
        (window.others_outstanding, window.others_reserved) = (sum(0), sum(1));
        (window.others_expected, window.others_queued) = (sum(2), sum(3));
        Ok(window)
    }

    fn key_lock(c: &mut Conn, what: &str) -> Result<(), conn::PgError> {
        c.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", params![what]).map(|_| ())
    }
}

/// A `String` error inside a transaction, as the connection's (the server answered: the
/// connection stays).
fn kept(text: String) -> conn::PgError {
    conn::PgError { text, code: None, broken: false }
}

impl Ledger for PgStore {
    fn peek(&self, wall_ms: i64, read: &mut dyn FnMut(&SharedWindow)) -> Result<(), String> {
        self.with(|c| {
            let offset = self.offset_ms.load(Ordering::Relaxed);
            let window = self.read_window(c, wall_ms + offset, offset)?;
            read(&window);
            Ok(())
        })
    }

    fn created_between(&self, from_wall_ms: i64, to_wall_ms: i64) -> Result<u32, String> {
        // As in the SQLite store, on the database's clock (durations are dated by it).
        self.with(|c| {
            let shift = self.offset_ms.load(Ordering::Relaxed);
            let (from, to) = (from_wall_ms + shift, to_wall_ms + shift);
            let row = c.query_one(
                &format!(
                    "SELECT count(*) FROM {} WHERE fingerprint = $1 AND observed_ms >= $2
                       AND observed_ms - (seconds * 1000)::bigint >= $2
                       AND observed_ms - (seconds * 1000)::bigint < $3",
                    self.t("durations")
                ),
                params![self.fingerprint, from, to],
            )?;
            Ok(row.get::<_, i64>(0).clamp(0, i64::from(u32::MAX)) as u32)
        })
    }

    fn transact(
        &self,
        wall_ms: i64,
        decide: &mut dyn FnMut(&mut SharedWindow, &mut Holds),
    ) -> Result<(), String> {
        self.with(|c| {
            c.transaction(|tx| {
                // The key's lock, and the database's clock once it is held, against this host's:
                // the offset every time below is translated by (fresh in every transaction).
                let before = local_now_ms();
                let db_now: i64 = tx
                    .query_one(
                        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))::text,
                                (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
                        params![format!("exona-ledger:{}", self.fingerprint)],
                    )?
                    .get(1);
                let offset = db_now - (before + local_now_ms()) / 2;
                self.offset_ms.store(offset, Ordering::Relaxed);
                let shift = offset;
                let db_wall = wall_ms + shift;
                tx.execute(
                    &format!(
                        "DELETE FROM {} WHERE fingerprint = $1 AND holder <> $2 AND lease_until_ms <= $3",
                        self.t("holds")
                    ),
                    params![self.fingerprint, self.holder, db_wall],
                )?;
                let mut window = self.read_window(tx, db_wall, shift).map_err(kept)?;
                let mut mine = Holds::default();
                decide(&mut window, &mut mine);
                let w = &window;
                tx.execute(
                    &format!(
                        "INSERT INTO {} (fingerprint, budget_limit, remaining, reset_ms, reset_unix, ended_unix,
                             window_ms, informed, cooldown_ms, last_grant_ms)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                         ON CONFLICT (fingerprint) DO UPDATE SET budget_limit = excluded.budget_limit,
                             remaining = excluded.remaining, reset_ms = excluded.reset_ms,
                             reset_unix = excluded.reset_unix, ended_unix = excluded.ended_unix,
                             window_ms = excluded.window_ms, informed = excluded.informed,
                             cooldown_ms = excluded.cooldown_ms, last_grant_ms = excluded.last_grant_ms",
                        self.t("ledger")
                    ),
                    params![
                        self.fingerprint,
                        i64::from(w.limit),
                        i64::from(w.remaining),
                        w.reset_wall_ms + shift,
                        w.reset_unix.map(|v| v.min(i64::MAX as u64) as i64),
                        w.ended_unix.map(|v| v.min(i64::MAX as u64) as i64),
                        w.window_ms.min(i64::MAX as u64) as i64,
                        w.informed,
                        w.cooldown_wall_ms + shift,
                        w.last_grant_wall_ms.map(|v| v + shift),
                    ],
                )?;
                if mine == Holds::default() {
                    tx.execute(
                        &format!("DELETE FROM {} WHERE fingerprint = $1 AND holder = $2", self.t("holds")),
                        params![self.fingerprint, self.holder],
                    )?;
                } else {
                    tx.execute(
                        &format!(
                            "INSERT INTO {} (fingerprint, holder, outstanding, outstanding_until_ms, reserved,
                                 reserved_until_ms, lease_until_ms, expected, queued)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                             ON CONFLICT (fingerprint, holder) DO UPDATE SET outstanding = excluded.outstanding,
                                 outstanding_until_ms = excluded.outstanding_until_ms, reserved = excluded.reserved,
                                 reserved_until_ms = excluded.reserved_until_ms, lease_until_ms = excluded.lease_until_ms,
                                 expected = excluded.expected, queued = excluded.queued",
                            self.t("holds")
                        ),
                        params![
                            self.fingerprint,
                            self.holder,
                            i64::from(mine.outstanding),
                            db_wall + OUTSTANDING_TTL.as_millis() as i64,
                            i64::from(mine.reserved),
                            db_wall + RESERVED_TTL.as_millis() as i64,
                            db_wall + LEASE.as_millis() as i64,
                            i64::from(mine.expected),
                            i64::from(mine.queued),
                        ],
                    )?;
                }
                crate::crash::point("store_mid_transaction");
                Ok(())
            })
            .map_err(String::from)
        })
    }
}

impl Store for PgStore {
    fn durations(&self, limit: usize) -> Result<Vec<Duration>, String> {
        self.with(|c| {
            let rows = c.query(
                &format!(
                    "SELECT seconds FROM {} WHERE fingerprint = $1 ORDER BY observed_ms DESC LIMIT $2",
                    self.t("durations")
                ),
                params![self.fingerprint, limit.min(i64::MAX as usize) as i64],
            )?;
            Ok(rows.iter().map(|r| Duration::from_secs_f64(r.get::<_, f64>(0).max(0.0))).collect())
        })
    }

    fn recent_durations(&self, limit: usize) -> Result<Vec<(String, Duration)>, String> {
        self.with(|c| {
            let rows = c.query(
                &format!(
                    "SELECT scan_id, seconds FROM {} WHERE fingerprint = $1 ORDER BY observed_ms DESC LIMIT $2",
                    self.t("durations")
                ),
                params![self.fingerprint, limit.min(i64::MAX as usize) as i64],
            )?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, String>(0), Duration::from_secs_f64(r.get::<_, f64>(1).max(0.0))))
                .collect())
        })
    }

    fn record_duration(&self, scan_id: &str, duration: Duration, at: SystemTime) -> Result<(), String> {
        self.with(|c| {
            // On the database's clock as this connection measured it (made just now, maybe).
            let observed = self.db_ms(at);
            c.transaction(|tx| {
                // Once per scan, as in the SQLite store.
                tx.execute(
                    &format!(
                        "INSERT INTO {} (fingerprint, seconds, observed_ms, scan_id) VALUES ($1, $2, $3, $4)
                         ON CONFLICT DO NOTHING",
                        self.t("durations")
                    ),
                    params![self.fingerprint, duration.as_secs_f64(), observed, scan_id],
                )?;
                tx.execute(
                    &format!(
                        "DELETE FROM {t} WHERE fingerprint = $1 AND scan_id NOT IN (
                             SELECT scan_id FROM {t} WHERE fingerprint = $1 ORDER BY observed_ms DESC LIMIT $2)",
                        t = self.t("durations")
                    ),
                    params![self.fingerprint, KEEP_DURATIONS],
                )?;
                Ok(())
            })
            .map_err(String::from)
        })
    }

    // Results are dated by the API's `completed_at` (the service's clock, not a host's), and
    // asked for by days (`max_age_days`): stored as they come, untranslated.
    fn result(&self, identity: &str, since: SystemTime) -> Result<Option<StoredResult>, String> {
        self.with(|c| {
            let row = c.query_opt(
                &format!(
                    "SELECT json, completed_ms FROM {} WHERE fingerprint = $1 AND identity = $2 AND completed_ms >= $3",
                    self.t("results")
                ),
                params![self.fingerprint, identity, unix_ms(since)],
            )?;
            Ok(row.map(|r| StoredResult {
                json: r.get(0),
                completed_at: UNIX_EPOCH + Duration::from_millis(r.get::<_, i64>(1).max(0) as u64),
            }))
        })
    }

    fn record_result(&self, identity: &str, result: &StoredResult) -> Result<(), String> {
        self.with(|c| {
            c.execute(
                &format!(
                    "INSERT INTO {t} (fingerprint, identity, json, completed_ms) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (fingerprint, identity) DO UPDATE SET json = excluded.json,
                         completed_ms = excluded.completed_ms WHERE excluded.completed_ms >= {t}.completed_ms",
                    t = self.t("results")
                ),
                params![self.fingerprint, identity, result.json, unix_ms(result.completed_at)],
            )?;
            Ok(())
        })
    }

    fn claim(&self, identity: &str, ask: Ask<'_>) -> Result<Claim, String> {
        let at_ms = self.db_ms(ask.at);
        self.with(|c| {
            c.transaction(|tx| {
                Self::key_lock(tx, &format!("exona-claim:{}:{identity}", self.fingerprint))?;
                Ok(match self.who_creates(tx, identity, ask).map_err(kept)? {
                    Some(Claim::Mine) | None => {
                        // Written, or this call's own claim leased again from now: taken (or
                        // confirmed) right before the create is sent, a create on the wire from now.
                        tx.execute(
                            &format!(
                                "INSERT INTO {} (fingerprint, identity, scan_id, since_ms, owner, lease_until_ms, token, sent_ms)
                                 VALUES ($1, $2, '', $3, $4, $5, $6, $3)
                                 ON CONFLICT (fingerprint, identity) DO UPDATE SET scan_id = '', since_ms = excluded.since_ms,
                                     owner = excluded.owner, lease_until_ms = excluded.lease_until_ms,
                                     token = excluded.token, sent_ms = excluded.sent_ms",
                                self.t("in_flight")
                            ),
                            params![self.fingerprint, identity, at_ms, self.holder, at_ms + LEASE.as_millis() as i64, ask.token],
                        )?;
                        Claim::Mine
                    }
                    Some(found) => found,
                })
            })
            .map_err(String::from)
        })
    }

    fn peek_claim(&self, identity: &str, ask: Ask<'_>) -> Result<Option<Claim>, String> {
        self.with(|c| self.who_creates(c, identity, ask))
    }

    fn record_in_flight(
        &self,
        identity: &str,
        scan_id: &str,
        at: SystemTime,
    ) -> Result<Option<String>, String> {
        let at_ms = self.db_ms(at);
        self.with(|c| {
            c.transaction(|tx| {
                Self::key_lock(tx, &format!("exona-claim:{}:{identity}", self.fingerprint))?;
                let before: Option<String> = tx
                    .query_opt(
                        &format!("SELECT scan_id FROM {} WHERE fingerprint = $1 AND identity = $2", self.t("in_flight")),
                        params![self.fingerprint, identity],
                    )?
                    .map(|r| r.get(0));
                tx.execute(
                    &format!(
                        "INSERT INTO {} (fingerprint, identity, scan_id, since_ms, owner, lease_until_ms, token)
                         VALUES ($1, $2, $3, $4, $5, $6, '')
                         ON CONFLICT (fingerprint, identity) DO UPDATE SET scan_id = excluded.scan_id,
                             since_ms = excluded.since_ms, owner = excluded.owner,
                             lease_until_ms = excluded.lease_until_ms, token = ''",
                        self.t("in_flight")
                    ),
                    params![self.fingerprint, identity, scan_id, at_ms, self.holder, at_ms + LEASE.as_millis() as i64],
                )?;
                Ok(crate::store::twin_of(before, scan_id))
            })
            .map_err(String::from)
        })
    }

    fn unwatch_in_flight(&self, identity: &str, scan_id: &str) -> Result<(), String> {
        self.with(|c| {
            c.execute(
                &format!(
                    "UPDATE {} SET owner = '', lease_until_ms = 0
                     WHERE fingerprint = $1 AND identity = $2 AND scan_id = $3 AND scan_id <> '' AND owner = $4",
                    self.t("in_flight")
                ),
                params![self.fingerprint, identity, scan_id, self.holder],
            )?;
            Ok(())
        })
    }

    fn watched(&self, identity: &str, scan_id: &str, at: SystemTime) -> Result<bool, String> {
        let at_ms = self.db_ms(at);
        self.with(|c| {
            let n: i64 = c
                .query_one(
                    &format!(
                        "SELECT COUNT(*) FROM {} WHERE fingerprint = $1 AND identity = $2 AND scan_id = $3
                             AND scan_id <> '' AND owner <> '' AND lease_until_ms > $4",
                        self.t("in_flight")
                    ),
                    params![self.fingerprint, identity, scan_id, at_ms],
                )?
                .get(0);
            Ok(n > 0)
        })
    }

    fn clear_in_flight(&self, identity: &str, scan_id: &str, token: &str) -> Result<(), String> {
        self.with(|c| {
            c.execute(
                &format!(
                    "DELETE FROM {} WHERE fingerprint = $1 AND identity = $2 AND scan_id = $3
                         AND ($3 <> '' OR (token = $4 AND $4 <> ''))",
                    self.t("in_flight")
                ),
                params![self.fingerprint, identity, scan_id, token],
            )?;
            Ok(())
        })
    }

    fn renew_leases(&self, at: SystemTime) -> Result<(), String> {
        let until = self.db_ms(at) + LEASE.as_millis() as i64;
        self.with(|c| {
            c.transaction(|tx| {
                tx.execute(
                    &format!(
                        "UPDATE {} SET lease_until_ms = $3 WHERE fingerprint = $1 AND owner = $2",
                        self.t("in_flight")
                    ),
                    params![self.fingerprint, self.holder, until],
                )?;
                tx.execute(
                    &format!(
                        "UPDATE {} SET lease_until_ms = $3 WHERE fingerprint = $1 AND holder = $2",
                        self.t("holds")
                    ),
                    params![self.fingerprint, self.holder, until],
                )?;
                Ok(())
            })
            .map_err(String::from)
        })?;
        // The heartbeat's thread does the housekeeping, so that no call waits for it.
        self.prune_if_due();
        Ok(())
    }

    fn keep_ambiguous_claim(&self, identity: &str, token: &str, until: SystemTime) -> Result<(), String> {
        let until_ms = self.db_ms(until);
        self.with(|c| {
            c.execute(
                &format!(
                    "UPDATE {} SET owner = '', lease_until_ms = $4
                     WHERE fingerprint = $1 AND identity = $2 AND scan_id = '' AND token = $3",
                    self.t("in_flight")
                ),
                params![self.fingerprint, identity, token, until_ms],
            )?;
            Ok(())
        })
    }
}

/// What the fleet's database knows of the key `fingerprint` stands for, read only (no table is
/// created, no lease taken): `exona status` with a state URL. `Ok(None)`: no store in that
/// schema yet. Times are translated to this host's clock.
pub fn snapshot(url: &str, fingerprint: &str, now: SystemTime) -> Result<Option<Snapshot>, String> {
    let store = PgStore::new(url, fingerprint)?;
    let mut c = Conn::open(&store.settings, Some(Budget::new(conn::CALL_BOUND)))?;
    let s = store.settings.schema.clone();
    let exists: bool = c.query_one(&format!("SELECT to_regclass('{s}.meta') IS NOT NULL"), &[])?.get(0);
    if !exists {
        return Ok(None);
    }
    let version: i64 =
        c.query_one(&format!("SELECT value FROM {s}.meta WHERE key = 'schema_version'"), &[])?.get(0);
    if version != SCHEMA_VERSION {
        return Err(format!(
            "schema {s} is version {version}; this library reads version {SCHEMA_VERSION} ({})",
            if version < SCHEMA_VERSION {
                format!("migrate it with `{}`", schema::init_command(&store.settings))
            } else {
                "upgrade libexona".to_owned()
            }
        ));
    }
    store.measure_offset(&mut c)?;
    let offset = store.offset_ms.load(Ordering::Relaxed);
    let at = |ms: i64| UNIX_EPOCH + Duration::from_millis((ms - offset).max(0) as u64);
    let db_now = unix_ms(now) + offset;
    let fingerprint = fingerprint.to_owned();
    let window = c
        .query_opt(
            &format!(
                "SELECT budget_limit, remaining, reset_ms, window_ms, informed, cooldown_ms FROM {s}.ledger
                 WHERE fingerprint = $1"
            ),
            params![fingerprint],
        )?
        .map(|r| {
            let cooldown: i64 = r.get(5);
            WindowView {
                limit: r.get::<_, i64>(0).clamp(0, u32::MAX as i64) as u32,
                remaining: r.get::<_, i64>(1).clamp(0, u32::MAX as i64) as u32,
                resets_at: at(r.get(2)),
                window: Duration::from_millis(r.get::<_, i64>(3).max(1) as u64),
                informed: r.get(4),
                cooldown_until: (cooldown > db_now).then(|| at(cooldown)),
            }
        });
    let holders = c
        .query(
            &format!(
                "SELECT holder, CASE WHEN outstanding_until_ms > $2 THEN outstanding ELSE 0 END,
                        CASE WHEN reserved_until_ms > $2 THEN reserved ELSE 0 END, lease_until_ms,
                        CASE WHEN reserved_until_ms > $2 THEN expected ELSE 0 END,
                        CASE WHEN reserved_until_ms > $2 THEN queued ELSE 0 END
                 FROM {s}.holds WHERE fingerprint = $1 AND lease_until_ms > $2 ORDER BY holder"
            ),
            params![fingerprint, db_now],
        )?
        .iter()
        .map(|r| {
            let owner: String = r.get(0);
            HolderView {
                pid: super::snapshot::pid_of(&owner),
                owner,
                outstanding: r.get::<_, i64>(1).clamp(0, u32::MAX as i64) as u32,
                reserved: r.get::<_, i64>(2).clamp(0, u32::MAX as i64) as u32,
                expected: r.get::<_, i64>(4).clamp(0, u32::MAX as i64) as u32,
                queued: r.get::<_, i64>(5).clamp(0, u32::MAX as i64) as u32,
                lease_until: at(r.get(3)),
            }
        })
        .collect();
    let in_flight = c
        .query(
            &format!(
                "SELECT identity, scan_id, since_ms, owner, lease_until_ms FROM {s}.in_flight
                 WHERE fingerprint = $1 AND (scan_id <> '' OR lease_until_ms > $2) ORDER BY since_ms"
            ),
            params![fingerprint, db_now],
        )?
        .iter()
        .map(|r| {
            let scan_id: String = r.get(1);
            let owner: String = r.get(3);
            let claim = scan_id.is_empty();
            InFlightView {
                identity: r.get(0),
                scan_id: (!claim).then_some(scan_id),
                since: at(r.get(2)),
                owner: (claim && !owner.is_empty()).then_some(owner),
                lease_until: claim.then(|| at(r.get(4))),
            }
        })
        .collect();
    let durations = c
        .query(
            &format!("SELECT seconds FROM {s}.durations WHERE fingerprint = $1 ORDER BY observed_ms DESC"),
            params![fingerprint],
        )?
        .iter()
        .filter_map(|r| Duration::try_from_secs_f64(r.get::<_, f64>(0)).ok())
        .collect();
    let results: i64 = c
        .query_one(&format!("SELECT COUNT(*) FROM {s}.results WHERE fingerprint = $1"), params![fingerprint])?
        .get(0);
    Ok(Some(Snapshot { window, holders, in_flight, durations, results: results.max(0) as usize }))
}

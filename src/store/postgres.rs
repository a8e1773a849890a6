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
//! - **Failure costs nothing**: the connection is made lazily and dropped on any error; the
//!   store's guard (`Guarded`) bypasses it and tries again later, when it reconnects. A
//!   statement timeout bounds every query.
//! - **A schema of its own** (`exona` unless the URL says `?schema=NAME`), versioned in
//!   `meta`; a newer schema is refused, as the SQLite file is.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::collections::HashMap;

use postgres::{Client, Config, GenericClient, Statement, Transaction};

use super::snapshot::{HolderView, InFlightView, Snapshot, WindowView};
use super::{Ask, Claim, InFlightRow, Store, StoredResult, LEASE};
use crate::engine::ledger::{Holds, Ledger, SharedWindow, OUTSTANDING_TTL, RESERVED_TTL};

/// The schema this version writes.
const SCHEMA_VERSION: i64 = 3;
/// Every statement's bound: the store is bypassed rather than a scan waiting on the database.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Durations kept per key (the most recent), as in the SQLite store.
const KEEP_DURATIONS: i64 = 500;

pub struct PgStore {
    config: Config,
    /// What messages call the database: the URL without its password.
    shown: String,
    schema: String,
    fingerprint: String,
    holder: String,
    conn: Mutex<Option<Client>>,
    /// The ledger's statements, prepared once per connection (a statement run by its text is
    /// parsed again each time: twice the round trips on every request's two transactions).
    /// Emptied whenever the connection is made again; locked only under `conn`.
    statements: Mutex<HashMap<String, Statement>>,
    /// The database's clock less this host's, in milliseconds (measured on each connection
    /// and ledger transaction; a test may add a skew of its own, see `EXONA_TEST_CLOCK_SKEW_MS`).
    offset_ms: AtomicI64,
}

/// A URL as it may be shown: its password replaced by `***`.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "the state URL (unparsable)".to_owned(),
    }
}

/// The URL's `schema` parameter (ours, not libpq's), and the URL without it.
fn split_schema(url: &str) -> Result<(String, String), String> {
    let mut u = url::Url::parse(url).map_err(|e| format!("{} is not a URL ({e})", redact(url)))?;
    if !matches!(u.scheme(), "postgres" | "postgresql") {
        return Err(format!("{} is not a postgresql:// URL", redact(url)));
    }
    let mut schema = "exona".to_owned();
    let kept: Vec<(String, String)> = u
        .query_pairs()
        .filter_map(|(k, v)| {
            if k == "schema" {
                schema = v.into_owned();
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(format!("schema={schema:?} in the state URL: use lower-case letters, digits and _"));
    }
    if kept.is_empty() {
        u.set_query(None);
    } else {
        u.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok((u.to_string(), schema))
}

/// An error with its causes: the driver's own Display says only "db error", the server's
/// words are in its source.
fn err(e: impl std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis().min(i64::MAX as u128) as i64)
}

fn local_now_ms() -> i64 {
    unix_ms(SystemTime::now()) + test_skew_ms()
}

/// A test-only skew of this process's clock as the fleet store sees it (hosts whose clocks
/// disagree are simulated by processes on one host): `EXONA_TEST_CLOCK_SKEW_MS`, read once.
fn test_skew_ms() -> i64 {
    static SKEW: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *SKEW.get_or_init(|| {
        std::env::var("EXONA_TEST_CLOCK_SKEW_MS").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    })
}

/// rustls with the system's roots, the library's one TLS stack: `sslmode=require` (or
/// `prefer`, libpq's default) works against a managed database.
fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(err)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl PgStore {
    /// A store on the database `url` names, for the key `fingerprint` stands for. Only the URL
    /// is checked here: the database is reached on first use (one that is down at start is
    /// bypassed, then attached when it answers).
    pub fn new(url: &str, fingerprint: &str) -> Result<PgStore, String> {
        let (plain, schema) = split_schema(url)?;
        let mut config: Config = plain.parse().map_err(|e| format!("{}: {e}", redact(url)))?;
        config.connect_timeout(CONNECT_TIMEOUT);
        config.options(&format!("-c statement_timeout={}", STATEMENT_TIMEOUT.as_millis()));
        config.application_name("libexona");
        Ok(PgStore {
            config,
            shown: redact(url),
            schema,
            fingerprint: fingerprint.to_owned(),
            holder: super::sqlite::holder_name(),
            conn: Mutex::new(None),
            statements: Mutex::new(HashMap::new()),
            offset_ms: AtomicI64::new(0),
        })
    }

    /// The database as messages name it (no password).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn connect(&self) -> Result<Client, String> {
        let mut client = self.config.connect(tls()?).map_err(|e| format!("{}: {}", self.shown, err(e)))?;
        self.prepare_schema(&mut client)?;
        self.measure_offset(&mut client)?;
        self.prune(&mut client)?;
        Ok(client)
    }

    /// What no call can use any more, dropped on connecting (as the SQLite store does on
    /// opening): results older than the API's longest `max_age_days`, claims and holds whose
    /// leases lapsed an hour ago, scans recorded in flight longer than any scan runs.
    fn prune(&self, client: &mut Client) -> Result<(), String> {
        const DAY_MS: i64 = 86_400_000;
        let now = local_now_ms() + self.offset_ms.load(Ordering::Relaxed);
        let hour_ago = now - 3_600_000;
        let in_flight_ttl = super::IN_FLIGHT_TTL.as_millis() as i64;
        let mut tx = client.transaction().map_err(err)?;
        tx.execute(
            &format!("DELETE FROM {} WHERE completed_ms < $1", self.t("results")),
            &[&(unix_ms(SystemTime::now()) - 366 * DAY_MS)],
        )
        .map_err(err)?;
        tx.execute(
            &format!("DELETE FROM {} WHERE scan_id = '' AND lease_until_ms < $1", self.t("in_flight")),
            &[&hour_ago],
        )
        .map_err(err)?;
        tx.execute(
            &format!("DELETE FROM {} WHERE scan_id <> '' AND since_ms < $1", self.t("in_flight")),
            &[&(now - in_flight_ttl)],
        )
        .map_err(err)?;
        tx.execute(&format!("DELETE FROM {} WHERE lease_until_ms < $1", self.t("holds")), &[&hour_ago])
            .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Runs `f` on the connection (made if there is none); any error drops the connection,
    /// so the next use reconnects (after the guard's bypass).
    fn with<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, String>) -> Result<T, String> {
        let mut slot = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            self.statements.lock().unwrap_or_else(|p| p.into_inner()).clear();
            *slot = Some(self.connect()?);
        }
        let client = slot.as_mut().expect("connected above");
        let out = f(client);
        if out.is_err() {
            *slot = None;
        }
        out
    }

    /// `sql` prepared on this connection (once; then from the cache).
    fn prepared(&self, client: &mut impl GenericClient, sql: &str) -> Result<Statement, String> {
        let mut cache = self.statements.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(statement) = cache.get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(sql).map_err(err)?;
        cache.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    fn measure_offset(&self, client: &mut Client) -> Result<(), String> {
        let before = local_now_ms();
        let row = client
            .query_one("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint", &[])
            .map_err(err)?;
        let after = local_now_ms();
        let db: i64 = row.get(0);
        self.offset_ms.store(db - (before + after) / 2, Ordering::Relaxed);
        Ok(())
    }

    /// This host's time `t` on the database's clock.
    fn db_ms(&self, t: SystemTime) -> i64 {
        unix_ms(t) + test_skew_ms() + self.offset_ms.load(Ordering::Relaxed)
    }

    fn prepare_schema(&self, client: &mut Client) -> Result<(), String> {
        let s = &self.schema;
        let mut tx = client.transaction().map_err(err)?;
        // One process creates or migrates at a time (the lock ends with the transaction).
        tx.execute("SELECT pg_advisory_xact_lock(hashtextextended('exona-schema', 0))", &[]).map_err(err)?;
        // CREATE SCHEMA checks the right to create in the database even when the schema
        // exists: a role given rights on its schema only must not be asked for more.
        let exists: bool = tx
            .query_one("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", &[&s])
            .map_err(err)?
            .get(0);
        if !exists {
            tx.batch_execute(&format!("CREATE SCHEMA {s}")).map_err(err)?;
        }
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value bigint NOT NULL);"
        ))
        .map_err(err)?;
        let found: Option<i64> = tx
            .query_opt(&format!("SELECT value FROM {s}.meta WHERE key = 'schema_version'"), &[])
            .map_err(err)?
            .map(|r| r.get(0));
        if let Some(v) = found.filter(|&v| v > SCHEMA_VERSION) {
            return Err(format!(
                "schema {s} in {} is version {v}, newer than this library's {SCHEMA_VERSION}",
                self.shown
            ));
        }
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {s}.durations (
                 fingerprint text NOT NULL, seconds double precision NOT NULL,
                 observed_ms bigint NOT NULL, scan_id text NOT NULL,
                 PRIMARY KEY (fingerprint, scan_id));
             CREATE INDEX IF NOT EXISTS durations_by_key ON {s}.durations (fingerprint, observed_ms);
             CREATE TABLE IF NOT EXISTS {s}.results (
                 fingerprint text NOT NULL, identity text NOT NULL, json text NOT NULL,
                 completed_ms bigint NOT NULL, PRIMARY KEY (fingerprint, identity));
             CREATE TABLE IF NOT EXISTS {s}.in_flight (
                 fingerprint text NOT NULL, identity text NOT NULL, scan_id text NOT NULL,
                 since_ms bigint NOT NULL, owner text NOT NULL, lease_until_ms bigint NOT NULL,
                 token text NOT NULL DEFAULT '', sent_ms bigint NOT NULL DEFAULT 0,
                 PRIMARY KEY (fingerprint, identity));
             CREATE TABLE IF NOT EXISTS {s}.ledger (
                 fingerprint text PRIMARY KEY, budget_limit bigint NOT NULL, remaining bigint NOT NULL,
                 reset_ms bigint NOT NULL, reset_unix bigint, ended_unix bigint, window_ms bigint NOT NULL,
                 informed boolean NOT NULL, cooldown_ms bigint NOT NULL, last_grant_ms bigint);
             CREATE TABLE IF NOT EXISTS {s}.holds (
                 fingerprint text NOT NULL, holder text NOT NULL,
                 outstanding bigint NOT NULL, outstanding_until_ms bigint NOT NULL,
                 reserved bigint NOT NULL, reserved_until_ms bigint NOT NULL,
                 lease_until_ms bigint NOT NULL, expected bigint NOT NULL DEFAULT 0,
                 queued bigint NOT NULL DEFAULT 0, PRIMARY KEY (fingerprint, holder));
             INSERT INTO {s}.meta (key, value) VALUES ('schema_version', {SCHEMA_VERSION})
                 ON CONFLICT (key) DO NOTHING;"
        ))
        .map_err(err)?;
        // Migrations run only for an older schema, so that a role given rights on the tables
        // but not their ownership opens an up-to-date schema.
        if found.is_some_and(|v| v < 2) {
            // Version 2: what each process's work in sight is expected to cost (holds written
            // before say nothing of it: none is counted).
            tx.batch_execute(&format!(
                "ALTER TABLE {s}.holds ADD COLUMN IF NOT EXISTS expected bigint NOT NULL DEFAULT 0;
                 ALTER TABLE {s}.holds ADD COLUMN IF NOT EXISTS queued bigint NOT NULL DEFAULT 0;"
            ))
            .map_err(err)?;
        }
        if found.is_some_and(|v| v < 3) {
            // Version 3: claims fenced by the claiming call's token, with their create's send
            // time (DESIGN.md 9.1); claims written before carry neither (no call's, taken over
            // as soon as their lease lapses, as before).
            tx.batch_execute(&format!(
                "ALTER TABLE {s}.in_flight ADD COLUMN IF NOT EXISTS token text NOT NULL DEFAULT '';
                 ALTER TABLE {s}.in_flight ADD COLUMN IF NOT EXISTS sent_ms bigint NOT NULL DEFAULT 0;"
            ))
            .map_err(err)?;
        }
        if found.is_some_and(|v| v < SCHEMA_VERSION) {
            tx.batch_execute(&format!(
                "UPDATE {s}.meta SET value = {SCHEMA_VERSION} WHERE key = 'schema_version';"
            ))
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    fn t(&self, table: &str) -> String {
        format!("{}.{table}", self.schema)
    }

    /// Who creates a scan of `identity` now, for the call `token`: the row, decided by the
    /// rule every backend shares ([`crate::store::who_creates`]).
    fn who_creates(
        &self,
        tx: &mut impl postgres::GenericClient,
        identity: &str,
        ask: Ask<'_>,
    ) -> Result<Option<Claim>, String> {
        let row = tx
            .query_opt(
                &format!(
                    "SELECT scan_id, since_ms, lease_until_ms, token, sent_ms FROM {}
                     WHERE fingerprint = $1 AND identity = $2",
                    self.t("in_flight")
                ),
                &[&self.fingerprint, &identity],
            )
            .map_err(err)?
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
    fn read_window(
        &self,
        tx: &mut impl postgres::GenericClient,
        db_now: i64,
        offset: i64,
    ) -> Result<SharedWindow, String> {
        let sql = format!(
            "SELECT budget_limit, remaining, reset_ms, reset_unix, ended_unix, window_ms, informed,
                    cooldown_ms, last_grant_ms FROM {} WHERE fingerprint = $1",
            self.t("ledger")
        );
        let statement = self.prepared(tx, &sql)?;
        let row = tx.query_opt(&statement, &[&self.fingerprint]).map_err(err)?;
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
        let sql = format!(
            "SELECT COALESCE(SUM(CASE WHEN outstanding_until_ms > $3 THEN outstanding ELSE 0 END), 0)::bigint,
                    COALESCE(SUM(CASE WHEN reserved_until_ms > $3 THEN reserved ELSE 0 END), 0)::bigint,
                    COALESCE(SUM(CASE WHEN reserved_until_ms > $3 THEN expected ELSE 0 END), 0)::bigint,
                    COALESCE(SUM(CASE WHEN reserved_until_ms > $3 THEN queued ELSE 0 END), 0)::bigint
             FROM {} WHERE fingerprint = $1 AND holder <> $2 AND lease_until_ms > $3",
            self.t("holds")
        );
        let statement = self.prepared(tx, &sql)?;
        let r = tx.query_one(&statement, &[&self.fingerprint, &self.holder, &db_now]).map_err(err)?;
        let sum = |i: usize| r.get::<_, i64>(i).clamp(0, u32::MAX as i64) as u32;
        (window.others_outstanding, window.others_reserved) = (sum(0), sum(1));
        (window.others_expected, window.others_queued) = (sum(2), sum(3));
        Ok(window)
    }

    fn key_lock(tx: &mut Transaction<'_>, what: &str) -> Result<(), String> {
        tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&what]).map(|_| ()).map_err(err)
    }
}

impl Ledger for PgStore {
    fn peek(&self, wall_ms: i64, read: &mut dyn FnMut(&SharedWindow)) -> Result<(), String> {
        self.with(|c| {
            let offset = self.offset_ms.load(Ordering::Relaxed);
            let window = self.read_window(c, wall_ms + test_skew_ms() + offset, offset + test_skew_ms())?;
            read(&window);
            Ok(())
        })
    }

    fn created_between(&self, from_wall_ms: i64, to_wall_ms: i64) -> Result<u32, String> {
        // As in the SQLite store, on the database's clock (durations are dated by it).
        self.with(|c| {
            let shift = self.offset_ms.load(Ordering::Relaxed) + test_skew_ms();
            let (from, to) = (from_wall_ms + shift, to_wall_ms + shift);
            let row = c
                .query_one(
                    &format!(
                        "SELECT count(*) FROM {} WHERE fingerprint = $1 AND observed_ms >= $2
                           AND observed_ms - (seconds * 1000)::bigint >= $2
                           AND observed_ms - (seconds * 1000)::bigint < $3",
                        self.t("durations")
                    ),
                    &[&self.fingerprint, &from, &to],
                )
                .map_err(err)?;
            Ok(row.get::<_, i64>(0).clamp(0, i64::from(u32::MAX)) as u32)
        })
    }

    fn transact(
        &self,
        wall_ms: i64,
        decide: &mut dyn FnMut(&mut SharedWindow, &mut Holds),
    ) -> Result<(), String> {
        self.with(|c| {
            let mut tx = c.transaction().map_err(err)?;
            // The key's lock, and the database's clock once it is held, against this host's:
            // the offset every time below is translated by (fresh in every transaction).
            let before = local_now_ms();
            let statement = self.prepared(
                &mut tx,
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))::text,
                        (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
            )?;
            let db_now: i64 =
                tx.query_one(&statement, &[&format!("exona-ledger:{}", self.fingerprint)]).map_err(err)?.get(1);
            let offset = db_now - (before + local_now_ms()) / 2;
            self.offset_ms.store(offset, Ordering::Relaxed);
            // The engine's wall clock is this process's own (without the test skew): the
            // translation covers both.
            let shift = offset + test_skew_ms();
            let db_wall = wall_ms + shift;
            let sql =
                format!("DELETE FROM {} WHERE fingerprint = $1 AND holder <> $2 AND lease_until_ms <= $3", self.t("holds"));
            let statement = self.prepared(&mut tx, &sql)?;
            tx.execute(&statement, &[&self.fingerprint, &self.holder, &db_wall]).map_err(err)?;
            let mut window = self.read_window(&mut tx, db_wall, shift)?;
            let mut mine = Holds::default();
            decide(&mut window, &mut mine);
            let w = &window;
            let sql = format!(
                    "INSERT INTO {} (fingerprint, budget_limit, remaining, reset_ms, reset_unix, ended_unix,
                         window_ms, informed, cooldown_ms, last_grant_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     ON CONFLICT (fingerprint) DO UPDATE SET budget_limit = excluded.budget_limit,
                         remaining = excluded.remaining, reset_ms = excluded.reset_ms,
                         reset_unix = excluded.reset_unix, ended_unix = excluded.ended_unix,
                         window_ms = excluded.window_ms, informed = excluded.informed,
                         cooldown_ms = excluded.cooldown_ms, last_grant_ms = excluded.last_grant_ms",
                    self.t("ledger")
                );
            let statement = self.prepared(&mut tx, &sql)?;
            tx.execute(
                &statement,
                &[
                    &self.fingerprint,
                    &i64::from(w.limit),
                    &i64::from(w.remaining),
                    &(w.reset_wall_ms + shift),
                    &w.reset_unix.map(|v| v.min(i64::MAX as u64) as i64),
                    &w.ended_unix.map(|v| v.min(i64::MAX as u64) as i64),
                    &(w.window_ms.min(i64::MAX as u64) as i64),
                    &w.informed,
                    &(w.cooldown_wall_ms + shift),
                    &w.last_grant_wall_ms.map(|v| v + shift),
                ],
            )
            .map_err(err)?;
            if mine == Holds::default() {
                let sql = format!("DELETE FROM {} WHERE fingerprint = $1 AND holder = $2", self.t("holds"));
                let statement = self.prepared(&mut tx, &sql)?;
                tx.execute(&statement, &[&self.fingerprint, &self.holder]).map_err(err)?;
            } else {
                let sql = format!(
                        "INSERT INTO {} (fingerprint, holder, outstanding, outstanding_until_ms, reserved,
                             reserved_until_ms, lease_until_ms, expected, queued)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                         ON CONFLICT (fingerprint, holder) DO UPDATE SET outstanding = excluded.outstanding,
                             outstanding_until_ms = excluded.outstanding_until_ms, reserved = excluded.reserved,
                             reserved_until_ms = excluded.reserved_until_ms, lease_until_ms = excluded.lease_until_ms,
                             expected = excluded.expected, queued = excluded.queued",
                        self.t("holds")
                    );
                let statement = self.prepared(&mut tx, &sql)?;
                tx.execute(
                    &statement,
                    &[
                        &self.fingerprint,
                        &self.holder,
                        &i64::from(mine.outstanding),
                        &(db_wall + OUTSTANDING_TTL.as_millis() as i64),
                        &i64::from(mine.reserved),
                        &(db_wall + RESERVED_TTL.as_millis() as i64),
                        &(db_wall + LEASE.as_millis() as i64),
                        &i64::from(mine.expected),
                        &i64::from(mine.queued),
                    ],
                )
                .map_err(err)?;
            }
            crate::crash::point("store_mid_transaction");
            tx.commit().map_err(err)
        })
    }
}

impl Store for PgStore {
    fn durations(&self, limit: usize) -> Result<Vec<Duration>, String> {
        self.with(|c| {
            let rows = c
                .query(
                    &format!(
                        "SELECT seconds FROM {} WHERE fingerprint = $1 ORDER BY observed_ms DESC LIMIT $2",
                        self.t("durations")
                    ),
                    &[&self.fingerprint, &(limit.min(i64::MAX as usize) as i64)],
                )
                .map_err(err)?;
            Ok(rows.iter().map(|r| Duration::from_secs_f64(r.get::<_, f64>(0).max(0.0))).collect())
        })
    }

    fn record_duration(&self, scan_id: &str, duration: Duration, at: SystemTime) -> Result<(), String> {
        self.with(|c| {
            let mut tx = c.transaction().map_err(err)?;
            // Once per scan, as in the SQLite store.
            tx.execute(
                &format!(
                    "INSERT INTO {} (fingerprint, seconds, observed_ms, scan_id) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                    self.t("durations")
                ),
                &[&self.fingerprint, &duration.as_secs_f64(), &self.db_ms(at), &scan_id],
            )
            .map_err(err)?;
            tx.execute(
                &format!(
                    "DELETE FROM {t} WHERE fingerprint = $1 AND scan_id NOT IN (
                         SELECT scan_id FROM {t} WHERE fingerprint = $1 ORDER BY observed_ms DESC LIMIT $2)",
                    t = self.t("durations")
                ),
                &[&self.fingerprint, &KEEP_DURATIONS],
            )
            .map_err(err)?;
            tx.commit().map_err(err)
        })
    }

    // Results are dated by the API's `completed_at` (the service's clock, not a host's), and
    // asked for by days (`max_age_days`): stored as they come, untranslated.
    fn result(&self, identity: &str, since: SystemTime) -> Result<Option<StoredResult>, String> {
        self.with(|c| {
            let row = c
                .query_opt(
                    &format!(
                        "SELECT json, completed_ms FROM {} WHERE fingerprint = $1 AND identity = $2 AND completed_ms >= $3",
                        self.t("results")
                    ),
                    &[&self.fingerprint, &identity, &unix_ms(since)],
                )
                .map_err(err)?;
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
                &[&self.fingerprint, &identity, &result.json, &unix_ms(result.completed_at)],
            )
            .map(|_| ())
            .map_err(err)
        })
    }

    fn claim(&self, identity: &str, ask: Ask<'_>) -> Result<Claim, String> {
        let at_ms = self.db_ms(ask.at);
        self.with(|c| {
            let mut tx = c.transaction().map_err(err)?;
            Self::key_lock(&mut tx, &format!("exona-claim:{}:{identity}", self.fingerprint))?;
            let claim = match self.who_creates(&mut tx, identity, ask)? {
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
                        &[
                            &self.fingerprint,
                            &identity,
                            &at_ms,
                            &self.holder,
                            &(at_ms + LEASE.as_millis() as i64),
                            &ask.token,
                        ],
                    )
                    .map_err(err)?;
                    Claim::Mine
                }
                Some(found) => found,
            };
            tx.commit().map_err(err)?;
            Ok(claim)
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
            let mut tx = c.transaction().map_err(err)?;
            Self::key_lock(&mut tx, &format!("exona-claim:{}:{identity}", self.fingerprint))?;
            let before: Option<String> = tx
                .query_opt(
                    &format!(
                        "SELECT scan_id FROM {} WHERE fingerprint = $1 AND identity = $2",
                        self.t("in_flight")
                    ),
                    &[&self.fingerprint, &identity],
                )
                .map_err(err)?
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
                &[
                    &self.fingerprint,
                    &identity,
                    &scan_id,
                    &at_ms,
                    &self.holder,
                    &(at_ms + LEASE.as_millis() as i64),
                ],
            )
            .map_err(err)?;
            tx.commit().map_err(err)?;
            Ok(crate::store::twin_of(before, scan_id))
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
                &[&self.fingerprint, &identity, &scan_id, &self.holder],
            )
            .map(|_| ())
            .map_err(err)
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
                    &[&self.fingerprint, &identity, &scan_id, &at_ms],
                )
                .map_err(err)?
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
                &[&self.fingerprint, &identity, &scan_id, &token],
            )
            .map(|_| ())
            .map_err(err)
        })
    }

    fn renew_leases(&self, at: SystemTime) -> Result<(), String> {
        let until = self.db_ms(at) + LEASE.as_millis() as i64;
        self.with(|c| {
            let mut tx = c.transaction().map_err(err)?;
            tx.execute(
                &format!(
                    "UPDATE {} SET lease_until_ms = $3 WHERE fingerprint = $1 AND owner = $2",
                    self.t("in_flight")
                ),
                &[&self.fingerprint, &self.holder, &until],
            )
            .map_err(err)?;
            tx.execute(
                &format!(
                    "UPDATE {} SET lease_until_ms = $3 WHERE fingerprint = $1 AND holder = $2",
                    self.t("holds")
                ),
                &[&self.fingerprint, &self.holder, &until],
            )
            .map_err(err)?;
            tx.commit().map_err(err)
        })
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
                &[&self.fingerprint, &identity, &token, &until_ms],
            )
            .map(|_| ())
            .map_err(err)
        })
    }
}

/// What the fleet's database knows of the key `fingerprint` stands for, read only (no table is
/// created, no lease taken): `exona status` with a state URL. `Ok(None)`: no store in that
/// schema yet. Times are translated to this host's clock.
pub fn snapshot(url: &str, fingerprint: &str, now: SystemTime) -> Result<Option<Snapshot>, String> {
    let store = PgStore::new(url, fingerprint)?;
    let mut client = store.config.connect(tls()?).map_err(|e| format!("{}: {}", store.shown, err(e)))?;
    let s = &store.schema;
    let exists: bool =
        client.query_one(&format!("SELECT to_regclass('{s}.meta') IS NOT NULL"), &[]).map_err(err)?.get(0);
    if !exists {
        return Ok(None);
    }
    let version: i64 = client
        .query_one(&format!("SELECT value FROM {s}.meta WHERE key = 'schema_version'"), &[])
        .map_err(err)?
        .get(0);
    if version != SCHEMA_VERSION {
        return Err(format!("schema {s} is version {version}; this library reads version {SCHEMA_VERSION}"));
    }
    store.measure_offset(&mut client)?;
    let offset = store.offset_ms.load(Ordering::Relaxed) + test_skew_ms();
    let at = |ms: i64| UNIX_EPOCH + Duration::from_millis((ms - offset).max(0) as u64);
    let db_now = unix_ms(now) + offset;
    let window = client
        .query_opt(
            &format!(
                "SELECT budget_limit, remaining, reset_ms, window_ms, informed, cooldown_ms FROM {s}.ledger
                 WHERE fingerprint = $1"
            ),
            &[&fingerprint],
        )
        .map_err(err)?
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
    let holders = client
        .query(
            &format!(
                "SELECT holder, CASE WHEN outstanding_until_ms > $2 THEN outstanding ELSE 0 END,
                        CASE WHEN reserved_until_ms > $2 THEN reserved ELSE 0 END, lease_until_ms,
                        CASE WHEN reserved_until_ms > $2 THEN expected ELSE 0 END,
                        CASE WHEN reserved_until_ms > $2 THEN queued ELSE 0 END
                 FROM {s}.holds WHERE fingerprint = $1 AND lease_until_ms > $2 ORDER BY holder"
            ),
            &[&fingerprint, &db_now],
        )
        .map_err(err)?
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
    let in_flight = client
        .query(
            &format!(
                "SELECT identity, scan_id, since_ms, owner, lease_until_ms FROM {s}.in_flight
                 WHERE fingerprint = $1 AND (scan_id <> '' OR lease_until_ms > $2) ORDER BY since_ms"
            ),
            &[&fingerprint, &db_now],
        )
        .map_err(err)?
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
    let durations = client
        .query(
            &format!("SELECT seconds FROM {s}.durations WHERE fingerprint = $1 ORDER BY observed_ms DESC"),
            &[&fingerprint],
        )
        .map_err(err)?
        .iter()
        .filter_map(|r| Duration::try_from_secs_f64(r.get::<_, f64>(0)).ok())
        .collect();
    let results: i64 = client
        .query_one(&format!("SELECT COUNT(*) FROM {s}.results WHERE fingerprint = $1"), &[&fingerprint])
        .map_err(err)?
        .get(0);
    Ok(Some(Snapshot { window, holders, in_flight, durations, results: results.max(0) as usize }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_urls_password_is_never_shown() {
        let shown = redact("postgresql://exona:s3cret-pw@db.example:5432/fleet?sslmode=require");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(shown.contains("exona:***@db.example"), "{shown}");
        let bad = PgStore::new("postgresql://exona:s3cret-pw@db.example/fleet?schema=Bad-Name", "fp")
            .err()
            .unwrap();
        assert!(!bad.contains("s3cret-pw") && bad.contains("schema"), "{bad}");
        let bad = PgStore::new("mysql://exona:s3cret-pw@db.example/fleet", "fp").err().unwrap();
        assert!(!bad.contains("s3cret-pw") && bad.contains("postgresql://"), "{bad}");
    }

    #[test]
    fn the_schema_parameter_is_ours_and_the_rest_goes_to_the_driver() {
        let (url, schema) = split_schema("postgresql://u@h/db?schema=fleet_a&sslmode=require").unwrap();
        assert_eq!(schema, "fleet_a");
        assert_eq!(url, "postgresql://u@h/db?sslmode=require");
        let (url, schema) = split_schema("postgres://u@h/db").unwrap();
        assert_eq!((url.as_str(), schema.as_str()), ("postgres://u@h/db", "exona"));
    }
}

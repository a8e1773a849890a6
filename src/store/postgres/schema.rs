//! The store's schema, created apart from its use (DESIGN.md 9.3): `exona store init` (or
//! `exona_store_init`) creates or migrates it, run by a role that may; at run time the library
//! only checks its version and needs no more than USAGE on the schema and DML on its tables.

use std::time::Duration;

use super::conn::{params, Conn, PgError};
use super::settings::Settings;

/// The schema this version writes and reads.
pub const SCHEMA_VERSION: i64 = 4;

/// The command that creates or migrates the schema a URL names, for messages.
pub fn init_command(settings: &Settings) -> String {
    format!("exona store init --state-url '{}'", settings.shown)
}

/// What `init` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Initialized {
    Created,
    Migrated { from: i64 },
    UpToDate,
}

/// Creates the schema, or migrates an older one, under a lock so that two at once are one.
pub fn init(conn: &mut Conn, settings: &Settings) -> Result<Initialized, String> {
    let s = &settings.schema;
    // DDL on a big table may take longer than a run-time statement: a minute, unbounded on the
    // server (a lock wait included), but the client still gives up then.
    let begin = "BEGIN; SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0";
    let outcome = conn.transaction_within(Duration::from_secs(60), begin, |c| {
        c.execute("SELECT pg_advisory_xact_lock(hashtextextended('exona-schema', 0))", &[])?;
        // CREATE SCHEMA IF NOT EXISTS asks for the right to create in the database even when
        // the schema exists: asked only when it does not.
        let exists = c
            .query_one("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", params![s.as_str()])?
            .get::<_, bool>(0);
        if !exists {
            c.batch(&format!("CREATE SCHEMA {s}"))?;
        }
        c.batch(&format!(
            "CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value bigint NOT NULL)"
        ))?;
        let found: Option<i64> = c
            .query_opt(&format!("SELECT value FROM {s}.meta WHERE key = 'schema_version'"), &[])?
            .map(|r| r.get(0));
        if let Some(v) = found.filter(|&v| v > SCHEMA_VERSION) {
            return Err(PgError {
                text: format!("schema {s} is version {v}, newer than this library's {SCHEMA_VERSION}"),
                code: None,
                broken: false,
            });
        }
        if found == Some(SCHEMA_VERSION) {
            return Ok(Initialized::UpToDate);
        }
        c.batch(&format!(
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
                 queued bigint NOT NULL DEFAULT 0, PRIMARY KEY (fingerprint, holder));"
        ))?;
        // Version 2: what each process's work in sight is expected to cost. Version 3: claims
        // fenced by their call's token, with their create's send time (DESIGN.md 9.1).
        // Version 4: pruning by age indexed (it ran on every connect, a scan of the table).
        c.batch(&format!(
            "ALTER TABLE {s}.holds ADD COLUMN IF NOT EXISTS expected bigint NOT NULL DEFAULT 0;
             ALTER TABLE {s}.holds ADD COLUMN IF NOT EXISTS queued bigint NOT NULL DEFAULT 0;
             ALTER TABLE {s}.in_flight ADD COLUMN IF NOT EXISTS token text NOT NULL DEFAULT '';
             ALTER TABLE {s}.in_flight ADD COLUMN IF NOT EXISTS sent_ms bigint NOT NULL DEFAULT 0;
             CREATE INDEX IF NOT EXISTS results_by_age ON {s}.results (completed_ms);
             CREATE INDEX IF NOT EXISTS in_flight_by_lease ON {s}.in_flight (lease_until_ms);"
        ))?;
        c.execute(
            &format!(
                "INSERT INTO {s}.meta (key, value) VALUES ('schema_version', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            ),
            params![SCHEMA_VERSION],
        )?;
        Ok(match found {
            None => Initialized::Created,
            Some(from) => Initialized::Migrated { from },
        })
    });
    outcome.map_err(|e| {
        let hint = match e.code.as_deref() {
            Some("42501") => format!(
                " (this role may not create or alter the schema: run `exona store init` as the \
                 owner of schema {s}, or as a role that may create in the database)"
            ),
            _ => String::new(),
        };
        format!("{}: creating the store's schema {s}: {}{hint}", settings.shown, e.text)
    })
}

/// Checks, at run time, that the schema is there and of this version; the error names the
/// command that fixes it.
pub fn check(conn: &mut Conn, settings: &Settings) -> Result<(), String> {
    let s = &settings.schema;
    let found = conn.query_opt(&format!("SELECT value FROM {s}.meta WHERE key = 'schema_version'"), &[]);
    let version: Option<i64> = match found {
        Ok(row) => row.map(|r| r.get(0)),
        // undefined_table, invalid_schema_name: nothing there yet.
        Err(e) if matches!(e.code.as_deref(), Some("42P01" | "3F000")) => None,
        Err(e) if e.code.as_deref() == Some("42501") => {
            return Err(format!(
                "{}: role {} may not read schema {s} ({}): grant it USAGE ON SCHEMA {s} and \
                 SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s}",
                settings.shown, settings.user, e.text
            ))
        }
        Err(e) => return Err(e.text),
    };
    match version {
        None => Err(format!(
            "{}: no state store in schema {s} yet: create it with `{}` (as a role that may create it)",
            settings.shown,
            init_command(settings)
        )),
        Some(v) if v < SCHEMA_VERSION => Err(format!(
            "{}: schema {s} is version {v}, this library needs {SCHEMA_VERSION}: migrate it with `{}`",
            settings.shown,
            init_command(settings)
        )),
        Some(v) if v > SCHEMA_VERSION => Err(format!(
            "{}: schema {s} is version {v}, newer than this library's {SCHEMA_VERSION}: upgrade libexona",
            settings.shown
        )),
        Some(_) => Ok(()),
    }
}

//! One connection to the database whose every wait is bounded on this side (DESIGN.md 9.3):
//! a database that stops answering (a silent network, a frozen proxy) costs a call seconds,
//! never the ~15 minutes TCP takes to give up. The driver is tokio-postgres on a runtime of
//! this connection's own (current-thread: the connection is driven only while a statement
//! waits, so it adds no thread), each wait bounded in time awake ([`crate::awake`]): a
//! process stopped while it waits finds its answer when it runs again, rather than taking
//! the database for gone.
//!
//! Pooler-safe: no startup options of ours, statements sent unnamed (`query_typed`: parse,
//! bind and execute in one round trip, which PgBouncer's transaction pooling keeps on one
//! server connection), the server's own bounds set with `SET LOCAL` inside each transaction.

use std::time::Duration;

use crate::awake::{self, Budget};

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;

use super::settings::{Host, Settings, SslMode};
use super::tls;

/// How long one statement may take, as the client sees it.
pub const STATEMENT_BOUND: Duration = Duration::from_secs(2);
/// How long a transaction may take from its BEGIN to its COMMIT.
pub const TRANSACTION_BOUND: Duration = Duration::from_secs(4);
/// How long a connection (TCP, TLS, authentication) may take unless the URL says
/// `connect_timeout`.
pub const CONNECT_BOUND: Duration = Duration::from_secs(4);
/// How long one use of the store may wait on the database in all, a reconnection included
/// (a waiter for the connection adds at most [`super::BUSY_BOUND`]): under 10 s.
pub const CALL_BOUND: Duration = Duration::from_secs(8);
/// The server's side of the same bounds, for what the client gave up on: a statement, a lock
/// wait, and a transaction left idle (a process stopped inside one frees the key's lock when
/// this lapses, not when TCP notices). A lock wait ends on the server before the client's
/// statement bound, so that it is told apart ("lock timeout": another process holds the row,
/// the store is there) from a database that does not answer: taken for the latter, a claim
/// went blind beside a stopped process's lock, and two companies were created twice
/// (`exona-bench crash-pause-pg`).
const BEGIN: &str = "BEGIN; SET LOCAL statement_timeout = 2000; SET LOCAL lock_timeout = 1500; \
                     SET LOCAL idle_in_transaction_session_timeout = 5000";

/// A statement's parameter with its type (statements are unnamed, so the types are given).
pub type Param<'a> = (&'a (dyn ToSql + Sync), Type);

/// The PostgreSQL type a Rust value is sent as.
pub trait PgType {
    const TYPE: Type;
}
impl PgType for String {
    const TYPE: Type = Type::TEXT;
}
impl PgType for &str {
    const TYPE: Type = Type::TEXT;
}
impl PgType for i64 {
    const TYPE: Type = Type::INT8;
}
impl PgType for Option<i64> {
    const TYPE: Type = Type::INT8;
}
impl PgType for f64 {
    const TYPE: Type = Type::FLOAT8;
}
impl PgType for bool {
    const TYPE: Type = Type::BOOL;
}

pub fn type_of<T: PgType>(_: &T) -> Type {
    T::TYPE
}

/// `params![a, b]`: the typed parameters of a statement.
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        &[$((&$p as &(dyn tokio_postgres::types::ToSql + Sync), $crate::store::postgres::conn::type_of(&$p))),*]
    };
}
pub(crate) use params;

/// A failure, with whether the connection is still usable (the server refused a statement)
/// or must be dropped (no answer, a broken socket).
#[derive(Debug)]
pub struct PgError {
    pub text: String,
    /// The SQLSTATE, when the server answered with an error.
    pub code: Option<String>,
    pub broken: bool,
}

/// SQLSTATE `lock_not_available`: a lock wait ended by `lock_timeout` (another session holds
/// the row or the key's lock).
const LOCK_NOT_AVAILABLE: &str = "55P03";

impl From<PgError> for String {
    /// The error's text; a lock wait is marked as contention by its SQLSTATE (the server's
    /// words follow its `lc_messages`: "Abbruch des Befehls wegen Zeitüberschreitung einer
    /// Sperre" is the same lock timeout).
    fn from(e: PgError) -> String {
        match e.code.as_deref() {
            Some(LOCK_NOT_AVAILABLE) => format!("{}{}", crate::store::CONTENDED, e.text),
            _ => e.text,
        }
    }
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The driver's error with its causes (its Display says only "db error").
fn driver_error(e: tokio_postgres::Error) -> PgError {
    let code = e.code().map(|c| c.code().to_owned());
    let broken = e.as_db_error().is_none() || e.is_closed();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    PgError { text, code, broken }
}

pub struct Conn {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    /// What is left of the transaction under way's bound.
    transaction: Option<Budget>,
    /// What is left of the store's call under way's bound (see [`CALL_BOUND`]).
    call: Option<Budget>,
    broken: bool,
}

fn driver_config(settings: &Settings, mode: tokio_postgres::config::SslMode) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    match &settings.host {
        Host::Tcp(h) => config.host(h),
        Host::Socket(dir) => config.host_path(dir),
    };
    config.port(settings.port).user(&settings.user).dbname(&settings.dbname);
    if let Some(pw) = &settings.password {
        config.password(pw);
    }
    if let Some(options) = &settings.options {
        config.options(options);
    }
    config.application_name(&settings.application_name);
    config.ssl_mode(mode);
    config.connect_timeout(settings.connect_timeout.unwrap_or(CONNECT_BOUND));
    // A peer that vanishes is noticed by the kernel within seconds, even between statements.
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(5));
    config.keepalives_interval(Duration::from_secs(2));
    config.keepalives_retries(3);
    config.tcp_user_timeout(Duration::from_secs(6));
    config
}

impl Conn {
    /// Connects, bounded by the URL's `connect_timeout` or [`CONNECT_BOUND`], and by what is
    /// left of `call`, which then bounds the statements that follow until [`Conn::end_call`].
    pub fn open(settings: &Settings, mut call: Option<Budget>) -> Result<Conn, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("a runtime for the database connection: {e}"))?;
        let first = tls::for_settings(settings)?;
        let mut bound = settings.connect_timeout.unwrap_or(CONNECT_BOUND);
        if let Some(call) = &call {
            bound = bound.min(call.left());
        }
        let mut attempt = |tls: &tls::Tls| {
            let config = driver_config(settings, tls.mode);
            let connector = tls.connector.clone();
            let (outcome, awake) = rt.block_on(awake::within(bound, config.connect(connector)));
            if let Some(call) = &mut call {
                call.spend(awake);
            }
            outcome.ok_or(())
        };
        let mut outcome = attempt(&first);
        // `allow`: plaintext first, TLS if the server would not have it (libpq's order).
        if settings.ssl_mode == SslMode::Allow && matches!(&outcome, Ok(Err(e)) if e.as_db_error().is_some())
        {
            outcome = attempt(&tls::allow_fallback(settings)?);
        }
        let (client, connection) = match outcome {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => {
                return Err(format!("{}: {}", settings.shown, explain(driver_error(e).text, &first)))
            }
            Err(_) => {
                return Err(format!(
                    "{}: no answer from the database within {:.0} s (connect_timeout)",
                    settings.shown,
                    bound.as_secs_f64()
                ))
            }
        };
        // Driven whenever a statement waits (this runtime runs its tasks inside block_on).
        rt.spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn { rt, client, transaction: None, call, broken: false })
    }

    /// Whether the connection must be dropped (no answer, or a broken socket).
    pub fn is_broken(&self) -> bool {
        self.broken || self.client.is_closed()
    }

    pub fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, PgError> {
        let bound = self.remaining();
        let work = self.client.query_typed(sql, params);
        let outcome = self.rt.block_on(awake::within(bound, work));
        self.settle(outcome, bound)
    }

    pub fn query_opt(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, PgError> {
        let mut rows = self.query(sql, params)?;
        if rows.len() > 1 {
            return Err(PgError {
                text: format!("more than one row from: {sql}"),
                code: None,
                broken: false,
            });
        }
        Ok(rows.pop())
    }

    pub fn query_one(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Row, PgError> {
        self.query_opt(sql, params)?.ok_or_else(|| PgError {
            text: format!("no row from: {sql}"),
            code: None,
            broken: false,
        })
    }

    pub fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, PgError> {
        let bound = self.remaining();
        let work = self.client.execute_typed(sql, params);
        let outcome = self.rt.block_on(awake::within(bound, work));
        self.settle(outcome, bound)
    }

    /// Statements without parameters, sent as one simple query.
    pub fn batch(&mut self, sql: &str) -> Result<(), PgError> {
        let bound = self.remaining();
        let work = self.client.batch_execute(sql);
        let outcome = self.rt.block_on(awake::within(bound, work));
        self.settle(outcome, bound)
    }

    /// Bounds the statements that follow by `limit` of time awake in all too (a store's call),
    /// until [`Conn::end_call`].
    pub fn start_call(&mut self, limit: Duration) {
        self.call = Some(Budget::new(limit));
    }

    /// The statements that follow are bounded only by their own and their transaction's bound.
    pub fn end_call(&mut self) {
        self.call = None;
    }

    fn remaining(&self) -> Duration {
        [self.transaction, self.call]
            .into_iter()
            .flatten()
            .fold(STATEMENT_BOUND, |bound, budget| bound.min(budget.left()))
    }

    /// A statement's outcome; no answer within `bound`, or a broken socket, marks the
    /// connection to be dropped.
    fn settle<T>(
        &mut self,
        (outcome, awake): (Option<Result<T, tokio_postgres::Error>>, Duration),
        bound: Duration,
    ) -> Result<T, PgError> {
        for budget in [&mut self.transaction, &mut self.call].into_iter().flatten() {
            budget.spend(awake);
        }
        match outcome {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => {
                let e = driver_error(e);
                self.broken |= e.broken;
                Err(e)
            }
            None => {
                self.broken = true;
                Err(PgError {
                    text: format!("the database did not answer within {:.1} s", bound.as_secs_f64()),
                    code: None,
                    broken: true,
                })
            }
        }
    }

    /// `work` in one transaction bounded by [`TRANSACTION_BOUND`], committed if it succeeds.
    pub fn transaction<T>(
        &mut self,
        work: impl FnOnce(&mut Conn) -> Result<T, PgError>,
    ) -> Result<T, PgError> {
        self.transaction_within(TRANSACTION_BOUND, BEGIN, work)
    }

    /// A transaction with bounds of its own (the schema's creation may take longer).
    pub fn transaction_within<T>(
        &mut self,
        bound: Duration,
        begin: &str,
        work: impl FnOnce(&mut Conn) -> Result<T, PgError>,
    ) -> Result<T, PgError> {
        self.transaction = Some(Budget::new(bound));
        let outcome = self.batch(begin).and_then(|()| {
            let value = work(self)?;
            self.batch("COMMIT")?;
            Ok(value)
        });
        if outcome.is_err() && !self.is_broken() {
            // The server refused a statement: the connection is fine once the transaction is
            // rolled back (a lock wait that timed out should not cost a new TLS handshake).
            let _ = self.batch("ROLLBACK");
        }
        self.transaction = None;
        outcome
    }
}

/// A connection error with what to do about it.
fn explain(text: String, tls: &tls::Tls) -> String {
    if text.contains("UnknownIssuer") || text.contains("BadSignature") {
        let roots = tls.roots_from.as_deref().unwrap_or("the roots given");
        return format!("{text} (the database's certificate is not signed by a CA in {roots}: give the right sslrootcert)");
    }
    if text.contains("NotValidForName") {
        return format!("{text} (the database's certificate does not name this host: connect by a name it holds, or use sslmode=verify-ca)");
    }
    if text.contains("permission denied") || text.contains("password authentication failed") {
        return format!("{text} (check the user and password, PGPASSWORD or ~/.pgpass)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lock timeout in a server's own language is contention all the same (it was told by
    /// its English words: on a German server, a claim beside a stopped process's lock went
    /// blind).
    #[test]
    fn a_lock_timeout_is_contention_by_its_code_in_any_language() {
        let german = PgError {
            text: "db error: FEHLER: Abbruch des Befehls wegen Zeitüberschreitung einer Sperre".into(),
            code: Some(LOCK_NOT_AVAILABLE.into()),
            broken: false,
        };
        assert!(String::from(german).starts_with(crate::store::CONTENDED));
        let other = PgError {
            text: "db error: ERROR: permission denied".into(),
            code: Some("42501".into()),
            broken: false,
        };
        assert!(!String::from(other).starts_with(crate::store::CONTENDED));
    }
}

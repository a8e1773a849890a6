//! A test store: a real SQLite store that stops answering while a flag is set (a database
//! restarted, a disk gone), for the store's and the calls' tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Ask, Claim, StoredResult};

/// A store that stops answering while `down` is set (a database restarted), over a real
/// SQLite store.
pub struct Switchable {
    inner: super::sqlite::SqliteStore,
    down: Arc<AtomicBool>,
}
impl Switchable {
    /// The SQLite store in `dir`, failing while `down` is set.
    pub fn open(dir: &std::path::Path, down: &Arc<AtomicBool>) -> Switchable {
        Switchable { inner: super::sqlite::SqliteStore::open(dir, "fp").unwrap(), down: down.clone() }
    }

    fn up(&self) -> Result<(), String> {
        if self.down.load(Ordering::SeqCst) {
            Err("connection refused".into())
        } else {
            Ok(())
        }
    }
}
impl crate::engine::ledger::Ledger for Switchable {
    fn transact(
        &self,
        w: i64,
        d: &mut dyn FnMut(&mut crate::engine::ledger::SharedWindow, &mut crate::engine::ledger::Holds),
    ) -> Result<(), String> {
        self.up()?;
        self.inner.transact(w, d)
    }
}
impl super::Store for Switchable {
    fn durations(&self, n: usize) -> Result<Vec<Duration>, String> {
        self.up()?;
        self.inner.durations(n)
    }
    fn record_duration(&self, a: &str, b: Duration, c: SystemTime) -> Result<(), String> {
        self.up()?;
        self.inner.record_duration(a, b, c)
    }
    fn result(&self, a: &str, b: SystemTime) -> Result<Option<StoredResult>, String> {
        self.up()?;
        self.inner.result(a, b)
    }
    fn record_result(&self, a: &str, b: &StoredResult) -> Result<(), String> {
        self.up()?;
        self.inner.record_result(a, b)
    }
    fn claim(&self, a: &str, b: Ask<'_>) -> Result<Claim, String> {
        self.up()?;
        self.inner.claim(a, b)
    }
    fn peek_claim(&self, a: &str, b: Ask<'_>) -> Result<Option<Claim>, String> {
        self.up()?;
        self.inner.peek_claim(a, b)
    }
    fn record_in_flight(&self, a: &str, b: &str, c: SystemTime) -> Result<Option<String>, String> {
        self.up()?;
        self.inner.record_in_flight(a, b, c)
    }
    fn unwatch_in_flight(&self, a: &str, b: &str) -> Result<(), String> {
        self.up()?;
        self.inner.unwatch_in_flight(a, b)
    }
    fn watched(&self, a: &str, b: &str, c: SystemTime) -> Result<bool, String> {
        self.up()?;
        self.inner.watched(a, b, c)
    }
    fn clear_in_flight(&self, a: &str, b: &str, c: &str) -> Result<(), String> {
        self.up()?;
        self.inner.clear_in_flight(a, b, c)
    }
    fn renew_leases(&self, a: SystemTime) -> Result<(), String> {
        self.up()?;
        self.inner.renew_leases(a)
    }
    fn keep_ambiguous_claim(&self, a: &str, b: &str, c: SystemTime) -> Result<(), String> {
        self.up()?;
        self.inner.keep_ambiguous_claim(a, b, c)
    }
}

//! A batch's journal (DESIGN.md 7.2): every row's state, written before and after each step,
//! in a SQLite file of its own, so that a batch reopened after a crash, a deploy or Ctrl-C
//! picks up where it was: finished rows cost nothing, created rows are resumed by scan id
//! (GET only), and only rows that never reached "creating" are created.
//!
//! Row states: queued → creating (written before the POST leaves) → created (scan id) →
//! completed | failed (the scan object kept) | error (code, message, scan id if any).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::engine::core::{Progress, Sink};
use crate::engine::task::Outcome;
use crate::error::{Code, Error};
use crate::log::{log, Level};
use crate::scan::{Scan, ScanStatus};

/// What the journal says of a row when the batch is reopened.
#[derive(Debug)]
pub enum Resume {
    /// Not seen, or never reached "creating": create it.
    Create,
    /// A crash may have left a scan of it on the server (its create was sent `age` ago, no
    /// answer was recorded): create again only when reconciling.
    Ambiguous { age: Duration },
    /// Created: wait for this scan, by id.
    Wait(String),
    /// Ended as a scan (completed or failed): its outcome again, with no request.
    Finished(Box<Outcome>),
    /// The row was journaled for another request: the rows were not added in the same order.
    Mismatch(String),
}

pub struct Journal {
    #[cfg(feature = "store")]
    conn: Mutex<rusqlite::Connection>,
    /// The exclusive lock this batch holds on the journal file for its life (DESIGN.md 8.2):
    /// a second batch on the same journal would create and write its rows a second time. An
    /// flock, so the kernel releases it when the process dies, even by kill -9; SQLite's own
    /// locks are fcntl locks, which it does not disturb.
    /// `None` once the batch is closed ([`Journal::close`]).
    #[cfg(feature = "store")]
    lock: Mutex<Option<std::fs::File>>,
    /// The first write error is logged; the batch goes on without its journal after it.
    broken: AtomicBool,
    /// Closed with its batch: rows still unwinding write nothing more (another batch may hold
    /// the journal by then).
    closed: AtomicBool,
}

#[cfg(feature = "store")]
fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

#[cfg(feature = "store")]
fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Whether two normalized request bodies ask for the same scan of the same company: equal
/// but for `max_age_days`, which only says how old a reused result may be.
fn same_request(journaled: &str, request: &str) -> bool {
    if journaled == request {
        return true;
    }
    let identity = |text: &str| {
        serde_json::from_str::<serde_json::Value>(text).ok().map(|mut v| {
            if let Some(o) = v.as_object_mut() {
                o.remove("max_age_days");
            }
            v
        })
    };
    matches!((identity(journaled), identity(request)), (Some(a), Some(b)) if a == b)
}

/// Who holds the journal, as its holder wrote it.
#[cfg(feature = "store")]
fn holder(conn: &rusqlite::Connection) -> String {
    conn.query_row("SELECT pid, host, since_ms FROM batch_holder WHERE one = 1", [], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
    })
    .map(|(pid, host, since)| {
        let since = UNIX_EPOCH + Duration::from_millis(since.max(0) as u64);
        format!("process {pid} on {host}, since {}", humantime::format_rfc3339_seconds(since))
    })
    .unwrap_or_else(|_| "another process".to_owned())
}

#[cfg(feature = "store")]
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".to_owned())
}

/// How long ago a row was written (at `ms`); unknown counts as long ago.
#[cfg(feature = "store")]
fn age(ms: Option<i64>) -> Duration {
    ms.map_or(Duration::MAX, |ms| Duration::from_millis((now_ms() - ms).max(0) as u64))
}

#[cfg(feature = "store")]
impl Journal {
    pub fn open(path: &Path) -> Result<Journal, Error> {
        let fail = |e: String| {
            Error::invalid_argument(format!("the batch journal {} cannot be used: {e}", path.display()))
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::private_files::create_dir(dir).map_err(|e| fail(e.to_string()))?;
        }
        crate::private_files::create_file(path).map_err(|e| fail(e.to_string()))?;
        let lock = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
        let conn = rusqlite::Connection::open(path).map_err(|e| fail(err(e)))?;
        match fs4::FileExt::try_lock(&lock) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                return Err(Error::invalid_argument(format!(
                    "the batch journal {} is in use by another run ({}); two runs on one journal \
                         would create and write its rows twice. Wait for it to end, or stop it",
                    path.display(),
                    holder(&conn)
                )))
            }
            Err(fs4::TryLockError::Error(e)) => return Err(fail(format!("cannot lock it ({e})"))),
        }
        conn.busy_timeout(Duration::from_secs(5)).map_err(|e| fail(err(e)))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| fail(err(e)))?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| fail(err(e)))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS batch_rows (
                 row INTEGER PRIMARY KEY, request TEXT NOT NULL, state TEXT NOT NULL,
                 scan_id TEXT, code INTEGER, message TEXT, scan_json TEXT, updated_ms INTEGER);
             CREATE TABLE IF NOT EXISTS batch_holder (
                 one INTEGER PRIMARY KEY CHECK (one = 1), pid INTEGER, host TEXT, since_ms INTEGER);",
        )
        .map_err(|e| fail(err(e)))?;
        // Who holds it, for the message a second run gets (the lock itself is the truth).
        conn.execute(
            "INSERT OR REPLACE INTO batch_holder (one, pid, host, since_ms) VALUES (1, ?1, ?2, ?3)",
            rusqlite::params![std::process::id(), host_name(), now_ms()],
        )
        .map_err(|e| fail(err(e)))?;
        Ok(Journal {
            conn: Mutex::new(conn),
            lock: Mutex::new(Some(lock)),
            broken: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        })
    }

    /// The batch is done with its journal: the file's lock is released now, not when the last
    /// row still unwinding lets go of the journal (a new batch on the same journal, opened
    /// right after, was refused "in use" by its own predecessor), and nothing more is written.
    pub fn close(&self) {
        let _writes = self.conn();
        self.closed.store(true, Ordering::SeqCst);
        drop(self.lock.lock().unwrap_or_else(|p| p.into_inner()).take());
    }

    /// The rows of `rows` (row number, normalized request body) that the journal holds for
    /// another request: a resume whose input changed, which must be refused before anything
    /// is sent (row numbers would no longer name the same companies). Options that do not
    /// change a scan's identity (`max_age_days`) may change between runs.
    pub fn changed_rows(&self, rows: &[(u64, String)]) -> Result<Vec<u64>, Error> {
        let conn = self.conn();
        let mut statement = conn
            .prepare("SELECT request FROM batch_rows WHERE row = ?1")
            .map_err(|e| Error::new(Code::Internal, format!("reading the batch journal: {e}")))?;
        let mut changed = Vec::new();
        for (row, request) in rows {
            use rusqlite::OptionalExtension;
            let journaled: Option<String> = statement
                .query_row([*row as i64], |r| r.get(0))
                .optional()
                .map_err(|e| Error::new(Code::Internal, format!("reading the batch journal: {e}")))?;
            if journaled.is_some_and(|j| !same_request(&j, request)) {
                changed.push(*row);
            }
        }
        Ok(changed)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What to do with row `row` of `request` (its normalized body), recording it as queued
    /// when it is new.
    pub fn resume(&self, row: u64, request: &str) -> Resume {
        use rusqlite::OptionalExtension;
        let found = self
            .conn()
            .query_row(
                "SELECT request, state, scan_id, code, updated_ms, scan_json FROM batch_rows WHERE row = ?1",
                [row as i64],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                    ))
                },
            )
            .optional();
        let found = match found {
            Ok(f) => f,
            Err(e) => {
                self.failed("reading a row", &err(e));
                return Resume::Create;
            }
        };
        let Some((journaled, state, scan_id, code, updated_ms, scan_json)) = found else {
            self.write(row, Some(request), "queued", None, None, None);
            return Resume::Create;
        };
        if !same_request(&journaled, request) {
            return Resume::Mismatch(journaled);
        }
        let scan = scan_json.and_then(|j| Scan::from_body(j.as_bytes(), 200, None).ok());
        match (state.as_str(), scan_id, scan) {
            ("completed", _, Some(scan)) => Resume::Finished(Box::new(Ok(scan))),
            ("failed", _, Some(scan)) => {
                Resume::Finished(Box::new(Err(crate::engine::decode::scan_failed(scan))))
            }
            ("creating", _, _) => Resume::Ambiguous { age: age(updated_ms) },
            ("error", None, _) if code == Some(Code::AmbiguousCreate as i64) => {
                Resume::Ambiguous { age: age(updated_ms) }
            }
            ("created" | "error", Some(id), _) => Resume::Wait(id),
            // Queued, or an error before any scan existed (cancelled while waiting for its
            // turn, refused input): create.
            _ => Resume::Create,
        }
    }

    /// The row's create is about to be sent.
    pub fn creating(&self, row: u64) {
        self.write(row, None, "creating", None, None, None);
    }

    pub fn created(&self, row: u64, scan_id: &str) {
        self.write(row, None, "created", Some(scan_id), None, None);
        crate::crash::point("journal_written");
    }

    pub fn ended(&self, row: u64, outcome: &Outcome) {
        match outcome {
            Ok(scan) if *scan.status() == ScanStatus::Completed => {
                self.write(row, None, "completed", Some(scan.id()), None, Some(scan.raw_json()))
            }
            Ok(scan) => self.write(row, None, "created", Some(scan.id()), None, None),
            Err(e) if e.code == Code::ScanFailed && e.scan.is_some() => {
                let scan = e.scan.as_ref().expect("checked");
                self.write(row, None, "failed", Some(scan.id()), None, Some(scan.raw_json()))
            }
            Err(e) => self.write(row, None, "error", e.scan_id.as_deref(), Some(e), None),
        }
    }

    fn write(
        &self,
        row: u64,
        request: Option<&str>,
        state: &str,
        scan_id: Option<&str>,
        error: Option<&Error>,
        scan_json: Option<&str>,
    ) {
        if self.broken.load(Ordering::Relaxed) {
            return;
        }
        let conn = self.conn();
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        let done = match request {
            Some(request) => conn.execute(
                "INSERT INTO batch_rows (row, request, state, updated_ms) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![row as i64, request, state, now_ms()],
            ),
            // A scan id once known is kept (an error after creation still names its scan).
            None => conn.execute(
                "UPDATE batch_rows SET state = ?2, scan_id = COALESCE(?3, scan_id), code = ?4,
                     message = ?5, scan_json = ?6, updated_ms = ?7 WHERE row = ?1",
                rusqlite::params![
                    row as i64,
                    state,
                    scan_id,
                    error.map(|e| e.code as i64),
                    error.map(|e| e.message.as_str()),
                    scan_json,
                    now_ms()
                ],
            ),
        };
        drop(conn);
        if let Err(e) = done {
            self.failed("writing a row", &err(e));
        }
    }
}

#[cfg(not(feature = "store"))]
impl Journal {
    pub fn open(_: &Path) -> Result<Journal, Error> {
        Err(Error::invalid_argument(
            "this build of libexona has no SQLite (feature \"store\"): no batch journal",
        ))
    }
    pub fn resume(&self, _: u64, _: &str) -> Resume {
        Resume::Create
    }
    pub fn changed_rows(&self, _: &[(u64, String)]) -> Result<Vec<u64>, Error> {
        Ok(Vec::new())
    }
    pub fn close(&self) {}
    pub fn creating(&self, _: u64) {}
    pub fn created(&self, _: u64, _: &str) {}
    pub fn ended(&self, _: u64, _: &Outcome) {}
}

impl Journal {
    fn failed(&self, what: &str, why: &str) {
        if !self.broken.swap(true, Ordering::Relaxed) {
            log(Level::Warn, || format!("batch journal not written from now on: {what} failed: {why}"));
        }
    }
}

/// A row's sink with a journal: records each step, then hands the event on.
pub struct Journaled {
    pub journal: Arc<Journal>,
    pub row: u64,
    pub inner: Arc<dyn Sink>,
    pub created: AtomicBool,
}

impl Sink for Journaled {
    fn progress(&self, event: Progress) {
        if event.creating {
            self.journal.creating(self.row);
        } else if let Some(id) = &event.scan_id {
            if !self.created.swap(true, Ordering::Relaxed) {
                self.journal.created(self.row, id);
            }
        }
        self.inner.progress(event)
    }

    fn finish(&self, outcome: Outcome) {
        self.journal.ended(self.row, &outcome);
        self.inner.finish(outcome)
    }
}

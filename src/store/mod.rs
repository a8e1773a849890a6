//! The optional state store: what one process learns that the other processes of the host,
//! and later runs, can use (DESIGN.md 7.1). Enabled only when asked (a state directory);
//! everything in it is keyed by a fingerprint of the key and base URL, never the key.
//!
//! What it holds today: observed scan durations (so a new process polls on learned
//! quantiles), completed results (a request with `max_age_days` answered with no request),
//! and scans in flight (a second process asking for the same scan waits on it instead of
//! creating a twin), and the budget ledger (the key's window shared by the host's processes,
//! so that they never 429 each other; the engine's [`Ledger`]).
//!
//! The store never fails a scan: [`Guarded`] turns every error into "not known": contention
//! (another process's long transaction) is tried again once after a short backoff; any other
//! failure bypasses the store for [`REATTACH_AFTER`], after which it is tried again, and
//! re-attached when it answers (a lock held for 2 s no longer costs a 20-hour batch its shared
//! ledger for the rest of its life). Each bypass and each re-attachment is logged at warn.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, SystemTime};

use crate::engine::ledger::{Holds, Ledger, SharedWindow};
use crate::log::{log, Level};

pub mod calls;
#[cfg(all(test, feature = "fleet"))]
mod contract;
#[cfg(feature = "fleet")]
mod postgres;
pub mod snapshot;
#[cfg(feature = "store")]
mod sqlite;
#[cfg(all(test, feature = "store"))]
mod switchable;

/// A completed scan as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResult {
    /// The scan object as received.
    pub json: String,
    pub completed_at: SystemTime,
}

/// Who creates a scan of an identity (see [`Store::claim`]). Claims are fenced by the
/// claiming call's token (DESIGN.md 9.1): "mine" means this call's, never merely this
/// process's, so one call's timeout or cancel never frees a sibling's claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// A scan of it runs: its id.
    Running(String),
    /// Another call (of this process or another) is creating it: its claim's lease holds.
    Creating,
    /// This call creates it; others wait for its scan id.
    Mine,
    /// The store did not answer (bypassed): nobody knows. Never taken for `Mine`.
    Unknown,
}

/// A row of the scans in flight as a backend reads it: a claim while `scan_id` is empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlightRow {
    pub scan_id: String,
    pub since_ms: i64,
    pub lease_until_ms: i64,
    /// The claiming call's token ('' for rows written before tokens, or handed over).
    pub token: String,
    /// When the claim's create was sent (0: not known to be sent). A claim is taken right
    /// before its create goes, so a claim of this library is a create on the wire.
    pub sent_ms: i64,
}

/// The one rule for who creates a scan of an identity, for every backend (each only fetches
/// the row in its dialect): a scan recorded since `since_ms` runs; a claim carrying `token` is
/// this call's (even lapsed: nobody took it over); a claim whose lease holds at `at_ms` is
/// another call's; a lapsed claim whose create was sent less than `settle` ago is still
/// waited on (DESIGN.md 9.1: its owner slept or died with the create on the wire, so a scan
/// may exist; taking it over once that scan would have completed lets the API's cache answer
/// with it rather than a twin); anything else (no row, a lapsed claim, a scan too old) may be
/// claimed.
pub fn who_creates(
    row: Option<&InFlightRow>,
    token: &str,
    since_ms: i64,
    at_ms: i64,
    settle: Duration,
) -> Option<Claim> {
    let settle_ms = settle.as_millis().min(i64::MAX as u128) as i64;
    match row {
        Some(r) if !r.scan_id.is_empty() && r.since_ms >= since_ms => Some(Claim::Running(r.scan_id.clone())),
        Some(r) if r.scan_id.is_empty() && !token.is_empty() && r.token == token => Some(Claim::Mine),
        Some(r) if r.scan_id.is_empty() && r.lease_until_ms > at_ms => Some(Claim::Creating),
        Some(r) if r.scan_id.is_empty() && r.sent_ms > 0 && r.sent_ms.saturating_add(settle_ms) > at_ms => {
            Some(Claim::Creating)
        }
        _ => None,
    }
}

/// The scan a row held before `scan_id` was recorded over it, when it was another scan of the
/// same identity: a twin (both exist, both paid for). For every backend.
pub fn twin_of(before: Option<String>, scan_id: &str) -> Option<String> {
    before.filter(|b| !b.is_empty() && b != scan_id)
}

/// What a claim asks: the call's token, how old a recorded scan may be (`since`), now, and how
/// long after its send a lapsed claim's create is still waited on (`settle`: the scan's likely
/// duration, the learned p90).
#[derive(Clone, Copy, Debug)]
pub struct Ask<'a> {
    pub token: &'a str,
    pub since: SystemTime,
    pub at: SystemTime,
    pub settle: Duration,
}

/// A token for one call's claims: unique across the processes and hosts sharing a store (the
/// process id, when the process first asked, and a count). Not random: a random generator
/// seeded from the calling thread's handle would leave that handle allocated on a C program's
/// own thread.
pub fn call_token() -> String {
    use std::sync::atomic::AtomicU64;
    static COUNT: AtomicU64 = AtomicU64::new(0);
    static STARTED: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    let started = STARTED
        .get_or_init(|| SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    format!("{:x}.{:x}.{n:x}", crate::process::id(), started)
}

/// What a store does; the SQLite file is the embedded implementation, a server-backed one
/// (PostgreSQL, for a fleet of hosts) can come later behind the same calls. The budget ledger
/// is the engine's [`Ledger`]: one transaction on the key's window per grant.
pub trait Store: Ledger + Send + Sync {
    /// The most recent observed durations (at most `limit`), newest first.
    fn durations(&self, limit: usize) -> Result<Vec<Duration>, String>;
    /// The same with each one's scan id (rows written before scan ids were kept are left
    /// out): what the other processes learned, handed to the engine once each.
    fn recent_durations(&self, limit: usize) -> Result<Vec<(String, Duration)>, String> {
        let _ = limit;
        Err("this store keeps no scan ids with its durations".to_owned())
    }
    /// A scan's observed duration, once per scan id (later records of it are ignored).
    fn record_duration(&self, scan_id: &str, duration: Duration, at: SystemTime) -> Result<(), String>;
    /// The newest completed result of this identity that finished at or after `since`.
    fn result(&self, identity: &str, since: SystemTime) -> Result<Option<StoredResult>, String>;
    fn record_result(&self, identity: &str, result: &StoredResult) -> Result<(), String>;
    /// In one transaction ([`who_creates`] decides): the scan of this identity in flight
    /// (recorded since `since`), else another call's claim whose lease holds at `at`, else a
    /// claim of the call `token` (written, or renewed, leased from `at`). Claims are in-flight
    /// entries without a scan id yet; a lapsed claim (its owner died or slept, on any host) is
    /// taken over.
    fn claim(&self, identity: &str, ask: Ask<'_>) -> Result<Claim, String>;
    /// What `claim` would find, taking nothing (a read, no write lock): the scan in flight,
    /// `Mine` for a claim carrying `token`, `Creating` while another call's claim's lease
    /// holds (another call of this process included); `None` when a create may claim it.
    fn peek_claim(&self, identity: &str, ask: Ask<'_>) -> Result<Option<Claim>, String>;
    /// A scan of this identity runs, and this owner polls it (the row is leased to it and
    /// renewed by its heartbeat, so that those who join the scan wait for its result here).
    /// Recorded whatever the row held (the scan exists and is paid for); returns the id of
    /// a different scan the row held, recorded meanwhile by another call: a twin.
    fn record_in_flight(
        &self,
        identity: &str,
        scan_id: &str,
        at: SystemTime,
    ) -> Result<Option<String>, String>;
    /// This owner no longer polls the scan (its call ended before the scan did): those who
    /// joined it poll it themselves.
    fn unwatch_in_flight(&self, identity: &str, scan_id: &str) -> Result<(), String>;
    /// Whether some owner whose lease holds at `at` polls this scan.
    fn watched(&self, identity: &str, scan_id: &str, at: SystemTime) -> Result<bool, String>;
    /// Ends an entry: a scan by its id; a claim (`scan_id` empty) only when it carries `token`.
    fn clear_in_flight(&self, identity: &str, scan_id: &str, token: &str) -> Result<(), String>;
    /// The heartbeat: this owner's claims and holds are leased again from `at` (DESIGN 8.1).
    fn renew_leases(&self, at: SystemTime) -> Result<(), String>;
    /// The claim of the call `token` whose create is ambiguous (sent, unanswered: a scan may
    /// exist) is kept, unrenewed, until `until`, so that a waiter reconciles instead of
    /// twinning.
    fn keep_ambiguous_claim(&self, identity: &str, token: &str, until: SystemTime) -> Result<(), String>;
}

/// Opens the store in `dir` for the key and URL that `fingerprint` stands for. `None` (with a
/// log line) when it cannot be opened: the client then works without it.
pub fn open(dir: &std::path::Path, fingerprint: &str) -> Option<Arc<Guarded>> {
    #[cfg(feature = "store")]
    {
        match sqlite::SqliteStore::open(dir, fingerprint) {
            Ok(s) => Some(Guarded::with_heartbeat(Box::new(s))),
            Err(e) => {
                log(Level::Warn, || format!("state store in {} not used: {e}", dir.display()));
                None
            }
        }
    }
    #[cfg(not(feature = "store"))]
    {
        let _ = (dir, fingerprint);
        None
    }
}

/// Opens the fleet store on the PostgreSQL database `url` names (DESIGN.md 8.4). Only the URL
/// is checked now; the database is reached on first use, and while it cannot be (down at
/// start, gone mid-run) the store is bypassed and tried again. The error names what is wrong
/// with the URL, never its password.
pub fn open_url(url: &str, fingerprint: &str) -> Result<Arc<Guarded>, String> {
    #[cfg(feature = "fleet")]
    {
        let store = postgres::PgStore::new(url, fingerprint)?;
        log(Level::Info, || format!("state store: PostgreSQL at {}", store.shown()));
        Ok(Guarded::with_heartbeat(Box::new(store)))
    }
    #[cfg(not(feature = "fleet"))]
    {
        let _ = (url, fingerprint);
        Err("this build of libexona has no fleet store (feature \"fleet\")".into())
    }
}

/// Creates the fleet store's schema in the database `url` names, or migrates an older one
/// (`exona store init`, `exona_store_init`): run once by a role that may create it, so that
/// the hosts need only DML rights (DESIGN.md 9.3). Says what it did; the error names what is
/// wrong, never a password.
pub fn init_url(url: &str) -> Result<String, String> {
    #[cfg(feature = "fleet")]
    {
        let shown = postgres::redact(url);
        let schema = postgres::settings::parse(url, &postgres::settings::Env::process())?.schema;
        Ok(match postgres::init(url)? {
            postgres::Initialized::Created => {
                format!(
                    "created the state store's schema {schema} (version {}) in {shown}",
                    postgres::SCHEMA_VERSION
                )
            }
            postgres::Initialized::Migrated { from } => format!(
                "migrated the state store's schema {schema} in {shown} from version {from} to {}",
                postgres::SCHEMA_VERSION
            ),
            postgres::Initialized::UpToDate => {
                format!(
                    "the state store's schema {schema} in {shown} is up to date (version {})",
                    postgres::SCHEMA_VERSION
                )
            }
        })
    }
    #[cfg(not(feature = "fleet"))]
    {
        let _ = url;
        Err("this build of libexona has no fleet store (feature \"fleet\")".into())
    }
}

/// What the fleet's database knows of the key `fingerprint` stands for, read only.
/// `Ok(None)`: no store in its schema yet.
pub fn snapshot_url(url: &str, fingerprint: &str) -> Result<Option<snapshot::Snapshot>, String> {
    #[cfg(feature = "fleet")]
    {
        postgres::snapshot(url, fingerprint, crate::engine::clock::wall_now())
    }
    #[cfg(not(feature = "fleet"))]
    {
        let _ = (url, fingerprint);
        Err("this build of libexona has no fleet store (feature \"fleet\")".into())
    }
}

/// `url` as messages may show it: without its password.
pub fn redact_url(url: &str) -> String {
    #[cfg(feature = "fleet")]
    {
        postgres::redact(url)
    }
    #[cfg(not(feature = "fleet"))]
    {
        let _ = url;
        "the state URL".into()
    }
}

/// Checks a state URL without connecting (what [`open_url`] would refuse).
pub fn check_url(url: &str) -> Result<(), String> {
    #[cfg(feature = "fleet")]
    {
        postgres::PgStore::new(url, "check").map(|_| ())
    }
    #[cfg(not(feature = "fleet"))]
    {
        let _ = url;
        Err("this build of libexona has no fleet store (feature \"fleet\")".into())
    }
}

/// What the store in `dir` knows of the key `fingerprint` stands for, read only (no file is
/// created or written, no lease taken). `Ok(None)`: there is no store there yet.
pub fn snapshot(dir: &std::path::Path, fingerprint: &str) -> Result<Option<snapshot::Snapshot>, String> {
    #[cfg(feature = "store")]
    {
        sqlite::snapshot(dir, fingerprint, crate::engine::clock::wall_now())
    }
    #[cfg(not(feature = "store"))]
    {
        let _ = (dir, fingerprint);
        Err("this build of libexona has no state store".into())
    }
}

/// A store whose failures cost nothing: an error bypasses the store for a while (the
/// in-memory engine goes on alone), then it is tried again.
pub struct Guarded {
    inner: Box<dyn Store>,
    broken: AtomicBool,
    /// While bypassed: when to try the store again.
    retry_at: Mutex<Option<std::time::Instant>>,
    heartbeat: Mutex<Option<Heartbeat>>,
    /// Scans created while the store was bypassed, recorded when it answers again.
    unrecorded: Mutex<Vec<(String, String, SystemTime)>>,
    /// The bypass is for contention: the store is there, another process holds its lock.
    contended: AtomicBool,
    /// Durations the other processes recorded, read by the heartbeat for the engine, and
    /// the scan ids already read (see [`Ledger::take_learned`]).
    learned: Mutex<(Vec<(String, Duration)>, std::collections::HashSet<String>)>,
}

/// Durations read by each heartbeat: more than a key's scans end in a beat.
const LEARNED_PER_BEAT: usize = 64;
/// Scan ids remembered as read; forgotten all at once past this (the engine drops any it
/// already has, by id).
const LEARNED_REMEMBERED: usize = 4096;

/// Says so when a scan recorded in flight replaced a different scan of the same identity:
/// two creates of one company, each paid for (DESIGN.md 9.1: a twin is named, never hidden).
fn name_twin(identity: &str, scan_id: &str, other: Option<&str>) {
    if let Some(other) = other {
        let site = identity.split('|').next().unwrap_or(identity);
        log(Level::Warn, || {
            format!("twin scan of {site}: {scan_id} was created while {other} already ran for it (both are paid for)")
        });
    }
}

/// How long a failed store is bypassed before it is tried again.
pub const REATTACH_AFTER: Duration = Duration::from_secs(10);
/// The wait before trying a contended store once more (SQLite already waited its busy timeout).
const CONTENTION_BACKOFF: Duration = Duration::from_millis(100);

/// How a backend marks an error that is another process holding a lock, told by the error's
/// code rather than its words (a server's messages may be in any language).
pub(crate) const CONTENDED: &str = "another session holds the lock: ";

/// Whether an error is another process holding the store (worth a second try at once).
/// (SQLite's busy errors, whose words SQLite fixes; what a backend marked [`CONTENDED`]:
/// PostgreSQL's `lock_not_available`, a `lock_timeout` on a row another session holds; and this
/// client's connection busy with another call, which is likely waiting on such a lock.)
fn is_contention(e: &str) -> bool {
    e.contains(CONTENDED)
        || e.contains("database is locked")
        || e.contains("database is busy")
        || e.contains("database table is locked")
        || e.contains("did not answer another call of this client")
}

/// The thread that renews this owner's leases every [`HEARTBEAT`] while the store lives; it
/// is stopped and joined when the store is dropped (no thread outlives its client).
struct Heartbeat {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: std::thread::JoinHandle<()>,
}

impl Guarded {
    pub fn new(inner: Box<dyn Store>) -> Guarded {
        Guarded {
            inner,
            broken: AtomicBool::new(false),
            retry_at: Mutex::new(None),
            heartbeat: Mutex::new(None),
            unrecorded: Mutex::new(Vec::new()),
            contended: AtomicBool::new(false),
            learned: Mutex::new(Default::default()),
        }
    }

    /// The store with its heartbeat running.
    pub fn with_heartbeat(inner: Box<dyn Store>) -> Arc<Guarded> {
        let store = Arc::new(Guarded::new(inner));
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let (weak, signal) = (Arc::downgrade(&store), Arc::clone(&stop));
        let spawned =
            std::thread::Builder::new().name("exona-lease".into()).spawn(move || beat(weak, signal));
        match spawned {
            Ok(thread) => {
                *store.heartbeat.lock().unwrap_or_else(|p| p.into_inner()) = Some(Heartbeat { stop, thread })
            }
            // Without it, leases lapse while the process lives: others take its claims over
            // after a lease (at worst a twin), never a wait without end.
            Err(e) => log(Level::Warn, || format!("state store: no lease heartbeat ({e})")),
        }
        store
    }

    fn run<T>(&self, what: &str, f: impl FnMut(&dyn Store) -> Result<T, String>) -> Option<T> {
        self.run_with(what, false, f)
    }

    /// `run`, asked even while the store is bypassed when `always`.
    fn run_with<T>(
        &self,
        what: &str,
        always: bool,
        mut f: impl FnMut(&dyn Store) -> Result<T, String>,
    ) -> Option<T> {
        if self.broken.load(Ordering::Relaxed) && !always {
            let mut retry_at = self.retry_at.lock().unwrap_or_else(|p| p.into_inner());
            match *retry_at {
                Some(at) if std::time::Instant::now() < at => return None,
                // One caller tries; the others go on without the store until it answers.
                _ => *retry_at = Some(std::time::Instant::now() + REATTACH_AFTER),
            }
        }
        let mut outcome = f(&*self.inner);
        if matches!(&outcome, Err(e) if is_contention(e)) {
            std::thread::sleep(CONTENTION_BACKOFF);
            outcome = f(&*self.inner);
        }
        match outcome {
            Ok(v) => {
                if self.broken.swap(false, Ordering::Relaxed) {
                    log(Level::Warn, || "state store re-attached: it answers again".to_owned());
                    self.record_unrecorded();
                }
                Some(v)
            }
            Err(e) => {
                self.contended.store(is_contention(&e), Ordering::Relaxed);
                let was = self.broken.swap(true, Ordering::Relaxed);
                *self.retry_at.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(std::time::Instant::now() + REATTACH_AFTER);
                if !was {
                    log(Level::Warn, || {
                        format!(
                            "state store bypassed (tried again every {} s): {what} failed: {e}",
                            REATTACH_AFTER.as_secs()
                        )
                    });
                }
                None
            }
        }
    }

    pub fn durations(&self, limit: usize) -> Vec<Duration> {
        self.run("reading durations", |s| s.durations(limit)).unwrap_or_default()
    }

    /// The key's recorded durations for a new process's model (at most `limit`): from now on
    /// the heartbeat hands the engine only durations recorded after these.
    pub fn seed_durations(&self, limit: usize) -> Vec<Duration> {
        let read = self.durations(limit);
        if let Some(recent) = self.run("reading durations", |s| s.recent_durations(LEARNED_PER_BEAT)) {
            let mut learned = self.learned.lock().unwrap_or_else(|p| p.into_inner());
            learned.1.extend(recent.into_iter().map(|(id, _)| id));
        }
        read
    }

    /// The heartbeat's read of what the other processes learned (their scans' durations),
    /// kept for the engine's next [`Ledger::take_learned`]: the engine never waits on it.
    fn read_learned(&self) {
        let Some(recent) = self.run("reading durations", |s| s.recent_durations(LEARNED_PER_BEAT)) else {
            return;
        };
        let mut learned = self.learned.lock().unwrap_or_else(|p| p.into_inner());
        let (inbox, seen) = &mut *learned;
        if seen.len() > LEARNED_REMEMBERED {
            seen.clear();
        }
        for (id, duration) in recent.into_iter().rev() {
            if seen.insert(id.clone()) {
                inbox.push((id, duration));
            }
        }
    }
    pub fn record_duration(&self, scan_id: &str, duration: Duration, at: SystemTime) {
        self.run("recording a duration", |s| s.record_duration(scan_id, duration, at));
    }
    pub fn result(&self, identity: &str, since: SystemTime) -> Option<StoredResult> {
        self.run("reading a result", |s| s.result(identity, since)).flatten()
    }
    pub fn record_result(&self, identity: &str, result: &StoredResult) {
        self.run("recording a result", |s| s.record_result(identity, result));
    }
    /// A store that does not answer (down, unreadable) answers `Unknown`, never `Mine`: the
    /// caller may create as without a store, and remembers that it did so blind. A store that
    /// another process holds (its lock: a process stopped inside a transaction holds it for as
    /// long as it is stopped) answers `Creating`: the call waits and asks again rather than
    /// create blind beside the others, who are as blind (a twin, seen in `exona-bench
    /// crash-pause`). So a claim is asked even while the store is bypassed for contention.
    pub fn claim(&self, identity: &str, ask: Ask<'_>) -> Claim {
        let always = self.contended.load(Ordering::Relaxed);
        let mut contended = false;
        let outcome = self.run_with("claiming a scan to create", always, |s| {
            let answer = s.claim(identity, ask);
            contended = matches!(&answer, Err(e) if is_contention(e));
            answer
        });
        match outcome {
            Some(claim) => claim,
            None if contended => Claim::Creating,
            None => Claim::Unknown,
        }
    }
    /// `None` when a create may claim it; `Some(Unknown)` when the store did not answer.
    pub fn peek_claim(&self, identity: &str, ask: Ask<'_>) -> Option<Claim> {
        self.run("reading claims", |s| s.peek_claim(identity, ask)).unwrap_or(Some(Claim::Unknown))
    }
    /// The heartbeat: tried at every beat even while the store is bypassed (it is the one
    /// use that must not wait for the bypass to end: a live process whose leases lapse loses
    /// its claims to others, who then create twins). It re-attaches the store when it answers.
    pub fn renew_leases(&self, at: SystemTime) {
        if self.broken.load(Ordering::Relaxed) {
            *self.retry_at.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        self.run("renewing leases", |s| s.renew_leases(at));
    }
    pub fn keep_ambiguous_claim(&self, identity: &str, token: &str, until: SystemTime) {
        self.run("keeping an ambiguous create's claim", |s| s.keep_ambiguous_claim(identity, token, until));
    }
    pub fn unwatch_in_flight(&self, identity: &str, scan_id: &str) {
        self.run("handing over a scan in flight", |s| s.unwatch_in_flight(identity, scan_id));
    }
    /// A store that fails says no: the caller then polls the API itself.
    pub fn watched(&self, identity: &str, scan_id: &str, at: SystemTime) -> bool {
        self.run("reading scans in flight", |s| s.watched(identity, scan_id, at)).unwrap_or(false)
    }
    /// Records a scan in flight. While the store is bypassed the record waits here and is
    /// written when it answers again (before anything else is read from it), so that a scan
    /// created blind is known to the others from then on. A different scan found in the row
    /// (recorded meanwhile by another call) is a twin: named in the log.
    pub fn record_in_flight(&self, identity: &str, scan_id: &str, at: SystemTime) {
        match self.run("recording a scan in flight", |s| s.record_in_flight(identity, scan_id, at)) {
            Some(twin) => name_twin(identity, scan_id, twin.as_deref()),
            None => self.unrecorded.lock().unwrap_or_else(|p| p.into_inner()).push((
                identity.to_owned(),
                scan_id.to_owned(),
                at,
            )),
        }
    }
    pub fn clear_in_flight(&self, identity: &str, scan_id: &str, token: &str) {
        self.unrecorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(i, s, _)| !(i == identity && s == scan_id));
        self.run("clearing a scan in flight", |s| s.clear_in_flight(identity, scan_id, token));
    }

    /// Writes the scans recorded while the store was bypassed (see `record_in_flight`).
    fn record_unrecorded(&self) {
        let pending = std::mem::take(&mut *self.unrecorded.lock().unwrap_or_else(|p| p.into_inner()));
        for (identity, scan_id, at) in pending {
            match self.inner.record_in_flight(&identity, &scan_id, at) {
                Ok(twin) => name_twin(&identity, &scan_id, twin.as_deref()),
                Err(_) => {
                    self.unrecorded.lock().unwrap_or_else(|p| p.into_inner()).push((identity, scan_id, at))
                }
            }
        }
    }

    /// Whether the store is bypassed now (its last use failed; it is tried again later).
    pub fn is_bypassed(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let Some(heartbeat) = self.heartbeat.get_mut().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let (flag, wake) = &*heartbeat.stop;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
        // The heartbeat may hold the last reference itself for a moment: it ends on its own.
        // (A thread-local flag, not `thread::current()`: on a C program's own thread that
        // allocates a handle std never frees, which valgrind reports.)
        if !IN_HEARTBEAT.with(|h| h.get()) {
            let _ = heartbeat.thread.join();
        }
    }
}

thread_local! {
    /// True on a heartbeat thread.
    static IN_HEARTBEAT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The heartbeat's loop: renew, then sleep until the next beat or until stopped.
fn beat(store: Weak<Guarded>, stop: Arc<(Mutex<bool>, Condvar)>) {
    IN_HEARTBEAT.with(|h| h.set(true));
    let (flag, wake) = &*stop;
    let mut stopped = flag.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let (guard, _) = wake.wait_timeout(stopped, HEARTBEAT).unwrap_or_else(|p| p.into_inner());
        stopped = guard;
        if *stopped {
            return;
        }
        drop(stopped);
        match store.upgrade() {
            Some(store) => {
                store.renew_leases(crate::engine::clock::wall_now());
                store.read_learned();
            }
            None => return,
        }
        stopped = flag.lock().unwrap_or_else(|p| p.into_inner());
    }
}

/// The ledger bypassed like the rest when it fails (a full disk, a database gone): logged once,
/// and the governor decides alone until it answers again. A ledger another process holds
/// (stopped inside its transaction) is different: it answers [`HELD`](crate::engine::ledger::HELD), asked again
/// even while bypassed, and the governor grants nothing until it answers, since a decision
/// made alone beside processes that share the window spends their budget (429s seen in
/// `exona-bench crash-pause`).
impl Ledger for Guarded {
    fn transact(
        &self,
        wall_ms: i64,
        decide: &mut dyn FnMut(&mut SharedWindow, &mut Holds),
    ) -> Result<(), String> {
        // Tried again on contention only if the first attempt never reached `decide`: a
        // decision runs once (a second run would count its grant twice).
        let decided = std::cell::Cell::new(false);
        let mut once = |w: &mut SharedWindow, h: &mut Holds| {
            decided.set(true);
            decide(w, h)
        };
        let always = self.contended.load(Ordering::Relaxed);
        let mut held = false;
        let outcome = self.run_with("the budget ledger", always, |s| {
            if decided.get() {
                return Err("the decision was made; its transaction did not commit".to_owned());
            }
            let answer = s.transact(wall_ms, &mut once);
            held = matches!(&answer, Err(e) if is_contention(e));
            answer
        });
        match outcome {
            Some(()) => Ok(()),
            None if held => Err(crate::engine::ledger::HELD.to_owned()),
            None => Err("bypassed".to_owned()),
        }
    }

    fn peek(&self, wall_ms: i64, read: &mut dyn FnMut(&SharedWindow)) -> Result<(), String> {
        self.run("reading the budget ledger", |s| s.peek(wall_ms, read)).ok_or_else(|| "bypassed".to_owned())
    }

    fn created_between(&self, from_wall_ms: i64, to_wall_ms: i64) -> Result<u32, String> {
        self.run("reading the key's history", |s| s.created_between(from_wall_ms, to_wall_ms))
            .ok_or_else(|| "bypassed".to_owned())
    }

    /// What the heartbeat read since the last call (no I/O here: the engine asks under its
    /// lock). This process's own durations are recorded when its calls end
    /// (`record_duration`), so publishing is the store's already.
    fn take_learned(&self) -> Vec<(String, Duration)> {
        std::mem::take(&mut self.learned.lock().unwrap_or_else(|p| p.into_inner()).0)
    }
}

/// The store's name for a key at a base URL: a SHA-256 of both (with a label), so the store
/// can keep every key of the host apart without ever holding one.
pub fn fingerprint(api_key: &str, base_url: &str) -> String {
    #[cfg(feature = "store")]
    {
        let mut input = Vec::with_capacity(api_key.len() + base_url.len() + 32);
        input.extend_from_slice(b"libexona state store v1\0");
        input.extend_from_slice(api_key.as_bytes());
        input.push(0);
        input.extend_from_slice(base_url.as_bytes());
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
        zeroize::Zeroize::zeroize(&mut input);
        digest.as_ref().iter().take(16).map(|b| format!("{b:02x}")).collect()
    }
    #[cfg(not(feature = "store"))]
    {
        let _ = (api_key, base_url);
        String::new()
    }
}

/// A scan's identity by the API's cache rules (exona-api.md "cached or new"): the website,
/// lower-cased without trailing slashes, and whether field citations were asked for.
pub fn identity(website: &str, citations: bool) -> String {
    let site = website.trim_end_matches('/').to_ascii_lowercase();
    format!("{site}|citations={}", citations as u8)
}

/// How long a scan recorded in flight is trusted to still be running: scans take minutes, so
/// an entry older than this belongs to a process that died before clearing it.
pub const IN_FLIGHT_TTL: Duration = Duration::from_secs(30 * 60);
/// How long an owner's lease lasts without renewal (DESIGN.md 8.1): a process killed while it
/// held a claim or a hold frees it within this, on any host (no `kill(pid, 0)`).
pub const LEASE: Duration = Duration::from_secs(20);
/// How often a live owner renews its leases (a quarter of the lease: three beats may be late,
/// say behind a busy disk, before it loses anything).
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long the claim of an ambiguous create (sent, unanswered) is kept for reconciliation:
/// the longest plausible scan (120 s) and a fifth more, after which a twin it created has
/// completed and a waiter's create with max_age_days is answered with it, not a new scan.
pub const AMBIGUOUS_HOLD: Duration = Duration::from_secs(144);

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails every call with its message: "disk I/O error" (gone), "database is locked" (held).
    struct Failing(&'static str);
    impl Ledger for Failing {
        fn transact(&self, _: i64, _: &mut dyn FnMut(&mut SharedWindow, &mut Holds)) -> Result<(), String> {
            Err(self.0.into())
        }
    }
    impl Store for Failing {
        fn durations(&self, _: usize) -> Result<Vec<Duration>, String> {
            Err(self.0.into())
        }
        fn record_duration(&self, _: &str, _: Duration, _: SystemTime) -> Result<(), String> {
            Err(self.0.into())
        }
        fn result(&self, _: &str, _: SystemTime) -> Result<Option<StoredResult>, String> {
            Err(self.0.into())
        }
        fn record_result(&self, _: &str, _: &StoredResult) -> Result<(), String> {
            Err(self.0.into())
        }
        fn peek_claim(&self, _: &str, _: Ask<'_>) -> Result<Option<Claim>, String> {
            Err(self.0.into())
        }
        fn record_in_flight(&self, _: &str, _: &str, _: SystemTime) -> Result<Option<String>, String> {
            Err(self.0.into())
        }
        fn unwatch_in_flight(&self, _: &str, _: &str) -> Result<(), String> {
            Err(self.0.into())
        }
        fn watched(&self, _: &str, _: &str, _: SystemTime) -> Result<bool, String> {
            Err(self.0.into())
        }
        fn claim(&self, _: &str, _: Ask<'_>) -> Result<Claim, String> {
            Err(self.0.into())
        }
        fn renew_leases(&self, _: SystemTime) -> Result<(), String> {
            Err(self.0.into())
        }
        fn keep_ambiguous_claim(&self, _: &str, _: &str, _: SystemTime) -> Result<(), String> {
            Err(self.0.into())
        }
        fn clear_in_flight(&self, _: &str, _: &str, _: &str) -> Result<(), String> {
            Err(self.0.into())
        }
    }

    /// Fails while `failing` is set, like a disk that filled and was freed.
    /// Its ledger, when `failing`, decides and then fails as a commit that met a lock would.
    struct Flaky {
        failing: Arc<AtomicBool>,
        calls: Arc<std::sync::atomic::AtomicU32>,
    }
    impl Ledger for Flaky {
        fn transact(
            &self,
            _: i64,
            decide: &mut dyn FnMut(&mut SharedWindow, &mut Holds),
        ) -> Result<(), String> {
            decide(&mut SharedWindow::default(), &mut Holds::default());
            if self.failing.load(Ordering::SeqCst) {
                return Err("database is locked".into());
            }
            Ok(())
        }
    }
    impl Store for Flaky {
        fn durations(&self, _: usize) -> Result<Vec<Duration>, String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.failing.load(Ordering::SeqCst) {
                Err("database is locked".into())
            } else {
                Ok(vec![Duration::from_secs(1)])
            }
        }
        fn record_duration(&self, _: &str, _: Duration, _: SystemTime) -> Result<(), String> {
            Ok(())
        }
        fn result(&self, _: &str, _: SystemTime) -> Result<Option<StoredResult>, String> {
            Ok(None)
        }
        fn record_result(&self, _: &str, _: &StoredResult) -> Result<(), String> {
            Ok(())
        }
        fn peek_claim(&self, _: &str, _: Ask<'_>) -> Result<Option<Claim>, String> {
            Ok(None)
        }
        fn record_in_flight(&self, _: &str, _: &str, _: SystemTime) -> Result<Option<String>, String> {
            Ok(None)
        }
        fn unwatch_in_flight(&self, _: &str, _: &str) -> Result<(), String> {
            Ok(())
        }
        fn watched(&self, _: &str, _: &str, _: SystemTime) -> Result<bool, String> {
            Ok(false)
        }
        fn claim(&self, _: &str, _: Ask<'_>) -> Result<Claim, String> {
            Ok(Claim::Mine)
        }
        fn renew_leases(&self, _: SystemTime) -> Result<(), String> {
            Ok(())
        }
        fn keep_ambiguous_claim(&self, _: &str, _: &str, _: SystemTime) -> Result<(), String> {
            Ok(())
        }
        fn clear_in_flight(&self, _: &str, _: &str, _: &str) -> Result<(), String> {
            Ok(())
        }
    }

    #[test]
    fn a_store_that_answers_again_is_re_attached_and_contention_is_tried_twice() {
        // The outside check: a lock held for 2 s disabled the store for the rest of the process.
        let failing = Arc::new(AtomicBool::new(true));
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let g = Guarded::new(Box::new(Flaky { failing: failing.clone(), calls: calls.clone() }));
        assert!(g.durations(10).is_empty());
        assert!(g.is_bypassed());
        assert_eq!(calls.load(Ordering::SeqCst), 2, "contention is tried again once");
        assert!(g.durations(10).is_empty(), "bypassed until the retry time");
        assert_eq!(calls.load(Ordering::SeqCst), 2, "not asked while bypassed");
        failing.store(false, Ordering::SeqCst);
        // The retry time comes (set it to now rather than wait REATTACH_AFTER).
        *g.retry_at.lock().unwrap() = Some(std::time::Instant::now());
        assert_eq!(g.durations(10), vec![Duration::from_secs(1)]);
        assert!(!g.is_bypassed(), "re-attached");
    }

    #[test]
    fn a_ledger_decision_runs_once_even_when_its_commit_meets_a_lock() {
        let failing = Arc::new(AtomicBool::new(true));
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let g = Guarded::new(Box::new(Flaky { failing, calls }));
        let mut runs = 0;
        assert!(g.transact(0, &mut |_, _| runs += 1).is_err());
        assert_eq!(runs, 1, "a grant decided twice would be counted twice");
    }

    #[test]
    fn a_failing_store_is_bypassed_not_fatal() {
        let g = Guarded::new(Box::new(Failing("disk I/O error")));
        assert!(g.durations(10).is_empty());
        assert!(g.is_bypassed());
        assert_eq!(g.result("x", SystemTime::UNIX_EPOCH), None);
        g.record_duration("scn_1", Duration::from_secs(1), SystemTime::now());
        let t = SystemTime::now();
        // Unknown, never Mine (DESIGN.md 9.1): the caller may create blind, and knows it did.
        let ask = Ask { token: "tok", since: t, at: t, settle: Duration::ZERO };
        assert_eq!(g.claim("x", ask), Claim::Unknown, "a broken store's answer taken for mine");
        assert_eq!(g.peek_claim("x", ask), Some(Claim::Unknown));
        assert!(g.transact(0, &mut |_, _| ()).is_err(), "the governor decides alone");
    }

    /// A store held by another process (a process stopped inside a transaction holds SQLite's
    /// lock) makes a claim wait, never a blind create; only a store that does not answer at
    /// all lets the caller create blind. Asked again while bypassed for contention.
    #[test]
    fn a_held_store_makes_a_claim_wait_and_only_a_gone_one_goes_blind() {
        let t = SystemTime::now();
        let ask = Ask { token: "tok", since: t, at: t, settle: Duration::ZERO };
        let held = Guarded::new(Box::new(Failing("database is locked")));
        assert_eq!(held.claim("x", ask), Claim::Creating, "a blind create beside a held store");
        assert!(held.is_bypassed());
        assert_eq!(held.claim("x", ask), Claim::Creating, "asked again while bypassed for contention");
        let gone = Guarded::new(Box::new(Failing("disk I/O error")));
        assert_eq!(gone.claim("x", ask), Claim::Unknown);
    }

    /// The ledger of a held store says so (the governor then grants nothing), asked again
    /// while bypassed for contention; a gone one lets the governor decide alone. PostgreSQL's
    /// lock timeout on the key's row is a hold too (marked by its SQLSTATE, in any language).
    #[test]
    fn a_held_ledger_says_held_and_a_gone_one_bypassed() {
        let mut decide = |_: &mut SharedWindow, _: &mut Holds| {};
        let pg_lock_timeout: &'static str =
            format!("{CONTENDED}Abbruch des Befehls wegen Zeitüberschreitung einer Sperre").leak();
        for locked in ["database is locked", pg_lock_timeout] {
            let held = Guarded::new(Box::new(Failing(locked)));
            assert_eq!(
                held.transact(0, &mut decide),
                Err(crate::engine::ledger::HELD.to_owned()),
                "{locked}"
            );
            assert!(held.is_bypassed());
            assert_eq!(
                held.transact(0, &mut decide),
                Err(crate::engine::ledger::HELD.to_owned()),
                "asked again"
            );
        }
        let gone = Guarded::new(Box::new(Failing("disk I/O error")));
        assert_eq!(gone.transact(0, &mut decide), Err("bypassed".to_owned()));
    }

    /// The rule every backend shares: a claim is this call's only by its token.
    #[test]
    fn who_creates_fences_claims_by_the_calls_token() {
        let claim = |token: &str, lease_until_ms, sent_ms| InFlightRow {
            scan_id: String::new(),
            since_ms: 0,
            lease_until_ms,
            token: token.into(),
            sent_ms,
        };
        let w = who_creates;
        assert_eq!(w(None, "a", 0, 10, Duration::ZERO), None);
        assert_eq!(w(Some(&claim("a", 20, 0)), "a", 0, 10, Duration::ZERO), Some(Claim::Mine));
        assert_eq!(
            w(Some(&claim("a", 5, 0)), "a", 0, 10, Duration::ZERO),
            Some(Claim::Mine),
            "lapsed, not taken over"
        );
        assert_eq!(
            w(Some(&claim("b", 20, 0)), "a", 0, 10, Duration::ZERO),
            Some(Claim::Creating),
            "a sibling's"
        );
        assert_eq!(w(Some(&claim("b", 5, 0)), "a", 0, 10, Duration::ZERO), None, "lapsed: taken over");
        assert_eq!(
            w(Some(&claim("", 20, 0)), "", 0, 10, Duration::ZERO),
            Some(Claim::Creating),
            "no token is no one's"
        );
        // Lapsed with its create sent at 2: waited on until its scan would have completed.
        assert_eq!(
            w(Some(&claim("b", 5, 2)), "a", 0, 10, Duration::from_millis(9)),
            Some(Claim::Creating),
            "a scan may exist"
        );
        assert_eq!(
            w(Some(&claim("b", 5, 2)), "a", 0, 11, Duration::from_millis(9)),
            None,
            "it would have completed: taken over"
        );
        let running = InFlightRow {
            scan_id: "scn_1".into(),
            since_ms: 3,
            lease_until_ms: 0,
            token: "a".into(),
            sent_ms: 0,
        };
        assert_eq!(w(Some(&running), "b", 0, 10, Duration::ZERO), Some(Claim::Running("scn_1".into())));
        assert_eq!(w(Some(&running), "b", 4, 10, Duration::ZERO), None, "too old to trust");
    }

    /// A scan created while the store was bypassed is recorded when it answers again, so that
    /// the others join it instead of creating a twin.
    #[cfg(feature = "store")]
    #[test]
    fn a_scan_created_blind_is_recorded_when_the_store_answers_again() {
        let dir = std::env::temp_dir().join(format!("exona-blind-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let down = Arc::new(AtomicBool::new(true));
        let g = Guarded::new(Box::new(switchable::Switchable::open(&dir, &down)));
        let now = SystemTime::now();
        let ask =
            Ask { token: "other", since: now - Duration::from_secs(60), at: now, settle: Duration::ZERO };
        assert!(g.durations(1).is_empty(), "down");
        g.record_in_flight("acme|citations=0", "scn_blind", now);
        down.store(false, Ordering::SeqCst);
        // The heartbeat tries at once, bypass or not, and re-attaches the store.
        g.renew_leases(SystemTime::now());
        assert!(!g.is_bypassed(), "the heartbeat did not re-attach the store");
        assert_eq!(
            g.peek_claim("acme|citations=0", ask),
            Some(Claim::Running("scn_blind".into())),
            "the blind scan was not recorded"
        );
        drop(g);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn identity_follows_the_api_cache_rules() {
        assert_eq!(identity("https://acme.ai/", false), identity("https://ACME.ai", false));
        assert_ne!(identity("https://acme.ai", false), identity("https://acme.ai", true));
    }
}

//! The budget ledger: a key's window shared by every process that uses the key, so that the
//! governors of several processes grant from one budget instead of each spending it blind
//! (DESIGN.md 7.1). The engine says what it needs here; the state store implements it
//! (src/store/ledger.rs), and a server-backed store could later.
//!
//! The governor runs its usual decision inside one ledger transaction: it reads the shared
//! window, decides, and writes the window back together with its own holds (grants still out,
//! polls promised to its admitted scans). Other processes' holds count against the budget until
//! they expire, so a process killed between a grant and its answer holds nothing for long.

use std::time::Duration;

/// The shared state of a key's window, in wall-clock milliseconds since the Unix epoch (the
/// one clock the processes of a host have in common).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharedWindow {
    /// False until some process has written the key's window: the governor then starts from
    /// its own state.
    pub known: bool,
    pub limit: u32,
    /// The smallest `Remaining` seen for the current window.
    pub remaining: u32,
    /// When the current window ends.
    pub reset_wall_ms: i64,
    /// The server's `X-RateLimit-Reset` of the current window, and of the last one that ended.
    pub reset_unix: Option<u64>,
    pub ended_unix: Option<u64>,
    /// The window's length as learned (the documented hour until then).
    pub window_ms: u64,
    /// Whether a response has told the budget of the current window.
    pub informed: bool,
    /// The key is held until then after a 429.
    pub cooldown_wall_ms: i64,
    /// The last grant by any process (low-budget pacing spaces grants host-wide).
    pub last_grant_wall_ms: Option<i64>,
    /// Holds of the other processes that have not expired (read only).
    pub others_outstanding: u32,
    pub others_reserved: u32,
    /// What the other processes' work in sight is expected to cost (read only): polls their
    /// running scans will send, and requests their waiting creates will need.
    pub others_expected: u32,
    pub others_queued: u32,
}

/// A store of shared windows. `transact` runs `decide` in one transaction on the key's row:
/// no other process reads or writes the row between the read and the write.
pub trait Ledger: Send + Sync {
    /// Reads the window at `wall_ms`, lets `decide` change it, writes it back with this
    /// process's holds as `decide` left them (`mine`). Returns an error (and writes nothing)
    /// when the transaction cannot be made: [`HELD`] when another process holds the ledger
    /// (the governor then grants nothing until it answers), anything else when the ledger is
    /// gone (the governor then decides alone).
    fn transact(
        &self,
        wall_ms: i64,
        decide: &mut dyn FnMut(&mut SharedWindow, &mut Holds),
    ) -> Result<(), String>;

    /// Reads the window at `wall_ms` (with the other processes' fresh holds) without writing,
    /// and so without the write lock: for status reads (a batch's progress, every 200 ms),
    /// which must never queue behind, or hold up, another process's decision. A ledger
    /// without a read-only view says so; the governor then answers from what it knows.
    fn peek(&self, wall_ms: i64, read: &mut dyn FnMut(&SharedWindow)) -> Result<(), String> {
        let _ = (wall_ms, read);
        Err("this ledger has no read-only view".to_owned())
    }

    /// How many of the key's scans were created in `[from_wall_ms, to_wall_ms)`, by any process
    /// of this run or of earlier ones, as the ledger's history has them: the scans seen to end,
    /// dated by their end less their duration (a scan still running is not in it yet). A ledger
    /// without a history says so.
    fn created_between(&self, from_wall_ms: i64, to_wall_ms: i64) -> Result<u32, String> {
        let _ = (from_wall_ms, to_wall_ms);
        Err("this ledger keeps no history".to_owned())
    }

    /// Durations of the key's scans that the other processes learned and this one has not
    /// been handed yet (scan id, duration), each once: a process learns from every completion
    /// on the key, not from its own alone (DESIGN.md 9.4). Never waits on I/O: a store hands
    /// what its heartbeat read.
    fn take_learned(&self) -> Vec<(String, Duration)> {
        Vec::new()
    }

    /// This process learned that `scan_id` took `duration`, for the others' [`take_learned`]
    /// (a store records it itself, when the call ends).
    ///
    /// [`take_learned`]: Ledger::take_learned
    fn publish_learned(&self, scan_id: &str, duration: Duration) {
        let _ = (scan_id, duration);
    }
}

/// The error of a ledger that another process holds: one stopped (SIGSTOP, a frozen
/// container) inside its transaction keeps SQLite's write lock, or a row lock until the
/// server's timeouts end its session, for as long as it is stopped.
pub const HELD: &str = "the budget ledger is held by another process";

/// One process's holds on a key's budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Holds {
    /// Grants whose response has not been seen.
    pub outstanding: u32,
    /// Polls promised to this process's admitted scans.
    pub reserved: u32,
    /// Polls this process's running scans are expected to send (fewer than promised, as a
    /// rule: a promise covers the longest plausible scan).
    pub expected: u32,
    /// Requests this process's waiting creates are expected to need (their POSTs and polls).
    pub queued: u32,
}

/// How long another process's grants count without news from it: longer than any request's
/// attempt timeout, so a live process's grants never lapse while their answers are out.
pub const OUTSTANDING_TTL: Duration = Duration::from_secs(120);
/// How long another process's reservations count without news from it. A live process writes
/// at each of its requests; one killed holds its scans' polls for this long at most.
pub const RESERVED_TTL: Duration = Duration::from_secs(900);

/// Maps the engine's monotonic time to the wall clock the ledger uses, from one anchor taken
/// when the ledger was attached (drift over a process's life is far below a window's length).
#[derive(Clone, Copy, Debug)]
pub struct WallAnchor {
    pub monotonic: Duration,
    pub wall_ms: i64,
}

impl WallAnchor {
    pub fn now(monotonic: Duration) -> WallAnchor {
        let wall = super::clock::wall_now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        WallAnchor { monotonic, wall_ms: wall }
    }

    pub fn to_wall(self, monotonic: Duration) -> i64 {
        if monotonic >= self.monotonic {
            self.wall_ms + (monotonic - self.monotonic).as_millis() as i64
        } else {
            self.wall_ms - (self.monotonic - monotonic).as_millis() as i64
        }
    }

    /// The monotonic time of `wall_ms` (never before zero).
    pub fn to_monotonic(self, wall_ms: i64) -> Duration {
        let delta = wall_ms - self.wall_ms;
        if delta >= 0 {
            self.monotonic + Duration::from_millis(delta as u64)
        } else {
            self.monotonic.saturating_sub(Duration::from_millis(delta.unsigned_abs()))
        }
    }
}

/// A ledger in memory, shared by the governors of several "processes" inside one program: how
/// tests run processes sharing a key on virtual time (the state store is the real one).
#[derive(Clone, Default)]
pub struct MemoryLedger {
    memory: std::sync::Arc<std::sync::Mutex<Memory>>,
    holder: usize,
}

#[derive(Default)]
struct Memory {
    window: SharedWindow,
    holds: std::collections::HashMap<usize, Holds>,
    /// Write transactions made (each a `BEGIN IMMEDIATE` on a store's file).
    transactions: usize,
    /// When the key's scans were created (wall ms), for [`Ledger::created_between`].
    created: Vec<i64>,
    /// Durations published (by whom, scan id, duration), and how far each holder has taken.
    learned: Vec<(usize, String, Duration)>,
    taken: std::collections::HashMap<usize, usize>,
}

impl MemoryLedger {
    /// The same ledger, seen by another process.
    pub fn holder(&self, holder: usize) -> MemoryLedger {
        MemoryLedger { memory: self.memory.clone(), holder }
    }

    /// Write transactions made so far, by every holder.
    pub fn transactions(&self) -> usize {
        self.lock().transactions
    }

    /// Adds a scan created at `wall_ms` to the key's history (as a store learns of it when the
    /// scan ends).
    pub fn record_created(&self, wall_ms: i64) {
        self.lock().created.push(wall_ms);
    }

    /// What `holder` holds, as it last wrote it.
    pub fn holds_of(&self, holder: usize) -> Holds {
        self.lock().holds.get(&holder).copied().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The window with the other holders' holds counted in.
    fn window(&self, m: &Memory) -> SharedWindow {
        let mut w = SharedWindow {
            others_outstanding: 0,
            others_reserved: 0,
            others_expected: 0,
            others_queued: 0,
            ..m.window.clone()
        };
        for (_, h) in m.holds.iter().filter(|(h, _)| **h != self.holder) {
            w.others_outstanding += h.outstanding;
            w.others_reserved += h.reserved;
            w.others_expected += h.expected;
            w.others_queued += h.queued;
        }
        w
    }
}

impl Ledger for MemoryLedger {
    fn transact(&self, _: i64, decide: &mut dyn FnMut(&mut SharedWindow, &mut Holds)) -> Result<(), String> {
        let mut m = self.lock();
        m.transactions += 1;
        let mut w = self.window(&m);
        let mut mine = Holds::default();
        decide(&mut w, &mut mine);
        m.window = w;
        m.holds.insert(self.holder, mine);
        Ok(())
    }

    fn peek(&self, _: i64, read: &mut dyn FnMut(&SharedWindow)) -> Result<(), String> {
        let m = self.lock();
        read(&self.window(&m));
        Ok(())
    }

    fn created_between(&self, from_wall_ms: i64, to_wall_ms: i64) -> Result<u32, String> {
        let m = self.lock();
        Ok(m.created.iter().filter(|t| (from_wall_ms..to_wall_ms).contains(t)).count() as u32)
    }

    fn take_learned(&self) -> Vec<(String, Duration)> {
        let mut m = self.lock();
        let from = m.taken.get(&self.holder).copied().unwrap_or(0);
        let new: Vec<(String, Duration)> = m.learned[from..]
            .iter()
            .filter(|(by, ..)| *by != self.holder)
            .map(|(_, id, d)| (id.clone(), *d))
            .collect();
        let end = m.learned.len();
        m.taken.insert(self.holder, end);
        new
    }

    fn publish_learned(&self, scan_id: &str, duration: Duration) {
        let mut m = self.lock();
        if !m.learned.iter().any(|(_, id, _)| id == scan_id) {
            m.learned.push((self.holder, scan_id.to_owned(), duration));
        }
    }
}

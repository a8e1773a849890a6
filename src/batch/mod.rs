//! Many scans at once: add requests, collect results as they finish (in finishing order),
//! cancel one or all, count what is queued, in flight and done.
//!
//! Every request goes through the client's engine like any other call: the key's governor
//! admits a create only when its polls can be afforded, so a batch of thousands never outruns
//! the budget; the scheduler thread drives them all. Every added request ends with exactly one
//! result, carrying its index (order of addition) and its scan id whenever a scan exists.
//!
//! A row's deadline counts from its scan's creation, so a portfolio longer than the key's
//! budget waits its turn instead of failing. With a journal ([`journal`]), a batch reopened
//! after a crash resumes instead of starting over.

mod eta;
pub mod journal;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use journal::{Journal, Journaled, Resume};

use crate::client::{Client, WaitOptions};
use crate::engine::cancel::CancelToken;
use crate::engine::core::{Progress, Sink};
use crate::engine::task::{Goal, Outcome};
use crate::error::{Code, Error};
use crate::model::ScanRequest;

/// Where an added request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Not created yet (waiting for the budget, or its create in flight).
    Queued,
    /// Created: the engine waits for it.
    InFlight,
    /// Ended (completed, or not): its result is ready or was collected.
    Done { completed: bool },
}

/// How many requests are at each stage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub queued: usize,
    pub in_flight: usize,
    pub done: usize,
}

#[derive(Default)]
struct State {
    stages: Vec<Stage>,
    cancels: Vec<CancelToken>,
    ready: VecDeque<(usize, Outcome)>,
    collected: usize,
    /// Rows whose create waits on another process's create of the same company.
    waiting_on_other: std::collections::HashSet<usize>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One added request's sink: tells the batch its stage and its end.
struct Item {
    index: usize,
    shared: Arc<Shared>,
}

impl Sink for Item {
    fn progress(&self, event: Progress) {
        let mut st = self.shared.lock();
        if event.reason == crate::engine::task::Reason::OtherCreate && event.scan_id.is_none() {
            st.waiting_on_other.insert(self.index);
        } else {
            st.waiting_on_other.remove(&self.index);
        }
        if event.scan_id.is_some() && st.stages[self.index] == Stage::Queued {
            st.stages[self.index] = Stage::InFlight;
        }
    }

    fn finish(&self, outcome: Outcome) {
        let mut st = self.shared.lock();
        st.waiting_on_other.remove(&self.index);
        st.stages[self.index] = Stage::Done { completed: outcome.is_ok() };
        st.ready.push_back((self.index, outcome));
        self.shared.ready.notify_all();
    }
}

/// Said by a resumed row whose create an earlier run sent without its answer being journaled
/// (an `AmbiguousCreate` of that run, not of this one): a program tells the two apart by it.
pub const SENT_BEFORE_THE_BATCH_STOPPED: &str = "its create was sent before the batch stopped";

/// A set of scans running on one client.
pub struct Batch {
    client: Client,
    shared: Arc<Shared>,
    journal: OnceLock<Arc<Journal>>,
    /// Re-create rows a crash left in "creating" (with `max_age_days`, so a completed twin
    /// is reused) instead of reporting them `AmbiguousCreate`.
    reconcile: AtomicBool,
    /// Requests the client's governor had granted when the batch began.
    granted_at_start: u64,
    /// The process that made it: a batch's rows run on that process's threads, so a forked
    /// child makes its own batch (DESIGN.md 9.2) and leaves this one as it was.
    pid: u32,
}

/// Where a batch stands, for a progress display.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Status {
    pub queued: usize,
    pub in_flight: usize,
    pub completed: usize,
    /// Ended without completing (a failed scan or an error).
    pub failed: usize,
    /// Requests sent on the key by this process since the batch began.
    pub requests: u64,
    /// Requests the key's budget allows now.
    pub budget_left: u32,
    /// When the last row should end, from the key's budget and the rows left; `None` before
    /// anything is known, or when nothing is left.
    pub eta: Option<Duration>,
    /// When other processes share the key and the end depends on whose rows the window serves
    /// first: the end if this process's rows go first, and if they go last. Set when `eta` is
    /// not (the two are more than 3x apart: no one figure is surely within 2x of both).
    pub eta_range: Option<(Duration, Duration)>,
    /// When the rows not yet created need more than the key's window has left: the time to
    /// the window's reset, which they wait for.
    pub window_resets_in: Option<Duration>,
    /// Rows (among `queued`) waiting on another process's create of the same company: they
    /// join its scan when its id is known, rather than creating a twin.
    pub waiting_on_other_create: usize,
}

/// What `next` found.
#[derive(Debug)]
pub enum Next {
    /// A finished request: its index and outcome.
    Ready(usize, Outcome),
    /// Nothing finished within the timeout; some are still running.
    Pending,
    /// Every added request's result has been collected.
    Empty,
}

impl Batch {
    pub fn new(client: &Client) -> Batch {
        Batch {
            client: client.clone(),
            shared: Arc::default(),
            journal: OnceLock::new(),
            reconcile: AtomicBool::new(false),
            granted_at_start: client.budget().1,
            pid: crate::process::id(),
        }
    }

    /// Journals the batch's rows in the SQLite file at `path` (created if need be), before any
    /// row is added. A batch reopened on the same journal with the same rows in the same
    /// order resumes: see [`journal`].
    pub fn set_journal(&self, path: &Path) -> Result<(), Error> {
        if !self.is_empty() {
            return Err(Error::invalid_argument("a journal must be set before the first row is added"));
        }
        let journal = Arc::new(Journal::open(path)?);
        self.journal.set(journal).map_err(|_| Error::invalid_argument("the batch already has a journal"))
    }

    /// The rows (row number, request) that the journal holds for another request: an input
    /// that changed since the run that wrote the journal (a row inserted, removed, edited).
    /// A caller resuming refuses such an input before adding anything, since its row numbers
    /// no longer name the same companies. Requests that differ only in `max_age_days` are the
    /// same row. Without a journal, none; a request that does not validate is not compared
    /// (adding it reports why).
    pub fn changed_rows(&self, rows: &[(u64, &ScanRequest)]) -> Result<Vec<u64>, Error> {
        let Some(journal) = self.journal.get() else { return Ok(Vec::new()) };
        let bodies: Vec<(u64, String)> = rows
            .iter()
            .filter_map(|(row, r)| r.normalized().ok().map(|n| (*row, n.to_json().to_string())))
            .collect();
        journal.changed_rows(&bodies)
    }

    /// Rows a crash left in "creating" are created again with `max_age_days` (at least 1, so
    /// a twin that completed meanwhile is returned instead of a new scan), instead of ending
    /// with `AmbiguousCreate`.
    pub fn set_reconcile(&self, on: bool) {
        self.reconcile.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Adds a scan request (create, then wait) and returns its index. Invalid input is not an
    /// error here: it becomes that index's result, like every other outcome. With a journal,
    /// the row is journaled under its index.
    pub fn add(&self, request: ScanRequest, options: &WaitOptions) -> usize {
        let row = self.len() as u64;
        self.add_row(row, request, options)
    }

    /// [`Batch::add`], journaled under `row` (the caller's own numbering, say a line of its
    /// input) instead of the index: a caller resuming may leave out rows it has finished.
    pub fn add_row(&self, row: u64, request: ScanRequest, options: &WaitOptions) -> usize {
        let cancel = options.cancel.clone().unwrap_or_default();
        let index = {
            let mut st = self.shared.lock();
            st.stages.push(Stage::Queued);
            st.cancels.push(cancel.clone());
            st.stages.len() - 1
        };
        let item: Arc<dyn Sink> = Arc::new(Item { index, shared: Arc::clone(&self.shared) });
        // A row's deadline counts from its scan's creation: waiting for its turn at the key's
        // budget is not a failure, however long the portfolio is.
        let mut options =
            WaitOptions { cancel: Some(cancel), deadline_from_creation: true, ..options.clone() };
        let (goal, sink) = match self.journal.get() {
            None => (Goal::Create { request, create_only: false }, item),
            Some(journal) => match self.resume(journal, row, request, &options) {
                Ok((goal, start_after)) => {
                    options.start_after = start_after;
                    let created = AtomicBool::new(matches!(goal, Goal::Wait { .. }));
                    let journal = journal.clone();
                    (goal, Arc::new(Journaled { journal, row, inner: item, created }) as Arc<dyn Sink>)
                }
                Err(outcome) => {
                    item.finish(outcome);
                    return index;
                }
            },
        };
        if let Err(e) = self.client.submit(goal, &options, sink.clone()) {
            sink.finish(Err(e));
        }
        index
    }

    /// What a journaled row needs: a goal to run, or its outcome at once (no request).
    /// The goal comes with how long to hold its first request back, if at all.
    fn resume(
        &self,
        journal: &Journal,
        row: u64,
        request: ScanRequest,
        options: &WaitOptions,
    ) -> Result<(Goal, Option<Duration>), Outcome> {
        let normalized = match request.normalized() {
            Ok(r) => r,
            Err(e) => return Err(Err(e)),
        };
        let body = normalized.to_json().to_string();
        match journal.resume(row, &body) {
            Resume::Create => Ok((Goal::Create { request, create_only: false }, None)),
            Resume::Wait(id) => Ok((Goal::Wait { id }, None)),
            Resume::Finished(outcome) => Err(*outcome),
            Resume::Ambiguous { age } if self.reconcile.load(std::sync::atomic::Ordering::Relaxed) => {
                // The API reuses completed scans only: wait until a twin the crash may have
                // created would have completed (the longest expected duration, and a fifth
                // more), so that the create finds it instead of starting another.
                let longest = options.expected_duration.unwrap_or(self.client.policy().expected_duration).1;
                let wait = longest.mul_f64(1.2).saturating_sub(age);
                let request = ScanRequest {
                    max_age_days: Some(request.max_age_days.unwrap_or(0).max(1)),
                    force_refresh: false,
                    ..request
                };
                Ok((Goal::Create { request, create_only: false }, (!wait.is_zero()).then_some(wait)))
            }
            Resume::Ambiguous { .. } => Err(Err(Error::new(
                Code::AmbiguousCreate,
                format!(
                    "row {row}: {SENT_BEFORE_THE_BATCH_STOPPED}, and no answer was journaled; a scan may \
                     exist. Not created again: reconcile to re-create it with max_age_days (a completed \
                     twin is then returned, not duplicated)"
                ),
            ))),
            Resume::Mismatch(journaled) => Err(Err(Error::invalid_argument(format!(
                "row {row} of the journal was another request ({journaled}); a journal resumes the same \
                 rows in the same order"
            )))),
        }
    }

    /// Waits up to `limit` (`None`: without limit) for the next finished request, in
    /// finishing order.
    pub fn next(&self, limit: Option<Duration>) -> Next {
        let deadline = limit.and_then(|l| Instant::now().checked_add(l));
        let mut st = self.shared.lock();
        loop {
            if let Some((index, outcome)) = st.ready.pop_front() {
                st.collected += 1;
                return Next::Ready(index, outcome);
            }
            if st.collected == st.stages.len() {
                return Next::Empty;
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return Next::Pending;
            }
            st = self.shared.ready.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Cancels one request (its result becomes `Cancelled`, with its scan id if it has one).
    pub fn cancel(&self, index: usize) -> Result<(), Error> {
        let token = self.shared.lock().cancels.get(index).cloned();
        match token {
            Some(t) => {
                t.cancel();
                self.client.wake();
                Ok(())
            }
            None => Err(Error::invalid_argument(format!("index {index} was never added to this batch"))),
        }
    }

    /// Cancels every request still running.
    pub fn cancel_all(&self) {
        let tokens = self.shared.lock().cancels.clone();
        for t in tokens {
            t.cancel();
        }
        self.client.wake();
    }

    pub fn counts(&self) -> Counts {
        let s = self.status_counts();
        Counts { queued: s.queued, in_flight: s.in_flight, done: s.completed + s.failed }
    }

    fn status_counts(&self) -> Status {
        let st = self.shared.lock();
        let mut c = Status { waiting_on_other_create: st.waiting_on_other.len(), ..Status::default() };
        for s in &st.stages {
            match s {
                Stage::Queued => c.queued += 1,
                Stage::InFlight => c.in_flight += 1,
                Stage::Done { completed: true } => c.completed += 1,
                Stage::Done { completed: false } => c.failed += 1,
            }
        }
        c
    }

    /// Counts, requests, budget and an estimate of the end (see [`Status`]).
    pub fn status(&self) -> Status {
        let mut status = self.status_counts();
        let (budget_left, granted) = self.client.budget();
        status.budget_left = budget_left;
        status.requests = granted.saturating_sub(self.granted_at_start);
        let (outlook, median) = self.client.outlook();
        let planned = self.client.requests_per_scan_planned();
        (status.eta, status.eta_range) = match eta::estimate_range(&status, outlook, median, planned) {
            Some((first, last)) if last.as_secs_f64() <= 3.0 * first.as_secs_f64() => {
                // Within 2x of both ends (up to 4x apart; 3x leaves room for each end's own
                // error): the truth lies between them.
                (Some(Duration::from_secs_f64((first.as_secs_f64() * last.as_secs_f64()).sqrt())), None)
            }
            Some(range) => (None, Some(range)),
            None => (None, None),
        };
        status.window_resets_in =
            eta::waits_for_window(&status, outlook, planned).then_some(outlook.reset_in);
        status
    }

    /// Requests added so far.
    pub fn len(&self) -> usize {
        self.shared.lock().stages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Batch {
    /// A batch dropped with requests still running cancels them: nothing keeps polling for
    /// results nobody will collect.
    fn drop(&mut self) {
        if crate::process::id() != self.pid {
            // Inherited through fork(): its rows and journal are the parent's, and a lock one
            // of the parent's threads held at the fork may never be let go here.
            crate::process::keep_unfreed(Box::new((self.shared.clone(), self.journal.take())));
            return;
        }
        self.cancel_all();
        if let Some(journal) = self.journal.get() {
            journal.close();
        }
    }
}

#[cfg(all(test, feature = "store"))]
mod tests {
    use super::*;

    /// A batch freed while a row still unwinds (its sink holds the journal a moment longer)
    /// lets go of the journal's lock at once (but for a fork's inherited descriptor, below): a new batch on the same journal, opened right
    /// after, is not refused "in use by another run" by its own predecessor (seen in CI from
    /// the Ruby binding's resume test).
    #[test]
    fn a_freed_batch_releases_its_journal_at_once() {
        // A directory no other run shares: CI runs in PID namespaces, where a process id
        // repeats from run to run (and a failed run leaves its directory behind).
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("exona-batch-close-{}-{nanos:x}", std::process::id()));
        let path = dir.join("rows.journal");
        let client =
            Client::new("exo_test_000000000000000000000000000000000042", Some("http://127.0.0.1:9/api/v1"))
                .unwrap();
        let batch = Batch::new(&client);
        batch.set_journal(&path).unwrap();
        let unwinding = batch.journal.get().unwrap().clone();
        drop(batch);
        let next = Batch::new(&client);
        // Within moments, not necessarily at once: a child another thread of this process
        // forks between our open and its exec holds an inherited descriptor of the lock (the
        // other tests start PostgreSQL servers); it goes at the exec. A lock never let go
        // still fails here.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while let Err(e) = next.set_journal(&path) {
            assert!(
                std::time::Instant::now() < deadline,
                "the journal stayed locked by the freed batch: {e}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        drop((next, unwinding));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Drives the core: in production one scheduler thread per client decides when each waiting
//! scan sends, and a few HTTP worker threads send; callers block on a mailbox and run their
//! progress callbacks on their own thread. In tests (`Engine::inline`) the calling thread
//! drives the core itself, on whatever clock it was given, so virtual time is exact.
//!
//! The core's lock is held only while the core decides, never while a database is waited on
//! (DESIGN.md 9.3). What it decides to do beyond itself (progress events and outcomes for
//! sinks, which may write the state store or a batch's journal; requests for the workers) is
//! queued as effects and carried out in order after the lock is let go, by whichever thread
//! gets to them first. What it asks of the state store and the key's ledger is asked between
//! two turns of the lock: a dispatch's gates and grants ([`super::core::Dispatch`]), a reply's
//! word to the budget ([`tell_budget`]), budget not used ([`super::core::Unused`]).

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::thread::JoinHandle;

use super::cancel::{CancelToken, Wake};
use super::clock::Clock;
use super::core::{tell_budget, Core, Effect, Job, Progress, Sink};
use super::gate::Verdict;
use super::governor::Governor;
use super::task::{Outcome, Task};
use crate::transport::Transport;

struct Shared {
    core: Mutex<Core>,
    /// The core's governor, told of replies and asked for grants off the core's lock.
    governor: Arc<Governor>,
    /// Wakes the scheduler: a new task, a reply, a cancel, shutdown.
    scheduler_wake: Condvar,
    jobs: Mutex<VecDeque<Job>>,
    jobs_ready: Condvar,
    /// The core's effects, in the order it queued them, not yet carried out.
    effects: Mutex<VecDeque<Effect>>,
    /// Held by the one thread carrying effects out (so that they stay in order).
    delivering: Mutex<()>,
    /// Requests are sent by the HTTP workers (else by whichever thread carries them out).
    threaded: bool,
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    shutdown: AtomicBool,
}

impl Shared {
    fn new(core: Core, transport: Arc<dyn Transport>, clock: Arc<dyn Clock>, threaded: bool) -> Arc<Shared> {
        Arc::new(Shared {
            governor: Arc::clone(&core.governor),
            core: Mutex::new(core),
            scheduler_wake: Condvar::new(),
            jobs: Mutex::new(VecDeque::new()),
            jobs_ready: Condvar::new(),
            effects: Mutex::new(VecDeque::new()),
            delivering: Mutex::new(()),
            threaded,
            transport,
            clock,
            shutdown: AtomicBool::new(false),
        })
    }

    /// Runs `f` on the core under its lock, then carries out the effects it queued, unlocked.
    fn on_core<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        let (out, unused) = {
            let mut core = lock(&self.core);
            let out = f(&mut core);
            self.queue_effects(&mut core);
            (out, core.take_unused())
        };
        for unused in unused {
            unused.tell(&self.governor);
        }
        self.carry_out();
        out
    }

    /// Dispatches the requests due at `now` (see [`super::core::Dispatch`]): their gates and
    /// the key's budget are asked with the core unlocked; the requests granted are queued to
    /// send. Returns how many.
    fn dispatch(&self, now: std::time::Duration) -> usize {
        self.governor.refresh(now);
        let mut dispatch = self.on_core(|c| c.prepare_dispatch(now));
        dispatch.answer(&self.governor);
        self.on_core(|c| {
            let jobs = c.apply_dispatch(dispatch);
            let sent = jobs.len();
            c.queue_send(jobs);
            sent
        })
    }

    /// Moves the core's effects to the queue (under the core's lock, so the queue keeps the
    /// core's order).
    fn queue_effects(&self, core: &mut Core) {
        let effects = core.take_effects();
        if !effects.is_empty() {
            lock(&self.effects).extend(effects);
        }
    }

    /// Carries out queued effects until none is left, unless another thread is doing so (it
    /// then carries out these too). Never blocks on another thread, so a sink may call back
    /// into the engine (submit, cancel) from inside an effect.
    fn carry_out(&self) {
        loop {
            let _turn = match self.delivering.try_lock() {
                Ok(turn) => turn,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            loop {
                let next = lock(&self.effects).pop_front();
                let Some(effect) = next else { break };
                if let Some(jobs) = effect.deliver() {
                    if self.threaded {
                        lock(&self.jobs).extend(jobs);
                        self.jobs_ready.notify_all();
                    } else {
                        for job in jobs {
                            send(self, job);
                        }
                    }
                }
            }
            drop(_turn);
            // Queued after this thread's last look and before it let go: its thread gave up.
            if lock(&self.effects).is_empty() {
                return;
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct Engine {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Engine {
    /// A scheduler thread and `policy.workers` HTTP workers.
    pub fn threaded(
        core: Core,
        transport: Arc<dyn Transport>,
        clock: Arc<dyn Clock>,
    ) -> std::io::Result<Engine> {
        let workers = core.policy.workers.max(1);
        let shared = Shared::new(core, transport, clock, true);
        let mut threads = Vec::new();
        let s = Arc::clone(&shared);
        threads
            .push(std::thread::Builder::new().name("exona-scheduler".into()).spawn(move || scheduler(&s))?);
        for n in 0..workers {
            let s = Arc::clone(&shared);
            threads
                .push(std::thread::Builder::new().name(format!("exona-http-{n}")).spawn(move || worker(&s))?);
        }
        Ok(Engine { shared, threads })
    }

    /// No threads: each waiting call drives the core on its own thread.
    pub fn inline(core: Core, transport: Arc<dyn Transport>, clock: Arc<dyn Clock>) -> Engine {
        Engine { shared: Shared::new(core, transport, clock, false), threads: Vec::new() }
    }

    pub fn is_threaded(&self) -> bool {
        !self.threads.is_empty()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.shared.clock
    }

    /// Runs `f` on the core (policy, governor, model) under its lock.
    pub fn with_core<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        self.shared.on_core(f)
    }

    /// Hands a task to the engine; its progress and end go to `sink`.
    pub fn submit(&self, task: Task, sink: Arc<dyn Sink>, cancel: CancelToken) {
        let now = self.shared.clock.now();
        self.shared.on_core(|c| c.submit(task, sink, cancel, now));
        self.shared.scheduler_wake.notify_all();
    }

    /// Wakes the scheduler so it notices cancelled tasks at once.
    pub fn poke(&self) {
        self.shared.on_core(|c| c.reap_cancelled());
        self.shared.scheduler_wake.notify_all();
    }

    /// Inline mode: sends what is due, or sleeps until the next timer (or until `cancel`).
    /// Returns false when nothing at all is waiting.
    pub fn step(&self, cancel: &CancelToken) -> bool {
        let s = &self.shared;
        if self.send_due() == 0 {
            let next = lock(&s.core).next_wake();
            return match next {
                Some(at) => {
                    s.clock.sleep_until(at, cancel);
                    true
                }
                None => false,
            };
        }
        true
    }

    /// Inline mode on a clock that other engines share (tests of processes on one key): sends
    /// everything due now, then says when this engine has something to do next (`None`:
    /// nothing waits). Never sleeps: the caller moves the shared clock to the earliest wake.
    pub fn step_due(&self) -> Option<std::time::Duration> {
        while self.send_due() > 0 {}
        lock(&self.shared.core).next_wake()
    }

    /// Inline mode: sends the requests due now (answered before it returns); how many.
    fn send_due(&self) -> usize {
        let s = &self.shared;
        let now = s.clock.now();
        s.dispatch(now)
    }

    /// Runs the whole task on this thread (inline) or waits for the scheduler (threaded),
    /// calling `on_progress` here before every wait; it returns false to cancel.
    pub fn run(
        &self,
        task: Task,
        cancel: CancelToken,
        on_progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Outcome {
        let mailbox = Arc::new(Mailbox::default());
        cancel.subscribe(Arc::downgrade(&(mailbox.clone() as Arc<dyn Wake>)));
        self.submit(task, mailbox.clone(), cancel.clone());
        loop {
            let (events, done) = mailbox.take(self.is_threaded(), &cancel);
            for event in &events {
                if !on_progress(event) {
                    cancel.cancel();
                }
            }
            if let Some(outcome) = done {
                return outcome;
            }
            if cancel.is_cancelled() {
                self.poke();
                if let Some(outcome) = mailbox.cancelled_now(cancel.reason()) {
                    return outcome;
                }
            }
            if !self.is_threaded() && !self.step(&cancel) {
                // Nothing scheduled and no outcome: the task ended inside `submit`.
                if let (_, Some(outcome)) = mailbox.take(false, &cancel) {
                    return outcome;
                }
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        {
            let _core = lock(&self.shared.core);
            self.shared.scheduler_wake.notify_all();
        }
        {
            let _jobs = lock(&self.shared.jobs);
            self.shared.jobs_ready.notify_all();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // Outcomes queued as the threads stopped still reach their sinks.
        self.shared.carry_out();
    }
}

/// What a caught panic said, for the error message.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned())
}

/// The scheduler thread. A panic inside it (a bug) ends every waiting task with
/// `EXONA_ERR_INTERNAL` instead of killing the thread and leaving their callers blocked.
fn scheduler(s: &Shared) {
    loop {
        let turn = catch_unwind(AssertUnwindSafe(|| scheduler_turns(s)));
        match turn {
            Ok(()) => return,
            Err(payload) => {
                let why = format!("the scheduler thread panicked ({})", panic_text(&*payload));
                crate::log::log(crate::log::Level::Error, || why.clone());
                s.on_core(|c| c.fail_all(&why));
            }
        }
    }
}

/// Runs the scheduler until shutdown: a dispatch (its effects, the requests among them for
/// the workers, carried out unlocked), then a sleep until the next timer or a wake.
fn scheduler_turns(s: &Shared) {
    loop {
        if s.shutdown.load(Ordering::SeqCst) {
            return;
        }
        s.dispatch(s.clock.now());
        // Whatever changed since the dispatch did so under the core's lock, which the next
        // timer is read under: no wake is missed.
        let mut core = lock(&s.core);
        if s.shutdown.load(Ordering::SeqCst) {
            return;
        }
        match core.next_wake() {
            Some(at) if at <= s.clock.now() => {}
            Some(at) => {
                let wait = at.saturating_sub(s.clock.now());
                drop(s.scheduler_wake.wait_timeout(core, wait));
            }
            None => {
                drop(s.scheduler_wake.wait(core));
            }
        }
    }
}

/// An HTTP worker. A panic while sending or handling a reply (a bug, or a custom transport's)
/// ends that one task with `EXONA_ERR_INTERNAL`; the worker goes on.
fn worker(s: &Shared) {
    loop {
        let job = {
            let mut jobs = lock(&s.jobs);
            loop {
                if s.shutdown.load(Ordering::SeqCst) {
                    return;
                }
                if let Some(job) = jobs.pop_front() {
                    break job;
                }
                jobs = s.jobs_ready.wait(jobs).unwrap_or_else(|p| p.into_inner());
            }
        };
        let task = job.task;
        let handled = catch_unwind(AssertUnwindSafe(|| send(s, job)));
        if let Err(payload) = handled {
            let why = format!("an HTTP worker panicked ({})", panic_text(&*payload));
            crate::log::log(crate::log::Level::Error, || why.clone());
            s.governor.lost();
            s.on_core(|core| core.fail(task, &why));
        }
        s.scheduler_wake.notify_all();
    }
}

/// Sends a job and hands its reply to the core. A create's gate is asked first, here, off
/// the core's lock (it writes the state store): when it turns the create down, nothing is
/// sent and the grant goes back.
fn send(s: &Shared, job: Job) {
    let now = s.clock.now();
    if now.saturating_sub(job.granted_at) > super::core::STALE_GRANT {
        s.on_core(|c| c.regrant(job.task, job.kind, now));
        return;
    }
    if let Some(gate) = &job.gate {
        match gate.claim() {
            Verdict::Send => {}
            verdict => {
                let now = s.clock.now();
                s.on_core(|c| c.vetoed(job.task, verdict, now));
                return;
            }
        }
    }
    let reply = s.transport.send(&job.request);
    let (now, wall) = (s.clock.now(), s.clock.wall());
    let told = tell_budget(&s.governor, &reply, now, wall);
    s.on_core(|c| c.complete(job.task, reply, told, now, wall));
}

/// Where a waiting caller receives its task's progress and outcome.
#[derive(Default)]
pub struct Mailbox {
    state: Mutex<MailState>,
    ready: Condvar,
}

#[derive(Default)]
struct MailState {
    events: Vec<Progress>,
    outcome: Option<Outcome>,
    scan_id: Option<String>,
    creating: bool,
}

impl Mailbox {
    /// The events so far and the outcome if there is one. Threaded: blocks until there is
    /// something, or the token is cancelled.
    fn take(&self, block: bool, cancel: &CancelToken) -> (Vec<Progress>, Option<Outcome>) {
        let mut st = lock(&self.state);
        if block {
            while st.events.is_empty() && st.outcome.is_none() && !cancel.is_cancelled() {
                st = self.ready.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        }
        (std::mem::take(&mut st.events), st.outcome.take())
    }

    /// After a cancel: the outcome to return at once, unless a create request is in flight
    /// (its answer may carry a scan id that must not be lost).
    fn cancelled_now(&self, reason: Option<&str>) -> Option<Outcome> {
        let mut st = lock(&self.state);
        if let Some(outcome) = st.outcome.take() {
            return Some(outcome);
        }
        if st.creating {
            return None;
        }
        let mut e = crate::error::Error::new(
            crate::error::Code::Cancelled,
            reason.unwrap_or("the wait was cancelled"),
        );
        e.scan_id = st.scan_id.clone();
        Some(Err(e))
    }
}

impl Sink for Mailbox {
    fn progress(&self, event: Progress) {
        let mut st = lock(&self.state);
        st.creating = event.creating;
        if event.scan_id.is_some() {
            st.scan_id = event.scan_id.clone();
        }
        if !event.creating {
            st.events.push(event);
        }
        self.ready.notify_all();
    }

    fn finish(&self, outcome: Outcome) {
        let mut st = lock(&self.state);
        st.creating = false;
        st.outcome = Some(outcome);
        self.ready.notify_all();
    }
}

impl Wake for Mailbox {
    fn wake(&self) {
        let _st = lock(&self.state);
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::clock::SystemClock;
    use crate::engine::governor::{Governor, Limits};
    use crate::engine::policy::Policy;
    use crate::engine::task::{Goal, Settings};
    use crate::transport::{Request, Response, TransportError};
    use std::sync::mpsc;
    use std::time::Duration;

    /// Answers every request with a scan that has completed.
    struct Completed;
    impl Transport for Completed {
        fn send(&self, _: &Request) -> Result<Response, TransportError> {
            let body = r#"{"id": "scn_done", "status": "completed", "created_at": "2026-12-04T12:00:00Z",
                "completed_at": "2026-12-04T12:01:00Z", "result": {}}"#;
            Ok(Response { status: 200, headers: Default::default(), body: body.as_bytes().to_vec() })
        }
    }

    /// A sink whose `finish` takes as long as the test wants (a journal's fsync, a store
    /// waiting on another process's transaction).
    struct Slow {
        entered: Mutex<mpsc::Sender<()>>,
        release: Mutex<mpsc::Receiver<()>>,
    }
    impl Sink for Slow {
        fn progress(&self, _: Progress) {}
        fn finish(&self, _: Outcome) {
            let _ = lock(&self.entered).send(());
            let _ = lock(&self.release).recv();
        }
    }

    /// A call's settings: a minute to go, scans of 1-2 s.
    fn settings() -> Settings {
        Settings {
            deadline: Some(Duration::from_secs(60)),
            deadline_after_create: None,
            start_after: None,
            mode: crate::engine::schedule::Mode::Balanced,
            expected: (Duration::from_secs(1), Duration::from_secs(2)),
            max_rate_limit_wait: Duration::from_secs(60),
            fixed_thrift: None,
        }
    }

    fn get(id: &str) -> Task {
        Task::new(Goal::Get { id: id.into() }, SystemClock::new().now(), settings()).unwrap()
    }

    /// A sink that takes its time (it writes the state store or a journal) holds no lock the
    /// engine needs: the client's other calls go on meanwhile. Sinks used to be called under
    /// the core's lock, so every call of the client waited on the slowest write.
    #[test]
    fn a_slow_sink_holds_no_lock_the_engine_needs() {
        let core = Core::new(Policy::default(), Arc::new(Governor::new(Limits::default())));
        let engine =
            Arc::new(Engine::threaded(core, Arc::new(Completed), Arc::new(SystemClock::new())).unwrap());
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let slow = Arc::new(Slow { entered: Mutex::new(entered_tx), release: Mutex::new(release_rx) });
        engine.submit(get("scn_done"), slow, CancelToken::new());
        entered.recv_timeout(Duration::from_secs(60)).expect("the sink was never finished");
        let (tx, answered) = mpsc::channel();
        let other = Arc::clone(&engine);
        std::thread::spawn(move || {
            let _ = tx.send(other.with_core(|c| c.len()));
        });
        let answer = answered.recv_timeout(Duration::from_secs(60));
        release.send(()).unwrap();
        assert_eq!(answer, Ok(0), "the core stayed locked while a sink took its time");
    }

    /// While `engine` waits on something slow, another thread's use of the engine (a new
    /// call, a cancel, a status read) goes on: `true` when it did.
    fn others_go_on(engine: &Arc<Engine>, entered: &mpsc::Receiver<()>, release: mpsc::Sender<()>) -> bool {
        entered.recv_timeout(Duration::from_secs(60)).expect("the engine never waited on it");
        let (tx, answered) = mpsc::channel();
        let other = Arc::clone(engine);
        std::thread::spawn(move || {
            other.poke();
            let _ = tx.send(other.with_core(|c| c.len()));
        });
        // A hang here is the bug (bounded: this is no measure of speed).
        let answer = answered.recv_timeout(Duration::from_secs(30));
        // Let go for good (later waits end at once: the sender is gone).
        drop(release);
        answer == Ok(1)
    }

    /// Issue 34: the dispatch asked the key's ledger (a database transaction, up to seconds on
    /// a slow or locked database) under the core's lock, so every other call of the client (a
    /// new scan, a cancel, a status read) waited on the database. Now it is asked off the lock.
    #[test]
    fn a_ledger_waited_on_holds_no_lock_the_engine_needs() {
        let (ledger, entered, release) = crate::engine::blocking::Blocking::new();
        let governor = Arc::new(Governor::new(Limits::default()));
        governor.share(ledger, Duration::ZERO);
        let core = Core::new(Policy::default(), governor);
        let engine =
            Arc::new(Engine::threaded(core, Arc::new(Completed), Arc::new(SystemClock::new())).unwrap());
        engine.submit(get("scn_done"), Arc::new(Quiet), CancelToken::new());
        assert!(
            others_go_on(&engine, &entered, release),
            "the core stayed locked while the ledger was waited on"
        );
    }

    /// The same for a create's gate, which reads the state store before the budget is asked.
    #[test]
    fn a_gate_waited_on_holds_no_lock_the_engine_needs() {
        let (gate, entered, release) = crate::engine::blocking::Blocking::new();
        let core = Core::new(Policy::default(), Arc::new(Governor::new(Limits::default())));
        let engine =
            Arc::new(Engine::threaded(core, Arc::new(Completed), Arc::new(SystemClock::new())).unwrap());
        let request = crate::model::ScanRequest::new("Row", "https://row.example");
        let task =
            Task::new(Goal::Create { request, create_only: false }, SystemClock::new().now(), settings())
                .unwrap()
                .with_gate(Some(gate));
        engine.submit(task, Arc::new(Quiet), CancelToken::new());
        assert!(
            others_go_on(&engine, &entered, release),
            "the core stayed locked while the gate was waited on"
        );
    }

    struct Quiet;
    impl Sink for Quiet {
        fn progress(&self, _: Progress) {}
        fn finish(&self, _: Outcome) {}
    }
}

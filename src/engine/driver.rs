//! Drives the core: in production one scheduler thread per client decides when each waiting
//! scan sends, and a few HTTP worker threads send; callers block on a mailbox and run their
//! progress callbacks on their own thread. In tests (`Engine::inline`) the calling thread
//! drives the core itself, on whatever clock it was given, so virtual time is exact.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::cancel::{CancelToken, Wake};
use super::clock::Clock;
use super::core::{Core, Job, Progress, Sink};
use super::gate::Verdict;
use super::task::{Outcome, Task};
use crate::transport::Transport;

struct Shared {
    core: Mutex<Core>,
    /// Wakes the scheduler: a new task, a reply, a cancel, shutdown.
    scheduler_wake: Condvar,
    jobs: Mutex<VecDeque<Job>>,
    jobs_ready: Condvar,
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    shutdown: AtomicBool,
}

impl Shared {
    fn new(core: Core, transport: Arc<dyn Transport>, clock: Arc<dyn Clock>) -> Arc<Shared> {
        Arc::new(Shared {
            core: Mutex::new(core),
            scheduler_wake: Condvar::new(),
            jobs: Mutex::new(VecDeque::new()),
            jobs_ready: Condvar::new(),
            transport,
            clock,
            shutdown: AtomicBool::new(false),
        })
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
        let shared = Shared::new(core, transport, clock);
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
        Engine { shared: Shared::new(core, transport, clock), threads: Vec::new() }
    }

    pub fn is_threaded(&self) -> bool {
        !self.threads.is_empty()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.shared.clock
    }

    /// Runs `f` on the core (policy, governor, model) under its lock.
    pub fn with_core<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        f(&mut lock(&self.shared.core))
    }

    /// Hands a task to the engine; its progress and end go to `sink`.
    pub fn submit(&self, task: Task, sink: Arc<dyn Sink>, cancel: CancelToken) {
        let now = self.shared.clock.now();
        lock(&self.shared.core).submit(task, sink, cancel, now);
        self.shared.scheduler_wake.notify_all();
    }

    /// Wakes the scheduler so it notices cancelled tasks at once.
    pub fn poke(&self) {
        lock(&self.shared.core).reap_cancelled();
        self.shared.scheduler_wake.notify_all();
    }

    /// Inline mode: sends what is due, or sleeps until the next timer (or until `cancel`).
    /// Returns false when nothing at all is waiting.
    pub fn step(&self, cancel: &CancelToken) -> bool {
        let s = &self.shared;
        let now = s.clock.now();
        let jobs = lock(&s.core).dispatch_due(now);
        if jobs.is_empty() {
            let next = lock(&s.core).next_wake();
            return match next {
                Some(at) => {
                    s.clock.sleep_until(at, cancel);
                    true
                }
                None => false,
            };
        }
        for job in jobs {
            send(s, job);
        }
        true
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
                lock(&s.core).fail_all(&why);
            }
        }
    }
}

/// Runs the scheduler until shutdown.
fn scheduler_turns(s: &Shared) {
    let mut core = lock(&s.core);
    loop {
        if s.shutdown.load(Ordering::SeqCst) {
            return;
        }
        let now = s.clock.now();
        let jobs = core.dispatch_due(now);
        if !jobs.is_empty() {
            lock(&s.jobs).extend(jobs);
            s.jobs_ready.notify_all();
        }
        core = match core.next_wake() {
            Some(at) if at <= s.clock.now() => core,
            Some(at) => {
                let wait = at.saturating_sub(s.clock.now());
                s.scheduler_wake.wait_timeout(core, wait).unwrap_or_else(|p| p.into_inner()).0
            }
            None => s.scheduler_wake.wait(core).unwrap_or_else(|p| p.into_inner()),
        };
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
            let mut core = lock(&s.core);
            core.governor.lost();
            core.fail(task, &why);
        }
        s.scheduler_wake.notify_all();
    }
}

/// Sends a job and hands its reply to the core. A create's gate is asked first, here, off
/// the core's lock (it writes the state store): when it turns the create down, nothing is
/// sent and the grant goes back.
fn send(s: &Shared, job: Job) {
    if let Some(gate) = &job.gate {
        match gate.claim() {
            Verdict::Send => {}
            verdict => {
                let now = s.clock.now();
                lock(&s.core).vetoed(job.task, verdict, now);
                return;
            }
        }
    }
    let reply = s.transport.send(&job.request);
    let (now, wall) = (s.clock.now(), s.clock.wall());
    lock(&s.core).complete(job.task, reply, now, wall);
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

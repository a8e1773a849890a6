//! The core of the engine: every waiting task of a client, a timer heap, and the rules for
//! sending (the governor's grant, cancellation, deadlines). It holds no thread and never
//! sleeps: a driver (engine/driver.rs) calls `dispatch_due` and `complete` and sleeps until
//! `next_wake`, on a scheduler thread or, in tests, inline on virtual time.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::adaptive::{thrift, Demand, PlanCosts};
use super::cancel::CancelToken;
use super::gate::{CreateGate, Verdict};
use super::governor::{Governor, Grant, InSight, Kind, Observed, Outlook};
use super::learning::SharedLearning;
use super::policy::Policy;
use super::retry_after::{parse_reset, parse_retry_after, rate_limit_wait};
use super::schedule::{DurationModel, Mode};
use super::task::{Ctx, Outcome, Reason, Task};
use crate::log::{log, Level};
use crate::transport::{Request, Response, TransportError};

/// What a waiting call is told before each wait, and how it ends.
pub trait Sink: Send + Sync {
    fn progress(&self, event: Progress);
    fn finish(&self, outcome: Outcome);
}

/// One progress event: why and how long the scan waits before its next request.
#[derive(Clone, Debug)]
pub struct Progress {
    pub scan_id: Option<String>,
    pub status: Option<String>,
    pub reason: Reason,
    pub wait: Duration,
    /// Requests this scan has used so far.
    pub requests: u32,
    /// Requests the key's budget allows now.
    pub budget_left: u32,
    /// True while the create request may be in flight (its answer carries the scan id).
    pub creating: bool,
    /// The scan's poll mode, and for an adaptive scan the thrift its wait was planned at
    /// (0: latency, 1: frugal).
    pub mode: Mode,
    pub thrift: Option<f64>,
}

pub type TaskId = u64;

/// What the core asks of the world beyond it: events and outcomes for the callers' sinks, and
/// requests for the HTTP workers. The core only queues them; its driver carries them out, in
/// order, after letting go of the core's lock (a sink may write the state store or a journal,
/// and every other call of the client would wait on those writes).
#[allow(clippy::large_enum_variant)] // short-lived: queued and carried out at once
pub enum Effect {
    Progress(Arc<dyn Sink>, Progress),
    Finish(Arc<dyn Sink>, Outcome),
    /// Requests to send, after every effect queued before them (a create's "creating" event
    /// reaches its caller before the create can be answered).
    Send(Vec<Job>),
}

/// Budget a task did not use: told to the key's governor as soon as the core's lock is let go
/// (with a ledger, a transaction), by the thread that let it go, before any effect (the next
/// reply's answer is weighed with it, as when it was told under the lock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unused {
    /// Polls reserved at admission that the scan did not spend.
    Reserved(u32),
    /// A grant that was not sent.
    Grant(Kind),
}

impl Effect {
    /// Carries out a sink's effect; a `Send` is handed back for the driver to send.
    pub fn deliver(self) -> Option<Vec<Job>> {
        match self {
            Effect::Progress(sink, event) => sink.progress(event),
            Effect::Finish(sink, outcome) => sink.finish(outcome),
            Effect::Send(jobs) => return Some(jobs),
        }
        None
    }
}

/// The quantile of scan durations watched for a move that plans waiting polls again, and how
/// far it must fall (to this share of what it was).
const REPLAN_QUANTILE: f64 = 0.9;
const REPLAN_SHIFT: f64 = 0.75;

/// How long a weighed thrift holds (the window changes slowly against it).
const THRIFT_FOR: Duration = Duration::from_millis(250);
/// How often the work in sight is told to the governor when no create asks (see `dispatch_due`).
const IN_SIGHT_EVERY: Duration = Duration::from_secs(1);
/// How often the key's history of creates (the state store's) is read for the arrivals
/// expected: it moves as scans end, slowly beside the thrift's weighing.
const HISTORY_EVERY: Duration = Duration::from_secs(5);

/// Create grants remembered for the arrival rate (two windows' worth at most).
const CREATES_REMEMBERED: usize = 10_000;

struct Entry {
    task: Task,
    sink: Arc<dyn Sink>,
    cancel: CancelToken,
    in_flight: bool,
    kind: Kind,
    /// When its timer is set for: older timers of the task are stale and skipped.
    due: Duration,
}

/// A request to send for a task.
pub struct Job {
    pub task: TaskId,
    pub request: Request,
    /// A create's gate: asked to claim, off the engine's lock, just before the request is
    /// sent; any verdict but `Send` goes back to [`Core::vetoed`] instead of a reply.
    pub gate: Option<Arc<dyn CreateGate>>,
    /// What the governor granted, and when (see [`STALE_GRANT`]).
    pub kind: Kind,
    pub granted_at: Duration,
}

/// A grant not sent within this goes back and is asked again ([`Core::regrant`]): the process
/// was stopped between the grant and the send (a frozen container) for long enough that its
/// hold may have lapsed (a lease of 20 s, renewed every 5 s, can lapse 15 s after a grant), and
/// the other processes on the key may have been granted what it held. Far longer than a job
/// waits for a worker unless every worker is stuck on a request that is timing out.
pub const STALE_GRANT: Duration = Duration::from_secs(15);

/// One dispatch of the requests whose time has come, in three steps, so that no database is
/// waited on under the core's lock (DESIGN.md 9.3): [`Core::prepare_dispatch`] picks them
/// (locked), [`Dispatch::answer`] asks their gates (a read of the state store) and the key's
/// budget (a ledger transaction) with no lock of the engine held, [`Core::apply_dispatch`]
/// acts on the answers (locked).
pub struct Dispatch {
    now: Duration,
    asks: Vec<Ask>,
}

/// A request due, and what its gate and the key's budget answered.
struct Ask {
    id: TaskId,
    /// The timer it was picked at: a task armed again meanwhile is not this ask's any more.
    due: Duration,
    kind: Kind,
    gate: Option<Arc<dyn CreateGate>>,
    creating: bool,
    /// Until when a poll may wait on another call's word (see [`Task::word_wait_limit`]).
    word_limit: Option<Duration>,
    verdict: Option<Verdict>,
    grant: Option<Grant>,
}

impl Dispatch {
    /// Asks each request's gate, then the key's budget, in order, off the core's lock.
    /// Within one dispatch, a create the budget holds back answers for every other create due
    /// that would reserve as much or more: they are held to the same time without asking
    /// again (each ask is a ledger transaction with a store, and a portfolio may have a
    /// thousand creates due at once).
    pub fn answer(&mut self, governor: &Governor) {
        let now = self.now;
        let mut creates_held: Option<(u32, Grant)> = None;
        for ask in &mut self.asks {
            // Before the budget is asked: a stored answer, another process's scan or its
            // create in progress (a read; the claim itself is taken when the create is sent).
            if let Some(gate) = &ask.gate {
                let verdict = if ask.creating { gate.peek() } else { gate.peek_joined() };
                let asks_the_budget = match verdict {
                    Verdict::Send => true,
                    // Another call polls the scan: wait for its word, unless the deadline is
                    // near (its last poll then goes to the API).
                    Verdict::Later(after) if !ask.creating => {
                        ask.word_limit.is_some_and(|limit| now + after >= limit)
                    }
                    _ => false,
                };
                ask.verdict = Some(verdict);
                if !asks_the_budget {
                    continue;
                }
            }
            let grant = match (ask.kind, creates_held) {
                (Kind::Create { reserve }, Some((held, g))) if reserve >= held => {
                    governor.held_without_asking(now);
                    g
                }
                _ => governor.request(now, ask.kind),
            };
            if let (Kind::Create { reserve }, Grant::At(_) | Grant::Behind(_)) = (ask.kind, grant) {
                if creates_held.is_none_or(|(held, _)| reserve < held) {
                    creates_held = Some((reserve, grant));
                }
            }
            ask.grant = Some(grant);
        }
    }
}

pub struct Core {
    pub policy: Policy,
    pub governor: Arc<Governor>,
    pub model: DurationModel,
    rng: fastrand::Rng,
    tasks: HashMap<TaskId, Entry>,
    timers: BinaryHeap<Reverse<(Duration, u64, TaskId)>>,
    /// The key's budget as last asked for a progress event, and when.
    budget_seen: Option<(Duration, u32)>,
    /// The key's window as the last response left it (for the adaptive thrift).
    outlook_seen: Option<Outlook>,
    /// What polling costs by thrift, with the poll gap and the number of durations it was
    /// computed from.
    costs: Option<(Duration, usize, PlanCosts)>,
    /// The thrift last weighed, and when.
    thrift_seen: Option<(Duration, f64, usize)>,
    /// When the work in sight was last told to the governor.
    in_sight_at: Option<Duration>,
    /// The key's creates in the span `arrivals` counts, by every process (the ledger's
    /// history), and when that was read.
    history_seen: Option<(Duration, u32)>,
    /// When creates were sent (the adaptive thrift's arrival rate), oldest first.
    creates_sent: std::collections::VecDeque<Duration>,
    /// Polls were given back since the last dispatch (see `wake_held_creates`).
    budget_freed: bool,
    /// The last `Retry-After` of a processing scan.
    gap_seen: Option<Duration>,
    /// Durations learned here and from the other processes on the key.
    learning: SharedLearning,
    /// A scan was planned to explore: polled first at the shortest plausible duration.
    explored: bool,
    next_id: TaskId,
    seq: u64,
    /// Effects not yet carried out (see [`Effect`]).
    outbox: Vec<Effect>,
    /// Budget not used, not yet told to the governor (see [`Unused`]).
    unused: Vec<Unused>,
}

impl Core {
    pub fn new(policy: Policy, governor: Arc<Governor>) -> Core {
        let model = DurationModel::new();
        Core {
            policy,
            governor,
            model,
            rng: fastrand::Rng::with_seed(jitter_seed()),
            tasks: HashMap::new(),
            timers: BinaryHeap::new(),
            budget_seen: None,
            outlook_seen: None,
            costs: None,
            creates_sent: Default::default(),
            thrift_seen: None,
            in_sight_at: None,
            history_seen: None,
            budget_freed: false,
            gap_seen: None,
            learning: SharedLearning::default(),
            explored: false,
            next_id: 1,
            seq: 0,
            outbox: Vec::new(),
            unused: Vec::new(),
        }
    }

    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Queues requests to send, after the effects queued so far.
    pub fn queue_send(&mut self, jobs: Vec<Job>) {
        if !jobs.is_empty() {
            self.outbox.push(Effect::Send(jobs));
        }
    }

    /// The effects queued since last asked, oldest first.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.outbox)
    }

    /// The budget not used since last asked, for [`Unused::tell`] once the lock is let go.
    pub fn take_unused(&mut self) -> Vec<Unused> {
        std::mem::take(&mut self.unused)
    }

    /// Delivers the queued effects now, on this thread (a driver without threads: tests).
    /// Requests queued to send are dropped: the caller has them from `dispatch_due`.
    #[cfg(test)]
    pub fn deliver_now(&mut self) {
        for unused in self.take_unused() {
            unused.tell(&self.governor);
        }
        for effect in self.take_effects() {
            let _ = effect.deliver();
        }
    }

    /// Takes a task in; its first request goes out as soon as allowed.
    pub fn submit(
        &mut self,
        mut task: Task,
        sink: Arc<dyn Sink>,
        cancel: CancelToken,
        now: Duration,
    ) -> TaskId {
        let id = self.next_id;
        self.next_id += 1;
        match task.next_send(&self.policy) {
            Ok(at) => {
                let kind = task.kind(&self.policy);
                self.tasks.insert(id, Entry { task, sink, cancel, in_flight: false, kind, due: at });
                self.schedule(id, at, now);
            }
            Err(e) => self.outbox.push(Effect::Finish(sink, Err(e))),
        }
        id
    }

    fn schedule(&mut self, id: TaskId, at: Duration, now: Duration) {
        self.arm(id, at);
        // Once per instant: a dispatch that holds back a thousand creates asks the key's
        // budget (a ledger transaction, with a store) once, not a thousand times.
        let budget_left = match self.budget_seen {
            Some((at, left)) if at == now => left,
            _ => {
                let left = self.governor.budget(now).0;
                self.budget_seen = Some((now, left));
                left
            }
        };
        if let Some(e) = self.tasks.get(&id) {
            log(Level::Debug, || self.describe_wait(&e.task, now, at.saturating_sub(now), budget_left));
            let event = Progress {
                scan_id: e.task.scan_id().map(str::to_owned),
                status: e.task.last_status().map(str::to_owned),
                reason: e.task.reason(),
                wait: at.saturating_sub(now),
                requests: e.task.requests,
                budget_left,
                creating: false,
                mode: e.task.mode(),
                thrift: e.task.thrift(),
            };
            self.outbox.push(Effect::Progress(e.sink.clone(), event));
        }
    }

    /// Scans under way go before new scans: room for one more poll of each whose reserved
    /// polls are spent, and for an adaptive one, the polls its plan is expected to need beyond
    /// what it still has reserved. (A pass over every task: asked once per dispatch that has a
    /// create to admit, not at every dispatch.)
    fn running_beyond_reservations(&self, now: Duration) -> u32 {
        let costs = self.costs.as_ref().map(|(_, _, c)| c);
        let beyond: f64 = self
            .tasks
            .values()
            .filter(|e| !e.task.is_creating())
            .map(|e| {
                let expected = match (e.task.thrift(), costs) {
                    (Some(t), Some(c)) => c.polls_left(t, e.task.age(now)),
                    _ => 1.0,
                };
                (expected - e.task.reserved as f64).max((e.task.reserved == 0) as u8 as f64)
            })
            .sum();
        beyond.ceil().min(u32::MAX as f64) as u32
    }

    /// What this process's work in sight is expected to cost: each running scan's polls at its
    /// thrift (its reservation, in a fixed mode), and each waiting create with the polls a
    /// scan takes at the thrift last weighed (a fixed mode's reservation); and how long a poll
    /// may wait without a call missing its deadline.
    fn work_in_sight(&self, now: Duration) -> InSight {
        let costs = self.costs.as_ref().map(|(_, _, c)| c);
        let mut w = InSight::default();
        let mut fixed_create: f64 = 0.0;
        let longest = self.model.quantile(1.0, self.policy.expected_duration);
        let shortest = self.model.quantile(0.0, self.policy.expected_duration);
        for e in self.tasks.values() {
            if let Some(left) = e.task.time_left(now) {
                let patience = left.saturating_sub(longest);
                w.patience = Some(w.patience.map_or(patience, |p: Duration| p.min(patience)));
            }
            match (e.task.is_creating(), e.task.thrift(), costs) {
                (true, ..) => {
                    w.queued += (!e.in_flight) as u32;
                    if e.task.mode() != Mode::Adaptive || costs.is_none() {
                        fixed_create =
                            fixed_create.max(f64::from(self.policy.polls_to_reserve(e.task.mode())));
                    }
                }
                (running, thrift, costs) => {
                    debug_assert!(!running);
                    let age = e.task.age(now);
                    let polls = match (thrift, costs) {
                        (Some(t), Some(c)) => c.polls_left(t, age),
                        _ => f64::from(e.task.reserved.max(1)),
                    };
                    w.running += polls;
                    // Its next poll when it is due; the rest evenly until the longest
                    // plausible duration.
                    let next = e.due.saturating_sub(now).as_secs_f64();
                    let last = (longest.max(shortest).as_secs_f64() - age.as_secs_f64()).max(next);
                    w.running_by_time.add(1.0_f64.min(polls), next, next);
                    w.running_by_time.add((polls - 1.0).max(0.0), next, last);
                }
            }
        }
        let thrift = self.thrift_seen.map_or(0.0, |(_, t, _)| t);
        let fresh = costs.map_or(0.0, |c| c.fresh(thrift)).max(fixed_create);
        w.per_create = if fresh > 0.0 { 1.0 + fresh } else { 0.0 };
        w.poll_spread = longest.saturating_sub(shortest);
        w
    }

    /// What a new scan of a batch bound by the key's budget is expected to cost: its create and
    /// its polls at the thriftiest plan (where the window binds, adaptive polls frugally), as
    /// the model has it; before the model has a plan, the mode's reservation.
    pub fn expected_requests_per_scan(&self) -> f64 {
        match (&self.costs, self.policy.mode) {
            (Some((_, _, costs)), Mode::Adaptive) => 1.0 + costs.fresh(1.0),
            _ => f64::from(1 + self.policy.polls_to_reserve(self.policy.mode)),
        }
    }

    /// Sets the task's timer to `at` (a timer set before is then stale).
    fn arm(&mut self, id: TaskId, at: Duration) {
        if let Some(e) = self.tasks.get_mut(&id) {
            e.due = at;
        }
        self.seq += 1;
        self.timers.push(Reverse((at, self.seq, id)));
    }

    /// Polls went back to the window (a scan ended before spending its reservation): the
    /// creates the budget held until the reset ask again now, so the window is spent on new
    /// scans rather than lost at its reset.
    fn wake_held_creates(&mut self) {
        let policy = &self.policy;
        let woken: Vec<(TaskId, Duration)> = self
            .tasks
            .iter_mut()
            .filter_map(|(id, e)| {
                let woke = !e.in_flight && e.task.wake();
                woke.then(|| e.task.next_send(policy).ok().map(|at| (*id, at))).flatten()
            })
            .collect();
        for (id, at) in woken {
            self.arm(id, at);
        }
    }

    /// A wait, said so that a user watching `EXONA_LOG=debug` knows why nothing happens.
    fn describe_wait(&self, task: &Task, now: Duration, wait: Duration, budget_left: u32) -> String {
        let who = task.scan_id().map_or_else(|| "the create request".to_owned(), |id| format!("scan {id}"));
        let secs = wait.as_secs_f64();
        let why = match task.reason() {
            Reason::Create => "about to create the scan".to_owned(),
            Reason::Schedule if self.model.samples() == 0 => {
                let (lo, hi) = task.expected();
                format!(
                    "the duration schedule: no scan durations learned yet, prior {:.0}-{:.0} s \
                     (if your scans are shorter, set EXONA_SCAN_DURATION_MS=MIN-MAX in ms)",
                    lo.as_secs_f64(),
                    hi.as_secs_f64()
                )
            }
            Reason::Schedule => format!("the duration schedule ({} durations learned)", self.model.samples()),
            Reason::RetryAfter => "the server's Retry-After".to_owned(),
            Reason::Backoff => "backing off after a failed request".to_owned(),
            Reason::RateLimit => "the server answered 429: the key cools down".to_owned(),
            Reason::Budget => format!(
                "the key's request budget ({budget_left} left in this window; it resets in {:.0} s)",
                self.governor.outlook(now).reset_in.as_secs_f64()
            ),
            Reason::FinalPoll => "the last poll before the deadline".to_owned(),
            Reason::OtherCreate => "another process of this host is creating a scan of the same company \
                                    (its claim in the state store lapses if that process stops)"
                .to_owned(),
        };
        let why = match (task.thrift(), task.reason()) {
            (Some(t), Reason::Schedule) => format!("{why}, adaptive at thrift {t:.2}"),
            (None, Reason::Schedule) => format!("{why}, {} mode", task.mode().name()),
            _ => why,
        };
        format!("{who}: next request in {secs:.1} s: {why}")
    }

    /// When the next timer is due, if any task waits.
    pub fn next_wake(&mut self) -> Option<Duration> {
        // Drop timers of tasks that are gone.
        while let Some(Reverse((_, _, id))) = self.timers.peek() {
            if self.tasks.get(id).is_some_and(|e| !e.in_flight) {
                break;
            }
            self.timers.pop();
        }
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Ends cancelled tasks that are not in flight; called when a cancel may have happened.
    pub fn reap_cancelled(&mut self) {
        let gone: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(_, e)| !e.in_flight && e.cancel.is_cancelled())
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.model.ended(id);
            if let Some(e) = self.tasks.remove(&id) {
                self.unused.push(Unused::Reserved(e.task.reserved));
                self.budget_freed |= e.task.reserved > 0;
                self.outbox.push(Effect::Finish(e.sink, Err(e.task.cancelled(e.cancel.reason()))));
            }
        }
    }

    /// What the other processes on the key learned: into the model, and waiting polls planned
    /// again if it moved a long way.
    fn learn_from_the_others(&mut self, now: Duration) {
        let learned = self.learning.learned_by_the_others(self.governor.ledger());
        if learned.is_empty() {
            return;
        }
        let before = self.model.quantile(REPLAN_QUANTILE, self.policy.expected_duration);
        for duration in learned {
            self.model.observe(duration);
        }
        let thrift = self.thrift_seen.map_or(0.0, |(_, t, _)| t);
        self.replan_if_moved(before, now, super::clock::wall_now(), thrift);
    }

    /// The requests whose time has come and that the governor grants, in one go (tests; the
    /// driver runs the three steps apart, see [`Dispatch`]).
    #[cfg(test)]
    pub fn dispatch_due(&mut self, now: Duration) -> Vec<Job> {
        let mut dispatch = self.prepare_dispatch(now);
        dispatch.answer(&self.governor.clone());
        self.apply_dispatch(dispatch)
    }

    /// A dispatch's first step, under the core's lock: the requests whose time has come, in
    /// order, for their gates and the key's budget to be asked off it ([`Dispatch::answer`]).
    pub fn prepare_dispatch(&mut self, now: Duration) -> Dispatch {
        self.learn_from_the_others(now);
        // Not during a 429's cooldown: every create asking then is counted among those to
        // release one by one after it, and waking them at each release would count them again.
        if self.budget_freed && !self.governor.cooling_down(now) {
            self.budget_freed = false;
            self.wake_held_creates();
        }
        // What this process's work is expected to cost, for the other processes on the key
        // (written with the next ledger decision): at most once a second, a pass over every task.
        if self.in_sight_at.is_none_or(|at| now >= at + IN_SIGHT_EVERY) {
            self.in_sight_at = Some(now);
            self.governor.set_work_in_sight(self.work_in_sight(now));
        }
        // Told to the governor before the first create of this dispatch asks (see
        // `running_beyond_reservations`); polls need not wait for it.
        let mut told_running = false;
        let mut asks = Vec::new();
        while let Some(Reverse((at, _, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(entry) = self.tasks.get_mut(&id) else {
                continue;
            };
            if entry.in_flight || entry.due != at {
                continue;
            }
            if entry.cancel.is_cancelled() {
                self.end(id, None);
                continue;
            }
            if let Some(e) = entry.task.expired(now) {
                self.end(id, Some(Err(e)));
                continue;
            }
            let kind = entry.task.kind(&self.policy);
            let ask = Ask {
                id,
                due: at,
                kind,
                gate: entry.task.gate(),
                creating: entry.task.is_creating(),
                word_limit: entry.task.word_wait_limit(),
                verdict: None,
                grant: None,
            };
            asks.push(ask);
            if matches!(kind, Kind::Create { .. }) && !std::mem::replace(&mut told_running, true) {
                let beyond = self.running_beyond_reservations(now);
                self.governor.set_running_unreserved(beyond);
                // (A pass over every task: not twice at one instant, as when the refresh
                // above has just run.)
                if self.in_sight_at != Some(now) {
                    self.in_sight_at = Some(now);
                    self.governor.set_work_in_sight(self.work_in_sight(now));
                }
                self.governor.set_first_poll_after(self.model.quantile(0.0, self.policy.expected_duration));
                // The thrift's arrivals read the key's history (off the lock) from the first
                // answer on.
                self.governor.want_history(self.model.quantile(1.0, self.policy.expected_duration));
            }
        }
        Dispatch { now, asks }
    }

    /// A dispatch's last step, under the core's lock: acts on what the gates and the budget
    /// answered; returns the requests to send. A task that ended or was planned again while
    /// it was asked gives its grant back.
    pub fn apply_dispatch(&mut self, dispatch: Dispatch) -> Vec<Job> {
        let now = dispatch.now;
        let mut jobs = Vec::new();
        for ask in dispatch.asks {
            let id = ask.id;
            let granted = ask.grant == Some(Grant::Now);
            let current = self.tasks.get(&id).is_some_and(|e| !e.in_flight && e.due == ask.due);
            if !current {
                if granted {
                    self.unused.push(Unused::Grant(ask.kind));
                }
                continue;
            }
            let entry = self.tasks.get_mut(&id).expect("present");
            if entry.cancel.is_cancelled() {
                if granted {
                    self.unused.push(Unused::Grant(ask.kind));
                }
                self.end(id, None);
                continue;
            }
            let Some(grant) = ask.grant else {
                // The gate answered, and the budget was not asked.
                match ask.verdict {
                    // Another call polls the scan: its result will be in the store.
                    Some(Verdict::Later(after)) if !ask.creating => {
                        entry.task.wait_for_word(now + after);
                        self.arm(id, now + after);
                    }
                    Some(verdict) => self.gated(id, verdict, now),
                    None => unreachable!("an ask is answered by its gate or the budget"),
                }
                continue;
            };
            let kind = ask.kind;
            match grant {
                Grant::Now => {
                    self.budget_seen = None;
                    let entry = self.tasks.get_mut(&id).expect("present");
                    entry.task.requests += 1;
                    entry.kind = kind;
                    match kind {
                        Kind::Create { reserve } => {
                            entry.task.reserved = reserve;
                            if self.creates_sent.len() == CREATES_REMEMBERED {
                                self.creates_sent.pop_front();
                            }
                            self.creates_sent.push_back(now);
                        }
                        Kind::Poll { reserved: true } => entry.task.reserved -= 1,
                        _ => {}
                    }
                    entry.in_flight = true;
                    entry.task.mark_sent(now);
                    if entry.task.is_creating() {
                        let event = Progress {
                            scan_id: None,
                            status: None,
                            reason: Reason::Create,
                            wait: Duration::ZERO,
                            requests: entry.task.requests,
                            budget_left: 0,
                            creating: true,
                            mode: entry.task.mode(),
                            thrift: None,
                        };
                        self.outbox.push(Effect::Progress(entry.sink.clone(), event));
                    }
                    let gate = entry.task.gate().filter(|_| entry.task.is_creating());
                    let request = entry.task.request(now, &self.policy);
                    jobs.push(Job { task: id, request, gate, kind, granted_at: now });
                }
                Grant::At(t) | Grant::Behind(t) => {
                    match entry.task.hold_until(t, now, matches!(grant, Grant::Behind(_))) {
                        Ok(held_to) => {
                            let at = entry.task.next_send(&self.policy);
                            match at {
                                Ok(at) => self.schedule(id, at.max(held_to), now),
                                Err(e) => self.end(id, Some(Err(e))),
                            }
                        }
                        Err(mut e) => {
                            // What is held back, for whom, and when the window resets.
                            e.message = format!("{}: {}", e.message, self.governor.why_held(now));
                            self.end(id, Some(Err(e)));
                        }
                    }
                }
                Grant::Refused => {
                    let e = entry.task.retry_refused();
                    self.end(id, Some(Err(e)));
                }
            }
        }
        jobs
    }

    /// A create's gate turned it down when it was about to be sent (see [`Job::gate`]): the
    /// grant goes back to the budget, as if the request had never been granted.
    pub fn vetoed(&mut self, id: TaskId, verdict: Verdict, now: Duration) {
        let Some(entry) = self.tasks.get_mut(&id) else { return };
        entry.in_flight = false;
        entry.task.requests = entry.task.requests.saturating_sub(1);
        let reserved = std::mem::take(&mut entry.task.reserved);
        self.unused.push(Unused::Grant(Kind::Create { reserve: reserved }));
        self.budget_freed |= reserved > 0;
        self.budget_seen = None;
        let sent_at = entry.task.sent_at();
        if let Some(at) = self.creates_sent.iter().rposition(|t| *t == sent_at) {
            self.creates_sent.remove(at);
        }
        if entry.cancel.is_cancelled() {
            self.end(id, None);
            return;
        }
        self.gated(id, verdict, now);
    }

    /// A grant that was not sent within [`STALE_GRANT`] goes back whole, and the request asks
    /// the key's budget again now (issue 32: a paused process does not spend budget that the
    /// others were granted while it slept).
    pub fn regrant(&mut self, id: TaskId, kind: Kind, now: Duration) {
        let Some(entry) = self.tasks.get_mut(&id) else { return };
        entry.in_flight = false;
        entry.task.requests = entry.task.requests.saturating_sub(1);
        let kind = match kind {
            Kind::Create { .. } => {
                let reserved = std::mem::take(&mut entry.task.reserved);
                self.budget_freed |= reserved > 0;
                let sent_at = entry.task.sent_at();
                if let Some(at) = self.creates_sent.iter().rposition(|t| *t == sent_at) {
                    self.creates_sent.remove(at);
                }
                Kind::Create { reserve: reserved }
            }
            Kind::Poll { reserved: true } => {
                entry.task.reserved += 1;
                kind
            }
            other => other,
        };
        let cancelled = entry.cancel.is_cancelled();
        self.unused.push(Unused::Grant(kind));
        self.budget_seen = None;
        if cancelled {
            self.end(id, None);
            return;
        }
        self.schedule(id, now, now);
    }

    /// Acts on a gate's verdict for a create not sent.
    fn gated(&mut self, id: TaskId, verdict: Verdict, now: Duration) {
        let Some(entry) = self.tasks.get_mut(&id) else { return };
        match verdict {
            Verdict::Send => {}
            Verdict::Answered(scan) => self.end(id, Some(Ok(scan))),
            Verdict::Join(scan_id) => match entry.task.join(&scan_id, now) {
                Ok(()) => match entry.task.next_send(&self.policy) {
                    Ok(at) => self.schedule(id, at, now),
                    Err(e) => self.end(id, Some(Err(e))),
                },
                Err(e) => self.end(id, Some(Err(e))),
            },
            Verdict::Later(after) => {
                let said = entry.task.reason() == Reason::OtherCreate;
                match entry.task.wait_on_other_create(now + after, now) {
                    // Told once (a progress event and a log line); asked again quietly.
                    Ok(at) if said => self.arm(id, at),
                    Ok(at) => self.schedule(id, at, now),
                    Err(e) => self.end(id, Some(Err(e))),
                }
            }
        }
    }

    /// The reply to a task's request has come (or the request failed); `told`: what the key's
    /// budget made of it ([`tell_budget`], called before, off the core's lock).
    pub fn complete(
        &mut self,
        id: TaskId,
        reply: Result<Response, TransportError>,
        told: Option<Outlook>,
        now: Duration,
        wall: SystemTime,
    ) {
        if let Some(outlook) = told {
            self.outlook_seen = Some(outlook);
        }
        // A processing scan's Retry-After: the gap latency polling keeps (one server, one gap;
        // the first polls of every scan plan with it).
        if let Some(r) = reply.as_ref().ok().filter(|r| r.status == 200) {
            let h = &r.headers;
            if let Some(ra) =
                h.retry_after.as_deref().and_then(|v| parse_retry_after(v, h.date.as_deref(), wall))
            {
                self.gap_seen = Some(ra);
            }
        }
        let thrift = match self.tasks.get(&id) {
            Some(e) if e.task.mode() == Mode::Adaptive && e.task.fixed_thrift().is_none() => {
                let gap = self.gap_seen.unwrap_or_else(|| e.task.poll_gap(&self.policy));
                self.thrift(now, id, gap)
            }
            Some(_) => 0.0,
            None => return,
        };
        let schedule_before = self.model.quantile(REPLAN_QUANTILE, self.policy.expected_duration);
        let entry = self.tasks.get_mut(&id).expect("present");
        entry.in_flight = false;
        // The first scan of a process that knows no duration yet, and was told none, is polled
        // as early as the documentation's guess allows, whatever the budget: its answer
        // teaches the schedule of every other scan within the window (a guess 10x off kept a
        // first window 12 of 20 unspent). A duration the user gave is trusted as it is.
        let exploring = !self.explored
            && self.model.samples() == 0
            && self.policy.duration_is_a_guess()
            && entry.task.is_creating();
        let thrift = if exploring && reply.as_ref().is_ok_and(|r| r.status == 201) {
            self.explored = true;
            0.0
        } else {
            thrift
        };
        let server_wait_cap = self.governor.server_wait_cap();
        let mut ctx = Ctx {
            policy: &self.policy,
            model: &mut self.model,
            rng: &mut self.rng,
            wall,
            server_wait_cap,
            thrift,
            learned: None,
        };
        let outcome = entry.task.on_reply(reply, now, &mut ctx);
        if let (Some(duration), Some(scan_id)) = (ctx.learned, entry.task.scan_id()) {
            self.learning.learned_here(scan_id, duration, self.governor.ledger());
        }
        self.replan_if_moved(schedule_before, now, wall, thrift);
        if let Some(outcome) = outcome {
            self.end(id, Some(outcome));
            return;
        }
        let entry = self.tasks.get_mut(&id).expect("present");
        if !entry.task.is_creating() {
            // Still running at the age its last poll saw: the duration model censors it there.
            self.model.running(id, entry.task.seen_running_for());
        }
        if entry.task.is_creating() {
            // The create will be sent again (after a 429 or a failed connect): it reserves anew.
            let reserved = std::mem::take(&mut entry.task.reserved);
            self.unused.push(Unused::Reserved(reserved));
            self.budget_freed |= reserved > 0;
        }
        if entry.cancel.is_cancelled() {
            self.end(id, None);
            return;
        }
        match entry.task.next_send(&self.policy) {
            Ok(at) => self.schedule(id, at, now),
            Err(e) => self.end(id, Some(Err(e))),
        }
    }

    /// The duration model moved a long way down since it stood at `before` (its
    /// [`REPLAN_QUANTILE`]): every scan waiting on a poll planned under the old model is
    /// planned again (never later). Before, a process whose 30-120 s prior
    /// met 3-12 s scans learned from its first completion but kept the polls already planned
    /// at ~50-117 s, and its processes left windows unspent (issue 35).
    fn replan_if_moved(&mut self, before: Duration, now: Duration, wall: SystemTime, thrift: f64) {
        let after = self.model.quantile(REPLAN_QUANTILE, self.policy.expected_duration);
        if after.as_secs_f64() >= REPLAN_SHIFT * before.as_secs_f64() {
            return;
        }
        let server_wait_cap = self.governor.server_wait_cap();
        let mut ctx = Ctx {
            policy: &self.policy,
            model: &mut self.model,
            rng: &mut self.rng,
            wall,
            server_wait_cap,
            thrift,
            learned: None,
        };
        let mut moved = Vec::new();
        for (id, e) in self.tasks.iter_mut().filter(|(_, e)| !e.in_flight) {
            if e.task.replan(now, &mut ctx) {
                moved.push(*id);
            }
        }
        for id in moved {
            let Some(e) = self.tasks.get_mut(&id) else { continue };
            match e.task.next_send(&self.policy) {
                Ok(at) => self.arm(id, at),
                Err(err) => self.end(id, Some(Err(err))),
            }
        }
    }

    /// How thrifty adaptive polling must be now (see engine/adaptive.rs): what the scans under
    /// way, the creates waiting and the scans expected to arrive would spend before the reset,
    /// against the key's window. `replying`: the task whose reply is in (if it was its create,
    /// its scan now runs).
    fn thrift(&mut self, now: Duration, replying: TaskId, gap: Duration) -> f64 {
        // A pass over every task: weighed at most every THRIFT_FOR (with ten thousand scans
        // under way, weighing at every reply cost three times the rest of the scheduler),
        // or every poll gap if that is shorter, and again at once when the tasks have grown or
        // shrunk by a tenth: a batch's rows come in while its first creates are answered, and
        // a thrift weighed on the first few planned every scan of the first window like
        // latency mode (a 1,000-row portfolio at 100 requests a window spent its first window
        // on 24 scans, and its ETA said 11 min for a 4-minute run).
        let tasks = self.tasks.len();
        if let Some((at, thrift, then)) = self.thrift_seen {
            if now < at + THRIFT_FOR.min(gap) && tasks.abs_diff(then) * 10 <= then {
                return thrift;
            }
        }
        let thrift = self.weigh_thrift(now, replying, gap);
        self.thrift_seen = Some((now, thrift, tasks));
        thrift
    }

    fn weigh_thrift(&mut self, now: Duration, replying: TaskId, gap: Duration) -> f64 {
        let Some(outlook) = self.outlook_seen else {
            // No response has told of the window yet: the documented budget, untouched.
            return 0.0;
        };
        let prior = self.policy.expected_duration;
        // The costs move with the model: rebuilt when the poll gap changes or the durations
        // learned have grown by a quarter (they take a few thousand quantiles).
        let learned = self.model.samples();
        if self.costs.as_ref().is_none_or(|(g, n, _)| *g != gap || learned >= n + 8 + n / 4) {
            self.costs = Some((gap, learned, PlanCosts::new(&self.model, prior, gap)));
        }
        let longest = self.model.quantile(1.0, prior);
        let arriving = self.arrivals(now, outlook, longest);
        let costs = &self.costs.as_ref().expect("just set").2;
        let mut demand = Demand::default();
        for (id, e) in &self.tasks {
            // A create in flight is a scan about to run (they counted as neither, and the
            // first answer of a burst weighed the window for the scans answered so far).
            if e.task.is_creating() && *id != replying && !e.in_flight {
                demand.queued += 1;
            } else if e.task.mode() == Mode::Adaptive {
                let age = if e.task.is_creating() { Duration::ZERO } else { e.task.age(now) };
                demand.running += 1;
                demand.beyond_one += costs.latency_beyond_one(age);
                demand.horizon = demand.horizon.max(longest.saturating_sub(age));
            }
        }
        demand.arriving = arriving;
        thrift(outlook, demand, costs)
    }

    /// The scans expected to arrive before the reset, from the creates sent lately.
    fn arrivals(&mut self, now: Duration, outlook: Outlook, longest: Duration) -> f64 {
        let window = outlook.window;
        if window.is_zero() {
            return 0.0;
        }
        while self.creates_sent.front().is_some_and(|t| now.saturating_sub(*t) > window * 2) {
            self.creates_sent.pop_front();
        }
        let in_last = |from: Duration, to: Duration| {
            self.creates_sent.iter().filter(|t| (from..to).contains(&now.saturating_sub(**t))).count()
        };
        let held_lately = self.governor.create_short_at().is_some_and(|t| now.saturating_sub(t) <= window);
        let rate = if held_lately {
            // The budget held a create back within the window: the scans are a stream the
            // budget lets through at its own pace, in a burst at each reset, so the busier of
            // the last two windows tells its rate, bursts included. (Counting only the earlier
            // creates of the last window, a window opening on a run bound for minutes looked
            // nearly idle, its previous burst exactly a window old, and adaptive spent it on
            // latency polls for the scans left: 30 scans at 30 requests a minute cost up to
            // 2.53 requests each where frugal's 2.1 was wanted.)
            in_last(Duration::ZERO, window + Duration::from_nanos(1)).max(in_last(window, window * 2)) as f64
                / window.as_secs_f64()
        } else {
            // Otherwise as they did over the last window, not counting the latest (those of
            // the last scan duration are the ones under way): a burst is not a stream.
            let span = window.saturating_sub(longest);
            if span.is_zero() {
                return 0.0;
            }
            let own = in_last(longest + Duration::from_nanos(1), window + Duration::from_nanos(1));
            // With a state store, as the key's scans came over that span, whichever process of
            // this run or an earlier one created them (the scans of that span have ended, so
            // the store's history holds them): a fresh process on a key whose portfolios come
            // every few minutes expects the next one, where its own record is empty.
            let key_wide = match self.history_seen {
                Some((at, n)) if now < at + HISTORY_EVERY => n,
                // Read by the governor's refresh, off the engine's lock: none yet, ask again.
                _ => match self.governor.key_created_lately(longest) {
                    Some(n) => {
                        self.history_seen = Some((now, n));
                        n
                    }
                    None => 0,
                },
            };
            own.max(key_wide as usize) as f64 / span.as_secs_f64()
        };
        rate * outlook.reset_in.as_secs_f64()
    }

    /// Ends a task after a bug (a caught panic) with `EXONA_ERR_INTERNAL`, keeping its scan id.
    pub fn fail(&mut self, id: TaskId, why: &str) {
        let error = self.tasks.get(&id).map(|e| internal(why, e.task.scan_id()));
        if let Some(error) = error {
            self.end(id, Some(Err(error)));
        }
    }

    /// Ends every task after a bug in the scheduler: none may wait for a thread that stopped.
    pub fn fail_all(&mut self, why: &str) {
        let ids: Vec<TaskId> = self.tasks.keys().copied().collect();
        for id in ids {
            self.fail(id, why);
        }
        self.timers.clear();
    }

    /// Ends a task: with its outcome, or (None) as cancelled.
    fn end(&mut self, id: TaskId, outcome: Option<Outcome>) {
        self.model.ended(id);
        if let Some(e) = self.tasks.remove(&id) {
            if self.tasks.is_empty() {
                // Nothing in sight any more: told with the release (other processes must not
                // keep counting this one's finished work).
                self.governor.set_work_in_sight(InSight::default());
            }
            self.unused.push(Unused::Reserved(e.task.reserved));
            self.budget_freed |= e.task.reserved > 0;
            log(Level::Info, || match &outcome {
                Some(Ok(scan)) => format!(
                    "scan {} ended {} after {} request(s)",
                    scan.id(),
                    scan.get_str("/status").unwrap_or("?"),
                    e.task.requests
                ),
                Some(Err(err)) => format!("scan call ended after {} request(s): {err}", e.task.requests),
                None => format!("scan call cancelled after {} request(s)", e.task.requests),
            });
            let outcome = outcome.unwrap_or_else(|| Err(e.task.cancelled(e.cancel.reason())));
            self.outbox.push(Effect::Finish(e.sink, outcome));
        }
    }
}

impl Unused {
    /// Gives it back to the key's budget (with a ledger, a transaction: never under the
    /// core's lock).
    pub fn tell(self, governor: &Governor) {
        match self {
            Unused::Reserved(n) => governor.release(n),
            Unused::Grant(kind) => governor.unsent(kind),
        }
    }
}

/// Tells the key's budget what a reply says (its rate-limit headers, a 429's wait), or that a
/// request was lost: with a ledger, a transaction, so it is called before the reply reaches
/// the core, off its lock. Returns the window as it stands after it, for [`Core::complete`].
pub fn tell_budget(
    governor: &Governor,
    reply: &Result<Response, TransportError>,
    now: Duration,
    wall: SystemTime,
) -> Option<Outlook> {
    // What the views and the thrift's arrivals read next (the key's history among them).
    governor.refresh(now);
    match reply {
        Ok(r) => {
            let seen = observed(r, wall);
            if let Some(wait) = seen.rate_limited_for {
                log(Level::Warn, || {
                    format!(
                        "HTTP 429 (request id {}): every request of this API key waits {:.1} s",
                        r.headers.request_id.as_deref().unwrap_or("-"),
                        wait.as_secs_f64()
                    )
                });
            }
            Some(governor.observe(now, seen))
        }
        Err(_) => {
            governor.lost();
            None
        }
    }
}

fn internal(why: &str, scan_id: Option<&str>) -> crate::error::Error {
    let mut e = crate::error::Error::new(
        crate::error::Code::Internal,
        format!("internal error in libexona: {why}; please report it"),
    );
    e.scan_id = scan_id.map(str::to_owned);
    e
}

/// A seed for backoff jitter that differs between clients and processes. Not
/// `fastrand::Rng::new()`: it hashes the calling thread's std handle, which std then keeps
/// for the life of that thread (on a C program's main thread, valgrind's "possibly lost").
fn jitter_seed() -> u64 {
    static CLIENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CLIENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32) ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// What a response says about the key's budget.
fn observed(r: &Response, wall: SystemTime) -> Observed {
    let h = &r.headers;
    let num = |v: &Option<String>| v.as_deref().and_then(|s| s.trim().parse::<u64>().ok());
    let date = h.date.as_deref();
    let rate_limited_for =
        (r.status == 429).then(|| rate_limit_wait(h, wall).unwrap_or(Duration::from_secs(1)));
    Observed {
        limit: num(&h.rate_limit_limit).map(|v| v.min(u32::MAX as u64) as u32),
        remaining: num(&h.rate_limit_remaining).map(|v| v.min(u32::MAX as u64) as u32),
        reset_unix: num(&h.rate_limit_reset),
        reset_in: h.rate_limit_reset.as_deref().and_then(|v| parse_reset(v, date, wall)),
        rate_limited_for,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::governor::Limits;
    use crate::engine::ledger::{Holds, Ledger, SharedWindow};
    use crate::engine::schedule::Mode;
    use crate::engine::task::{Goal, Settings};
    use crate::model::ScanRequest;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// A ledger that keeps one window in memory and counts its transactions (each one is a
    /// `BEGIN IMMEDIATE` on the store's file).
    #[derive(Default)]
    struct CountingLedger {
        window: Mutex<SharedWindow>,
        transactions: AtomicUsize,
    }

    impl Ledger for CountingLedger {
        fn transact(
            &self,
            _: i64,
            decide: &mut dyn FnMut(&mut SharedWindow, &mut Holds),
        ) -> Result<(), String> {
            self.transactions.fetch_add(1, Ordering::Relaxed);
            let mut w = self.window.lock().unwrap();
            decide(&mut w, &mut Holds::default());
            Ok(())
        }
    }

    struct Quiet;
    impl Sink for Quiet {
        fn progress(&self, _: Progress) {}
        fn finish(&self, _: Outcome) {}
    }

    fn create(n: usize) -> Task {
        create_as(n, Mode::Balanced, (Duration::from_secs(30), Duration::from_secs(120)))
    }

    fn create_as(n: usize, mode: Mode, expected: (Duration, Duration)) -> Task {
        let request = ScanRequest::new(format!("Row {n}"), format!("https://row{n}.example"));
        let settings = Settings {
            deadline: None,
            deadline_after_create: Some(Duration::from_secs(300)),
            start_after: None,
            mode,
            expected,
            max_rate_limit_wait: Duration::from_secs(3600),
            fixed_thrift: None,
        };
        Task::new(Goal::Create { request, create_only: false }, Duration::ZERO, settings).unwrap()
    }

    /// Records the thrift each progress event reports.
    #[derive(Default)]
    struct Thrifts(Mutex<Vec<Option<f64>>>);
    impl Sink for Thrifts {
        fn progress(&self, p: Progress) {
            self.0.lock().unwrap().push(p.thrift);
        }
        fn finish(&self, _: Outcome) {}
    }

    /// A 201 on a key of 30 requests a minute with `remaining` left, its window reset a
    /// minute after `wall`.
    fn created(id: usize, remaining: u32, wall: SystemTime) -> Response {
        let reset = wall.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 60;
        let headers = crate::transport::Headers {
            rate_limit_limit: Some("30".into()),
            rate_limit_remaining: Some(remaining.to_string()),
            rate_limit_reset: Some(reset.to_string()),
            ..Default::default()
        };
        let body =
            format!(r#"{{"id": "scn_{id}", "status": "processing", "created_at": "2026-11-30T12:00:00Z"}}"#);
        Response { status: 201, headers, body: body.into_bytes() }
    }

    /// Creates in flight are scans about to run: the first of a burst to be answered plans
    /// its wait with all of them. Before, they counted as neither queued nor running, and the
    /// first answer of five creates sent at once weighed a window of 30 requests a minute for
    /// two scans: thrift 0, latency polling for six scans whose latency polls (about 5.5
    /// each) the window's 20 spare requests cannot pay for (0.25 with them counted).
    #[test]
    fn creates_in_flight_are_weighed_as_scans_under_way() {
        let governor = Arc::new(Governor::new(Limits::default()));
        let policy = Policy {
            mode: Mode::Adaptive,
            expected_duration: (Duration::from_secs(3), Duration::from_secs(12)),
            default_poll_interval: Duration::from_secs(1),
            ..Policy::default()
        };
        let expected = policy.expected_duration;
        let mut core = Core::new(policy, governor);
        let wall = SystemTime::now();
        let adaptive = |n| create_as(n, Mode::Adaptive, expected);
        // One scan answered first: the key's window is known (29 of 30 left).
        core.submit(adaptive(0), Arc::new(Quiet), CancelToken::new(), Duration::ZERO);
        let probe = core.dispatch_due(Duration::ZERO);
        answer(&mut core, probe[0].task, Ok(created(0, 29, wall)), Duration::ZERO, wall);
        // Five more at once, all sent before the first of them is answered.
        let sinks: Vec<Arc<Thrifts>> = (1..=5).map(|_| Arc::new(Thrifts::default())).collect();
        for (n, sink) in sinks.iter().enumerate() {
            core.submit(adaptive(n + 1), sink.clone(), CancelToken::new(), Duration::from_secs(1));
        }
        let jobs = core.dispatch_due(Duration::from_secs(1));
        assert_eq!(jobs.len(), 5, "creates sent");
        let first = jobs[0].task;
        answer(&mut core, first, Ok(created(1, 28, wall)), Duration::from_secs(1), wall);
        core.deliver_now();
        let planned = sinks[0].0.lock().unwrap().iter().rev().find_map(|t| *t).expect("a wait planned");
        assert!(
            planned >= 0.2,
            "the first answer of {} creates in flight planned thrift {planned:.2}",
            jobs.len()
        );
    }

    /// A reply as the driver hands it in: told to the key's budget, then to the core.
    fn answer(
        core: &mut Core,
        id: TaskId,
        reply: Result<Response, TransportError>,
        now: Duration,
        wall: SystemTime,
    ) {
        let told = tell_budget(&core.governor.clone(), &reply, now, wall);
        core.complete(id, reply, told, now, wall);
    }

    /// A gate that lets every create through its read and turns it down at the claim: another
    /// process created the scan between the two.
    struct LateJoin;
    impl CreateGate for LateJoin {
        fn peek(&self) -> Verdict {
            Verdict::Send
        }
        fn claim(&self) -> Verdict {
            Verdict::Join("scn_other".into())
        }
    }

    /// A create its gate turns down at the last moment gives its grant back whole (the
    /// request, and the polls it reserved), and its call waits on the other process's scan.
    #[test]
    fn a_create_turned_down_by_its_gate_gives_its_grant_back_and_joins() {
        let governor = Arc::new(Governor::new(Limits::default()));
        let mut core = Core::new(Policy::default(), governor.clone());
        let before = governor.budget(Duration::ZERO);
        let task = create(0).with_gate(Some(Arc::new(LateJoin)));
        let id = core.submit(task, Arc::new(Quiet), CancelToken::new(), Duration::ZERO);
        let jobs = core.dispatch_due(Duration::ZERO);
        assert_eq!(jobs.len(), 1);
        let verdict = jobs[0].gate.as_ref().expect("a create carries its gate").claim();
        core.vetoed(id, verdict, Duration::ZERO);
        core.deliver_now();
        assert_eq!(governor.budget(Duration::ZERO), before, "the grant went back");
        assert_eq!(governor.outlook(Duration::ZERO).reserved, 0, "and its reserved polls");
        let jobs = core.dispatch_due(Duration::ZERO);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].request.path, "/scans/scn_other");
        assert!(jobs[0].gate.is_none(), "a poll has no gate");
    }

    /// Issue 32: a process stopped between a grant and its send (past its lease, so the others
    /// may have been granted what it held) sent it on waking. The grant now goes back whole
    /// and the request asks again.
    #[test]
    fn a_grant_not_sent_in_time_goes_back_and_is_asked_again() {
        let governor = Arc::new(Governor::new(Limits::default()));
        let mut core = Core::new(Policy::default(), governor.clone());
        let before = governor.budget(Duration::ZERO);
        let id = core.submit(create(0), Arc::new(Quiet), CancelToken::new(), Duration::ZERO);
        let jobs = core.dispatch_due(Duration::ZERO);
        assert_eq!(jobs.len(), 1);
        let woke = jobs[0].granted_at + STALE_GRANT + Duration::from_secs(30);
        core.regrant(id, jobs[0].kind, woke);
        core.deliver_now();
        assert_eq!(governor.budget(woke), before, "the grant went back");
        assert_eq!(governor.outlook(woke).reserved, 0, "and its reserved polls");
        let again = core.dispatch_due(woke);
        assert_eq!(again.len(), 1, "asked again at once");
        assert_eq!(again[0].granted_at, woke);
        assert!(matches!(again[0].kind, Kind::Create { .. }));
    }

    /// A portfolio's thousand creates due at once, behind the first one's probe: the dispatch
    /// asks the ledger a bounded number of times, not once (or twice) per create. Before the
    /// fix it made ~2,000 transactions every 20 ms, and with a store the scheduler never got
    /// round to reading the probe's answer (a 1,000-row command stalled at a window's start).
    #[test]
    fn creates_held_back_together_ask_the_ledger_a_bounded_number_of_times() {
        let ledger = Arc::new(CountingLedger::default());
        let governor = Arc::new(Governor::new(Limits::default()));
        governor.share(ledger.clone(), Duration::ZERO);
        let mut core = Core::new(Policy::default(), governor);
        for n in 0..1000 {
            core.submit(create(n), Arc::new(Quiet), CancelToken::new(), Duration::ZERO);
        }
        let before = ledger.transactions.load(Ordering::Relaxed);
        for tick in 0..10u64 {
            let now = Duration::from_millis(tick * 20);
            let jobs = core.dispatch_due(now);
            assert!(jobs.len() <= 1, "only the probe goes before the key's budget is known");
        }
        let spent = ledger.transactions.load(Ordering::Relaxed) - before;
        assert!(spent <= 10 * 4, "{spent} ledger transactions for 10 dispatches of 1,000 held creates");
        assert_eq!(core.len(), 1000, "no create is lost while held");
    }
}

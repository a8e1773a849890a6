//! The budget governor: one per API key in the process, shared by every client and thread
//! that uses the key. Every request asks it for a grant first.
//!
//! It knows the key's window from the `X-RateLimit-*` headers (before any response: the
//! documented 100 per hour), keeps the smallest `Remaining` seen for a window (responses arrive
//! out of order), counts grants whose responses are still out, and
//! - admits a new scan only when the scan's expected polls can be afforded too (their budget is
//!   reserved at admission and drawn down by the polls);
//! - paces the budget over the rest of the window once it runs low;
//! - after a 429, holds the whole key until the server's time, then releases the requests that
//!   queued meanwhile one by one, `release_spacing` apart;
//! - caps retries (a request after a failure) per window, so a failing server cannot eat the
//!   budget.
//!
//! With a ledger attached ([`Governor::share`]), the same decisions are made on the key's
//! window as every process of the host sees it, in one ledger transaction per decision
//! (src/engine/ledger.rs); if the ledger fails, the governor decides on what it knows alone.
//! No lock that a caller which only reads or tells the state takes is held while the ledger
//! is waited on (DESIGN.md 9.3): a decision runs on a copy of the state, in its turn, and
//! comes back; views read the ledger's window as last seen, which [`Governor::refresh`]
//! reads again off every lock.
//!
//! It takes time as arguments and never sleeps: the scheduler acts on its answers.

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use super::ledger::{Holds, Ledger, SharedWindow, WallAnchor, HELD};

/// What a request is, for the budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// POST of a new scan that will need `reserve` polls (one POST plus its polls).
    Create { reserve: u32 },
    /// A poll of an admitted scan; `reserved` says whether it draws on a reservation.
    Poll { reserved: bool },
    /// A request sent again after a failure (5xx, network): capped per window.
    Retry,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Send now.
    Now,
    /// Ask again at this (monotonic) time.
    At(Duration),
    /// A create short only of the polls promised to scans under way: ask again at this time at
    /// the latest, or as soon as scans give back polls they did not spend.
    Behind(Duration),
    /// Do not send: the retry cap of this window is spent.
    Refused,
}

/// How long a ledger another process holds is left alone before it is asked again (each ask
/// waits out the store's busy timeout first).
const HELD_RECHECK: Duration = Duration::from_millis(500);

/// How soon a create held behind other processes' promised polls asks again.
const OTHERS_RECHECK: Duration = Duration::from_secs(2);

/// How soon a request held behind the first probe asks again.
const PROBE_WAIT: Duration = Duration::from_millis(20);

/// The longest the key is held on a server's word alone (a `Retry-After` or
/// `X-RateLimit-Reset` far ahead): after this, or after the learned window if shorter, one
/// request probes again. A server asking for a year is more likely wrong than meant.
pub const MAX_SERVER_WAIT: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug)]
pub struct Limits {
    /// Assumed until a response says otherwise (the docs: 100 per hour).
    pub default_limit: u32,
    pub default_window: Duration,
    /// Below this share of the limit, the rest of the window's budget is spread evenly.
    pub low_water: f64,
    /// Gap between the requests released after a 429 cooldown.
    pub release_spacing: Duration,
    /// Retries allowed per window, as a share of the limit (at least 2).
    pub retry_share: f64,
    /// A share of the limit new scans leave for the polls a scan under way needs beyond its
    /// reservation (rare, but a poll the window has no room for waits for the reset).
    pub tail_share: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            default_limit: 100,
            default_window: Duration::from_secs(3600),
            low_water: 0.2,
            release_spacing: Duration::from_secs(1),
            retry_share: 0.1,
            tail_share: 0.05,
        }
    }
}

#[derive(Clone, Debug)]
struct State {
    limits: Limits,
    limit: u32,
    /// Smallest `Remaining` seen for the current window.
    remaining: u32,
    /// Monotonic end of the current window.
    reset_at: Duration,
    /// Server's `X-RateLimit-Reset` for the current window, when known.
    reset_unix: Option<u64>,
    /// `X-RateLimit-Reset` of the last window that ended: responses from it are stale.
    ended_unix: Option<u64>,
    /// The window's length: the documented hour until two successive resets show the real one.
    window: Duration,
    /// A window's length read from its first response (see `observe`): for estimates only,
    /// until two resets show the real one. Never caps a server's wait: if windows are aligned
    /// to the clock rather than to their first request, it is too short.
    window_guess: Option<Duration>,
    /// Grants whose response has not been observed yet.
    outstanding: u32,
    /// Poll budget promised to admitted scans.
    reserved: u32,
    cooldown_until: Duration,
    /// Requests still to release one by one after a cooldown.
    to_release: u32,
    last_grant: Option<Duration>,
    retries: u32,
    /// Counters for progress reports and benchmarks.
    granted: u64,
    started: bool,
    /// Whether any response has told us the key's budget yet.
    informed: bool,
    /// Running scans of this process with no reserved poll left (see `set_running_unreserved`).
    running_unreserved: u32,
    /// The earliest a new scan's first poll can be due (see `set_first_poll_after`).
    first_poll_after: Duration,
    /// What this process's work in sight is expected to cost (see `set_work_in_sight`), and
    /// whether the ledger has it as it is.
    in_sight: InSight,
    in_sight_told: bool,
    /// Polls other processes promised their scans, while a ledger transaction has them loaded
    /// (zero otherwise): their scans giving them back wake nothing here.
    others_reserved: u32,
    /// What the other processes' work in sight is expected to cost, while a ledger transaction
    /// has them loaded (zero otherwise): polls of their running scans, requests of their
    /// waiting creates.
    others_expected: u32,
    others_queued: u32,
    /// When a create of this process was last held back for want of budget (the window spent,
    /// its requests promised, or paced low), not for a probe or a 429's cooldown.
    create_short_at: Option<Duration>,
    /// While another process holds the ledger: when to ask it again (wall ms).
    ledger_held_until_wall_ms: Option<i64>,
}

/// How a decision on the key's state was made (see [`Governor::decide`]).
enum Decided<R> {
    /// In a ledger transaction that committed: every process on the key sees it.
    Shared(R),
    /// Alone: no ledger, or one that failed before deciding (gone, bypassed).
    Alone(R),
    /// In a ledger transaction that then failed to commit: seen by no other process.
    Uncommitted(R),
    /// Not made: another process holds the ledger.
    Held,
}

pub struct Governor {
    /// Held only to read, tell or take back the state, never across the ledger's I/O.
    state: Mutex<State>,
    /// Held by the decision of this process under way on the ledger, for its whole
    /// transaction: this process's decisions meet the ledger one at a time (one connection),
    /// while `state` stays free for what only reads or tells it.
    turn: Mutex<()>,
    /// The key's window shared with the other processes of the host, when there is a store.
    shared: OnceLock<(Arc<dyn Ledger>, WallAnchor)>,
    /// What the views read instead of the ledger (see [`Governor::refresh`]).
    seen: Mutex<Seen>,
}

/// The ledger as last read, for views that must not wait on it.
#[derive(Debug, Default)]
struct Seen {
    /// The key's window as the last transaction left it or the last refresh read it.
    window: Option<SharedWindow>,
    /// When it was last refreshed (wall ms).
    refreshed_wall_ms: Option<i64>,
    /// The key's history the engine wants (scans created over the last window but the last
    /// `longest`), the count read for it, and when it was read (wall ms).
    history_longest: Option<Duration>,
    history: Option<u32>,
    history_read_wall_ms: Option<i64>,
}

/// How often [`Governor::refresh`] reads the ledger at most.
const REFRESH_EVERY_MS: i64 = 1000;

impl std::fmt::Debug for Governor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governor")
            .field("state", &self.state)
            .field("shared", &self.shared.get().is_some())
            .finish()
    }
}

impl Governor {
    pub fn new(limits: Limits) -> Governor {
        let limit = limits.default_limit;
        Governor {
            state: Mutex::new(State {
                limit,
                remaining: limit,
                reset_at: Duration::ZERO,
                reset_unix: None,
                ended_unix: None,
                window: limits.default_window,
                window_guess: None,
                outstanding: 0,
                reserved: 0,
                cooldown_until: Duration::ZERO,
                to_release: 0,
                last_grant: None,
                retries: 0,
                granted: 0,
                started: false,
                informed: false,
                running_unreserved: 0,
                first_poll_after: Duration::ZERO,
                in_sight: InSight::default(),
                in_sight_told: true,
                others_reserved: 0,
                others_expected: 0,
                others_queued: 0,
                create_short_at: None,
                ledger_held_until_wall_ms: None,
                limits,
            }),
            turn: Mutex::new(()),
            shared: OnceLock::new(),
            seen: Mutex::new(Seen::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `decide` on a copy of the state in this process's turn on the ledger, and takes
    /// its result back (see [`State::take`]): the state's lock is never held across the
    /// ledger's I/O. Without a ledger there is no I/O: decided in place.
    fn in_turn<R>(&self, decide: impl FnOnce(&mut State) -> R) -> R {
        if self.shared.get().is_none() {
            return decide(&mut self.lock());
        }
        let _turn = self.turn.lock().unwrap_or_else(|p| p.into_inner());
        let copied = self.lock().clone();
        let mut s = copied.clone();
        let out = decide(&mut s);
        self.lock().take(s, &copied);
        out
    }

    /// Reads the key's window from the ledger again (and the key's history, once the engine
    /// wants it: [`Governor::want_history`]), for the views ([`Governor::budget`],
    /// [`Governor::outlook`], [`Governor::why_held`], [`Governor::key_created_lately`]), which
    /// read what was seen last and never wait on the ledger. Called off every lock (the
    /// engine's driver, before each dispatch and with each reply); reads each at most once a
    /// second, and the history at once the first time it is wanted.
    pub fn refresh(&self, now: Duration) {
        let Some((ledger, anchor)) = self.shared.get() else { return };
        let wall = anchor.to_wall(now);
        let due = |at: Option<i64>| at.is_none_or(|at| !(at..at + REFRESH_EVERY_MS).contains(&wall));
        let (window_due, span) = {
            let mut seen = self.seen();
            let window_due = due(seen.refreshed_wall_ms);
            if window_due {
                seen.refreshed_wall_ms = Some(wall);
            }
            let longest =
                seen.history_longest.filter(|_| seen.history.is_none() || due(seen.history_read_wall_ms));
            if longest.is_some() {
                seen.history_read_wall_ms = Some(wall);
            }
            (window_due, longest.map(|longest| (self.lock().window_estimate(), longest)))
        };
        if window_due {
            let mut read = None;
            if ledger.peek(wall, &mut |w| read = Some(w.clone())).is_ok() {
                self.seen().window = read;
            }
        }
        if let Some((from_ago, to_ago)) = span {
            let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            let n = ledger
                .created_between(wall.saturating_sub(ms(from_ago)), wall.saturating_sub(ms(to_ago)))
                .ok();
            self.seen().history = n;
        }
    }

    /// Shares the key's window with the other processes of the host through `ledger`, from
    /// now on (`now` anchors the engine's clock to the wall clock). The first ledger attached
    /// stays: one process has one view of a key.
    pub fn share(&self, ledger: Arc<dyn Ledger>, now: Duration) {
        self.share_anchored(ledger, WallAnchor::now(now));
    }

    /// As [`Governor::share`], with the wall clock's anchor given (tests give every "process"
    /// the same one: anchors taken a millisecond apart shift times by a millisecond).
    pub fn share_anchored(&self, ledger: Arc<dyn Ledger>, anchor: WallAnchor) {
        let _ = self.shared.set((ledger, anchor));
    }

    /// The ledger the key's window is shared through, when there is one (it also carries
    /// the durations the processes on the key learn).
    pub fn ledger(&self) -> Option<&Arc<dyn Ledger>> {
        self.shared.get().map(|(ledger, _)| ledger)
    }

    /// Runs a decision on the key's state: the shared window when a ledger is attached (in one
    /// ledger transaction), else, or when the ledger fails, this process's own.
    /// `now` is the engine's time when the caller has it (it dates this process's holds).
    /// A ledger another process holds: decided alone too, for what is learned or given back
    /// (it reaches the ledger with the next decision, see [`State::load`]); a grant never is,
    /// see [`Governor::request`].
    fn decide<R>(&self, now: Option<Duration>, mut f: impl FnMut(&mut State) -> R) -> R {
        self.in_turn(|s| match self.decide_shared(s, now, &mut f) {
            Decided::Shared(out) | Decided::Alone(out) | Decided::Uncommitted(out) => out,
            Decided::Held => f(s),
        })
    }

    /// The ledger's part of [`Governor::decide`]. While the ledger is held it is asked again
    /// only after [`HELD_RECHECK`]: each ask waits out the store's busy timeout.
    fn decide_shared<R>(
        &self,
        s: &mut State,
        now: Option<Duration>,
        f: &mut impl FnMut(&mut State) -> R,
    ) -> Decided<R> {
        let Some((ledger, anchor)) = self.shared.get() else { return Decided::Alone(f(s)) };
        let wall_ms = now.map_or_else(|| WallAnchor::now(Duration::ZERO).wall_ms, |n| anchor.to_wall(n));
        if s.ledger_held_until_wall_ms.is_some_and(|until| wall_ms < until) {
            return Decided::Held;
        }
        let mut out = None;
        let mut written = None;
        let answer = ledger.transact(wall_ms, &mut |window, mine| {
            s.load(window, anchor);
            out = Some(f(s));
            s.store(window, mine, anchor);
            written = Some(window.clone());
        });
        match (answer, out) {
            (Ok(()), Some(out)) => {
                s.ledger_held_until_wall_ms = None;
                // What the views read until the next refresh: the window as committed.
                self.seen().window = written;
                Decided::Shared(out)
            }
            (Err(e), None) if e == HELD => {
                // From when the ask ended (it waited on the lock), or from the engine's time
                // on a virtual clock.
                let ended = wall_ms.max(WallAnchor::now(Duration::ZERO).wall_ms);
                s.ledger_held_until_wall_ms = Some(ended + HELD_RECHECK.as_millis() as i64);
                Decided::Held
            }
            // A transaction that failed after deciding (a process stopped inside it, its
            // session ended by the server meanwhile): the decision stands here, unseen by the
            // others.
            (_, Some(out)) => {
                s.ledger_held_until_wall_ms = None;
                Decided::Uncommitted(out)
            }
            // One that failed before deciding: decide alone (the store logs and steps aside).
            (_, None) => {
                s.ledger_held_until_wall_ms = None;
                Decided::Alone(f(s))
            }
        }
    }

    /// Reads the key's state without deciding anything: on a copy, with the ledger's window
    /// as last seen when one is attached (no I/O: see [`Governor::refresh`]).
    fn view<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut s = self.lock().clone();
        if let Some((_, anchor)) = self.shared.get() {
            let window = self.seen().window.clone();
            if let Some(window) = window {
                s.load(&window, anchor);
            }
        }
        f(&mut s)
    }

    /// How many of this process's running scans have no reserved poll left: a new scan is
    /// admitted only with room for one more poll of each.
    pub fn set_running_unreserved(&self, n: u32) {
        self.lock().running_unreserved = n;
    }

    /// The earliest a scan created now would be polled (the shortest duration the model finds
    /// plausible): a create this close to the window's reset spends only its POST in this
    /// window, its polls are the next window's.
    pub fn set_first_poll_after(&self, after: Duration) {
        self.lock().first_poll_after = after;
    }

    /// What this process's work in sight is expected to cost: when the window has room for a
    /// create's expected cost beside the running scans' expected polls, it is admitted even if
    /// its reservation does not fit; when it has room for all of it, pacing holds nothing back.
    pub fn set_work_in_sight(&self, in_sight: InSight) {
        let mut s = self.lock();
        s.in_sight_told &= s.in_sight == in_sight;
        s.in_sight = in_sight;
    }

    /// When a create of this process was last held back for want of budget: the window spent,
    /// its requests promised to scans under way, or paced as it runs low. A create held behind
    /// the first request's probe or a 429's cooldown does not count.
    pub fn create_short_at(&self) -> Option<Duration> {
        self.lock().create_short_at
    }

    /// Says that [`Governor::key_created_lately`] will be asked, with `longest` the longest
    /// plausible scan: the next refresh reads the key's history for it.
    pub fn want_history(&self, longest: Duration) {
        if self.shared.get().is_some() {
            self.seen().history_longest = Some(longest);
        }
    }

    /// How many of the key's scans were created over the last window (as
    /// [`Governor::outlook`] has it) but the last `longest`, by any process of this run or
    /// earlier ones, as the ledger's history had them at the last [`Governor::refresh`];
    /// `None` without a ledger, before a refresh has read it, or when the ledger keeps no
    /// history or fails.
    pub fn key_created_lately(&self, longest: Duration) -> Option<u32> {
        self.shared.get()?;
        self.want_history(longest);
        self.seen().history
    }

    /// Whether a 429's cooldown holds the key at `now` (as this process last saw the key).
    pub fn cooling_down(&self, now: Duration) -> bool {
        now < self.lock().cooldown_until
    }

    /// A request held back without asking (the scheduler already knows a create will be held
    /// to the same time): counted among those a 429's cooldown releases one by one.
    pub fn held_without_asking(&self, now: Duration) {
        let mut s = self.lock();
        if now < s.cooldown_until {
            s.to_release += 1;
        }
    }

    /// Asks to send a request of `kind` at `now`. While another process holds the ledger,
    /// nothing is granted: a grant decided alone spends budget the others may have been
    /// granted; the request asks again once the ledger may answer.
    ///
    /// Nor is a grant whose ledger transaction did not commit: the others never saw it. (A
    /// process stopped inside its transaction on PostgreSQL, its session ended by the server's
    /// idle-in-transaction timeout, sent on waking what it had decided 51 s before: a 429 in
    /// `exona-bench crash-pause-pg`.) Its decision is undone and the request asks again.
    pub fn request(&self, now: Duration, kind: Kind) -> Grant {
        self.in_turn(|s| {
            let before = self.shared.get().map(|_| s.clone());
            match self.decide_shared(s, Some(now), &mut |s: &mut State| s.request(now, kind)) {
                Decided::Shared(grant) | Decided::Alone(grant) => grant,
                Decided::Uncommitted(grant) => match (grant, before) {
                    (Grant::Now, Some(before)) => {
                        *s = before;
                        Grant::At(now + HELD_RECHECK)
                    }
                    (grant, _) => grant,
                },
                Decided::Held => {
                    let (_, anchor) = self.shared.get().expect("only a shared ledger is held");
                    let until = s.ledger_held_until_wall_ms.map_or(now, |w| anchor.to_monotonic(w));
                    Grant::At(until.max(now + Duration::from_millis(1)))
                }
            }
        })
    }

    /// Returns reservations a scan no longer needs (it ended before using them).
    pub fn release(&self, unused: u32) {
        let untold = !self.lock().in_sight_told;
        if unused > 0 || (untold && self.shared.get().is_some()) {
            self.decide(None, |s| s.reserved = s.reserved.saturating_sub(unused));
        }
    }

    /// A granted request was not sent after all (its create's gate found another process's
    /// scan or claim at the last moment): the grant goes back whole.
    pub fn unsent(&self, kind: Kind) {
        self.decide(None, |s| {
            s.outstanding = s.outstanding.saturating_sub(1);
            s.granted = s.granted.saturating_sub(1);
            match kind {
                Kind::Create { reserve } => s.reserved = s.reserved.saturating_sub(reserve),
                Kind::Poll { reserved: true } => s.reserved += 1,
                Kind::Poll { reserved: false } => {}
                Kind::Retry => s.retries = s.retries.saturating_sub(1),
            }
        });
    }

    /// A granted request ended without a response (network error): it may or may not count.
    pub fn lost(&self) {
        self.decide(None, |s| s.outstanding = s.outstanding.saturating_sub(1));
    }

    /// Learns from a response: its rate-limit headers, and a 429's wait.
    /// `reset_in` is the time to `X-RateLimit-Reset` measured on the server's clock.
    /// Takes in what a response said; returns the window as it stands after it (in the same
    /// transaction, with a ledger).
    pub fn observe(&self, now: Duration, seen: Observed) -> Outlook {
        let known = self.shared.get().is_some();
        let outlook = self.decide(Some(now), |s| {
            s.observe(now, seen);
            s.outlook(now)
        });
        Outlook { others_known: known, ..outlook }
    }

    /// Why the key's budget holds requests back now, in the words `exona status` uses: what
    /// the window has left, how much of it is promised and to whom, and when it resets. (A
    /// refusal said only "next in 3180.1 s" while `exona status` showed 7 of 100 left: the
    /// reason, polls promised to scans under way, was in docs/waiting.md alone.)
    pub fn why_held(&self, now: Duration) -> String {
        self.view(|s| {
            s.roll(now);
            let left = s.remaining.saturating_sub(s.outstanding);
            let others = s.others_reserved.min(s.reserved);
            let tail = (s.limit as f64 * s.limits.tail_share).ceil() as u32;
            let reset_in = s.reset_at.saturating_sub(now);
            let at = humantime::format_rfc3339_seconds(super::clock::wall_now() + reset_in);
            let documented = if s.informed { "" } else { " (the documented budget: no answer has told of it yet)" };
            let mut why = format!(
                "the key's window has {left} of {} requests left{documented}; {} are promised to the polls of \
                 scans under way ({} of this process's, {others} of other processes' on this key) and {tail} \
                 kept for polls beyond their plan; it resets at {at} (in {})",
                s.limit,
                s.reserved,
                s.reserved - others,
                words(reset_in)
            );
            if now < s.cooldown_until {
                let until = s.cooldown_until - now;
                why += &format!("; after a 429, no request before {} s from now", until.as_secs());
            }
            why
        })
    }

    /// The key's window as the governor sees it now: what an estimate of a long batch's end
    /// needs (the budget binds a portfolio, not the scans' durations).
    pub fn outlook(&self, now: Duration) -> Outlook {
        Outlook { others_known: self.shared.get().is_some(), ..self.view(|s| s.outlook(now)) }
    }

    /// The longest a server's word holds the key: the learned window, at most an hour.
    pub fn server_wait_cap(&self) -> Duration {
        self.lock().server_wait_cap()
    }

    /// Requests the budget allows now (`Remaining` less what is still out), and how many it
    /// has granted in all. With a ledger, what every process on the key left.
    pub fn budget(&self, now: Duration) -> (u32, u64) {
        self.view(|s| {
            s.roll(now);
            (s.remaining.saturating_sub(s.outstanding), s.granted)
        })
    }
}

impl State {
    /// A decision made on a copy (`copied`, as the state was when the copy was taken) comes
    /// back: what it decided replaces the state, except what was told meanwhile without a
    /// decision (the work in sight, the running scans beyond their reservations, the first
    /// poll's time: the newer word wins; requests held without asking: added).
    fn take(&mut self, decided: State, copied: &State) {
        let live = std::mem::replace(self, decided);
        if live.in_sight != copied.in_sight {
            self.in_sight = live.in_sight;
            self.in_sight_told = false;
        }
        if live.running_unreserved != copied.running_unreserved {
            self.running_unreserved = live.running_unreserved;
        }
        if live.first_poll_after != copied.first_poll_after {
            self.first_poll_after = live.first_poll_after;
        }
        self.to_release += live.to_release.saturating_sub(copied.to_release);
    }

    fn outlook(&mut self, now: Duration) -> Outlook {
        self.roll(now);
        let window = self.window_estimate();
        let mut reset_in = self.reset_at.saturating_sub(now);
        if !self.informed {
            // A window no response has told of yet ends within a window at the most.
            reset_in = reset_in.min(window);
        }
        Outlook {
            limit: self.limit,
            available: self.remaining.saturating_sub(self.outstanding),
            reserved: self.reserved,
            reset_in: reset_in.max(self.cooldown_until.saturating_sub(now)),
            window,
            others_known: false,
            others_demand: self.others_expected.saturating_add(self.others_queued),
            window_known: self.window < self.limits.default_window
                || self.window_guess.is_some()
                || (self.informed && self.limit == self.limits.default_limit),
        }
    }

    fn request(&mut self, now: Duration, kind: Kind) -> Grant {
        let s = self;
        s.roll(now);
        if now < s.cooldown_until {
            s.to_release += 1;
            return Grant::At(s.cooldown_until);
        }
        if !s.informed && s.outstanding > 0 {
            // Nothing known of the key yet (another process may have spent it): one request
            // probes, the rest follow its answer instead of meeting a 429 together.
            return Grant::At(now + PROBE_WAIT);
        }
        if s.to_release > 0 {
            if let Some(last) = s.last_grant {
                let next = last + s.limits.release_spacing;
                if now < next {
                    return Grant::At(next);
                }
            }
        }
        let available = s.remaining.saturating_sub(s.outstanding);
        let free = available.saturating_sub(s.reserved);
        // What a request no promise covers may use: the window less the polls promised, as far
        // as the scans under way are expected to send them (a promise covers the longest
        // plausible scan, and creates admitted at their expected cost leave the window
        // promised beyond what it holds: polls of resumed scans, which have no promise, then
        // waited for the reset past their deadline).
        let expected = (s.in_sight.running.ceil() as u32).saturating_add(s.others_expected);
        let unpromised = available.saturating_sub(s.reserved.min(expected));
        let (mut in_end_zone, mut whole_fits, mut before_last) = (false, false, false);
        match kind {
            Kind::Create { reserve } => {
                // The scan and the polls it will need must fit beside what is promised already,
                // and beside one more poll for each running scan that has spent its
                // reservation (a scan under way goes before a new one); capped by the limit
                // itself, or a tiny limit would admit nothing, ever.
                let tail = (s.limit as f64 * s.limits.tail_share).ceil() as u32;
                let needed = (1 + reserve + s.running_unreserved + tail).min(s.limit);
                // Near the reset a scan's polls fall in the next window: only its POST is this
                // window's, and what this window has left would be lost at the reset (a key at
                // 20 per 40 s spent 16 of each window before, the rest held for polls that
                // came after the reset). The next window must still keep every promise.
                let end_zone = s.end_zone(now, reserve, tail);
                in_end_zone = end_zone.is_some_and(|starts| now >= starts);
                // Reservations are what a scan may need; while the window binds, a create the
                // window has room for at its expected cost goes (held to its reservation, 4
                // scans of 3-12 s ran at once at 20 requests per 40 s, and the window's work
                // took all of it, where 10 at once did it in a quarter). And the last of a
                // portfolio, everything it will spend fitting, is admitted at once.
                let w = s.in_sight;
                // (The tail is kept for polls beyond what was expected: with nothing else under
                // way on the key, there are none to keep it for.)
                let margin = if w.running > 0.0 || s.others_expected > 0 { tail } else { 0 };
                let room = available.saturating_sub(s.others_expected) as f64 - margin as f64;
                // A poll beyond what the window pays waits for the reset: admitted at expected
                // cost only when every call would still be in time after such a wait (a stream
                // of 300 s calls on an hour's window lost scans to their deadlines).
                let reset_in = s.reset_at.saturating_sub(now);
                let patient = w.patience.is_none_or(|p| reset_in < p);
                // What this window pays of that: of the scans under way (every process's), the
                // polls that fall before its reset; of the new scan, its POST and the polls
                // after its first and before the reset. Counting every poll to come against
                // this window left the windows of three processes with 30-120 s scans spent
                // 6-14 of 20 while creates waited, twice as long as blind processes (issue 35).
                let (now_share, new_share) = s.shares_before_reset(now, w.poll_spread);
                // Of this process's polls, those its forecast puts before the reset; of the
                // others', the same share (their scans are of the same key).
                let mine_now = match w.running_by_time.total() {
                    total if now_share < 1.0 && total >= 1.0 => {
                        let reset_in = s.reset_at.saturating_sub(now).min(s.window_estimate());
                        w.running_by_time.before(reset_in.as_secs_f64()) * w.running / total
                    }
                    _ => now_share * w.running,
                };
                let others_share = if w.running >= 1.0 { mine_now / w.running } else { now_share };
                let polls_now = mine_now + others_share * f64::from(s.others_expected);
                let create_now = 1.0 + (w.per_create - 1.0).max(0.0) * new_share;
                let room_now = available as f64 - margin as f64 - polls_now;
                let expected_fits = patient && w.per_create > 0.0 && room_now >= create_now.ceil();
                whole_fits =
                    w.per_create > 0.0 && room >= (w.running + w.queued as f64 * w.per_create).ceil();
                // The window before the last: when the work in sight (every process's) spills
                // past this window but what spills fits in the next one, creates go first and
                // the polls this window cannot pay wait for the reset. The run then ends at the
                // next window's start, on polls of scans already done; spending this window on
                // polls instead left creates for the last window, whose scans then had to run
                // and be polled there (three processes × 12 scans at 20 per 40 s ended 13 s
                // after the last window opened, blind processes 5 s).
                let in_sight = w.running + w.queued as f64 * w.per_create;
                let others = s.others_expected.saturating_add(s.others_queued);
                let spill = in_sight + f64::from(others) - f64::from(available);
                before_last = patient
                    && s.reset_told(now)
                    && w.queued > 0
                    && w.per_create > 0.0
                    && spill > 0.0
                    && spill + f64::from(tail) <= f64::from(s.limit);
                // A window that has ended leaves the next one unseen until a request opens it,
                // and until then its length is a guess (the documented hour, to a process that
                // did not see a window's first answer): one create, on a full budget, opens it
                // and learns its reset. Held instead, three processes with 30-120 s scans sent
                // nothing for the first 12 s of each window (the polls came later).
                let opens_window = !s.informed
                    && s.reset_unix.is_none()
                    && s.ended_unix.is_some()
                    && s.outstanding == 0
                    && available >= s.limit;
                let fits = opens_window
                    || expected_fits
                    || if in_end_zone || before_last { available >= 1 } else { free >= needed };
                if !fits {
                    s.create_short_at = Some(now);
                    let at = s.reset_at.max(now + Duration::from_millis(1));
                    let at = match end_zone {
                        Some(starts) if starts > now && available >= 1 => at.min(starts),
                        _ => at,
                    };
                    // With the reservations given back it would fit: scans give back what
                    // they do not spend when they end, often long before the reset. Another
                    // process's scans giving theirs back wakes nothing here: ask again soon.
                    return match (available >= needed, s.others_reserved > 0) {
                        (true, true) => Grant::Behind(at.min(now + OTHERS_RECHECK)),
                        (true, false) => Grant::Behind(at),
                        (false, _) => Grant::At(at),
                    };
                }
            }
            Kind::Poll { reserved } => {
                let usable = if reserved { available } else { unpromised };
                if usable == 0 {
                    return Grant::At(s.held_by_promises_until(now, available));
                }
            }
            Kind::Retry => {
                let cap = ((s.limit as f64 * s.limits.retry_share) as u32).max(2);
                if s.retries >= cap {
                    return Grant::Refused;
                }
                if unpromised == 0 {
                    return Grant::At(s.held_by_promises_until(now, available));
                }
            }
        }
        // Low on budget: spread what is left over the rest of the window. Only new scans and
        // retries are paced: a poll of a scan under way is what the budget was kept for, and
        // delaying it only delays noticing the scan's end (or fails it at its deadline). Nor
        // is a create in the window's end zone (what it would spread is lost at the reset), nor
        // one whose work in sight the window has room for.
        let paced =
            matches!(kind, Kind::Create { .. } | Kind::Retry) && !in_end_zone && !whole_fits && !before_last;
        if paced && (available as f64) < s.limit as f64 * s.limits.low_water {
            if let Some(last) = s.last_grant {
                let left = s.reset_at.saturating_sub(now);
                let gap = left / available.max(1);
                if now < last + gap {
                    if matches!(kind, Kind::Create { .. }) {
                        s.create_short_at = Some(now);
                    }
                    return Grant::At(last + gap);
                }
            }
        }
        match kind {
            Kind::Create { reserve } => {
                s.reserved += reserve;
                // The next create of the same dispatch weighs this one as under way (its POST
                // is counted as out already).
                let w = &mut s.in_sight;
                w.running += (w.per_create - 1.0).max(0.0);
                w.queued = w.queued.saturating_sub(1);
            }
            Kind::Poll { reserved: true } => s.reserved = s.reserved.saturating_sub(1),
            Kind::Poll { reserved: false } => {}
            Kind::Retry => s.retries += 1,
        }
        s.outstanding += 1;
        s.to_release = s.to_release.saturating_sub(1);
        s.last_grant = Some(now);
        s.granted += 1;
        Grant::Now
    }

    /// Until when a request no promise covers is held: the reset; or, when only the polls
    /// other processes promised hold it (the window has requests left), a moment: their
    /// promises come back as their scans end, and a killed process's with its lease, which
    /// wakes nothing here (a batch resumed after a kill had the polls of its resumed scans
    /// told to wait an hour, the window's length not yet learned, and fail at once).
    fn held_by_promises_until(&self, now: Duration, available: u32) -> Duration {
        let at = self.reset_at.max(now + Duration::from_millis(1));
        match available > 0 && self.others_reserved > 0 {
            true => at.min(now + OTHERS_RECHECK),
            false => at,
        }
    }

    /// The shares of a running scan's polls, and of a new scan's, that fall before the reset:
    /// the reset's distance over the polls' spread (a new scan's from its first poll on). All
    /// of them while the reset is not the server's word, or the spread is not known.
    /// A window that has just ended leaves the next one unseen until a request opens it: it
    /// runs a window's length from then (windows that start at their first request, the
    /// simulator's model and the likely one; one aligned to the clock ends sooner, and its first
    /// answer says so).
    fn shares_before_reset(&self, now: Duration, spread: Duration) -> (f64, f64) {
        let unseen_next = !self.informed && self.reset_unix.is_none() && self.ended_unix.is_some();
        if !(self.reset_told(now) || unseen_next) || spread.is_zero() || now < self.cooldown_until {
            return (1.0, 1.0);
        }
        let reset_in = self.reset_at.saturating_sub(now).min(self.window_estimate()).as_secs_f64();
        let spread = spread.as_secs_f64();
        let running = (reset_in / spread).min(1.0);
        let new = ((reset_in - self.first_poll_after.as_secs_f64()) / spread).clamp(0.0, 1.0);
        (running, new)
    }

    /// When the window's end zone starts, if a create of `reserve` polls may be admitted in it
    /// (see `request`): the reset is the server's word (not a guess, not a 429's cooldown), and
    /// the next window has room for the create's polls beside every poll promised already.
    fn end_zone(&self, now: Duration, reserve: u32, tail: u32) -> Option<Duration> {
        let next_window_keeps_promises = self.reserved + reserve + tail <= self.limit;
        (self.reset_told(now) && next_window_keeps_promises && !self.first_poll_after.is_zero())
            .then(|| self.reset_at.saturating_sub(self.first_poll_after))
    }

    /// Whether the window's reset is the server's own word (not a guess from the documented
    /// window, not a 429's cooldown): only then may work be planned for the next window.
    fn reset_told(&self, now: Duration) -> bool {
        self.informed && self.reset_unix.is_some() && now >= self.cooldown_until
    }

    fn observe(&mut self, now: Duration, seen: Observed) {
        let s = self;
        s.outstanding = s.outstanding.saturating_sub(1);
        s.roll(now);
        if let Some(limit) = seen.limit {
            s.limit = limit.max(1);
        }
        let cap = s.server_wait_cap();
        let stale = seen.reset_unix.is_some_and(|unix| {
            s.reset_unix.is_some_and(|known| unix < known) || s.ended_unix.is_some_and(|ended| unix <= ended)
        });
        if stale {
            // A late response from a window that has ended: it says nothing about this one.
        } else {
            s.informed |= seen.remaining.is_some() || seen.rate_limited_for.is_some();
            match (seen.reset_unix, seen.reset_in) {
                (Some(unix), Some(reset_in)) => {
                    if s.reset_unix != Some(unix) {
                        s.learn_window(unix);
                        if seen.remaining == Some(s.limit.saturating_sub(1)) {
                            // The window's first request was this one: with windows that start
                            // at their first request (the simulator's model, the likely one),
                            // it lasts until the reset. Known an hour before two resets are.
                            s.window_guess = Some(reset_in);
                        }
                        s.reset_unix = Some(unix);
                        s.remaining = seen.remaining.unwrap_or(s.limit);
                        s.retries = 0;
                    }
                    if now >= s.cooldown_until {
                        s.reset_at = now + reset_in.min(cap);
                    }
                    // else: a 429's word on when to come back holds until it has passed; a
                    // response sent before it (answers cross) must not push the key's next
                    // request out to the window's reset.
                    if let Some(r) = seen.remaining {
                        s.remaining = s.remaining.min(r);
                    }
                }
                _ => {
                    if let Some(r) = seen.remaining {
                        s.remaining = s.remaining.min(r);
                    }
                }
            }
        }
        if let Some(wait) = seen.rate_limited_for {
            s.informed = true;
            s.remaining = 0;
            let until = now + wait.min(cap);
            if until > s.cooldown_until {
                s.cooldown_until = until;
            }
            // Whatever waits now is released one by one; this request counts as one of them.
            s.to_release = s.to_release.max(1);
            // The server's word on when to come back wins over what the headers implied (the
            // longest word, if 429s crossed).
            s.reset_at = s.cooldown_until;
        }
    }

    /// Takes the key's window as the ledger has it, and counts the other processes' holds as
    /// if they were this process's own (undone by [`State::store`]).
    /// What this process learned while it decided alone (the ledger held or gone) is kept
    /// where it is newer: a later window's reset, or fewer requests left in the same window
    /// (a window's `Remaining` only falls).
    fn load(&mut self, w: &SharedWindow, anchor: &WallAnchor) {
        let newer_here = matches!((self.reset_unix, w.reset_unix), (Some(here), Some(there)) if here > there);
        if w.known && !newer_here {
            let same_window =
                self.informed && w.informed && self.reset_unix.is_some() && self.reset_unix == w.reset_unix;
            let remaining_here = self.remaining;
            self.started = true;
            self.limit = w.limit.max(1);
            self.remaining = if same_window { w.remaining.min(remaining_here) } else { w.remaining };
            self.reset_at = anchor.to_monotonic(w.reset_wall_ms);
            self.reset_unix = w.reset_unix;
            self.ended_unix = w.ended_unix;
            self.window = Duration::from_millis(w.window_ms.max(1));
            self.informed = w.informed;
        }
        if w.known {
            self.cooldown_until = self.cooldown_until.max(anchor.to_monotonic(w.cooldown_wall_ms));
            self.last_grant = match (self.last_grant, w.last_grant_wall_ms) {
                (mine, Some(any)) => Some(mine.unwrap_or_default().max(anchor.to_monotonic(any))),
                (mine, None) => mine,
            };
        }
        self.outstanding += w.others_outstanding;
        self.reserved += w.others_reserved;
        self.others_reserved = w.others_reserved;
        self.others_expected = w.others_expected;
        self.others_queued = w.others_queued;
    }

    /// Writes the key's window back to the ledger, and keeps this process's holds apart.
    fn store(&mut self, w: &mut SharedWindow, mine: &mut Holds, anchor: &WallAnchor) {
        self.outstanding = self.outstanding.saturating_sub(w.others_outstanding);
        self.reserved = self.reserved.saturating_sub(w.others_reserved);
        self.others_reserved = 0;
        self.others_expected = 0;
        self.others_queued = 0;
        let w_in = self.in_sight;
        self.in_sight_told = true;
        *mine = Holds {
            outstanding: self.outstanding,
            reserved: self.reserved,
            expected: w_in.running.ceil().min(u32::MAX as f64) as u32,
            queued: (w_in.queued as f64 * w_in.per_create).ceil().min(u32::MAX as f64) as u32,
        };
        *w = SharedWindow {
            known: true,
            limit: self.limit,
            remaining: self.remaining,
            reset_wall_ms: anchor.to_wall(self.reset_at),
            reset_unix: self.reset_unix,
            ended_unix: self.ended_unix,
            window_ms: self.window.as_millis() as u64,
            informed: self.informed,
            cooldown_wall_ms: anchor.to_wall(self.cooldown_until),
            last_grant_wall_ms: self.last_grant.map(|t| anchor.to_wall(t)),
            others_outstanding: w.others_outstanding,
            others_reserved: w.others_reserved,
            others_expected: w.others_expected,
            others_queued: w.others_queued,
        };
    }

    /// Opens a new local window when the known one has passed. Its length is the one learned
    /// from the server (the documented hour until then); nothing is known of its budget yet,
    /// so its first request is a probe, as at the very start.
    fn roll(&mut self, now: Duration) {
        if !self.started {
            self.started = true;
            self.reset_at = now + self.window;
        }
        if now >= self.reset_at {
            // A 429's cooldown sets the window's end to its own (`observe`): when that is what
            // passes, the server's window may well run on (a burst limit's short wait), and its
            // answers must still count, so it is not marked ended. If it did end, the next
            // answer names a new reset and is learned as one.
            let by_cooldown = self.reset_at <= self.cooldown_until + Duration::from_millis(1);
            self.remaining = self.limit;
            self.reset_at = now + self.window;
            if self.reset_unix.is_some() && !by_cooldown {
                self.ended_unix = self.reset_unix.take();
            }
            self.retries = 0;
            self.informed = false;
        }
    }

    /// A new window's reset, `unix`: the gap from the previous window's reset is the window's
    /// length, when it is a plausible one.
    fn learn_window(&mut self, unix: u64) {
        let previous = self.reset_unix.or(self.ended_unix);
        if let Some(gap) = previous.and_then(|p| unix.checked_sub(p)).filter(|g| *g > 0) {
            let gap = Duration::from_secs(gap);
            // The shortest gap seen: an idle spell between two windows only lengthens a gap.
            if gap <= MAX_SERVER_WAIT {
                self.window = self.window.min(gap);
            }
        }
    }

    /// The window's length for estimates: the learned one, else the first response's guess.
    fn window_estimate(&self) -> Duration {
        match self.window_guess {
            Some(guess) if self.window >= self.limits.default_window => guess,
            _ => self.window,
        }
    }

    fn server_wait_cap(&self) -> Duration {
        self.window.min(MAX_SERVER_WAIT)
    }
}

/// "53 min", "40 s": a wait as `exona status` says it.
fn words(d: Duration) -> String {
    match d.as_secs() {
        s if s >= 5400 => format!("{:.1} h", s as f64 / 3600.0),
        s if s >= 90 => format!("{} min", (s + 30) / 60),
        s => format!("{s} s"),
    }
}

/// See [`Governor::outlook`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outlook {
    pub limit: u32,
    /// Requests the window still allows (less those in flight).
    pub available: u32,
    /// Polls promised to admitted scans (every process's, with a ledger).
    pub reserved: u32,
    /// Until the window ends (or a 429's cooldown does, if later).
    pub reset_in: Duration,
    pub window: Duration,
    /// Every process on the key shares this window through a ledger (the state store): the
    /// others' grants and promised polls are counted, none is unknown.
    pub others_known: bool,
    /// Requests the other processes' work in sight is expected to need (with a ledger).
    pub others_demand: u32,
    /// Whether `window` is the key's own: learned from two resets, read from a window's first
    /// answer, or the documented hour of a key with the documented limit. Else an estimate
    /// that spans windows is a guess an hour long (a 40 s test key's batch read "about 1h 43s
    /// to go" with two minutes left): it is not made.
    pub window_known: bool,
}

/// What a process's work in sight is expected to cost (see [`Governor::set_work_in_sight`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct InSight {
    /// Polls the running scans are expected to send still.
    pub running: f64,
    /// Creates waiting.
    pub queued: u32,
    /// What one of them is expected to cost: its POST and its polls (0: not known).
    pub per_create: f64,
    /// How long a poll may wait without a call missing its deadline (the least of the calls'
    /// time left, less the longest plausible scan); `None`: no call has a deadline.
    pub patience: Option<Duration>,
    /// The span a new scan's polls fall over (the plausible durations' spread, from the
    /// shortest on): those before the reset are the window's to pay.
    pub poll_spread: Duration,
    /// When the running scans' polls (`running`) are expected.
    pub running_by_time: super::forecast::PollForecast,
}

/// What one response said about the budget.
#[derive(Clone, Copy, Debug, Default)]
pub struct Observed {
    pub limit: Option<u32>,
    pub remaining: Option<u32>,
    pub reset_unix: Option<u64>,
    pub reset_in: Option<Duration>,
    /// For a 429: how long the server asked to wait.
    pub rate_limited_for: Option<Duration>,
}

/// (fingerprint of a key, its governor while anyone uses it).
type Registry = Vec<(u64, Weak<Governor>)>;

/// One registry per process: a child forked while another thread held the lock makes its own
/// (DESIGN.md 9.2), and its clients share governors among themselves, not with the parent's.
fn registry() -> std::sync::MutexGuard<'static, Registry> {
    static REGISTRY: crate::process::PerProcess<Mutex<Registry>> = crate::process::PerProcess::new();
    REGISTRY.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner())
}

/// The process-wide governor of a key, created on first use. The registry holds weak
/// references keyed by a fingerprint of the key, never the key itself.
pub fn for_key(fingerprint: u64, limits: &Limits) -> Arc<Governor> {
    let mut registry = registry();
    registry.retain(|(_, g)| g.strong_count() > 0);
    if let Some(g) = registry.iter().find(|(f, _)| *f == fingerprint).and_then(|(_, g)| g.upgrade()) {
        return g;
    }
    let g = Arc::new(Governor::new(limits.clone()));
    registry.push((fingerprint, Arc::downgrade(&g)));
    g
}

/// Drop it after the last user of a registered governor: forgets governors nobody uses, so a
/// program that frees its clients leaves nothing behind (valgrind sees no block).
pub struct Registration;

impl Drop for Registration {
    fn drop(&mut self) {
        let mut registry = registry();
        registry.retain(|(_, g)| g.strong_count() > 0);
        if registry.is_empty() {
            *registry = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ledger::MemoryLedger;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn headers(remaining: u32, reset_unix: u64, reset_in: u64) -> Observed {
        Observed {
            limit: Some(100),
            remaining: Some(remaining),
            reset_unix: Some(reset_unix),
            reset_in: Some(S(reset_in)),
            rate_limited_for: None,
        }
    }

    #[test]
    fn the_first_request_probes_alone() {
        let g = Governor::new(Limits::default());
        assert_eq!(g.request(S(0), Kind::Poll { reserved: false }), Grant::Now);
        assert!(matches!(g.request(S(0), Kind::Poll { reserved: false }), Grant::At(_)));
        g.observe(S(1), headers(99, 5000, 3599));
        assert_eq!(g.request(S(1), Kind::Poll { reserved: false }), Grant::Now);
        assert_eq!(g.request(S(1), Kind::Poll { reserved: false }), Grant::Now);
    }

    #[test]
    fn admission_reserves_polls() {
        let g = Governor::new(Limits { default_limit: 10, ..Limits::default() });
        g.request(S(0), Kind::Poll { reserved: false });
        g.observe(S(0), Observed { limit: Some(10), remaining: Some(10), ..Observed::default() });
        // Each scan needs 1 + 2: three fit in 10, the fourth waits for the window.
        for _ in 0..3 {
            assert_eq!(g.request(S(0), Kind::Create { reserve: 2 }), Grant::Now);
        }
        // Held by the polls promised, not by a spent window: they may come back before the reset.
        assert_eq!(g.request(S(0), Kind::Create { reserve: 2 }), Grant::Behind(S(3600)));
        // Their polls are still granted: the budget was kept for them.
        for _ in 0..6 {
            assert_eq!(g.request(S(1), Kind::Poll { reserved: true }), Grant::Now);
        }
    }

    /// The adaptive thrift reads a create held for want of budget as a stream the window
    /// binds (engine/core.rs, `arrivals`): the creates behind the first request's probe are
    /// not one (8 scans at once on a fresh key of 100 an hour were planned for 8 more).
    #[test]
    fn only_a_create_short_of_budget_is_marked_held() {
        let g = Governor::new(Limits { default_limit: 10, ..Limits::default() });
        assert_eq!(g.request(S(0), Kind::Create { reserve: 2 }), Grant::Now);
        assert!(matches!(g.request(S(0), Kind::Create { reserve: 2 }), Grant::At(_)), "behind the probe");
        assert_eq!(g.create_short_at(), None);
        g.observe(S(1), Observed { limit: Some(10), remaining: Some(9), ..Observed::default() });
        let mut admitted = 0;
        while g.request(S(2), Kind::Create { reserve: 2 }) == Grant::Now {
            assert_eq!(g.create_short_at(), None);
            admitted += 1;
        }
        assert_eq!(admitted, 2, "two more scans of three requests fit beside the first");
        assert_eq!(g.create_short_at(), Some(S(2)));
    }

    /// A key of 20 per 40 s, told by its first answer; `left` requests remain, the window
    /// resets 40 s after time 0.
    fn twenty_per_forty(left: u32) -> Governor {
        let g = Governor::new(Limits { default_limit: 20, ..Limits::default() });
        g.request(S(0), Kind::Poll { reserved: false });
        g.observe(S(0), Observed { limit: Some(20), ..headers(left, 5040, 40) });
        g
    }

    /// Issue 23: near the reset a new scan's polls fall in the next window, so a create needs
    /// only its POST from this one; earlier it waits for the end zone, not for the reset.
    /// Before, a key at 20 per 40 s spent 16 of each window: the last four were held for polls
    /// that came after the reset.
    #[test]
    fn near_the_reset_a_create_spends_only_its_post() {
        let g = twenty_per_forty(4);
        g.set_first_poll_after(S(3));
        assert_eq!(g.request(S(10), Kind::Create { reserve: 3 }), Grant::At(S(37)), "the end zone");
        for _ in 0..4 {
            assert_eq!(g.request(S(37), Kind::Create { reserve: 3 }), Grant::Now);
        }
        assert_eq!(g.request(S(37), Kind::Create { reserve: 3 }), Grant::At(S(40)), "the window is spent");
        // The next window keeps the four scans' promised polls.
        assert_eq!(g.outlook(S(41)).reserved, 12);
        // Not on a guessed reset: before any answer, a create needs its reservation.
        let fresh = Governor::new(Limits { default_limit: 20, ..Limits::default() });
        fresh.set_first_poll_after(S(3));
        assert!(fresh.lock().end_zone(S(0), 3, 1).is_none());
    }

    /// While the window binds, a create the window has room for at its expected cost (its POST
    /// and about one poll, beside the running scans' expected polls) goes although its
    /// reservation does not fit; not when a poll waiting for the reset would miss a deadline.
    #[test]
    fn a_create_goes_at_its_expected_cost_when_every_call_can_wait_for_the_reset() {
        let with = |patience: Option<u64>| {
            let g = twenty_per_forty(12);
            g.request(S(1), Kind::Create { reserve: 3 }); // reserved 3, 11 available
            g.request(S(1), Kind::Create { reserve: 3 }); // reserved 6, 10 available
            g.set_work_in_sight(InSight {
                running: 2.2,
                queued: 10,
                per_create: 2.1,
                patience: patience.map(S),
                ..InSight::default()
            });
            // free = 10 - 6 = 4 < 1 + 3 + tail 1: the reservation does not fit.
            g.request(S(1), Kind::Create { reserve: 3 })
        };
        assert_eq!(with(Some(1800)), Grant::Now, "2.2 + 2.1 + 1 fit in 10");
        assert_eq!(with(None), Grant::Now, "no deadline at all");
        assert!(matches!(with(Some(30)), Grant::Behind(_)), "a 30 s call cannot wait 39 s for the reset");
    }

    /// The window before the last: when what spills past this window fits in the next one,
    /// creates need only their POST from this one (their polls wait for the reset, where the
    /// run then ends on polls of finished scans). Not when the spill needs more than the next
    /// window, nor when a call could not wait for the reset, nor on a guessed reset.
    #[test]
    fn in_the_window_before_the_last_creates_go_first() {
        // 12 available, 6 promised to two scans under way that are expected to send 6 polls:
        // a create's reservation (3 + tail 1) never fits beside the promises.
        let with = |queued: u32, patience: Option<u64>| {
            let g = twenty_per_forty(14);
            g.request(S(1), Kind::Create { reserve: 3 });
            g.request(S(1), Kind::Create { reserve: 3 });
            g.set_work_in_sight(InSight {
                running: 6.0,
                queued,
                per_create: 2.0,
                patience: patience.map(S),
                ..InSight::default()
            });
            let mut sent = 0;
            let last = loop {
                match g.request(S(1), Kind::Create { reserve: 3 }) {
                    Grant::Now => sent += 1,
                    held => break held,
                }
            };
            (sent, last)
        };
        // 8 creates waiting: 6 + 16 = 22 in sight, 10 of it past this window; the next window
        // holds it. Every create goes, their polls left for the next window.
        assert_eq!(with(8, Some(1800)).0, 8);
        // 14 waiting: 6 + 28 - 12 = 22 spill past the next window too: creates go at their
        // expected cost only (11 >= 6 + 2, 10 >= 7 + 2, then 9 < 8 + 2).
        assert_eq!(with(14, Some(1800)).0, 2);
        // A call that cannot wait the 39 s to the reset: creates go at their reservation only
        // (one: 12 - 6 >= 1 + 3 + 1).
        let (sent, held) = with(8, Some(30));
        assert_eq!(sent, 1);
        assert!(matches!(held, Grant::Behind(_)), "{held:?}");
        // On a guessed reset (no answer has told of the window), nothing is planned for the next.
        let fresh = Governor::new(Limits { default_limit: 20, ..Limits::default() });
        assert!(!fresh.lock().reset_told(S(0)));
    }

    /// What other processes expect to spend is counted (their promises overstate it: a
    /// promise covers the longest plausible scan); a create with no room beside it waits.
    #[test]
    fn other_processes_expected_polls_take_room_first() {
        let memory = MemoryLedger::default();
        let anchor = WallAnchor::now(S(0));
        let gs: Vec<Governor> = (0..2)
            .map(|holder| {
                let g = Governor::new(Limits { default_limit: 20, ..Limits::default() });
                g.share_anchored(Arc::new(memory.holder(holder)), anchor);
                g
            })
            .collect();
        gs[0].request(S(0), Kind::Poll { reserved: false });
        gs[0].observe(S(0), Observed { limit: Some(20), ..headers(20, 5040, 40) });
        // Process 0: four scans under way, 12 polls promised, 13 expected (more than a
        // promise: they are latency polls of a window that was plentiful).
        for _ in 0..4 {
            assert_eq!(gs[0].request(S(0), Kind::Create { reserve: 3 }), Grant::Now);
        }
        // (Ten creates waiting in each: the work spills past the next window too, so this
        // window is not the one before the last.)
        let work =
            |running| InSight { running, queued: 10, per_create: 2.1, patience: None, ..InSight::default() };
        gs[0].set_work_in_sight(work(13.0));
        gs[0].release(0); // written with its next decision
        assert_eq!(memory.holds_of(0).expected, 13);
        // Process 1: 15 available (one grant out), 12 promised: its reservation does not fit,
        // nor its expected cost beside process 0's (15 - 13 - 1 < 2.1).
        gs[1].set_work_in_sight(work(0.0));
        assert!(!matches!(gs[1].request(S(1), Kind::Create { reserve: 3 }), Grant::Now));
        assert_eq!(gs[1].outlook(S(1)).others_demand, 13 + 21, "polls expected and creates waiting");
        // Process 0's polls turn out fewer: room for process 1's create at its expected cost.
        gs[0].set_work_in_sight(work(9.0));
        gs[0].release(0);
        assert_eq!(gs[1].request(S(2), Kind::Create { reserve: 3 }), Grant::Now, "16 - 9 - 1 >= 2.1");
    }

    /// A poll no promise covers (a resumed scan's), held only by polls another process
    /// promised, asks again in a moment, not at the reset: the promises come back when that
    /// process's scans end, or with its lease if it was killed. Before, a batch resumed after
    /// a kill had its resumed scans' polls told to wait for a reset an hour away (the window's
    /// length not yet learned) and fail at once, `RATE_LIMITED`.
    #[test]
    fn a_poll_held_by_another_process_promises_asks_again_soon() {
        let gs = processes(2, Limits { default_limit: 20, low_water: 0.0, ..Limits::default() });
        gs[1].request(S(0), Kind::Poll { reserved: false });
        gs[1].observe(S(0), Observed { limit: Some(20), ..headers(19, 8600, 3600) });
        for _ in 0..4 {
            assert_eq!(gs[1].request(S(0), Kind::Create { reserve: 3 }), Grant::Now);
        }
        // Process 1's scans are expected to send all 12 promised polls: 15 available, 12 kept.
        gs[1].set_work_in_sight(InSight {
            running: 15.0,
            queued: 0,
            per_create: 2.0,
            patience: None,
            ..InSight::default()
        });
        gs[1].release(0);
        for _ in 0..3 {
            assert_eq!(gs[0].request(S(1), Kind::Poll { reserved: false }), Grant::Now);
        }
        assert_eq!(gs[0].request(S(1), Kind::Poll { reserved: false }), Grant::At(S(1) + OTHERS_RECHECK));
        // Promised beyond what its scans will send: the excess does not hold a poll back.
        gs[1].set_work_in_sight(InSight {
            running: 4.0,
            queued: 0,
            per_create: 2.0,
            patience: None,
            ..InSight::default()
        });
        gs[1].release(0);
        assert_eq!(gs[0].request(S(2), Kind::Poll { reserved: false }), Grant::Now);
    }

    /// Low on budget, creates are spread over the rest of the window, unless all the work in
    /// sight fits in what is left: the last creates of a portfolio went one by one, 10 s apart,
    /// while the window had room for all of them (issue 23's second portfolio, seed 8).
    #[test]
    fn the_last_of_the_work_fitting_the_window_is_not_paced() {
        let paced = |queued| {
            let g = Governor::new(Limits { default_limit: 100, ..Limits::default() });
            g.request(S(0), Kind::Poll { reserved: false });
            g.observe(S(0), headers(16, 5360, 360));
            g.set_work_in_sight(InSight {
                running: 0.0,
                queued,
                per_create: 2.1,
                patience: Some(S(10)),
                ..InSight::default()
            });
            (0..4).filter(|_| g.request(S(10), Kind::Create { reserve: 1 }) == Grant::Now).count()
        };
        assert_eq!(paced(4), 4, "8.4 requests of work in 16");
        assert_eq!(paced(40), 0, "84 requests of work: spread over the window (the next in 22 s)");
    }

    #[test]
    fn smallest_remaining_wins_and_old_windows_are_ignored() {
        let g = Governor::new(Limits::default());
        g.request(S(0), Kind::Poll { reserved: false });
        g.request(S(0), Kind::Poll { reserved: false });
        g.observe(S(1), headers(40, 5000, 1000));
        g.observe(S(1), headers(45, 5000, 1000));
        assert_eq!(g.budget(S(1)).0, 40);
        g.request(S(2), Kind::Poll { reserved: false });
        g.observe(S(3), headers(90, 4000, 10));
        assert_eq!(g.budget(S(3)).0, 40, "a response from an older window changes nothing");
    }

    #[test]
    fn a_429_cools_the_key_down_then_releases_one_by_one() {
        let g = Governor::new(Limits { release_spacing: S(2), ..Limits::default() });
        g.request(S(0), Kind::Poll { reserved: false });
        g.observe(S(0), Observed { rate_limited_for: Some(S(30)), ..headers(0, 5000, 30) });
        for _ in 0..5 {
            assert_eq!(g.request(S(10), Kind::Poll { reserved: false }), Grant::At(S(30)));
        }
        g.observe(S(30), headers(100, 8600, 3600));
        assert_eq!(g.request(S(30), Kind::Poll { reserved: false }), Grant::Now);
        assert_eq!(g.request(S(30), Kind::Poll { reserved: false }), Grant::At(S(32)));
        assert_eq!(g.request(S(32), Kind::Poll { reserved: false }), Grant::Now);
    }

    #[test]
    fn a_response_sent_before_a_429_does_not_undo_its_cooldown() {
        // Two requests out; the second's 429 (come back in 1 s) is read first, then the first's
        // 201 arrives, its headers telling of the window's reset an hour away. The 429's word
        // on when to come back stands: after the second, requests go (found by the fault
        // matrix under valgrind, where the two answers crossed and both scans ended
        // RATE_LIMITED with "next in 3599 s").
        let g = Governor::new(Limits::default());
        g.request(S(0), Kind::Poll { reserved: false });
        g.observe(S(0), headers(99, 5000, 3600));
        g.request(S(0), Kind::Create { reserve: 2 });
        g.request(S(0), Kind::Poll { reserved: true });
        g.observe(S(0), Observed { rate_limited_for: Some(S(1)), ..headers(97, 5000, 3600) });
        g.observe(S(0), headers(98, 5000, 3600));
        assert_eq!(g.request(S(0), Kind::Poll { reserved: true }), Grant::At(S(1)));
        assert_eq!(g.request(S(1), Kind::Poll { reserved: true }), Grant::Now, "{:?}", g.lock());
    }

    #[test]
    fn a_short_429_inside_a_window_does_not_end_it() {
        // A burst limit's 429 (come back in 1 s) while the hour's window still runs: after the
        // cooldown the server's answers on that window still count. Ending the window there
        // made them stale, and the key would spend a whole fresh limit the server never gave.
        let g = Governor::new(Limits::default());
        g.request(S(0), Kind::Poll { reserved: false });
        g.observe(S(0), headers(50, 5000, 3600));
        g.request(S(0), Kind::Poll { reserved: false });
        g.observe(S(0), Observed { rate_limited_for: Some(S(1)), ..headers(49, 5000, 3600) });
        assert_eq!(g.request(S(1), Kind::Poll { reserved: false }), Grant::Now);
        g.observe(S(1), headers(3, 5000, 3599));
        assert_eq!(g.budget(S(1)).0, 3, "the window's own count after the cooldown");
        assert_eq!(g.outlook(S(1)).reset_in, S(3599));
    }

    #[test]
    fn a_create_the_window_cannot_pay_for_waits_for_the_reset() {
        // Two requests left and nothing promised: only the reset helps (not `Behind`).
        let g = Governor::new(Limits { default_limit: 10, ..Limits::default() });
        g.request(S(0), Kind::Poll { reserved: false });
        g.observe(S(0), Observed { limit: Some(10), ..headers(2, 5000, 100) });
        assert_eq!(g.request(S(1), Kind::Create { reserve: 2 }), Grant::At(S(100)));
    }

    #[test]
    fn low_budget_paces_new_scans_but_never_polls() {
        let g = Governor::new(Limits::default());
        g.request(S(0), Kind::Poll { reserved: false });
        g.observe(S(0), headers(10, 5000, 1000));
        // Ten requests left for 1000 s: a new scan waits for one per ~100 s after the last
        // grant (at 0)...
        match g.request(S(50), Kind::Create { reserve: 1 }) {
            Grant::At(t) => assert!(t >= S(95) && t <= S(100), "{t:?}"),
            other => panic!("{other:?}"),
        }
        // ...while a scan under way polls when its schedule says, reserved or not.
        assert_eq!(g.request(S(50), Kind::Poll { reserved: false }), Grant::Now);
        assert_eq!(g.request(S(51), Kind::Poll { reserved: true }), Grant::Now);
        assert_eq!(g.request(S(160), Kind::Create { reserve: 1 }), Grant::Now);
    }

    #[test]
    fn a_new_scan_leaves_room_for_the_polls_of_scans_under_way() {
        let g = Governor::new(Limits { default_limit: 10, ..Limits::default() });
        g.request(S(0), Kind::Poll { reserved: false });
        g.observe(S(0), Observed { limit: Some(10), remaining: Some(10), ..Observed::default() });
        // Six scans have spent their reservations and still run: a scan needing 1 + 2 fits
        // beside six more polls in ten, a second one does not.
        g.set_running_unreserved(6);
        assert_eq!(g.request(S(1), Kind::Create { reserve: 2 }), Grant::Now);
        assert!(matches!(g.request(S(1), Kind::Create { reserve: 2 }), Grant::At(_)));
        assert_eq!(g.request(S(1), Kind::Poll { reserved: false }), Grant::Now);
    }

    #[test]
    fn retries_are_capped_per_window() {
        let g = Governor::new(Limits { default_limit: 20, ..Limits::default() });
        g.observe(S(0), Observed { limit: Some(20), remaining: Some(20), ..Observed::default() });
        assert_eq!(g.request(S(0), Kind::Retry), Grant::Now);
        assert_eq!(g.request(S(0), Kind::Retry), Grant::Now);
        assert_eq!(g.request(S(0), Kind::Retry), Grant::Refused);
        g.lost();
        g.lost();
        assert_eq!(g.request(S(3600), Kind::Retry), Grant::Now, "a new window, a new allowance");
    }

    #[test]
    fn a_new_window_keeps_the_learned_length_and_is_probed() {
        let g = Governor::new(Limits::default());
        let s20 = |remaining, unix, reset_in| Observed {
            limit: Some(10),
            remaining: Some(remaining),
            reset_unix: Some(unix),
            reset_in: Some(S(reset_in)),
            rate_limited_for: None,
        };
        g.request(S(0), Kind::Poll { reserved: false });
        g.observe(S(0), s20(9, 1020, 20));
        // The next window's first answer shows its reset 20 s after the last: the window is 20 s.
        g.request(S(20), Kind::Poll { reserved: false });
        g.observe(S(20), s20(9, 1040, 20));
        g.request(S(21), Kind::Poll { reserved: false });
        g.observe(S(21), s20(0, 1040, 19));
        // Spent: a create waits for the window's end, 40 s, not for a documented hour.
        assert_eq!(g.request(S(22), Kind::Create { reserve: 2 }), Grant::At(S(40)));
        // At the rollover the budget is unknown: one probe goes, the rest wait for its answer.
        assert_eq!(g.request(S(40), Kind::Create { reserve: 2 }), Grant::Now);
        assert_eq!(g.request(S(40), Kind::Poll { reserved: false }), Grant::At(S(40) + PROBE_WAIT));
        // A stale answer from the window that ended informs nothing.
        g.observe(S(40), s20(0, 1040, 0));
        assert_eq!(g.request(S(40), Kind::Poll { reserved: false }), Grant::Now, "{:?}", g.lock());
    }

    #[test]
    fn a_server_wait_is_held_to_the_window() {
        let g = Governor::new(Limits::default());
        let year = 365 * 24 * 3600;
        g.request(S(0), Kind::Poll { reserved: false });
        g.observe(S(0), Observed { rate_limited_for: Some(S(year)), ..headers(0, 5000 + year, year) });
        assert_eq!(g.request(S(1), Kind::Poll { reserved: false }), Grant::At(MAX_SERVER_WAIT));
    }

    #[test]
    fn the_registry_shares_a_governor_per_key() {
        let a = for_key(42, &Limits::default());
        let b = for_key(42, &Limits::default());
        let c = for_key(43, &Limits::default());
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }

    /// Governors of `n` processes on one key, sharing one ledger.
    fn processes(n: usize, limits: Limits) -> Vec<Governor> {
        let memory = MemoryLedger::default();
        let anchor = WallAnchor::now(S(0));
        (0..n)
            .map(|holder| {
                let g = Governor::new(limits.clone());
                g.share_anchored(Arc::new(memory.holder(holder)), anchor);
                g
            })
            .collect()
    }

    fn ten_left(reset_in: u64) -> Observed {
        Observed { limit: Some(10), ..headers(10, 5000, reset_in) }
    }

    /// Issue 35: after a window ended, no request opened the next one while its length was a
    /// guess (the documented hour) and every poll to come counted against it: three processes
    /// with 30-120 s scans sent nothing for the first 12 s of each window. One create, on a
    /// full budget, opens it.
    #[test]
    fn a_create_opens_a_window_not_seen_yet() {
        let g = Governor::new(Limits { default_limit: 20, low_water: 0.0, ..Limits::default() });
        assert_eq!(g.request(S(0), Kind::Poll { reserved: false }), Grant::Now);
        // Not the window's first answer: its length stays a guess of an hour.
        g.observe(S(0), Observed { limit: Some(20), ..headers(12, 5040, 40) });
        assert_eq!(g.request(S(1), Kind::Create { reserve: 3 }), Grant::Now);
        g.observe(S(1), Observed { limit: Some(20), ..headers(11, 5040, 39) });
        // Scans under way with many polls to come: by every other rule a create waits.
        g.set_running_unreserved(20);
        g.set_work_in_sight(InSight {
            running: 60.0,
            queued: 10,
            per_create: 3.0,
            poll_spread: S(90),
            ..InSight::default()
        });
        // The window ended at 40 s; nothing has opened the next one.
        assert_eq!(g.request(S(41), Kind::Create { reserve: 3 }), Grant::Now, "the create opens the window");
        assert!(
            matches!(g.request(S(41), Kind::Create { reserve: 3 }), Grant::At(_)),
            "one create, then its answer"
        );
    }

    /// A ledger whose transactions decide, then fail to commit (a process stopped inside its
    /// transaction, its session ended by the server meanwhile).
    struct LostCommit(MemoryLedger);

    impl Ledger for LostCommit {
        fn transact(
            &self,
            wall_ms: i64,
            decide: &mut dyn FnMut(&mut SharedWindow, &mut Holds),
        ) -> Result<(), String> {
            let mut seen = None;
            self.0.peek(wall_ms, &mut |w| seen = Some(w.clone()))?;
            decide(&mut seen.unwrap_or_default(), &mut Holds::default());
            Err("db error: connection closed".to_owned())
        }
    }

    /// Issue 32 (`exona-bench crash-pause-pg`): a grant decided in a transaction that did not
    /// commit was sent, unseen by the others: a 429. It is undone and asked again.
    #[test]
    fn a_grant_whose_transaction_did_not_commit_is_not_sent() {
        let memory = MemoryLedger::default();
        let anchor = WallAnchor::now(S(0));
        let (a, b) = (Governor::new(Limits::default()), Governor::new(Limits::default()));
        a.share_anchored(Arc::new(memory.holder(0)), anchor);
        assert_eq!(a.request(S(0), Kind::Poll { reserved: false }), Grant::Now);
        a.observe(S(0), ten_left(600));
        b.share_anchored(Arc::new(LostCommit(memory.holder(1))), anchor);
        let before = b.budget(S(1));
        match b.request(S(1), Kind::Poll { reserved: false }) {
            Grant::At(at) => assert!(at > S(1) && at <= S(2), "{at:?}"),
            other => panic!("{other:?}: a grant the others never saw"),
        }
        assert_eq!(b.budget(S(1)), before, "the decision was undone");
    }

    /// A ledger another process may hold (stopped inside its transaction).
    struct Holdable {
        inner: MemoryLedger,
        held: std::sync::atomic::AtomicBool,
    }

    impl Ledger for Holdable {
        fn transact(
            &self,
            wall_ms: i64,
            decide: &mut dyn FnMut(&mut SharedWindow, &mut Holds),
        ) -> Result<(), String> {
            if self.held.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(HELD.to_owned());
            }
            self.inner.transact(wall_ms, decide)
        }
    }

    /// The outside check (issue 32): a process stopped inside a ledger transaction left the
    /// others deciding alone for the whole pause, each spending the window as if the others
    /// did not (11-12 × 429 in `exona-bench crash-pause`). Now a held ledger grants nothing,
    /// and what a process learned meanwhile is kept.
    #[test]
    fn a_held_ledger_grants_nothing_and_what_was_learned_meanwhile_is_kept() {
        let limits = Limits { default_limit: 10, low_water: 0.0, ..Limits::default() };
        let memory = MemoryLedger::default();
        let anchor = WallAnchor::now(S(0));
        let (a, b) = (Governor::new(limits.clone()), Governor::new(limits));
        a.share_anchored(Arc::new(memory.holder(0)), anchor);
        let held = Arc::new(Holdable { inner: memory.holder(1), held: false.into() });
        b.share_anchored(held.clone(), anchor);
        assert_eq!(a.request(S(0), Kind::Poll { reserved: false }), Grant::Now);
        a.observe(S(0), ten_left(600));
        // Process a spends most of the window; b's ledger is then held.
        for t in 1..=6 {
            assert_eq!(a.request(S(t), Kind::Poll { reserved: false }), Grant::Now);
        }
        held.held.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in 7..=12 {
            match b.request(S(t), Kind::Poll { reserved: false }) {
                Grant::At(at) => assert!(at > S(t) && at <= S(t) + S(1), "asks again soon: {at:?} at {t} s"),
                other => panic!("granted {other:?} while the ledger was held"),
            }
        }
        // An answer b was waiting for comes in meanwhile: 2 left in this window.
        b.observe(S(13), Observed { limit: Some(10), ..headers(2, 5000, 587) });
        held.held.store(false, std::sync::atomic::Ordering::SeqCst);
        // a's six grants are out; b's answer says 2 are left: b's first grant after the hold
        // sees both (decided alone, it had 9 and granted all of them).
        let mut granted = 0;
        for t in 14..24 {
            if b.request(S(t), Kind::Poll { reserved: false }) == Grant::Now {
                granted += 1;
            }
        }
        assert_eq!(granted, 0, "the window's last requests are a's, out already");
        a.refresh(S(24));
        assert_eq!(a.budget(S(24)).0, 0, "what b learned while held reached the ledger");
    }

    /// Issue 34: a decision waiting on the ledger held the governor's lock, which every client
    /// of the key in the process shares: a view, a cooldown's check, the work in sight told by
    /// the engine all waited on the database. Now they go on, and what was told meanwhile
    /// survives the decision's return.
    #[test]
    fn a_decision_waiting_on_the_ledger_holds_no_lock_the_others_need() {
        use std::sync::mpsc::channel;
        let (slow, entered, release) = crate::engine::blocking::Blocking::new();
        let g = Arc::new(Governor::new(Limits::default()));
        g.share_anchored(slow, WallAnchor::now(S(0)));
        let deciding = {
            let g = Arc::clone(&g);
            std::thread::spawn(move || g.request(S(0), Kind::Poll { reserved: false }))
        };
        entered.recv_timeout(Duration::from_secs(60)).expect("the decision reached the ledger");
        // Meanwhile, on another thread (a hang here is the bug: bounded by the channel).
        let (done_tx, done) = channel();
        {
            let g = Arc::clone(&g);
            std::thread::spawn(move || {
                let in_sight = InSight { running: 2.0, queued: 1, per_create: 3.0, ..InSight::default() };
                g.set_work_in_sight(in_sight);
                g.set_running_unreserved(4);
                let _ = (g.cooling_down(S(0)), g.budget(S(0)), g.outlook(S(0)), g.why_held(S(0)));
                let _ = done_tx.send(in_sight);
            });
        }
        let told = done.recv_timeout(Duration::from_secs(60)).expect("the others waited on the ledger");
        release.send(()).unwrap();
        assert_eq!(deciding.join().unwrap(), Grant::Now);
        let s = g.lock();
        assert_eq!((s.in_sight, s.running_unreserved), (told, 4), "what was told meanwhile is kept");
        assert!(!s.in_sight_told, "and the ledger is told it with the next decision");
        assert_eq!(s.granted, 1, "the decision came back");
    }

    /// Views read the ledger as last seen; a refresh reads the other processes' holds.
    #[test]
    fn a_refresh_shows_the_other_processes_holds() {
        let gs = processes(2, Limits { default_limit: 10, low_water: 0.0, ..Limits::default() });
        assert_eq!(gs[0].request(S(0), Kind::Poll { reserved: false }), Grant::Now);
        gs[0].observe(S(0), ten_left(600));
        gs[1].refresh(S(1));
        let before = gs[1].budget(S(1)).0;
        assert_eq!(gs[0].request(S(2), Kind::Create { reserve: 3 }), Grant::Now);
        assert_eq!(gs[1].budget(S(2)).0, before, "no I/O: as last seen");
        gs[1].refresh(S(2));
        assert_eq!(gs[1].budget(S(2)).0, before - 1, "the other's create is out");
        assert_eq!(gs[1].outlook(S(2)).reserved, 3, "and its polls promised");
    }

    #[test]
    fn processes_sharing_a_ledger_grant_one_budget() {
        let gs = processes(3, Limits { default_limit: 10, low_water: 0.0, ..Limits::default() });
        assert_eq!(gs[0].request(S(0), Kind::Poll { reserved: false }), Grant::Now);
        // The other processes hold back behind the first one's probe, as threads of one would.
        assert!(matches!(gs[1].request(S(0), Kind::Poll { reserved: false }), Grant::At(_)));
        gs[0].observe(S(0), ten_left(600));
        let mut granted = 0;
        for round in 0..10 {
            for g in &gs {
                if g.request(S(1 + round), Kind::Poll { reserved: false }) == Grant::Now {
                    granted += 1;
                }
            }
        }
        assert_eq!(granted, 10, "three processes together spend the window's ten, not thirty");
        assert_eq!(gs[2].request(S(20), Kind::Poll { reserved: false }), Grant::At(S(600)));
        // Answers come back to each process: the window is spent, and says so to all.
        gs[1].observe(S(21), Observed { limit: Some(10), ..headers(0, 5000, 579) });
        assert_eq!(gs[0].budget(S(21)).0, 0);
    }

    #[test]
    fn a_status_read_writes_nothing_to_the_ledger() {
        let memory = MemoryLedger::default();
        let anchor = WallAnchor::now(S(0));
        let g = Governor::new(Limits { default_limit: 10, low_water: 0.0, ..Limits::default() });
        g.share_anchored(Arc::new(memory.clone()), anchor);
        g.request(S(0), Kind::Poll { reserved: false });
        g.observe(S(0), ten_left(600));
        let before = memory.transactions();
        for t in 1..50 {
            let _ = (g.budget(S(t)), g.outlook(S(t)));
        }
        assert_eq!(memory.transactions(), before, "a status read took the write lock");
        assert_eq!(g.budget(S(60)).0, 10);
    }

    #[test]
    fn one_process_reservations_hold_back_another_admission() {
        let gs = processes(2, Limits { default_limit: 10, low_water: 0.0, ..Limits::default() });
        gs[0].request(S(0), Kind::Poll { reserved: false });
        gs[0].observe(S(0), ten_left(600));
        for _ in 0..3 {
            assert_eq!(gs[0].request(S(1), Kind::Create { reserve: 2 }), Grant::Now);
        }
        // Nine of ten promised in process 0: process 1 cannot admit a scan needing three. Their
        // coming back would wake nothing in process 1: it asks again in OTHERS_RECHECK.
        assert_eq!(gs[1].request(S(1), Kind::Create { reserve: 2 }), Grant::Behind(S(1) + OTHERS_RECHECK));
        // When process 0's scans end early and return their polls, process 1 may go.
        for _ in 0..3 {
            gs[0].observe(S(2), Observed { limit: Some(10), ..headers(7, 5000, 598) });
        }
        gs[0].release(6);
        assert_eq!(gs[1].request(S(3), Kind::Create { reserve: 2 }), Grant::Now);
    }

    #[test]
    fn a_429_met_by_one_process_holds_the_others() {
        let gs = processes(2, Limits::default());
        gs[0].request(S(0), Kind::Poll { reserved: false });
        gs[0].observe(S(0), Observed { rate_limited_for: Some(S(30)), ..headers(0, 5000, 30) });
        assert_eq!(gs[1].request(S(5), Kind::Poll { reserved: false }), Grant::At(S(30)));
    }

    #[test]
    fn a_windows_first_response_tells_estimates_its_length_but_not_the_wait_cap() {
        let g = Governor::new(Limits::default());
        assert_eq!(g.request(S(0), Kind::Poll { reserved: false }), Grant::Now);
        // Remaining 99 of 100: this request opened a window that resets 10 s later.
        g.observe(S(0), headers(99, 1_000_010, 10));
        let o = g.outlook(S(1));
        assert_eq!((o.window, o.reset_in), (S(10), S(9)));
        assert_eq!(g.server_wait_cap(), S(3600), "a guess never shortens a server's wait");
        // Past the reset, before any response of the next window: it ends within the guess.
        assert_eq!(g.outlook(S(10) + Duration::from_millis(200)).reset_in, S(10));
    }

    #[test]
    fn a_response_that_did_not_open_its_window_says_nothing_of_its_length() {
        let g = Governor::new(Limits::default());
        assert_eq!(g.request(S(0), Kind::Poll { reserved: false }), Grant::Now);
        g.observe(S(0), headers(40, 1_000_010, 10));
        assert_eq!(g.outlook(S(1)).window, S(3600));
    }
}

//! One scan call as a state machine: create (never repeating a POST that may have landed),
//! then wait (polling on the schedule, never before `Retry-After`, within the deadline).
//!
//! A task never sleeps or sends: it says when it wants to send and what, and learns from each
//! reply. The core sends on its behalf, after the governor grants it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use super::backoff;
use super::decode;
use super::gate::{CreateGate, GateRef};
use super::governor::Kind;
use super::policy::Policy;
use super::retry_after::parse_retry_after;
use super::schedule::{next_poll_age, Mode};
use crate::error::{Code, Error};
use crate::model::ScanRequest;
use crate::scan::{Scan, ScanStatus};
use crate::transport::{Method, Request, Response, TransportError};

/// Why a task is waiting before its next request (reported to progress callbacks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// About to create the scan.
    Create,
    /// The scan cannot plausibly be done yet (the duration schedule).
    Schedule,
    /// The server's `Retry-After` on a processing scan.
    RetryAfter,
    /// Backing off after a failed request.
    Backoff,
    /// The server answered 429; the key is cooling down.
    RateLimit,
    /// The key's budget (governor) holds the request back.
    Budget,
    /// The last poll before the deadline.
    FinalPoll,
    /// Another process of the host is creating a scan of the same company (a claim in the
    /// state store): no twin is created; its scan is joined once its id is known.
    OtherCreate,
}

/// What a task was asked to do.
#[derive(Clone, Debug)]
pub enum Goal {
    /// POST, then wait for the scan unless `create_only`.
    Create { request: ScanRequest, create_only: bool },
    /// Wait for an existing scan (resume by id).
    Wait { id: String },
    /// One GET.
    Get { id: String },
}

#[derive(Clone, Debug)]
enum Phase {
    Create { request: ScanRequest, body: Vec<u8>, unsent: u32, create_only: bool },
    Wait { id: String, once: bool },
}

/// Everything a task consults besides itself.
pub struct Ctx<'a> {
    pub policy: &'a Policy,
    pub model: &'a mut super::schedule::DurationModel,
    pub rng: &'a mut fastrand::Rng,
    pub wall: SystemTime,
    /// The longest wait a server's word may impose (the governor's cap).
    pub server_wait_cap: Duration,
    /// How tight the key's budget is for an adaptive plan (0: latency, 1: frugal).
    pub thrift: f64,
    /// The duration the reply taught the model, if it did (the core shares it).
    pub learned: Option<Duration>,
}

#[derive(Clone, Debug)]
pub struct Task {
    phase: Phase,
    deadline: Option<Duration>,
    /// A deadline that starts when the scan is created (a batch row waiting for its turn
    /// waits as long as it must): set, relative, when the create is answered.
    deadline_after_create: Option<Duration>,
    mode: Mode,
    expected: (Duration, Duration),
    max_rate_limit_wait: Duration,
    desired: Duration,
    floor: Duration,
    reason: Reason,
    is_final: bool,
    /// The scan's age `age_then` at monotonic time `then` (estimated for resumed scans).
    age_then: Duration,
    then: Duration,
    failures: u32,
    rate_limited: u32,
    last_retry_after: Option<Duration>,
    /// The wait the last reply asked for (`Retry-After` of a processing scan, a 5xx or a 429).
    server_wait: Option<Duration>,
    /// Why the last request failed, while the failures last: a deadline that passes meanwhile
    /// reports it, not a guess.
    last_failure: Option<Error>,
    /// When the request in flight was sent, and how long the last exchange took: no request
    /// is sent whose answer cannot come back before the deadline.
    sent_at: Duration,
    last_rtt: Duration,
    last_scan: Option<Scan>,
    /// A scan created elsewhere: its age is learned from its first reply.
    resumed: bool,
    /// When the call began (monotonic).
    started: Duration,
    /// Requests sent for this task.
    pub requests: u32,
    /// Polls still reserved for it in the governor.
    pub reserved: u32,
    /// The thrift its last adaptive plan was made at.
    thrift: Option<f64>,
    /// A thrift the caller fixed (see [`Settings::fixed_thrift`]).
    fixed_thrift: Option<f64>,
    /// The scan's age when a poll last found it still processing (zero before any).
    seen_running_for: Duration,
    /// While the budget holds it back: its floor and desired time from before the hold.
    held: Option<(Duration, Duration)>,
    /// A create held to its deadline for polls to come back (see `hold_until`): when the
    /// budget would have let it go without them.
    behind_until: Option<Duration>,
    /// What the state store says just before the create is sent (engine/gate.rs).
    gate: Option<GateRef>,
}

pub type Outcome = Result<Scan, Error>;

/// The limits and preferences of one call.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Absolute monotonic deadline; `None` waits without limit.
    pub deadline: Option<Duration>,
    /// A deadline counted from the scan's creation instead (then `deadline` is `None`).
    pub deadline_after_create: Option<Duration>,
    /// Send the first request no sooner than this after the call begins.
    pub start_after: Option<Duration>,
    pub mode: Mode,
    /// The prior of scan durations (shortest, longest).
    pub expected: (Duration, Duration),
    /// The longest 429 wait worth sleeping through.
    pub max_rate_limit_wait: Duration,
    /// An adaptive wait planned at this thrift (0: latency, 1: frugal) whatever the key's
    /// window, instead of the one the scheduler weighs: for callers who know their trade-off.
    pub fixed_thrift: Option<f64>,
}

impl Task {
    pub fn new(goal: Goal, now: Duration, settings: Settings) -> Result<Task, Error> {
        let Settings {
            deadline,
            deadline_after_create,
            start_after,
            mode,
            expected,
            max_rate_limit_wait,
            fixed_thrift,
        } = settings;
        let first = now.saturating_add(start_after.unwrap_or_default());
        let resumed = matches!(goal, Goal::Wait { .. });
        let (phase, reason) = match goal {
            Goal::Create { request, create_only } => {
                let request = request.normalized()?;
                let body = serde_json::to_vec(&request.to_json())
                    .map_err(|e| Error::new(Code::Internal, e.to_string()))?;
                (Phase::Create { request, body, unsent: 0, create_only }, Reason::Create)
            }
            Goal::Wait { id } => (Phase::Wait { id: check_id(&id)?, once: false }, Reason::Schedule),
            Goal::Get { id } => (Phase::Wait { id: check_id(&id)?, once: true }, Reason::Schedule),
        };
        let (deadline, deadline_after_create) = match (&phase, deadline_after_create) {
            (Phase::Create { .. }, Some(after)) => (None, Some(after)),
            (_, Some(after)) => (Some(now.saturating_add(after)), None),
            (_, None) => (deadline, None),
        };
        Ok(Task {
            phase,
            deadline,
            deadline_after_create,
            mode,
            expected,
            max_rate_limit_wait,
            desired: first,
            floor: first,
            reason,
            is_final: false,
            age_then: Duration::ZERO,
            then: now,
            failures: 0,
            rate_limited: 0,
            last_retry_after: None,
            server_wait: None,
            last_failure: None,
            sent_at: now,
            last_rtt: Duration::ZERO,
            last_scan: None,
            resumed,
            started: now,
            requests: 0,
            reserved: 0,
            thrift: None,
            fixed_thrift: fixed_thrift.map(|t| t.clamp(0.0, 1.0)),
            seen_running_for: Duration::ZERO,
            held: None,
            behind_until: None,
            gate: None,
        })
    }

    /// The gate its create passes just before it is sent (see engine/gate.rs).
    pub fn with_gate(mut self, gate: Option<Arc<dyn CreateGate>>) -> Task {
        self.gate = gate.map(GateRef);
        self
    }

    /// The gate: while the create is still to be sent, and for a wait on a joined scan.
    pub fn gate(&self) -> Option<Arc<dyn CreateGate>> {
        let asks = matches!(self.phase, Phase::Create { .. } | Phase::Wait { once: false, .. });
        self.gate.as_ref().filter(|_| asks).map(|g| g.0.clone())
    }

    /// The time a poll's wait on another call's word must end before (`None`: no deadline),
    /// leaving time for its own last poll: a round trip and a second.
    pub fn word_wait_limit(&self) -> Option<Duration> {
        let margin = self.last_rtt.max(Duration::from_secs(1)) + Duration::from_secs(1);
        self.deadline.map(|dl| dl.saturating_sub(margin))
    }

    /// Its next poll waits until `at` (another call polls the scan; its result comes through
    /// the state store).
    pub fn wait_for_word(&mut self, at: Duration) {
        (self.floor, self.desired) = (at, at);
        self.held = None;
    }

    /// Another process runs a scan of the same identity (the gate said so before this call's
    /// create was sent): wait on that scan instead, as a call resumed by id does. Its deadline
    /// counted from creation starts now.
    pub fn join(&mut self, id: &str, now: Duration) -> Result<(), Error> {
        let Phase::Create { create_only, .. } = self.phase else { return Ok(()) };
        self.phase = Phase::Wait { id: check_id(id)?, once: create_only };
        self.resumed = true;
        if let Some(after) = self.deadline_after_create.take() {
            self.deadline = Some(now.saturating_add(after));
            self.started = now;
        }
        (self.age_then, self.then) = (Duration::ZERO, now);
        (self.floor, self.desired) = (now, now);
        self.held = None;
        self.behind_until = None;
        self.reason = Reason::Schedule;
        Ok(())
    }

    /// Another process is creating a scan of the same identity: ask the gate again at `at`,
    /// sending nothing meanwhile. An error when the call's deadline comes first.
    pub fn wait_on_other_create(&mut self, at: Duration, now: Duration) -> Result<Duration, Error> {
        if self.deadline.is_some_and(|dl| now >= dl) {
            let mut e = Error::new(
                Code::Timeout,
                "the deadline passed while another process of this host was creating a scan of the same \
                 company (a claim in the state store); no scan was created twice",
            );
            e.retry_after = Some(at.saturating_sub(now));
            return Err(e);
        }
        let at = self.deadline.map_or(at, |dl| at.min(dl));
        (self.floor, self.desired) = (at, at);
        self.held = None;
        self.behind_until = None;
        self.reason = Reason::OtherCreate;
        Ok(at)
    }

    pub fn scan_id(&self) -> Option<&str> {
        match &self.phase {
            Phase::Wait { id, .. } => Some(id),
            Phase::Create { .. } => None,
        }
    }

    /// How old the scan is at `now` (zero while it is being created).
    pub fn age(&self, now: Duration) -> Duration {
        self.age_then + now.saturating_sub(self.then)
    }

    /// The thrift (0: latency, 1: frugal) of its last adaptive plan (before any, the one the
    /// caller fixed, if any); `None` in a fixed mode.
    pub fn thrift(&self) -> Option<f64> {
        self.thrift.or(self.fixed_thrift)
    }

    /// The thrift the caller fixed for this wait, if any: then the scheduler need not weigh one.
    pub fn fixed_thrift(&self) -> Option<f64> {
        self.fixed_thrift
    }

    /// The gap polls of this scan keep: the server's last `Retry-After`, or the default.
    pub fn poll_gap(&self, policy: &Policy) -> Duration {
        self.last_retry_after.unwrap_or(policy.default_poll_interval)
    }

    /// How long the scan is known to have run: its age when a poll last found it processing.
    /// (Its age now says nothing more: it may have finished since, unseen.)
    pub fn seen_running_for(&self) -> Duration {
        self.seen_running_for
    }

    /// The poll mode this scan follows.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn is_creating(&self) -> bool {
        matches!(self.phase, Phase::Create { .. })
    }

    pub fn last_status(&self) -> Option<&str> {
        self.last_scan.as_ref().and_then(|s| s.json().get("status")).and_then(|v| v.as_str())
    }

    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// How long the call may still take (a create whose deadline starts at its scan's
    /// creation: all of it); `None`: no deadline.
    pub fn time_left(&self, now: Duration) -> Option<Duration> {
        match (self.deadline, self.deadline_after_create) {
            (Some(dl), _) => Some(dl.saturating_sub(now)),
            (None, after) => after,
        }
    }

    /// The prior of this call's scan durations (shortest, longest).
    pub fn expected(&self) -> (Duration, Duration) {
        self.expected
    }

    /// The budget class of the next request.
    pub fn kind(&self, policy: &Policy) -> Kind {
        match &self.phase {
            Phase::Create { .. } => Kind::Create {
                reserve: match self.fixed_thrift {
                    Some(t) => policy.polls_to_reserve_at(t),
                    None => policy.polls_to_reserve(self.mode),
                },
            },
            Phase::Wait { .. } if self.failures > 0 => Kind::Retry,
            Phase::Wait { .. } => Kind::Poll { reserved: self.reserved > 0 },
        }
    }

    /// When to send next, after the deadline's rules; an error ends the task.
    pub fn next_send(&mut self, policy: &Policy) -> Result<Duration, Error> {
        if let Some(dl) = self.deadline {
            let at = self.desired.max(self.floor);
            match &self.phase {
                Phase::Create { unsent, .. } if at > dl => {
                    return Err(Error::new(
                        Code::Network,
                        format!(
                            "could not connect to create the scan before the deadline ({unsent} attempt(s)); \
                             no request reached the server, so no scan was created"
                        ),
                    ));
                }
                Phase::Create { .. } => {}
                Phase::Wait { .. } => {
                    if self.floor >= dl {
                        return Err(self.timeout_now());
                    }
                    // A short deadline gets a proportionally short allowance (a tenth of it).
                    let allowance = policy.final_poll_allowance.min(dl.saturating_sub(self.started) / 10);
                    let final_start = dl.saturating_sub(allowance);
                    if self.desired >= final_start {
                        self.desired = self.floor.max(final_start);
                        self.is_final = true;
                        self.reason = Reason::FinalPoll;
                    }
                    // An answer takes about as long as the last exchange did.
                    if self.desired.max(self.floor).saturating_add(self.last_rtt) > dl {
                        return Err(self.timeout_now());
                    }
                }
            }
        }
        Ok(self.desired.max(self.floor))
    }

    /// The governor holds the request back until `at`; returns the time it is held to. A
    /// create held back only by the polls promised to scans under way (`behind`) waits for
    /// them until its deadline rather than failing at once: they give back what they do not
    /// spend when they end ([`Task::wake`]). Anything else the budget holds past the deadline
    /// ends the call now, with the wait in `retry_after`.
    pub fn hold_until(&mut self, at: Duration, now: Duration, behind: bool) -> Result<Duration, Error> {
        let mut at = at;
        if let Some(dl) = self.deadline.filter(|dl| at > *dl && behind && self.is_creating() && now < *dl) {
            self.behind_until = Some(at);
            at = dl;
        }
        if self.deadline.is_some_and(|dl| at > dl) {
            let mut e = Error::new(
                Code::RateLimited,
                format!(
                    "the API key's request budget allows no request before the deadline (next in {:.1} s)",
                    at.saturating_sub(now).as_secs_f64()
                ),
            );
            e.retry_after = Some(at.saturating_sub(now));
            e.scan_id = self.scan_id().map(str::to_owned);
            e.scan = self.last_scan.clone();
            return Err(e);
        }
        if self.held.is_none() {
            self.held = Some((self.floor, self.desired));
        }
        self.floor = self.floor.max(at);
        self.desired = self.desired.max(at);
        self.reason = if self.reason == Reason::RateLimit { Reason::RateLimit } else { Reason::Budget };
        Ok(at)
    }

    /// A create held back by the budget may ask again now: polls were given back to the
    /// window (a scan ended early), so it need not wait for the reset. False when it is not
    /// such a create.
    pub fn wake(&mut self) -> bool {
        // A create that met a 429 and is held by the budget after the cooldown keeps the 429
        // as its reason: it wakes too (else it slept to its deadline, 30 min, when the window
        // it was held for was a guessed hour; the engine wakes none during a cooldown).
        if !self.is_creating() || !matches!(self.reason, Reason::Budget | Reason::RateLimit) {
            return false;
        }
        self.behind_until = None;
        match self.held.take() {
            Some((floor, desired)) => {
                (self.floor, self.desired) = (floor, desired);
                true
            }
            None => false,
        }
    }

    /// The governor refused a retry: this window's retries are spent.
    pub fn retry_refused(&self) -> Error {
        let mut e = Error::new(
            Code::Server,
            "the request failed and the key's retries for this rate-limit window are spent; not retried",
        );
        e.scan_id = self.scan_id().map(str::to_owned);
        e.scan = self.last_scan.clone();
        e
    }

    pub fn cancelled(&self, reason: Option<&str>) -> Error {
        let mut e = Error::new(Code::Cancelled, reason.unwrap_or("the wait was cancelled"));
        e.scan_id = self.scan_id().map(str::to_owned);
        e.scan = self.last_scan.clone();
        e
    }

    /// When its last request was granted and sent.
    pub fn sent_at(&self) -> Duration {
        self.sent_at
    }

    /// The request goes out now: its round trip is measured from here.
    pub fn mark_sent(&mut self, now: Duration) {
        self.sent_at = now;
        self.held = None;
    }

    /// Whether the deadline has passed for a task that waits on a scan (a late timer): it
    /// then ends without sending.
    pub fn expired(&self, now: Duration) -> Option<Error> {
        let dl = self.deadline?;
        match self.phase {
            Phase::Wait { .. } => (now.saturating_add(self.last_rtt) > dl).then(|| self.timeout_now()),
            // Held to its deadline for polls that did not come back: no POST at the deadline.
            Phase::Create { .. }
                if self.reason == Reason::Budget && now >= dl && self.behind_until.is_some() =>
            {
                let until = self.behind_until.unwrap_or(now);
                let mut e = Error::new(
                    Code::RateLimited,
                    format!(
                        "the API key's request budget allowed no request before the deadline: the polls \
                         promised to the scans under way did not come back in time (next in {:.1} s); \
                         no scan was created",
                        until.saturating_sub(now).as_secs_f64()
                    ),
                );
                e.retry_after = Some(until.saturating_sub(now));
                Some(e)
            }
            Phase::Create { .. } => None,
        }
    }

    /// The request to send now.
    pub fn request(&self, now: Duration, policy: &Policy) -> Request {
        let timeout = match self.deadline {
            Some(dl) => dl.saturating_sub(now).clamp(Duration::from_millis(250), policy.attempt_timeout),
            None => policy.attempt_timeout,
        };
        match &self.phase {
            Phase::Create { body, .. } => {
                Request { method: Method::Post, path: "/scans".into(), body: Some(body.clone()), timeout }
            }
            Phase::Wait { id, .. } => {
                Request { method: Method::Get, path: format!("/scans/{id}"), body: None, timeout }
            }
        }
    }

    /// Learns from the reply to the request sent; `Some` ends the task.
    pub fn on_reply(
        &mut self,
        reply: Result<Response, TransportError>,
        now: Duration,
        ctx: &mut Ctx,
    ) -> Option<Outcome> {
        self.last_rtt = now.saturating_sub(self.sent_at);
        match &self.phase {
            Phase::Create { .. } => self.on_create_reply(reply, now, ctx),
            Phase::Wait { .. } => self.on_wait_reply(reply, now, ctx),
        }
    }

    fn on_create_reply(
        &mut self,
        reply: Result<Response, TransportError>,
        now: Duration,
        ctx: &mut Ctx,
    ) -> Option<Outcome> {
        let Phase::Create { request, unsent, create_only, .. } = &mut self.phase else {
            return None;
        };
        match reply {
            Ok(r) if (200..300).contains(&r.status) => {
                let scan = match decode::scan(&r) {
                    Ok(s) => s,
                    Err(e) => return Some(Err(ambiguous(request, e.message, Some(&r)))),
                };
                match scan.status() {
                    ScanStatus::Completed if decode::has_result(&scan) => return Some(Ok(scan)),
                    ScanStatus::Completed => {
                        // A cache hit whose POST answer leaves the result out (the docs do not
                        // say it is included): one GET fetches it; that answer must have it.
                        self.phase = Phase::Wait { id: scan.id().to_owned(), once: true };
                        self.last_scan = Some(scan);
                        self.floor = now;
                        self.desired = now;
                        self.reason = Reason::Schedule;
                        return None;
                    }
                    ScanStatus::Failed => return Some(Err(decode::scan_failed(scan))),
                    _ if *create_only => return Some(Ok(scan)),
                    _ => {}
                }
                // Created: from now on, wait for it.
                self.phase = Phase::Wait { id: scan.id().to_owned(), once: false };
                if let Some(after) = self.deadline_after_create.take() {
                    self.deadline = Some(now.saturating_add(after));
                    self.started = now;
                }
                (self.age_then, self.then) = (Duration::ZERO, now);
                self.failures = 0;
                self.rate_limited = 0;
                let ra = server_delay(&r, ctx.wall);
                self.floor = ra.map_or(now, |d| now + d);
                self.last_retry_after = ra;
                self.server_wait = ra;
                self.last_scan = Some(scan);
                self.plan_next_poll(now, false, ctx);
                None
            }
            Ok(r) if r.status == 429 => {
                // A 429 is an answer: the scan was not created, so asking again is safe.
                let wait = rate_limit_wait(&r, self.rate_limited, ctx);
                self.rate_limited += 1;
                self.wait_out_429(&r, wait, now, ctx.server_wait_cap)
            }
            Ok(r) if r.status >= 500 => {
                let e = decode::api_error(&r);
                Some(Err(ambiguous(request, e.message, Some(&r))))
            }
            Ok(r) => Some(Err(decode::api_error(&r))),
            Err(TransportError::NotSent(why)) => {
                *unsent += 1;
                if *unsent >= ctx.policy.max_create_attempts {
                    return Some(Err(Error::new(
                        Code::Network,
                        format!(
                            "could not connect to create the scan after {unsent} attempt(s): {why} \
                             (no request reached the server, so no scan was created)"
                        ),
                    )));
                }
                let attempt = *unsent - 1;
                self.desired = now + backoff(attempt, ctx);
                self.floor = now;
                self.reason = Reason::Backoff;
                None
            }
            Err(e @ (TransportError::Failed { .. } | TransportError::Unusable(_))) => {
                Some(Err(ambiguous(request, e.message().to_owned(), None)))
            }
        }
    }

    fn on_wait_reply(
        &mut self,
        reply: Result<Response, TransportError>,
        now: Duration,
        ctx: &mut Ctx,
    ) -> Option<Outcome> {
        let Phase::Wait { id, once } = &self.phase else {
            return None;
        };
        let (id, once) = (id.clone(), *once);
        let error = match reply {
            Ok(r) if (200..300).contains(&r.status) => match decode::scan(&r) {
                Ok(scan) if scan.id() != id => {
                    return Some(Err(decode::wrong_scan(&id, &scan)));
                }
                Ok(scan) => {
                    self.failures = 0;
                    self.last_failure = None;
                    match scan.status() {
                        ScanStatus::Completed => {
                            let outcome = decode::completed(scan);
                            if let Ok(scan) = &outcome {
                                // It ran longer than the last poll that found it processing,
                                // and no longer than its age now.
                                let (seen, age) = (self.seen_running_for, self.age(now));
                                learn(scan, seen, age.max(seen), ctx);
                            }
                            return Some(outcome.map_err(|e| e.with_scan_id(Some(&id))));
                        }
                        ScanStatus::Failed => return Some(Err(decode::scan_failed(scan))),
                        _ if once => return Some(Ok(scan)),
                        // Processing, or a state this version does not know: keep waiting.
                        _ => {}
                    }
                    if std::mem::take(&mut self.resumed) {
                        // First sight of a resumed scan: place it on the schedule by its age.
                        if let Some(age) = scan_age(&scan, &r, ctx.wall) {
                            (self.age_then, self.then) = (age, now);
                        }
                    }
                    self.seen_running_for = self.age(now);
                    let ra = server_delay(&r, ctx.wall);
                    self.last_retry_after = ra;
                    self.server_wait = ra;
                    self.floor = ra.map_or(now, |d| now + d);
                    self.last_scan = Some(scan);
                    if self.is_final {
                        return Some(Err(self.timeout_now()));
                    }
                    self.plan_next_poll(now, true, ctx);
                    return None;
                }
                Err(e) => e,
            },
            Ok(r) if r.status == 429 => {
                let wait = rate_limit_wait(&r, self.rate_limited, ctx);
                self.rate_limited += 1;
                return self
                    .wait_out_429(&r, wait, now, ctx.server_wait_cap)
                    .map(|o| o.map_err(|e| e.with_scan_id(Some(&id))));
            }
            Ok(r) if r.status >= 500 => {
                let e = decode::api_error(&r);
                self.server_wait = server_delay(&r, ctx.wall).map(|d| d.min(ctx.server_wait_cap));
                if let Some(d) = self.server_wait {
                    self.floor = now + d;
                }
                e
            }
            // 400, 401, 403, 404: asking again will not change the answer.
            Ok(r) => return Some(Err(decode::api_error(&r).with_scan_id(Some(&id)))),
            Err(e) => decode::transport_error("polling the scan failed", &e),
        };
        self.failures += 1;
        if once {
            return Some(Err(error.with_scan_id(Some(&id))));
        }
        self.last_failure = Some(error.clone());
        if self.is_final {
            return Some(Err(self.timeout_now()));
        }
        if self.failures > ctx.policy.max_consecutive_failures {
            let mut e = error.with_scan_id(Some(&id));
            e.message = format!("{} ({} failed poll(s) in a row)", e.message, self.failures);
            e.scan = self.last_scan.clone();
            return Some(Err(e));
        }
        self.desired = now + backoff(self.failures - 1, ctx);
        self.floor = self.floor.max(now);
        self.reason = Reason::Backoff;
        None
    }

    /// The next poll on the duration schedule: the plan's next point past the scan's age.
    /// After a poll, the next keeps at least the poll gap; the first poll is the plan's alone.
    fn plan_next_poll(&mut self, now: Duration, after_poll: bool, ctx: &mut Ctx) {
        let gap = self.poll_gap(ctx.policy);
        let age = self.age(now);
        let thrift = self.fixed_thrift.unwrap_or(ctx.thrift);
        let next = next_poll_age(self.mode, age, ctx.model, self.expected, gap, thrift);
        self.thrift = (self.mode == Mode::Adaptive).then_some(thrift);
        self.desired = now + (next - age);
        if after_poll {
            // Never two polls closer than the server's Retry-After, or the documented 10 s without one.
            self.desired = self.desired.max(now + gap);
        }
        self.reason = if self.floor >= self.desired { Reason::RetryAfter } else { Reason::Schedule };
    }

    /// The duration model moved a long way down (its prior yielded to durations it could not
    /// explain): a scan waiting on a poll planned under the old model is planned again, at its
    /// thrift then, never later than it was. Returns whether the poll moved.
    pub fn replan(&mut self, now: Duration, ctx: &mut Ctx) -> bool {
        let waiting = matches!(self.phase, Phase::Wait { .. }) && self.failures == 0;
        if !waiting || self.is_final || self.reason != Reason::Schedule || self.desired <= now {
            return false;
        }
        let (desired, thrift) = (self.desired, self.thrift);
        let gap = self.poll_gap(ctx.policy);
        let age = self.age(now);
        let planned_at = self.fixed_thrift.or(thrift).unwrap_or(ctx.thrift);
        let next = next_poll_age(self.mode, age, ctx.model, self.expected, gap, planned_at);
        let moved = now + (next - age);
        if moved >= desired {
            return false;
        }
        self.desired = moved;
        true
    }

    fn wait_out_429(
        &mut self,
        r: &Response,
        asked: Duration,
        now: Duration,
        cap: Duration,
    ) -> Option<Outcome> {
        // A server's wait is held to the key's window at most; then a request probes again.
        let wait = asked.min(cap);
        self.server_wait = Some(wait);
        let past_deadline = self.deadline.is_some_and(|dl| now + wait > dl);
        if past_deadline || wait > self.max_rate_limit_wait {
            let mut e = decode::api_error(r);
            e.retry_after = Some(wait);
            let held =
                if wait < asked { format!(", held to {:.1} s", wait.as_secs_f64()) } else { String::new() };
            e.message = format!(
                "{} (the server asks to wait {:.1} s{held}, which is past {})",
                e.message,
                asked.as_secs_f64(),
                if past_deadline { "the deadline" } else { "max_rate_limit_wait" }
            );
            e.scan_id = self.scan_id().map(str::to_owned);
            e.scan = self.last_scan.clone();
            return Some(Err(e));
        }
        self.floor = now + wait;
        self.desired = self.floor;
        self.reason = Reason::RateLimit;
        None
    }

    /// The deadline has come (or no answer could come back before it): says what actually
    /// held the scan up, from what the last replies said.
    fn timeout_now(&self) -> Error {
        let asked = self.server_wait.map(|d| format!("{:.1} s", d.as_secs_f64()));
        if let Some(failure) = &self.last_failure {
            let why = match &asked {
                Some(a) => format!(
                    "the last poll failed ({}), and the server asked to wait {a} more",
                    failure.message
                ),
                None => format!("the last poll failed ({})", failure.message),
            };
            let mut e = self.timeout(&why);
            e.http_status = failure.http_status;
            e.api_code = failure.api_code.clone();
            e.request_id = failure.request_id.clone().or(e.request_id);
            return e;
        }
        let dl = self.deadline.unwrap_or(Duration::MAX);
        if self.floor >= dl {
            if let Some(a) = asked {
                return self.timeout(&format!(
                    "the server asked to wait {a} before the next poll, past the deadline"
                ));
            }
        }
        if self.is_final && self.requests > 0 {
            return self.timeout("the scan was still processing at the deadline");
        }
        self.timeout(&format!(
            "the scan was still processing at its last answer, and no poll could be answered before \
             the deadline (an exchange took {} ms)",
            self.last_rtt.as_millis()
        ))
    }

    fn timeout(&self, why: &str) -> Error {
        let id = self.scan_id().unwrap_or("?");
        let mut e = Error::new(
            Code::Timeout,
            format!("scan {id} did not finish before the deadline: {why}; resume with its id"),
        );
        e.scan_id = self.scan_id().map(str::to_owned);
        if let Some(s) = &self.last_scan {
            e.http_status = Some(s.http_status);
            e.request_id = s.request_id.clone();
        }
        e.scan = self.last_scan.clone();
        e
    }
}

fn check_id(id: &str) -> Result<String, Error> {
    // Ids are opaque, but must stay one path segment.
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(Error::invalid_argument(format!(
            "scan_id {id:?} is not a scan id (letters, digits, '_' and '-' only)"
        )));
    }
    Ok(id.to_owned())
}

fn backoff(attempt: u32, ctx: &mut Ctx) -> Duration {
    backoff::equal_jitter(attempt, ctx.policy.backoff_base, ctx.policy.backoff_cap, ctx.rng)
}

fn server_delay(response: &Response, wall: SystemTime) -> Option<Duration> {
    let h = &response.headers;
    parse_retry_after(h.retry_after.as_deref()?, h.date.as_deref(), wall)
}

/// How long a 429 asks us to wait: `Retry-After`, else the window reset, else backoff.
fn rate_limit_wait(response: &Response, attempt: u32, ctx: &mut Ctx) -> Duration {
    super::retry_after::rate_limit_wait(&response.headers, ctx.wall).unwrap_or_else(|| backoff(attempt, ctx))
}

/// A completed scan's duration (`completed_at - created_at`) teaches the schedule, held to
/// what the polls saw: longer than `seen` (the last poll that found it processing), no longer
/// than `age` (the poll that found it done). Timestamps in whole seconds (as the API's are)
/// say the duration only to a second either way: within that, the polls' bounds decide.
fn learn(scan: &Scan, seen: Duration, age: Duration, ctx: &mut Ctx) {
    if scan.cached() {
        return;
    }
    let parse = |p: &str| scan.get_str(p).and_then(|t| humantime::parse_rfc3339_weak(t).ok());
    let (Some(created), Some(completed)) = (parse("/created_at"), parse("/completed_at")) else {
        return;
    };
    let Ok(said) = completed.duration_since(created) else { return };
    let whole_seconds = |t: SystemTime| t.duration_since(UNIX_EPOCH).is_ok_and(|d| d.subsec_nanos() == 0);
    let slack = if whole_seconds(created) && whole_seconds(completed) {
        Duration::from_secs(1)
    } else {
        Duration::from_millis(1)
    };
    let duration = reconcile_duration(said, slack, seen, age);
    ctx.model.observe(duration);
    ctx.learned = Some(duration);
}

/// The duration the server said (`said`, give or take `slack`) within what the polls saw
/// (`seen`..=`age`): the server's word where the two agree; the middle of their overlap where
/// it is coarse; the polls' own bounds where they disagree (a clock step on either side).
fn reconcile_duration(said: Duration, slack: Duration, seen: Duration, age: Duration) -> Duration {
    let (lo, hi) = (said.saturating_sub(slack).max(seen), (said + slack).min(age));
    if lo > hi {
        // The server's clock and ours disagree by more than the slack: trust neither end.
        return said.clamp(seen, age);
    }
    if (lo..=hi).contains(&said) && slack <= Duration::from_millis(1) {
        return said;
    }
    (lo + hi) / 2
}

/// How old a scan is, by its `created_at` against the response's `Date` (the server's clock).
fn scan_age(scan: &Scan, response: &Response, wall: SystemTime) -> Option<Duration> {
    let created = humantime::parse_rfc3339_weak(scan.get_str("/created_at")?).ok()?;
    let server_now =
        response.headers.date.as_deref().and_then(|d| httpdate::parse_http_date(d).ok()).unwrap_or(wall);
    server_now.duration_since(created).ok()
}

fn ambiguous(request: &ScanRequest, why: String, response: Option<&Response>) -> Error {
    let mut e = Error::new(
        Code::AmbiguousCreate,
        format!(
            "the request to create a scan of {} may have reached the server, but no scan id came \
             back ({why}); it was not repeated, to avoid a duplicate scan",
            request.company_website
        ),
    );
    e.hint = Some(
        "Reconcile before creating again: a scan created by this request completes as usual; \
         creating again with max_age_days > 0 after it completes returns it without a new scan"
            .into(),
    );
    if let Some(r) = response {
        let api = decode::api_error(r);
        e.http_status = Some(r.status);
        e.api_code = api.api_code;
        e.request_id = api.request_id;
    }
    e
}

#[cfg(test)]
mod tests {
    use super::{reconcile_duration, Goal, Settings, Task};
    use crate::error::Code;
    use crate::model::ScanRequest;
    use crate::Mode;
    use std::time::Duration;

    const MS: fn(u64) -> Duration = Duration::from_millis;
    const S: fn(u64) -> Duration = Duration::from_secs;

    fn create_within(deadline: Duration) -> Task {
        let request = ScanRequest::new("Acme", "https://acme.example");
        let settings = Settings {
            deadline: Some(deadline),
            deadline_after_create: None,
            start_after: None,
            mode: Mode::Adaptive,
            expected: (S(30), S(120)),
            max_rate_limit_wait: S(900),
            fixed_thrift: None,
        };
        Task::new(Goal::Create { request, create_only: false }, Duration::ZERO, settings).unwrap()
    }

    #[test]
    fn a_create_behind_promised_polls_waits_for_them_until_its_deadline() {
        let mut task = create_within(S(300));
        // Held back only by polls promised to scans under way: it waits, to its deadline.
        assert_eq!(task.hold_until(S(3600), S(0), true).ok(), Some(S(300)));
        assert!(task.expired(S(299)).is_none());
        // None came back: it ends there, rate-limited, no POST sent, the reset in retry_after.
        let e = task.expired(S(300)).expect("ended at its deadline");
        assert_eq!((e.code, e.retry_after, e.scan_id), (Code::RateLimited, Some(S(3300)), None));
        // A window with no room at all: the call ends at once, as before.
        let mut task = create_within(S(300));
        let e = task.hold_until(S(3600), S(0), false).unwrap_err();
        assert_eq!((e.code, e.retry_after), (Code::RateLimited, Some(S(3600))));
    }

    #[test]
    fn a_woken_create_asks_again_at_once() {
        let mut task = create_within(S(300));
        task.hold_until(S(3600), S(0), true).unwrap();
        assert!(task.wake(), "polls came back");
        assert!(task.expired(S(300)).is_none(), "nothing left of the hold");
    }

    /// A create that met a 429, then was held by the budget once the cooldown passed, wakes
    /// when polls come back. Before, it kept the 429 as its reason, no wake reached it, and a
    /// blind process of three on a key slept to its deadline (30 min) with its window's
    /// requests unspent (`exona-bench store-share`, issue 23).
    #[test]
    fn a_create_held_after_a_429_wakes_when_polls_come_back() {
        let mut task = create_within(S(1800));
        task.reason = super::Reason::RateLimit;
        task.hold_until(S(3600), S(40), true).unwrap();
        assert!(task.wake(), "polls came back");
        assert!(task.expired(S(1800)).is_none(), "nothing left of the hold");
    }

    #[test]
    fn a_precise_duration_within_the_polls_bounds_is_taken_as_said() {
        assert_eq!(reconcile_duration(MS(72_345), MS(1), MS(66_000), MS(76_000)), MS(72_345));
    }

    #[test]
    fn whole_seconds_are_narrowed_by_the_polls() {
        // Said 72 s give or take 1: between 71 and 73, all inside the polls' 66..76.
        assert_eq!(reconcile_duration(MS(72_000), MS(1000), MS(66_000), MS(76_000)), MS(72_000));
        // A 0.2 s scan said to take "0 s" (same second): somewhere in 0..0.31, its first poll.
        assert_eq!(reconcile_duration(MS(0), MS(1000), MS(0), MS(310)), MS(155));
        // Said "1 s", seen processing at 0.2 s and done at 0.5 s.
        assert_eq!(reconcile_duration(MS(1000), MS(1000), MS(200), MS(500)), MS(350));
    }

    #[test]
    fn clocks_that_disagree_are_held_to_the_polls() {
        assert_eq!(reconcile_duration(MS(90_000), MS(1000), MS(30_000), MS(40_000)), MS(40_000));
    }
}

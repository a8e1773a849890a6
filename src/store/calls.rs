//! How a call uses the store: before a create (answer from a stored result, or join a scan
//! another process is running), when the scan id is known (record it in flight), and after
//! the call (record the result and the duration, clear the in-flight entry).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{identity, Ask, Claim, Guarded, StoredResult, AMBIGUOUS_HOLD, IN_FLIGHT_TTL};
use crate::engine::core::{Progress, Sink};
use crate::engine::gate::{CreateGate, Verdict};
use crate::engine::task::Outcome;
use crate::error::{Code, Error};
use crate::model::ScanRequest;
use crate::scan::{Scan, ScanStatus};

/// What the store says before a create request is sent.
pub enum Before {
    /// A completed scan of this identity, recent enough: no request at all.
    Answered(Scan),
    /// Another process is running a scan of this identity: wait on it instead of a twin.
    Join(String),
    /// Another process is creating a scan of this identity: ask again shortly (its scan id
    /// will be there), instead of creating a twin.
    Claimed,
    /// Nothing to reuse: create (the call holds the claim, when the request may be shared).
    Create,
    /// The store did not answer: create as without a store, knowing that it is blind (the
    /// scan is recorded when the store answers again; a create sent again claims first).
    Blind,
}

/// How soon a call waiting on another process's create first asks the store again (a read);
/// each wait after doubles it, up to [`CLAIM_POLL_MAX`]: a claim usually resolves within a
/// create's round trip, but one whose creator was paused lives for its whole lease, and a
/// fleet's waiters must not read the database four times a second all that while.
pub const CLAIM_POLL: Duration = Duration::from_millis(250);
/// The longest wait between two reads of another process's claim.
pub const CLAIM_POLL_MAX: Duration = Duration::from_secs(2);

/// How often a call that joined a scan another call polls looks for its result in the store
/// (a read; the API is not asked while that call's lease holds).
pub const RESULT_WATCH: Duration = Duration::from_secs(1);

/// The identity a request may share with others, when it may share at all: the API's own
/// rules (a questionnaire or `force_refresh` never reuses; `max_age_days` 0 or absent means
/// "always new").
pub fn shareable_identity(request: &ScanRequest) -> Option<String> {
    let reuses = request.max_age_days.is_some_and(|d| d > 0)
        && !request.force_refresh
        && request.questionnaire.is_empty();
    reuses.then(|| identity(&request.company_website, request.include_field_citations))
}

/// A stored result recent enough for the request's `max_age_days`.
fn stored_answer(store: &Guarded, identity: &str, request: &ScanRequest, now: SystemTime) -> Option<Scan> {
    let days = u64::from(request.max_age_days.unwrap_or(0));
    let since = now.checked_sub(Duration::from_secs(days * 86_400)).unwrap_or(SystemTime::UNIX_EPOCH);
    let stored = store.result(identity, since)?;
    let mut scan = Scan::from_body(stored.json.as_bytes(), 200, None).ok()?;
    scan.from_store = true;
    Some(scan)
}

fn ago(now: SystemTime, d: Duration) -> SystemTime {
    now.checked_sub(d).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Takes the claim of the call `token` for a create about to be sent (or confirms it, leased
/// again from now), unless the store answers it, knows its scan, or another call is creating
/// it (a lapsed claim whose create was sent less than `settle` ago counts: see
/// [`super::who_creates`]).
pub fn before_create(
    store: &Guarded,
    request: &ScanRequest,
    token: &str,
    settle: Duration,
    now: SystemTime,
) -> Before {
    let Some(id) = shareable_identity(request) else { return Before::Create };
    if let Some(scan) = stored_answer(store, &id, request, now) {
        return Before::Answered(scan);
    }
    match store.claim(&id, Ask { token, since: ago(now, IN_FLIGHT_TTL), at: now, settle }) {
        Claim::Running(scan_id) => Before::Join(scan_id),
        Claim::Creating => Before::Claimed,
        Claim::Mine => {
            crate::crash::point("claim_written");
            Before::Create
        }
        Claim::Unknown => Before::Blind,
    }
}

/// A create's gate on the state store (engine/gate.rs): a read when its timer fires, the
/// claim when its request is granted and about to be sent. It remembers a scan it joined.
pub struct StoreGate {
    store: Arc<Guarded>,
    request: ScanRequest,
    identity: String,
    joined: std::sync::Mutex<Option<String>>,
    told: AtomicBool,
    /// How many times this call has waited on another's claim (its next wait doubles).
    waits: std::sync::atomic::AtomicU32,
    /// This call's token: its claim rows carry it (DESIGN.md 9.1). A create sent again (after
    /// a 429, a 5xx or a network error) knows its own claim by it and never waits on it (a
    /// fleet host whose create met a 429 while the database was down once waited on itself),
    /// while a sibling call of the same process, with another token, waits.
    token: String,
    /// A create of this call was sent while the store did not answer.
    blind: AtomicBool,
    /// How long after its send another call's lapsed claim is still waited on: the time its
    /// scan likely takes (the learned p90), after which the API's cache would answer with it.
    settle: Duration,
    /// When this call last took or confirmed its claim: its create went right after.
    sent_at: std::sync::Mutex<Option<SystemTime>>,
}

impl StoreGate {
    /// A gate for a create whose scan may be shared (see [`shareable_identity`]); `None` for
    /// one that must always be new. `settle`: how long a scan likely takes (the learned p90).
    pub fn new(store: &Arc<Guarded>, request: &ScanRequest, settle: Duration) -> Option<Arc<StoreGate>> {
        let identity = shareable_identity(request)?;
        Some(Arc::new(StoreGate {
            store: store.clone(),
            request: request.clone(),
            identity,
            joined: Default::default(),
            told: AtomicBool::new(false),
            waits: std::sync::atomic::AtomicU32::new(0),
            token: super::call_token(),
            blind: AtomicBool::new(false),
            settle,
            sent_at: Default::default(),
        }))
    }

    /// The token this call's claims carry.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether a create of this call was sent while the store did not answer.
    pub fn sent_blind(&self) -> bool {
        self.blind.load(Ordering::Relaxed)
    }

    /// Until when this call's ambiguous create (sent, unanswered) keeps its claim: until its
    /// scan would have completed (the send and the learned p90), as another call taking the
    /// claim over would wait (DESIGN.md 9.1); then a waiter asks with `max_age_days` and the
    /// API's cache answers with that scan. [`AMBIGUOUS_HOLD`] from now when no send is known.
    fn ambiguous_until(&self) -> SystemTime {
        match *self.sent_at.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(sent) => sent + self.settle,
            None => crate::engine::clock::wall_now() + AMBIGUOUS_HOLD,
        }
    }

    /// The scan of another process this call joined, if it did.
    pub fn joined(&self) -> Option<String> {
        self.joined.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn join(&self, scan_id: String) -> Verdict {
        *self.joined.lock().unwrap_or_else(|p| p.into_inner()) = Some(scan_id.clone());
        Verdict::Join(scan_id)
    }

    fn later(&self) -> Verdict {
        if !self.told.swap(true, Ordering::Relaxed) {
            // Visible: a wait on another process is bounded by that process's lease (it ends
            // one lease after the process dies), and says so.
            crate::log::log(crate::log::Level::Info, || {
                format!(
                    "{}: waiting on another process's create of the same company (its claim in the state \
                     store lapses {} s after that process stops renewing it)",
                    self.request.company_website,
                    super::LEASE.as_secs()
                )
            });
        }
        let n = self.waits.fetch_add(1, Ordering::Relaxed).min(8);
        Verdict::Later((CLAIM_POLL * (1u32 << n)).min(CLAIM_POLL_MAX))
    }
}

impl CreateGate for StoreGate {
    fn peek(&self) -> Verdict {
        let now = crate::engine::clock::wall_now();
        if let Some(scan) = stored_answer(&self.store, &self.identity, &self.request, now) {
            return Verdict::Answered(scan);
        }
        let ask = Ask { token: &self.token, since: ago(now, IN_FLIGHT_TTL), at: now, settle: self.settle };
        match self.store.peek_claim(&self.identity, ask) {
            Some(Claim::Running(scan_id)) => self.join(scan_id),
            Some(Claim::Creating) => self.later(),
            // A read: the claim, taken or confirmed right before the send, decides.
            Some(Claim::Mine) | Some(Claim::Unknown) | None => Verdict::Send,
        }
    }

    fn peek_joined(&self) -> Verdict {
        let Some(scan_id) = self.joined() else { return Verdict::Send };
        let now = crate::engine::clock::wall_now();
        let stored = self.store.result(&self.identity, SystemTime::UNIX_EPOCH);
        if let Some(mut scan) = stored.and_then(|s| Scan::from_body(s.json.as_bytes(), 200, None).ok()) {
            if scan.id() == scan_id {
                scan.from_store = true;
                return Verdict::Answered(scan);
            }
        }
        if self.store.watched(&self.identity, &scan_id, now) {
            Verdict::Later(RESULT_WATCH)
        } else {
            Verdict::Send
        }
    }

    fn claim(&self) -> Verdict {
        // Every send (a first one, or one sent again after a 429, a 5xx or a network error)
        // takes or confirms this call's claim in one transaction right before it goes: a
        // process that slept past its lease learns here that another call took the claim over,
        // before it sends, not after; a create first sent blind claims now that the store
        // answers, and waits if another call holds the company meanwhile.
        let now = crate::engine::clock::wall_now();
        match before_create(&self.store, &self.request, &self.token, self.settle, now) {
            Before::Create => {
                *self.sent_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
                Verdict::Send
            }
            Before::Blind => {
                if !self.blind.swap(true, Ordering::Relaxed) {
                    crate::log::log(crate::log::Level::Warn, || {
                        format!(
                            "{}: created without the state store (it does not answer); the scan is recorded \
                             there when it answers again",
                            self.request.company_website
                        )
                    });
                }
                Verdict::Send
            }
            Before::Answered(scan) => Verdict::Answered(scan),
            Before::Join(scan_id) => self.join(scan_id),
            // Another call holds the claim now (this call's lapsed and was taken over, or was
            // never written).
            Before::Claimed => self.later(),
        }
    }
}

/// A scan of this request exists now (its create was answered).
pub fn created(store: &Guarded, request: &ScanRequest, scan_id: &str, now: SystemTime) {
    if let Some(id) = shareable_identity(request) {
        store.record_in_flight(&id, scan_id, now);
    }
}

/// After a call: a completed scan is kept (for reuse by identity, when it may be reused) and
/// teaches its duration; an ended scan is no longer in flight. A call that created its scan
/// and ends before it (a deadline, a cancel) stops watching it, so that those who joined it
/// poll it themselves. `joined`: the call waited on another call's scan. `gate`: the call's
/// (its claim, and only its claim, is cleared or kept).
pub fn after(
    store: &Guarded,
    request: Option<&ScanRequest>,
    outcome: &Result<Scan, Error>,
    joined: bool,
    gate: Option<&StoreGate>,
) {
    let token = gate.map_or("", |g| g.token());
    if let (Some(request), false) = (request, joined) {
        let unfinished = match outcome {
            Ok(scan) if !scan.status().is_terminal() => Some(scan.id()),
            Err(e) if !e.scan.as_ref().is_some_and(|s| s.status().is_terminal()) => e.scan_id.as_deref(),
            _ => None,
        };
        if let (Some(scan_id), Some(id)) = (unfinished, shareable_identity(request)) {
            store.unwatch_in_flight(&id, scan_id);
        }
    }
    if let (Some(request), Err(e)) = (request, outcome) {
        if e.scan_id.is_none() {
            if let Some(id) = shareable_identity(request) {
                if e.code == Code::AmbiguousCreate {
                    // A scan may exist: the claim is kept (unrenewed) until a twin would have
                    // completed, so a waiter's create finds it instead of twinning.
                    let until = gate.map_or_else(
                        || crate::engine::clock::wall_now() + AMBIGUOUS_HOLD,
                        |g| g.ambiguous_until(),
                    );
                    store.keep_ambiguous_claim(&id, token, until);
                } else {
                    // The create failed or was cancelled without a scan: hand over at once
                    // (a call that only waited on a sibling's claim clears nothing of it).
                    store.clear_in_flight(&id, "", token);
                }
            }
        }
    }
    let scan = match outcome {
        Ok(scan) => Some(scan),
        Err(e) => e.scan.as_ref().filter(|s| s.status().is_terminal()),
    };
    let Some(scan) = scan else { return };
    if scan.from_store {
        return;
    }
    // The identity its result may serve: any scan without a questionnaire (whose answers
    // shaped its result); a resumed scan's from its own company website.
    let identity = match request {
        Some(r) if r.questionnaire.is_empty() => {
            Some(identity(&r.company_website, r.include_field_citations))
        }
        Some(_) => None,
        None => scan
            .get_str("/company/website")
            .map(|site| identity(site, scan.json().pointer("/result/field_citations").is_some())),
    };
    if !scan.status().is_terminal() {
        return; // still running (a create-only call, a timeout): it stays in flight
    }
    if *scan.status() != ScanStatus::Completed {
        if let Some(id) = &identity {
            store.clear_in_flight(id, scan.id(), "");
        }
        return;
    }
    let parse = |p: &str| scan.get_str(p).and_then(|t| humantime::parse_rfc3339_weak(t).ok());
    let completed_at = parse("/completed_at").unwrap_or_else(SystemTime::now);
    // A cache hit is kept too (dated by its own completion, so max_age_days holds): the next
    // call for it is answered with no request. Its duration was learned when it ran, if here.
    if let (Some(created), Some(completed), false) =
        (parse("/created_at"), parse("/completed_at"), scan.cached())
    {
        if let Ok(d) = completed.duration_since(created) {
            store.record_duration(scan.id(), d, completed);
        }
    }
    if let Some(id) = &identity {
        // The result before the in-flight row goes: a call that joined the scan finds it
        // there rather than a scan no longer in flight and nothing stored.
        store.record_result(id, &StoredResult { json: scan.raw_json().to_owned(), completed_at });
        store.clear_in_flight(id, scan.id(), "");
    }
}

/// A submitted call's sink, for a client with a store (a batch row): records the scan in
/// flight when its id is known and what it ended with, then hands every event on.
pub struct Remembering {
    pub store: Arc<Guarded>,
    /// The normalized request of a create; `None` for a call on an existing scan.
    pub request: Option<ScanRequest>,
    /// The create's gate, which knows whether the call joined another process's scan.
    pub gate: Option<Arc<StoreGate>>,
    pub inner: Arc<dyn Sink>,
    recorded: AtomicBool,
}

impl Remembering {
    pub fn new(
        store: Arc<Guarded>,
        request: Option<ScanRequest>,
        gate: Option<Arc<StoreGate>>,
        inner: Arc<dyn Sink>,
    ) -> Self {
        Remembering { store, request, gate, inner, recorded: AtomicBool::new(false) }
    }

    /// True when the call waits on a scan another process recorded in flight.
    fn joined(&self) -> bool {
        self.gate.as_ref().is_some_and(|g| g.joined().is_some())
    }

    fn gate(&self) -> Option<&StoreGate> {
        self.gate.as_deref()
    }
}

impl Sink for Remembering {
    fn progress(&self, event: Progress) {
        if let (Some(request), Some(id)) = (&self.request, &event.scan_id) {
            if !self.recorded.swap(true, Ordering::Relaxed) && !self.joined() {
                created(&self.store, request, id, crate::engine::clock::wall_now());
            }
        }
        self.inner.progress(event)
    }

    fn finish(&self, mut outcome: Outcome) {
        let mut create_only = false;
        match &mut outcome {
            // The scan another process recorded is gone: forget it. (A blocking call creates
            // anew at once; a submitted one cannot from inside the engine, so it says so.)
            Err(e) if self.joined() && e.code == Code::NotFound => {
                if let (Some(r), Some(id)) = (&self.request, &e.scan_id) {
                    if let Some(identity) = shareable_identity(r) {
                        self.store.clear_in_flight(&identity, id, "");
                    }
                }
                e.message = format!(
                    "{} (the scan was joined from the state store, where another process recorded it; \
                     submitting the request again creates a new one)",
                    e.message
                );
            }
            Ok(scan)
                if !scan.status().is_terminal()
                    && !self.recorded.load(Ordering::Relaxed)
                    && !self.joined() =>
            {
                if let Some(request) = &self.request {
                    created(&self.store, request, scan.id(), crate::engine::clock::wall_now());
                }
                create_only = true;
            }
            _ => after(&self.store, self.request.as_ref(), &outcome, self.joined(), self.gate()),
        }
        if create_only {
            // Its scan is in flight and nobody here polls it: those who join it poll it.
            after(&self.store, self.request.as_ref(), &outcome, false, self.gate());
        }
        self.inner.finish(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A create sent again (its POST met a 429, a 5xx or a network error) holds its claim
    /// still: it goes, where it waited on its own claim before, which its own heartbeat kept
    /// alive (a fleet host stalled past 2,000 s: `exona-bench fleet`, the database stopped
    /// mid-run). Another call of the same company still waits, then joins the scan.
    #[test]
    fn a_create_sent_again_does_not_wait_on_its_own_claim() {
        let dir = std::env::temp_dir().join(format!("exona-own-claim-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = super::super::open(&dir, "fp").expect("store");
        let request =
            ScanRequest { max_age_days: Some(30), ..ScanRequest::new("Co", "https://own-claim.example") };
        let (mine, other) = (
            StoreGate::new(&store, &request, Duration::ZERO).unwrap(),
            StoreGate::new(&store, &request, Duration::ZERO).unwrap(),
        );
        assert!(matches!(mine.peek(), Verdict::Send));
        assert!(matches!(mine.claim(), Verdict::Send));
        // Its POST met a 429: the create's timer fires again, then its grant comes.
        assert!(matches!(mine.peek(), Verdict::Send), "waits on its own claim");
        assert!(matches!(mine.claim(), Verdict::Send), "waits on its own claim");
        assert!(matches!(other.peek(), Verdict::Later(_)), "another call creates a twin");
        assert!(matches!(other.claim(), Verdict::Later(_)), "another call creates a twin");
        created(&store, &request, "scn_own", SystemTime::now());
        assert!(matches!(other.peek(), Verdict::Join(id) if id == "scn_own"));
        drop((mine, other, store));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A call waiting on another's claim reads the store less and less often (issue 34: a
    /// fleet's waiters read the database every 250 ms for a claim's whole life): 250 ms, then
    /// doubling, at most 2 s.
    #[test]
    fn a_waiter_on_anothers_claim_backs_off() {
        let dir = std::env::temp_dir().join(format!("exona-claim-backoff-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = super::super::open(&dir, "fp").expect("store");
        let request =
            ScanRequest { max_age_days: Some(30), ..ScanRequest::new("Co", "https://backoff.example") };
        let (creator, waiter) = (
            StoreGate::new(&store, &request, Duration::ZERO).unwrap(),
            StoreGate::new(&store, &request, Duration::ZERO).unwrap(),
        );
        assert!(matches!(creator.claim(), Verdict::Send));
        let waits: Vec<u128> = (0..6)
            .map(|_| match waiter.peek() {
                Verdict::Later(d) => d.as_millis(),
                _ => panic!("waits on the creator's claim"),
            })
            .collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 2000, 2000]);
        drop((creator, waiter, store));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The audit's repro (issue 32): a create claimed while its process's store did not answer
    /// went as "mine"; sent again after a 429 once the store answered, it went again although
    /// another host held a live claim of the company by then (a twin). Now the first send is
    /// blind (the store said nothing, which is not "mine"), and the second claims first, finds
    /// the other host's claim and waits; the other host's scan is then joined.
    #[test]
    fn a_create_sent_blind_claims_before_it_is_sent_again() {
        let dir = std::env::temp_dir().join(format!("exona-blind-claim-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let down = Arc::new(AtomicBool::new(true));
        let this_host =
            Arc::new(Guarded::new(Box::new(super::super::switchable::Switchable::open(&dir, &down))));
        let other_host = super::super::open(&dir, "fp").expect("store");
        let request =
            ScanRequest { max_age_days: Some(30), ..ScanRequest::new("Co", "https://blind.example") };
        let mine = StoreGate::new(&this_host, &request, Duration::ZERO).unwrap();
        assert!(matches!(mine.claim(), Verdict::Send), "as without a store");
        assert!(mine.sent_blind());
        // Its POST met a 429. Meanwhile the other host claimed the company.
        let theirs = StoreGate::new(&other_host, &request, Duration::ZERO).unwrap();
        assert!(matches!(theirs.claim(), Verdict::Send));
        down.store(false, Ordering::SeqCst);
        *this_host.retry_at.lock().unwrap() = None; // its bypass ends now, not in 10 s
        assert!(matches!(mine.claim(), Verdict::Later(_)), "sent again past the other host's live claim");
        created(&other_host, &request, "scn_theirs", SystemTime::now());
        assert!(matches!(mine.claim(), Verdict::Join(id) if id == "scn_theirs"));
        drop((mine, theirs, this_host, other_host));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The audit's second repro: two calls of one process for one company; the second waits
    /// on the first's claim, then times out (or is cancelled). Its `after` cleared the claim by
    /// company and process, deleting the first's while its POST was out; a third call then
    /// created a twin. Now it clears only a claim carrying its own token.
    #[test]
    fn a_waiting_call_that_ends_leaves_its_siblings_claim() {
        let dir = std::env::temp_dir().join(format!("exona-sibling-claim-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = super::super::open(&dir, "fp").expect("store");
        let request =
            ScanRequest { max_age_days: Some(30), ..ScanRequest::new("Co", "https://sibling.example") };
        let first = StoreGate::new(&store, &request, Duration::ZERO).unwrap();
        let second = StoreGate::new(&store, &request, Duration::ZERO).unwrap();
        assert!(matches!(first.claim(), Verdict::Send));
        assert!(matches!(second.claim(), Verdict::Later(_)));
        let timed_out = Err(Error::new(Code::Timeout, "the deadline passed"));
        after(&store, Some(&request), &timed_out, false, Some(&second));
        let third = StoreGate::new(&store, &request, Duration::ZERO).unwrap();
        assert!(matches!(third.claim(), Verdict::Later(_)), "the sibling's claim was cleared: a twin");
        // The first call's own end hands the claim over.
        let cancelled = Err(Error::new(Code::Cancelled, "cancelled"));
        after(&store, Some(&request), &cancelled, false, Some(&first));
        assert!(matches!(third.claim(), Verdict::Send));
        drop((first, second, third, store));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! How a call uses the store: before a create (answer from a stored result, or join a scan
//! another process is running), when the scan id is known (record it in flight), and after
//! the call (record the result and the duration, clear the in-flight entry).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{identity, Claim, Guarded, StoredResult, AMBIGUOUS_HOLD, IN_FLIGHT_TTL};
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
}

/// How often a call waiting on another process's create asks the store again (a read).
pub const CLAIM_POLL: Duration = Duration::from_millis(250);

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

/// Takes the claim for a create about to be sent, unless the store answers it, knows its
/// scan, or another call is creating it.
pub fn before_create(store: &Guarded, request: &ScanRequest, now: SystemTime) -> Before {
    let Some(id) = shareable_identity(request) else { return Before::Create };
    if let Some(scan) = stored_answer(store, &id, request, now) {
        return Before::Answered(scan);
    }
    match store.claim(&id, ago(now, IN_FLIGHT_TTL), now) {
        Claim::Running(scan_id) => Before::Join(scan_id),
        Claim::Creating => Before::Claimed,
        Claim::Mine => {
            crate::crash::point("claim_written");
            Before::Create
        }
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
    /// This call took the claim (its create was sent, or about to be). A create sent again
    /// (after a 429, a 5xx or a network error) finds its own claim in the store, which the
    /// store cannot tell from another call's: it must not wait on it (its own heartbeat renews
    /// the lease, so it never lapses: a fleet host whose create met a 429 while the database
    /// was down waited on itself, its batch rows without end, their deadline counting from a
    /// creation that never came).
    claimed: AtomicBool,
}

impl StoreGate {
    /// A gate for a create whose scan may be shared (see [`shareable_identity`]); `None` for
    /// one that must always be new.
    pub fn new(store: &Arc<Guarded>, request: &ScanRequest) -> Option<Arc<StoreGate>> {
        let identity = shareable_identity(request)?;
        Some(Arc::new(StoreGate {
            store: store.clone(),
            request: request.clone(),
            identity,
            joined: Default::default(),
            told: AtomicBool::new(false),
            claimed: AtomicBool::new(false),
        }))
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
        Verdict::Later(CLAIM_POLL)
    }
}

impl CreateGate for StoreGate {
    fn peek(&self) -> Verdict {
        let now = SystemTime::now();
        if let Some(scan) = stored_answer(&self.store, &self.identity, &self.request, now) {
            return Verdict::Answered(scan);
        }
        match self.store.peek_claim(&self.identity, ago(now, IN_FLIGHT_TTL), now) {
            Some(Claim::Running(scan_id)) => self.join(scan_id),
            // The claim is this call's own (see `claimed`).
            Some(Claim::Creating) if self.claimed.load(Ordering::Relaxed) => Verdict::Send,
            Some(Claim::Creating) => self.later(),
            Some(Claim::Mine) | None => Verdict::Send,
        }
    }

    fn peek_joined(&self) -> Verdict {
        let Some(scan_id) = self.joined() else { return Verdict::Send };
        let now = SystemTime::now();
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
        if self.claimed.load(Ordering::Relaxed) {
            // Sent again: a claim still held is this call's own, a scan known by now is joined,
            // and a claim that lapsed meanwhile is taken again below (never sent without one).
            let now = SystemTime::now();
            match self.store.peek_claim(&self.identity, ago(now, IN_FLIGHT_TTL), now) {
                Some(Claim::Running(scan_id)) => return self.join(scan_id),
                Some(Claim::Creating) => return Verdict::Send,
                Some(Claim::Mine) | None => {}
            }
        }
        match before_create(&self.store, &self.request, SystemTime::now()) {
            Before::Create => {
                self.claimed.store(true, Ordering::Relaxed);
                Verdict::Send
            }
            Before::Answered(scan) => Verdict::Answered(scan),
            Before::Join(scan_id) => self.join(scan_id),
            Before::Claimed => {
                // Another call holds the claim now (this call's lapsed and was taken over).
                self.claimed.store(false, Ordering::Relaxed);
                self.later()
            }
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
/// poll it themselves. `joined`: the call waited on another call's scan.
pub fn after(store: &Guarded, request: Option<&ScanRequest>, outcome: &Result<Scan, Error>, joined: bool) {
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
                    store.keep_ambiguous_claim(&id, SystemTime::now() + AMBIGUOUS_HOLD);
                } else {
                    // The create failed or was cancelled without a scan: hand over at once.
                    store.clear_in_flight(&id, "");
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
            store.clear_in_flight(id, scan.id());
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
        store.clear_in_flight(id, scan.id());
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
}

impl Sink for Remembering {
    fn progress(&self, event: Progress) {
        if let (Some(request), Some(id)) = (&self.request, &event.scan_id) {
            if !self.recorded.swap(true, Ordering::Relaxed) && !self.joined() {
                created(&self.store, request, id, SystemTime::now());
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
                        self.store.clear_in_flight(&identity, id);
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
                    created(&self.store, request, scan.id(), SystemTime::now());
                }
                create_only = true;
            }
            _ => after(&self.store, self.request.as_ref(), &outcome, self.joined()),
        }
        if create_only {
            // Its scan is in flight and nobody here polls it: those who join it poll it.
            after(&self.store, self.request.as_ref(), &outcome, false);
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
        let (mine, other) =
            (StoreGate::new(&store, &request).unwrap(), StoreGate::new(&store, &request).unwrap());
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
}

//! Progress callbacks: what a waiting call reports before each wait, on the waiting thread.

use std::ffi::{c_char, c_int, c_void, CString};

use super::scan_options::exona_poll_mode;
use crate::Mode;
use crate::Progress;
use crate::Reason;

/// Why a scan call waits before its next request.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum exona_wait_reason {
    /// About to create the scan.
    EXONA_WAIT_CREATE = 0,
    /// The scan cannot plausibly be done yet: the schedule learned from scan durations.
    EXONA_WAIT_SCHEDULE = 1,
    /// The server's Retry-After for a processing scan.
    EXONA_WAIT_RETRY_AFTER = 2,
    /// Backing off after a failed request (5xx or network error).
    EXONA_WAIT_BACKOFF = 3,
    /// The server answered 429: the whole API key is cooling down.
    EXONA_WAIT_RATE_LIMIT = 4,
    /// The key's request budget (shared by every client of the key in this process) holds
    /// the request back.
    EXONA_WAIT_BUDGET = 5,
    /// The last poll before the deadline.
    EXONA_WAIT_FINAL_POLL = 6,
    /// Another process of this host (sharing the state directory) is creating a scan of the
    /// same company: no twin is created, and this call joins that scan once its id is known.
    /// Bounded by the other process's lease (its claim lapses about 20 s after it stops).
    EXONA_WAIT_OTHER_CREATE = 7,
}

impl From<Reason> for exona_wait_reason {
    fn from(r: Reason) -> Self {
        use exona_wait_reason::*;
        match r {
            Reason::Create => EXONA_WAIT_CREATE,
            Reason::Schedule => EXONA_WAIT_SCHEDULE,
            Reason::RetryAfter => EXONA_WAIT_RETRY_AFTER,
            Reason::Backoff => EXONA_WAIT_BACKOFF,
            Reason::RateLimit => EXONA_WAIT_RATE_LIMIT,
            Reason::Budget => EXONA_WAIT_BUDGET,
            Reason::FinalPoll => EXONA_WAIT_FINAL_POLL,
            Reason::OtherCreate => EXONA_WAIT_OTHER_CREATE,
        }
    }
}

/// One progress event. Its strings are valid only during the callback: copy what you keep.
#[repr(C)]
pub struct exona_progress {
    /// The scan's id; NULL while the scan is not created yet.
    pub scan_id: *const c_char,
    /// The scan's last known status ("processing", ...); NULL before the first poll.
    pub status: *const c_char,
    /// Why the call waits.
    pub reason: exona_wait_reason,
    /// How long it waits before the next request, in milliseconds.
    pub wait_ms: u64,
    /// Requests this call has sent so far.
    pub requests_used: u32,
    /// Requests the API key's budget allows now (its rate-limit window, less requests in flight).
    pub budget_left: u32,
    /// The poll mode this wait was planned in. For an `EXONA_POLL_ADAPTIVE` scan, the regime
    /// the budget put it in: `EXONA_POLL_LATENCY` (the window has requests to spare),
    /// `EXONA_POLL_FRUGAL` (it has none beyond the scan's reservation) or `EXONA_POLL_ADAPTIVE`
    /// (in between; see `thrift_permille`). While the scan is being created, its call's mode.
    pub regime: exona_poll_mode,
    /// How thrifty the wait's plan is: 0 polls like latency mode, 1000 like frugal mode. An
    /// adaptive scan's place between them; the fixed modes report 0 (latency), 600 (balanced,
    /// whose plan is close to adaptive's at 600) and 1000 (frugal).
    pub thrift_permille: u32,
}

/// Called before every wait of a scan call, on the thread that called it, with `user_data`
/// as given. Return 0 to go on; any other value cancels the call (it then returns
/// `EXONA_ERR_CANCELLED` with the scan id). It must not call back into the same call.
pub type exona_progress_fn =
    Option<unsafe extern "C" fn(progress: *const exona_progress, user_data: *mut c_void) -> c_int>;

/// A callback and its user data, as set on scan options.
#[derive(Clone, Copy, Debug)]
pub struct ProgressCallback {
    pub f: unsafe extern "C" fn(*const exona_progress, *mut c_void) -> c_int,
    pub user_data: *mut c_void,
}

impl ProgressCallback {
    /// Calls the C function with this event; false when it asks to cancel.
    pub fn call(&self, event: &Progress) -> bool {
        let scan_id = event.scan_id.as_deref().and_then(|s| CString::new(s).ok());
        let status = event.status.as_deref().and_then(|s| CString::new(s).ok());
        let progress = exona_progress {
            scan_id: scan_id.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            status: status.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            reason: event.reason.into(),
            wait_ms: u64::try_from(event.wait.as_millis()).unwrap_or(u64::MAX),
            requests_used: event.requests,
            budget_left: event.budget_left,
            regime: regime(event.mode, event.thrift),
            thrift_permille: (thrift_of(event.mode, event.thrift) * 1000.0).round() as u32,
        };
        // SAFETY: the caller gave this function for this purpose; the event outlives the call.
        unsafe { (self.f)(&progress, self.user_data) == 0 }
    }
}

/// Where a wait of `mode` stands between latency (0) and frugal (1).
fn thrift_of(mode: Mode, thrift: Option<f64>) -> f64 {
    match mode {
        Mode::Latency => 0.0,
        Mode::Balanced => 0.6,
        Mode::Frugal => 1.0,
        Mode::Adaptive => thrift.unwrap_or(0.0).clamp(0.0, 1.0),
    }
}

/// The regime a wait of `mode` is in (see `exona_progress::regime`).
fn regime(mode: Mode, thrift: Option<f64>) -> exona_poll_mode {
    use exona_poll_mode::*;
    match (mode, thrift) {
        (Mode::Latency, _) => EXONA_POLL_LATENCY,
        (Mode::Balanced, _) => EXONA_POLL_BALANCED,
        (Mode::Frugal, _) => EXONA_POLL_FRUGAL,
        (Mode::Adaptive, Some(t)) if t <= 0.0 => EXONA_POLL_LATENCY,
        (Mode::Adaptive, Some(t)) if t >= 1.0 => EXONA_POLL_FRUGAL,
        (Mode::Adaptive, _) => EXONA_POLL_ADAPTIVE,
    }
}

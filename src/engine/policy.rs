//! The engine's tunables, with the defaults the API documents or implies.

use std::time::Duration;

use super::backoff;
use super::governor::Limits;
use super::schedule::Mode;

#[derive(Clone, Debug)]
pub struct Policy {
    /// Upper bound of one HTTP exchange (further clipped to the deadline).
    pub attempt_timeout: Duration,
    /// Poll gap when the server sends no `Retry-After` (the docs recommend 10 s).
    pub default_poll_interval: Duration,
    /// GET failures in a row (5xx, network, unreadable body) tolerated before giving up.
    pub max_consecutive_failures: u32,
    /// Attempts for a POST whose connection could not be opened (nothing was sent).
    pub max_create_attempts: u32,
    /// The longest 429 wait worth sleeping through; longer ones return `RateLimited` at once.
    pub max_rate_limit_wait: Duration,
    /// How long before the deadline the final poll starts, so it ends by the deadline.
    pub final_poll_allowance: Duration,
    /// Retry backoff: `base * 2^n`, capped, with equal jitter (2 s and 60 s by default).
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// How long scans usually take (the docs: 30–120 s): the prior of the duration model.
    pub expected_duration: (Duration, Duration),
    /// Default poll mode of the client's scans.
    pub mode: Mode,
    /// The key's budget, until the server's headers say otherwise.
    pub limits: Limits,
    /// HTTP worker threads of a threaded client.
    pub workers: usize,
}

/// How long scans take by the API's documentation: the prior when the user says nothing.
pub const DOCUMENTED_DURATION: (Duration, Duration) = (Duration::from_secs(30), Duration::from_secs(120));

impl Policy {
    /// Whether the duration prior is the documentation's guess rather than the user's word
    /// (`EXONA_SCAN_DURATION_MS`, the options): a guess is explored (see the core).
    pub fn duration_is_a_guess(&self) -> bool {
        self.expected_duration == DOCUMENTED_DURATION
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            attempt_timeout: Duration::from_secs(30),
            default_poll_interval: Duration::from_secs(10),
            max_consecutive_failures: 5,
            max_create_attempts: 3,
            max_rate_limit_wait: Duration::from_secs(15 * 60),
            final_poll_allowance: Duration::from_secs(2),
            backoff_base: backoff::BASE,
            backoff_cap: backoff::CAP,
            expected_duration: DOCUMENTED_DURATION,
            mode: Mode::Adaptive,
            limits: Limits::default(),
            workers: 4,
        }
    }
}

impl Policy {
    /// Polls reserved from the key's budget when a scan of this mode is admitted: enough for
    /// its plan to reach the longest plausible duration, so a scan under way rarely needs a
    /// poll the window has no room for (once a window's budget is spent, the next poll waits
    /// for the reset, often past the deadline). What a scan leaves unspent goes back to the
    /// window when it ends, and the creates held for budget ask again at once.
    pub fn polls_to_reserve(&self, mode: Mode) -> u32 {
        match mode {
            Mode::Latency => {
                // One poll per gap across the spread of durations, the first, and one spare.
                let (lo, hi) = self.expected_duration;
                let gap = self.default_poll_interval.max(Duration::from_millis(1));
                let across = (hi.saturating_sub(lo).as_secs_f64() / gap.as_secs_f64()).ceil() as u32;
                (across + 2).min(MAX_RESERVE)
            }
            Mode::Balanced => 4,
            Mode::Adaptive | Mode::Frugal => 3,
        }
    }

    /// The polls a scan planned at a fixed `thrift` reserves: latency's at 0, frugal's at 1,
    /// in between in proportion. A fixed thrift near 0 polls like latency mode whatever the
    /// window; with adaptive's reservation, its polls beyond it starved in a stream (7 of
    /// 1,000 scans at one in flight, 304 at ten, ended `RateLimited` at their deadline).
    pub fn polls_to_reserve_at(&self, thrift: f64) -> u32 {
        let (eager, thrifty) = (self.polls_to_reserve(Mode::Latency), self.polls_to_reserve(Mode::Frugal));
        let t = thrift.clamp(0.0, 1.0);
        (f64::from(eager) * (1.0 - t) + f64::from(thrifty) * t).round() as u32
    }
}

/// No scan reserves more than this: a tiny poll gap must not make one scan hold the window.
const MAX_RESERVE: u32 = 12;

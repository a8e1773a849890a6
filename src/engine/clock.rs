//! Time, behind a trait: the real clock sleeps, the virtual one jumps, so tests of waiting
//! logic run thousands of simulated minutes in milliseconds.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use super::cancel::CancelToken;

pub trait Clock: Send + Sync {
    /// Monotonic time since the clock's origin.
    fn now(&self) -> Duration;
    /// Wall-clock time, for HTTP dates and `X-RateLimit-Reset`.
    fn wall(&self) -> SystemTime;
    /// Sleeps until `until` (monotonic) unless cancelled first; returns false when cancelled.
    fn sleep_until(&self, until: Duration, cancel: &CancelToken) -> bool;
}

/// The real clock. Sleeps wake on cancellation at once.
///
/// Every `SystemClock` of the process counts from one origin: the governor of a key is shared
/// by every client on that key, and the times it keeps (a 429's cooldown, a window's end) must
/// mean the same to all of them.
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> SystemClock {
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        SystemClock { origin: *ORIGIN.get_or_init(Instant::now) }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn wall(&self) -> SystemTime {
        wall_now()
    }

    fn sleep_until(&self, until: Duration, cancel: &CancelToken) -> bool {
        loop {
            if cancel.is_cancelled() {
                return false;
            }
            let now = self.now();
            if now >= until {
                return true;
            }
            if cancel.wait_timeout(until - now) {
                return false;
            }
        }
    }
}

/// Virtual time for tests: sleeping advances the clock instantly.
pub struct VirtualClock {
    now: Mutex<Duration>,
    wall_origin: SystemTime,
}

impl VirtualClock {
    pub fn new() -> VirtualClock {
        VirtualClock {
            now: Mutex::new(Duration::ZERO),
            wall_origin: SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000),
        }
    }

    pub fn advance(&self, by: Duration) {
        *self.now.lock().unwrap() += by;
    }
}

impl Default for VirtualClock {
    fn default() -> Self {
        VirtualClock::new()
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Duration {
        *self.now.lock().unwrap()
    }

    fn wall(&self) -> SystemTime {
        self.wall_origin + self.now()
    }

    fn sleep_until(&self, until: Duration, cancel: &CancelToken) -> bool {
        if cancel.is_cancelled() {
            return false;
        }
        let mut now = self.now.lock().unwrap();
        if *now < until {
            *now = until;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clocks_of_one_process_share_their_origin() {
        // Clients made minutes apart share their key's governor: a cooldown one of them
        // recorded must end at the same moment for the other.
        let early = SystemClock::new();
        std::thread::sleep(Duration::from_millis(30));
        let late = SystemClock::new();
        let (a, b) = (early.now(), late.now());
        assert!(b >= a && b - a < Duration::from_millis(5), "{a:?} vs {b:?}");
    }
}

/// This host's wall clock, as every part of the library reads it: `SystemTime::now()`, moved by
/// `EXONA_TEST_CLOCK_SKEW_MS` (read once) when a test sets it, so that processes on one machine
/// can be hosts whose clocks disagree (the fleet tests) wherever the library reads the time:
/// the engine, the store, the window's reset read against the API's headers.
pub fn wall_now() -> SystemTime {
    static SKEW_MS: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let skew = *SKEW_MS.get_or_init(|| {
        std::env::var("EXONA_TEST_CLOCK_SKEW_MS").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    });
    let now = SystemTime::now();
    if skew >= 0 {
        now + std::time::Duration::from_millis(skew as u64)
    } else {
        now - std::time::Duration::from_millis(skew.unsigned_abs())
    }
}

//! A cancellation token: set from any thread, observed by a waiting call within milliseconds.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

#[derive(Clone, Debug, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    cancelled: Mutex<bool>,
    wake: Condvar,
}

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels every wait that uses this token, now and later. Idempotent.
    pub fn cancel(&self) {
        *lock(&self.inner.cancelled) = true;
        self.inner.wake.notify_all();
    }

    pub fn is_cancelled(&self) -> bool {
        *lock(&self.inner.cancelled)
    }

    /// Blocks for `timeout` or until cancelled; returns true when cancelled.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let guard = lock(&self.inner.cancelled);
        let (guard, _) = self
            .inner
            .wake
            .wait_timeout_while(guard, timeout, |cancelled| !*cancelled)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard
    }
}

/// A poisoned flag is still a valid bool: a panic elsewhere must not disable cancellation.
fn lock(m: &Mutex<bool>) -> std::sync::MutexGuard<'_, bool> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_wakes_a_waiter_from_another_thread() {
        let token = CancelToken::new();
        let other = token.clone();
        let t = std::thread::spawn(move || other.wait_timeout(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(20));
        token.cancel();
        assert!(t.join().unwrap());
        assert!(token.is_cancelled());
        assert!(token.wait_timeout(Duration::from_secs(30)), "a cancelled token never blocks");
    }

    #[test]
    fn uncancelled_wait_times_out() {
        assert!(!CancelToken::new().wait_timeout(Duration::from_millis(1)));
    }
}

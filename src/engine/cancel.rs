//! A cancellation token: set from any thread, observed by a waiting call within milliseconds.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

/// Something to wake when a token is cancelled (a blocked caller's mailbox).
pub trait Wake: Send + Sync {
    fn wake(&self);
}

#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken").field("cancelled", &self.is_cancelled()).finish()
    }
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    cancelled: bool,
    /// Why, when it was not the caller's own cancel (e.g. the client was freed).
    reason: Option<&'static str>,
    watchers: Vec<Weak<dyn Wake>>,
}

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels every wait that uses this token, now and later. Idempotent.
    pub fn cancel(&self) {
        self.cancel_because(None);
    }

    /// Cancels with a reason that the cancelled calls report instead of "cancelled".
    pub fn cancel_because(&self, reason: Option<&'static str>) {
        let watchers = {
            let mut st = self.lock();
            if !st.cancelled {
                st.reason = reason;
            }
            st.cancelled = true;
            std::mem::take(&mut st.watchers)
        };
        self.inner.wake.notify_all();
        // Woken outside the lock: a watcher may check this token while holding its own lock.
        for w in watchers.iter().filter_map(Weak::upgrade) {
            w.wake();
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.lock().cancelled
    }

    /// The reason given to [`CancelToken::cancel_because`], if any.
    pub fn reason(&self) -> Option<&'static str> {
        self.lock().reason
    }

    /// A token cancelled by itself or when any of `parents` is (with the parent's reason).
    /// The link holds while the returned [`Link`] lives.
    pub fn linked(parents: &[&CancelToken]) -> (CancelToken, Link) {
        let child = CancelToken::new();
        let mut forwards = Vec::new();
        for parent in parents {
            let forward = Arc::new(Forward { parent: (*parent).clone(), child: child.clone() });
            parent.subscribe(Arc::downgrade(&(forward.clone() as Arc<dyn Wake>)));
            forwards.push(forward);
        }
        (child, Link { _forwards: forwards })
    }

    /// Wakes `watcher` on cancel (at once if already cancelled). Dead watchers are dropped.
    pub fn subscribe(&self, watcher: Weak<dyn Wake>) {
        let mut st = self.lock();
        if st.cancelled {
            drop(st);
            if let Some(w) = watcher.upgrade() {
                w.wake();
            }
            return;
        }
        st.watchers.retain(|w| w.strong_count() > 0);
        st.watchers.push(watcher);
    }

    /// Blocks for `timeout` or until cancelled; returns true when cancelled.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let guard = self.lock();
        let (guard, _) = self
            .inner
            .wake
            .wait_timeout_while(guard, timeout, |st| !st.cancelled)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.cancelled
    }

    /// A poisoned lock still holds a valid flag: a panic elsewhere must not disable cancellation.
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Keeps the links of [`CancelToken::linked`] alive.
pub struct Link {
    _forwards: Vec<Arc<Forward>>,
}

/// Passes a parent's cancel on to a child token.
struct Forward {
    parent: CancelToken,
    child: CancelToken,
}

impl Wake for Forward {
    fn wake(&self) {
        self.child.cancel_because(self.parent.reason());
    }
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
    fn a_linked_token_follows_any_parent_with_its_reason() {
        let (a, b) = (CancelToken::new(), CancelToken::new());
        let (child, link) = CancelToken::linked(&[&a, &b]);
        assert!(!child.is_cancelled());
        b.cancel_because(Some("the client was freed"));
        assert!(child.is_cancelled());
        assert_eq!(child.reason(), Some("the client was freed"));
        let (child, _link) = CancelToken::linked(&[&a]);
        drop(link);
        assert!(!child.is_cancelled());
        a.cancel();
        assert!(child.is_cancelled() && child.reason().is_none());
        let (late, _l) = CancelToken::linked(&[&b]);
        assert!(late.is_cancelled(), "a parent cancelled before the link cancels at once");
    }

    #[test]
    fn uncancelled_wait_times_out() {
        assert!(!CancelToken::new().wait_timeout(Duration::from_millis(1)));
    }

    #[test]
    fn watchers_are_woken_once_and_late_ones_at_once() {
        struct Counter(std::sync::atomic::AtomicU32);
        impl Wake for Counter {
            fn wake(&self) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let token = CancelToken::new();
        let c = Arc::new(Counter(Default::default()));
        token.subscribe(Arc::downgrade(&(c.clone() as Arc<dyn Wake>)));
        token.cancel();
        token.cancel();
        assert_eq!(c.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        token.subscribe(Arc::downgrade(&(c.clone() as Arc<dyn Wake>)));
        assert_eq!(c.0.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}

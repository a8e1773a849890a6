//! Waiting with a bound that a paused process does not spend (DESIGN.md 9.1): the HTTP
//! transport's exchanges and the fleet database's statements.
//!
//! A process stopped with SIGSTOP (a suspended VM, a frozen container, a long GC) while its
//! request is on the wire finds, when it continues, that every timer it had set has run out,
//! though the answer may be sitting in its socket. reqwest checks its timers before it polls
//! the response (`PendingRequest::poll`), so with its timeout a create answered during the
//! pause was reported as timed out: ambiguous, although its answer was there to read. So the
//! attempt's bound is counted here instead, in short slices of wall time that the process was
//! awake for: a slice that took far longer than asked (the process did not run) counts as two
//! slices, which leaves the answer time to be read after a pause of any length.
//!
//! The database's bounds had the same fault: a process continued after a stop took its
//! database for gone ("did not answer within 2.0 s"), decided its budget alone and sent a
//! create blind (`exona-bench crash-pause-pg`).

use std::future::Future;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How often the waiter looks at the clock.
pub const SLICE: Duration = Duration::from_millis(100);

/// A bound on time awake, spent by the waits counted against it.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    limit: Duration,
    spent: Duration,
}

impl Budget {
    pub fn new(limit: Duration) -> Budget {
        Budget { limit, spent: Duration::ZERO }
    }

    /// What is left of the bound.
    pub fn left(&self) -> Duration {
        self.limit.saturating_sub(self.spent)
    }

    pub fn is_spent(&self) -> bool {
        self.left().is_zero()
    }

    /// Counts a wait that was asked to last `asked` and took `took` of wall time: one that
    /// took far longer than asked was a pause, and counts as twice what was asked.
    pub fn count(&mut self, asked: Duration, took: Duration) {
        self.spent += took.min(asked * 2);
    }

    /// Counts time already measured as awake (by [`within`]).
    pub fn spend(&mut self, awake: Duration) {
        self.spent += awake;
    }

    /// The next slice to wait for (then [`Budget::count`] it).
    pub fn slice(&self) -> Duration {
        SLICE.min(self.left()).max(Duration::from_millis(1))
    }
}

/// What a wait came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Waited<T> {
    Answer(T),
    /// `limit` of time awake passed with no answer.
    TimedOut,
    /// The sender is gone without an answer (its task ended or was aborted).
    Gone,
}

/// Waits on `rx` until an answer comes, or until `limit` of time spent awake has passed.
pub fn wait<T>(rx: &Receiver<T>, limit: Duration) -> Waited<T> {
    wait_with(rx, limit, Instant::now)
}

/// [`wait`] on any clock (tests move it across a pause).
pub fn wait_with<T>(rx: &Receiver<T>, limit: Duration, now: impl Fn() -> Instant) -> Waited<T> {
    let mut budget = Budget::new(limit);
    loop {
        let slice = budget.slice();
        let started = now();
        match rx.recv_timeout(slice) {
            Ok(answer) => return Waited::Answer(answer),
            Err(RecvTimeoutError::Disconnected) => return Waited::Gone,
            Err(RecvTimeoutError::Timeout) => {}
        }
        // A slice that lasted far longer than asked was a pause: it counts as two slices,
        // however long it was.
        budget.count(slice, now().saturating_duration_since(started));
        if budget.is_spent() {
            // A last look: an answer that arrived with the deadline is an answer.
            return match rx.try_recv() {
                Ok(answer) => Waited::Answer(answer),
                Err(_) => Waited::TimedOut,
            };
        }
    }
}

/// Awaits `work` (on a tokio runtime) until it ends or `limit` of time awake has passed:
/// `Some` of its output, or `None`, with the time awake the wait spent either way.
pub async fn within<F: Future>(limit: Duration, work: F) -> (Option<F::Output>, Duration) {
    within_with(limit, work, Instant::now).await
}

/// [`within`] on any clock (tests move it across a pause).
pub async fn within_with<F: Future>(
    limit: Duration,
    work: F,
    now: impl Fn() -> Instant,
) -> (Option<F::Output>, Duration) {
    let mut budget = Budget::new(limit);
    let mut work = std::pin::pin!(work);
    loop {
        let slice = budget.slice();
        let started = now();
        // `timeout` polls the work before its timer, so an answer that came during a pause
        // is read when the process runs again.
        let outcome = tokio::time::timeout(slice, work.as_mut()).await;
        budget.count(slice, now().saturating_duration_since(started));
        match outcome {
            Ok(out) => return (Some(out), budget.spent),
            Err(_) if budget.is_spent() => return (None, budget.spent),
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{mpsc, Arc};

    #[test]
    fn an_answer_that_came_during_a_pause_is_read() {
        // The process "sleeps" 40 s in the middle of a 1 s bound; the answer came meanwhile.
        let (tx, rx) = mpsc::channel();
        let base = Instant::now();
        let offset_ms = Arc::new(AtomicU64::new(0));
        let clock = {
            let offset_ms = offset_ms.clone();
            move || base + Duration::from_millis(offset_ms.load(Ordering::SeqCst))
        };
        let sender = std::thread::spawn({
            let offset_ms = offset_ms.clone();
            move || {
                std::thread::sleep(Duration::from_millis(250));
                offset_ms.fetch_add(40_000, Ordering::SeqCst); // the pause
                std::thread::sleep(Duration::from_millis(150));
                tx.send("answer").unwrap();
            }
        });
        assert_eq!(wait_with(&rx, Duration::from_secs(1), clock), Waited::Answer("answer"));
        sender.join().unwrap();
    }

    #[test]
    fn no_answer_times_out_after_the_limit_awake() {
        let (_tx, rx) = mpsc::channel::<()>();
        let started = Instant::now();
        assert_eq!(wait(&rx, Duration::from_millis(300)), Waited::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[test]
    fn a_sender_gone_without_an_answer_says_so() {
        let (tx, rx) = mpsc::channel::<()>();
        drop(tx);
        assert_eq!(wait(&rx, Duration::from_secs(5)), Waited::Gone);
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
    }

    #[test]
    fn work_done_during_a_pause_is_not_timed_out() {
        // 250 ms into a 1 s bound the process "sleeps" 40 s; the work ends 150 ms later.
        let base = Instant::now();
        let offset_ms = Arc::new(AtomicU64::new(0));
        let clock = {
            let offset_ms = offset_ms.clone();
            move || base + Duration::from_millis(offset_ms.load(Ordering::SeqCst))
        };
        let work = {
            let offset_ms = offset_ms.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(250)).await;
                offset_ms.fetch_add(40_000, Ordering::SeqCst); // the pause
                tokio::time::sleep(Duration::from_millis(150)).await;
                "answer"
            }
        };
        let (out, awake) = runtime().block_on(within_with(Duration::from_secs(1), work, clock));
        assert_eq!(out, Some("answer"));
        assert!(awake < Duration::from_secs(1), "{awake:?} counted awake");
    }

    #[test]
    fn work_that_does_not_end_times_out_after_the_limit_awake() {
        let started = Instant::now();
        let (out, awake) =
            runtime().block_on(within(Duration::from_millis(300), std::future::pending::<()>()));
        assert_eq!(out, None);
        assert!(awake >= Duration::from_millis(300) && started.elapsed() >= Duration::from_millis(300));
    }

    #[test]
    fn a_budget_counts_a_pause_as_twice_the_wait_asked() {
        let mut budget = Budget::new(Duration::from_secs(2));
        budget.count(Duration::from_millis(100), Duration::from_secs(40));
        assert_eq!(budget.left(), Duration::from_millis(1800));
        budget.spend(Duration::from_secs(5));
        assert!(budget.is_spent());
    }
}

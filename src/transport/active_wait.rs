//! Waiting for an answer with a bound that a paused process does not spend (DESIGN.md 9.1).
//!
//! A process stopped with SIGSTOP (a suspended VM, a frozen container, a long GC) while its
//! request is on the wire finds, when it continues, that every timer it had set has run out,
//! though the answer may be sitting in its socket. reqwest checks its timers before it polls
//! the response (`PendingRequest::poll`), so with its timeout a create answered during the
//! pause was reported as timed out: ambiguous, although its answer was there to read. So the
//! attempt's bound is counted here instead, in short slices of wall time that the process was
//! awake for: a slice that took far longer than asked (the process did not run) counts as two
//! slices, which leaves the answer time to be read after a pause of any length.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How often the waiter looks at the clock.
pub const SLICE: Duration = Duration::from_millis(100);

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
    let mut awake = Duration::ZERO;
    loop {
        let slice = SLICE.min(limit.saturating_sub(awake)).max(Duration::from_millis(1));
        let started = now();
        match rx.recv_timeout(slice) {
            Ok(answer) => return Waited::Answer(answer),
            Err(RecvTimeoutError::Disconnected) => return Waited::Gone,
            Err(RecvTimeoutError::Timeout) => {}
        }
        // A slice that lasted far longer than asked was a pause: it counts as two slices,
        // however long it was.
        awake += now().saturating_duration_since(started).min(slice * 2);
        if awake >= limit {
            // A last look: an answer that arrived with the deadline is an answer.
            return match rx.try_recv() {
                Ok(answer) => Waited::Answer(answer),
                Err(_) => Waited::TimedOut,
            };
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
}

//! Named crash points for the crash harness (DESIGN.md 8.3): with the test-only cargo feature
//! `crash-points`, `EXONA_CRASH_AT=NAME` (or `NAME:N`, the N-th time it is reached, 1 by
//! default) kills the process with SIGKILL at that point, as `kill -9` would: no destructor,
//! no flush, no rollback. Without the feature every point compiles to nothing.
//!
//! The points, in the order a create meets them:
//! - `claim_written`: the store holds this process's claim; no request sent yet.
//! - `create_sent`: the batch journal says "creating"; the POST is about to leave.
//! - `create_answered`: the server created the scan; nothing has recorded its id yet.
//! - `journal_written`: the batch journal holds the scan id ("created").
//! - `output_half_written`: the command wrote half of a row's line to its output.
//! - `store_mid_transaction`: inside a ledger transaction of the state store, its rows written,
//!   before its commit (the store must be whole for the next process).

/// The points of a create's path, for a harness that drives every one.
pub const POINTS: [&str; 5] =
    ["claim_written", "create_sent", "create_answered", "journal_written", "output_half_written"];

/// Dies here when `EXONA_CRASH_AT` names this point (feature `crash-points` only).
#[inline]
pub fn point(name: &'static str) {
    #[cfg(feature = "crash-points")]
    armed::reach(name);
    #[cfg(not(feature = "crash-points"))]
    let _ = name;
}

#[cfg(feature = "crash-points")]
mod armed {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    /// (the point's name, the hit that kills) from the environment, read once.
    fn target() -> Option<&'static (String, u64)> {
        static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
        TARGET
            .get_or_init(|| {
                let spec = std::env::var("EXONA_CRASH_AT").ok()?;
                let (name, nth) = match spec.split_once(':') {
                    Some((name, n)) => (name.to_owned(), n.parse().ok()?),
                    None => (spec, 1),
                };
                Some((name, nth))
            })
            .as_ref()
    }

    pub fn reach(name: &'static str) {
        static HITS: AtomicU64 = AtomicU64::new(0);
        let Some((wanted, nth)) = target() else { return };
        if wanted != name {
            return;
        }
        if HITS.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
            eprintln!("exona: crash point {name} reached: SIGKILL");
            // SAFETY: kill(2) on this process; SIGKILL cannot be caught, as kill -9.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
    }
}

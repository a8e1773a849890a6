//! A create's gate: what another party (the state store, shared by the host's processes)
//! says about a create just before it is sent (DESIGN.md 8.1).
//!
//! Two questions, at two moments. When a create's timer fires, before the governor is asked,
//! [`CreateGate::peek`] reads (no write, no lock but the engine's): a stored answer, a scan to
//! join, another process creating it, or nothing. Only when the governor has granted the
//! request does [`CreateGate::claim`] take the claim, off the engine's lock, right before the
//! POST. So a row waiting for budget holds no claim that another process would wait on, and
//! a row waiting on another process's create is a timer in the engine's heap, not a thread.
//!
//! A call the gate joined to another call's scan asks [`CreateGate::peek_joined`] when a poll
//! is due: while that call polls the scan (its lease holds), this one reads the store for the
//! result every second instead of asking the API.

use std::sync::Arc;
use std::time::Duration;

use crate::scan::Scan;

/// What to do with a create.
#[derive(Debug)]
pub enum Verdict {
    /// Send it (after `claim`: the claim is this call's now).
    Send,
    /// A stored result answers it: no request at all.
    Answered(Scan),
    /// Another process runs a scan of the same identity: wait on that scan instead.
    Join(String),
    /// Another process is creating it: ask again after this long (no request meanwhile).
    Later(Duration),
}

/// See the module's documentation. Both calls must be cheap and must never block for long:
/// `peek` runs under the engine's lock.
pub trait CreateGate: Send + Sync {
    /// A read: what the store says now. `Send` when nothing stands in the way.
    fn peek(&self) -> Verdict;
    /// Takes the claim for the create about to be sent; another verdict when the store's
    /// answer changed since `peek` (the grant is then given back).
    fn claim(&self) -> Verdict;
    /// A read, for a call that joined a scan another call polls, before each of its polls:
    /// the scan's result (`Answered`), `Later` while that call still polls it, else `Send`
    /// (the call polls the API itself).
    fn peek_joined(&self) -> Verdict {
        Verdict::Send
    }
}

/// A task's gate (a shared handle, so tasks stay `Clone` and `Debug`).
#[derive(Clone)]
pub struct GateRef(pub Arc<dyn CreateGate>);

impl std::fmt::Debug for GateRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GateRef")
    }
}

//! The waiting engine: how requests are budgeted, scheduled, retried and bounded in time.
//!
//! - [`governor`]: one budget per API key in the process; grants every request.
//! - [`ledger`]: what the governor needs to share a key's window with other processes.
//! - [`schedule`]: when a scan is worth polling (duration quantiles, poll modes).
//! - [`task`]: one scan call (create, then wait) as a state machine.
//! - [`gate`]: what the state store says just before a create is sent.
//! - [`core`]: all tasks of a client, a timer heap, and the rules for sending.
//! - [`driver`]: the scheduler thread and HTTP workers, or inline driving for tests.
//!
//! Everything reads time through [`clock::Clock`], so tests drive it on virtual time.

pub mod adaptive;
pub mod backoff;
#[cfg(test)]
pub mod blocking;
pub mod cancel;
pub mod clock;
pub mod core;
pub mod decode;
pub mod driver;
pub mod forecast;
pub mod gate;
pub mod governor;
pub mod learning;
pub mod ledger;
pub mod policy;
pub mod retry_after;
pub mod schedule;
pub mod task;

//! The waiting engine: how requests are paced, retried and bounded in time.
//!
//! Everything here reads time through [`clock::Clock`], so tests drive it on virtual time.

pub mod backoff;
pub mod cancel;
pub mod clock;
pub mod decode;
pub mod flow;
pub mod retry_after;

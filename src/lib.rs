//! libexona: a client for the Exona AI-risk scanning API, with a C ABI.
//!
//! Layers, top to bottom (see docs/architecture in the README):
//! - [`ffi`]: the C surface (`include/exona.h` is generated from it);
//! - [`client`]: the Rust API (`Client::create_scan`, `get_scan`, `wait`, `scan_and_wait`);
//! - [`engine`]: waiting logic on an injectable clock (retry-after parsing, backoff, cancel);
//! - [`transport`]: one HTTP exchange, with the headers the engine needs already picked out.

// `Error` carries everything support needs (the scan object included); it is built once per
// failed call, so its size is no concern next to an HTTP round trip.
#![allow(clippy::result_large_err)]

mod awake;
pub mod batch;
pub mod client;
pub mod config;
pub mod crash;
// The engine is an implementation detail: its few value types are re-exported below.
mod engine;
pub mod error;
pub mod log;
pub mod model;
mod private_files;
pub(crate) mod process;
pub mod redact;
pub mod scan;
pub mod store;
pub mod transport;

pub mod ffi;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

/// This library's version and the commit it was built from ("0.1.0+4f2a9c1b7d3e"; the
/// version alone when the build knew no commit), as `exona_version()` gives it.
pub const BUILD_VERSION: &str = env!("EXONA_VERSION_FULL");

pub use batch::{Batch, Counts, Next, Status};
pub use client::{Client, ConnectOptions, WaitOptions, DEFAULT_BASE_URL, DEFAULT_DEADLINE};
pub use config::ClientConfig;
pub use engine::cancel::CancelToken;
pub use engine::clock::{Clock, SystemClock, VirtualClock};
pub use engine::core::{Progress, Sink};
pub use engine::governor::Limits;
pub use engine::policy::Policy;
pub use engine::schedule::Mode;
pub use engine::task::{Goal, Outcome, Reason};

/// What a server says about when to come back: `Retry-After` (seconds or an HTTP date, read
/// against the response's `Date`) and `X-RateLimit-Reset`.
/// What tests of several processes on one key use (not a stable interface).
#[doc(hidden)]
pub mod testing {
    pub use crate::engine::ledger::{Holds, Ledger, MemoryLedger};
}

pub mod retry_after {
    pub use crate::engine::retry_after::{parse_reset, parse_retry_after, LONGEST};
}
pub use error::{Code, Error};
pub use model::{Question, ScanRequest};
pub use scan::{Scan, ScanStatus};

/// The library's version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

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

pub mod batch;
pub mod client;
pub mod engine;
pub mod error;
pub mod log;
pub mod model;
pub mod redact;
pub mod transport;

pub mod ffi;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use batch::{Batch, Counts, Next};
pub use client::{Client, ConnectOptions, WaitOptions, DEFAULT_BASE_URL, DEFAULT_TIMEOUT};
pub use engine::cancel::CancelToken;
pub use engine::core::{Progress, Sink};
pub use engine::policy::Policy;
pub use engine::schedule::Mode;
pub use engine::task::Goal;
pub use error::{Code, Error};
pub use model::{Question, Scan, ScanRequest, ScanStatus};

/// The library's version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

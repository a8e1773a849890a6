//! The C surface, one file per concept. `include/exona.h` is generated from these files.
//!
//! Rules every export follows (a test checks the first one mechanically):
//! - its whole body runs inside [`boundary::boundary`], so a panic becomes
//!   `EXONA_ERR_INTERNAL` (or NULL) instead of unwinding into C;
//! - every pointer argument goes through [`args`], which names the argument when it is NULL
//!   or not UTF-8;
//! - nothing it returns needs `free()`: handles have their own `*_free`, strings live as long
//!   as the handle that returned them.

#![allow(non_camel_case_types)]
// The exports take raw pointers from C by design (as rustls-ffi's do): each one is checked
// for NULL through `args`, and what cannot be checked (a dangling pointer) is the documented
// contract of the C caller.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod args;
pub mod batch;
pub mod boundary;
pub mod cancel;
pub mod client;
pub mod client_options;
pub mod codes;
pub mod log;
pub mod progress;
pub mod result;
pub mod scan;
pub mod scan_options;
pub mod store;

#[cfg(test)]
mod header_tests {
    /// The committed header must be what cbindgen makes of the current source.
    #[test]
    fn committed_header_is_fresh() {
        let fresh = include_str!(concat!(env!("OUT_DIR"), "/exona.h"));
        let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/exona.h"))
            .expect("include/exona.h exists");
        assert!(committed == fresh, "include/exona.h is stale: run `make header` and commit the result");
    }
}

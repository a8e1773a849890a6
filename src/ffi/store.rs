//! The fleet store's schema from C: created apart from its use (DESIGN.md 9.3).

use std::ffi::c_char;

use super::args::required_str;
use super::boundary::boundary;
use super::codes::exona_code;
use super::result::{deliver, exona_result};
use crate::error::{Code, Error};

/// Creates the fleet store's schema in the PostgreSQL database `state_url` names (the URL
/// `exona_client_options_set_state_url` takes, `schema=NAME` included), or migrates an older
/// one; safe to call again and from several hosts at once. Run it once, as a role that may
/// create the schema (or own it, to migrate): clients then need only USAGE on the schema and
/// SELECT, INSERT, UPDATE, DELETE on its tables, and a client whose schema is missing or older
/// says so with the command that fixes it. The same as `exona store init --state-url URL`.
///
/// `state_url` is required (NULL is `EXONA_ERR_INVALID_ARGUMENT`); it is only read. `*out`,
/// when `out` is not NULL, receives a result to free with `exona_result_free`: its
/// `exona_result_message` says what was done ("created ...", "migrated ... from version 3",
/// "... is up to date") or what failed, never with the password. Blocks for as long as the
/// database takes (at most a minute). Thread-safe.
///
/// Returns `EXONA_OK`; `EXONA_ERR_INVALID_ARGUMENT` for a URL that is not a `postgresql://`
/// URL or names an unknown parameter, or a library built without the `fleet` feature;
/// `EXONA_ERR_PERMISSION` when the role may not create or alter the schema;
/// `EXONA_ERR_NETWORK` when the database cannot be reached or refused the connection (TLS,
/// authentication) or the statement.
#[no_mangle]
pub extern "C" fn exona_store_init(state_url: *const c_char, out: *mut *mut exona_result) -> exona_code {
    boundary(|| {
        let outcome = (|| {
            let url = unsafe { required_str(state_url, "state_url") }?;
            crate::store::check_url(url).map_err(Error::invalid_argument)?;
            crate::store::init_url(url).map_err(|e| {
                let code =
                    if e.contains("may not create or alter") { Code::Permission } else { Code::Network };
                Error::new(code, e)
            })
        })();
        let result = match outcome {
            Ok(done) => exona_result::from_message(Code::Ok, &done),
            Err(e) => exona_result::from_error(&e),
        };
        unsafe { deliver(out, result) }
    })
}

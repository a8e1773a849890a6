//! `exona_client`: one API key and base URL, shared by every thread of the program.

use std::ffi::c_char;
use std::time::Duration;

use super::args::{free, into_raw, optional_str};
use super::boundary::boundary;
use super::client_options::exona_client_options;
use super::codes::exona_code;
use super::result::{deliver, exona_result};
use crate::client::{Client, ConnectOptions, DEFAULT_BASE_URL};
use crate::engine::cancel::CancelToken;
use crate::engine::policy::Policy;
use crate::error::Error;

/// A client of the Exona API (an opaque handle). Thread-safe: one client may be used by any
/// number of threads at once. Freeing it ends the calls still waiting on it.
pub struct exona_client {
    pub(crate) client: Client,
    /// Cancelled by `exona_client_free`: every call made through this handle links to it.
    pub(crate) closing: CancelToken,
}

impl exona_client {
    fn new(client: Client) -> exona_client {
        exona_client { client, closing: CancelToken::new() }
    }
}

/// What calls that were still waiting report when their client is freed.
pub(crate) const FREED: &str = "the client was freed while this call was waiting; the scan (if one \
     was created) goes on, resume it by id with a new client";

fn env_var(name: &str) -> Result<Option<String>, Error> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(Error::invalid_argument(format!("{name} is not valid UTF-8")))
        }
    }
}

fn build(
    api_key: *const c_char,
    base_url: *const c_char,
    options: Option<&exona_client_options>,
) -> Result<Client, Error> {
    let api_key = match unsafe { optional_str(api_key, "api_key") }? {
        Some(k) => k.to_owned(),
        None => env_var("EXONA_API_KEY")?
            .ok_or_else(|| Error::invalid_argument("api_key is NULL and EXONA_API_KEY is not set"))?,
    };
    let api_key = zeroize::Zeroizing::new(api_key);
    let base_url = match unsafe { optional_str(base_url, "base_url") }? {
        Some(u) => u.to_owned(),
        None => env_var("EXONA_BASE_URL")?.unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()),
    };
    let mut policy = Policy::default();
    if let Some(text) = env_var("EXONA_SCAN_DURATION_MS")? {
        policy.expected_duration = parse_duration_range(&text).ok_or_else(|| {
            Error::invalid_argument(format!(
                "EXONA_SCAN_DURATION_MS is {text:?}: use MIN-MAX in milliseconds, e.g. 30000-120000"
            ))
        })?;
    }
    let mut connect = ConnectOptions::default();
    if let Some(path) = env_var("EXONA_CA_BUNDLE")? {
        connect.extra_ca_pem = Some(std::fs::read(&path).map_err(|e| {
            Error::invalid_argument(format!("EXONA_CA_BUNDLE names {path:?}, which cannot be read ({e})"))
        })?);
    }
    if let Some(o) = options {
        o.apply(&mut policy, &mut connect);
    }
    Client::with_options(&api_key, Some(&base_url), policy, connect)
}

/// Builds a client into `*client_out`, or a result saying why into `*error_out`.
pub(crate) fn build_with(
    api_key: *const c_char,
    base_url: *const c_char,
    options: Option<&exona_client_options>,
    client_out: *mut *mut exona_client,
    error_out: *mut *mut exona_result,
) -> exona_code {
    if !error_out.is_null() {
        unsafe { *error_out = std::ptr::null_mut() };
    }
    let outcome = if client_out.is_null() {
        Err(Error::invalid_argument("client_out is NULL"))
    } else {
        build(api_key, base_url, options)
    };
    match outcome {
        Ok(client) => {
            unsafe { *client_out = into_raw(exona_client::new(client)) };
            exona_code::EXONA_OK
        }
        Err(e) => {
            if !client_out.is_null() {
                unsafe { *client_out = std::ptr::null_mut() };
            }
            unsafe { deliver(error_out, exona_result::from_error(&e)) }
        }
    }
}

/// "MIN-MAX" (or one number for both), in milliseconds, MIN <= MAX.
pub fn parse_duration_range(text: &str) -> Option<(Duration, Duration)> {
    let (lo, hi) = text.split_once('-').unwrap_or((text, text));
    let (lo, hi): (u64, u64) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
    (lo <= hi).then(|| (Duration::from_millis(lo), Duration::from_millis(hi)))
}

/// A new client, or NULL when it cannot be made: the key is missing (NULL and no
/// `EXONA_API_KEY`), empty, or holds characters that cannot go in a header; or the base URL
/// is not a URL, or is plain http:// to a host other than loopback.
/// `api_key` NULL: read `EXONA_API_KEY`. `base_url` NULL: `EXONA_BASE_URL`, else the
/// production URL. Both strings are copied. `EXONA_SCAN_DURATION_MS` ("MIN-MAX", for
/// simulators and tests) replaces the expected scan duration of 30000-120000: no poll is sent
/// before MIN. `EXONA_CA_BUNDLE` names a PEM file of certificates to trust besides the
/// system's (TLS verification is always on). Use `exona_client_create` to learn why it failed.
#[no_mangle]
pub extern "C" fn exona_client_new(api_key: *const c_char, base_url: *const c_char) -> *mut exona_client {
    boundary(|| match build(api_key, base_url, None) {
        Ok(client) => into_raw(exona_client::new(client)),
        Err(_) => std::ptr::null_mut(),
    })
}

/// Like `exona_client_new`, but says why it failed. On success `*client_out` receives the
/// client and `*error_out` (when not NULL) is set to NULL. On failure `*client_out` is set to
/// NULL and `*error_out` (when not NULL) receives a result whose message names the problem;
/// free it with `exona_result_free`. Returns `EXONA_OK`, or `EXONA_ERR_INVALID_ARGUMENT`
/// (also when `client_out` is NULL). Thread-safe.
#[no_mangle]
pub extern "C" fn exona_client_create(
    api_key: *const c_char,
    base_url: *const c_char,
    client_out: *mut *mut exona_client,
    error_out: *mut *mut exona_result,
) -> exona_code {
    boundary(|| build_with(api_key, base_url, None, client_out, error_out))
}

/// Frees the client. NULL is a no-op. Results obtained from it stay valid.
///
/// Calls that other threads are still making on this client end promptly with
/// `EXONA_ERR_CANCELLED`; their results keep the scan id (a call whose create request is in
/// flight first awaits its answer, so the id is not lost). The client's connections close,
/// its threads are joined and the API key is wiped when the last of those calls has returned
/// (at once when none is running). Batches made from the client hold their own reference and
/// keep working until freed. Entering a new call with a freed client is a caller bug.
#[no_mangle]
pub extern "C" fn exona_client_free(client: *mut exona_client) {
    boundary(|| {
        if let Ok(c) = unsafe { super::args::handle(client, "client") } {
            c.closing.cancel_because(Some(FREED));
        }
        unsafe { free(client) }
    })
}

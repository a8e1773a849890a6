//! `exona_client`: one API key and base URL, shared by every thread of the program.

use std::ffi::c_char;

use super::args::{free, into_raw, optional_handle, optional_str, required_out};
use super::boundary::boundary;
use super::client_options::exona_client_options;
use super::codes::exona_code;
use super::result::{deliver, exona_result};
use crate::error::Error;
use crate::process::PerProcess;
use crate::CancelToken;
use crate::{Client, ClientConfig};

/// A client of the Exona API (an opaque handle). Thread-safe: one client may be used by any
/// number of threads at once. Freeing it ends the calls still waiting on it.
///
/// Fork-safe: a client made before `fork()` works in the child (preforking servers make it at
/// boot). On the child's first call the library gives the child an engine, connections and a
/// state-store connection of its own, made with the client's settings; the parent's calls in
/// flight are not the child's, and the parent is unaffected. Freeing the inherited client in
/// the child frees the child's part and leaves the parent's untouched (its threads do not
/// exist in the child). A batch belongs to the process that made it: make a new one in the child.
pub struct exona_client {
    pub(crate) client: Client,
    /// Cancelled by `exona_client_free`: every call made through this handle links to it.
    /// One per process: a forked child's calls never link to (or wake) the parent's calls.
    closing: PerProcess<CancelToken>,
}

impl exona_client {
    fn new(client: Client) -> exona_client {
        exona_client { client, closing: PerProcess::new() }
    }

    /// The token that `exona_client_free` cancels, in this process.
    pub(crate) fn closing(&self) -> &CancelToken {
        self.closing.get_or_init(CancelToken::new)
    }
}

/// What calls that were still waiting report when their client is freed.
pub(crate) const FREED: &str = "the client was freed while this call was waiting; the scan (if one \
     was created) goes on, resume it by id with a new client";

/// The one path from C arguments to a client: defaults, the environment
/// ([`ClientConfig::from_env`]), then the arguments and options given.
fn build(
    api_key: *const c_char,
    base_url: *const c_char,
    options: Option<&exona_client_options>,
) -> Result<Client, Error> {
    let api_key = unsafe { optional_str(api_key, "api_key") }?;
    let base_url = unsafe { optional_str(base_url, "base_url") }?;
    let mut config = ClientConfig::from_env()?;
    if let Some(k) = api_key {
        config.api_key = Some(zeroize::Zeroizing::new(k.to_owned()));
    }
    if let Some(u) = base_url {
        config.base_url = Some(u.to_owned());
    }
    if let Some(o) = options {
        o.apply(&mut config);
    }
    config.build()
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
    let outcome =
        unsafe { required_out(client_out, "client_out") }.and_then(|()| build(api_key, base_url, options));
    match outcome {
        Ok(client) => {
            unsafe { *client_out = into_raw(exona_client::new(client)) };
            exona_code::EXONA_OK
        }
        Err(e) => unsafe { deliver(error_out, exona_result::from_error(&e)) },
    }
}

/// A new client, or NULL when it cannot be made: the key is missing (NULL and no
/// `EXONA_API_KEY`), empty, or not of the documented shape (`exo_live_` or `exo_test_` and 36
/// letters and digits: a mistyped key is refused before it costs a request); or the base URL
/// is not a URL, or is plain http:// to a host other than loopback.
/// `api_key` NULL: read `EXONA_API_KEY`. `base_url` NULL: `EXONA_BASE_URL`, else the
/// production URL. Both strings are copied. `EXONA_SCAN_DURATION_MS` ("MIN-MAX", for
/// simulators and tests) replaces the expected scan duration of 30000-120000: no poll is sent
/// before MIN. `EXONA_CA_BUNDLE` names a PEM file of certificates to trust besides the
/// system's (TLS verification is always on). `EXONA_POLL_MODE` (`adaptive`, `latency`,
/// `balanced` or `frugal`) sets the client's default poll mode; a value it does not know
/// fails the constructor. Use `exona_client_create` to learn why it failed.
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
/// keep working until freed. Entering a new call with a freed client is a caller bug. In a
/// child forked after the client was made, only the child's own part is freed (see
/// `exona_client`); this neither blocks nor fails.
#[no_mangle]
pub extern "C" fn exona_client_free(client: *mut exona_client) {
    boundary(|| {
        if let Some(c) = unsafe { optional_handle(client) } {
            // Only this process's calls: a token the child never used needs no cancel.
            if let Some(closing) = c.closing.get() {
                closing.cancel_because(Some(FREED));
            }
        }
        unsafe { free(client) }
    })
}

/// `exona_client_create` with settings: `options` may be NULL (the defaults). Ownership,
/// out parameters and codes as for `exona_client_create`; also `EXONA_ERR_INVALID_ARGUMENT`
/// when the CA bundle holds no PEM certificate or the proxy cannot be used.
#[no_mangle]
pub extern "C" fn exona_client_create_with_options(
    api_key: *const c_char,
    base_url: *const c_char,
    options: *const exona_client_options,
    client_out: *mut *mut exona_client,
    error_out: *mut *mut exona_result,
) -> exona_code {
    boundary(|| build_with(api_key, base_url, unsafe { optional_handle(options) }, client_out, error_out))
}

//! The scan calls: create and wait, create only, get once, wait for an existing scan.
//!
//! Every call hands its outcome to `*out` (when `out` is not NULL) as an `exona_result`,
//! on success and on failure alike, and returns the same code the result holds.

use std::ffi::c_char;

use super::args::{handle, optional_handle, required_str};
use super::boundary::boundary;
use super::client::exona_client;
use super::codes::exona_code;
use super::result::{deliver, exona_result};
use super::scan_options::exona_scan_options;
use crate::client::Client;
use crate::error::Error;
use crate::CancelToken;
use crate::Progress;
use crate::Scan;

/// Passes a progress event to the options' callback, if any; false cancels.
fn report(options: &exona_scan_options, event: &Progress) -> bool {
    options.progress.is_none_or(|cb| cb.call(event))
}

/// Checks the client and options arguments, runs `call`, and delivers its outcome.
///
/// The call works on its own reference to the client and on a cancel token linked to the
/// handle's, so `exona_client_free` from another thread ends it (CANCELLED, scan id kept)
/// instead of pulling the client from under it; the last reference joins the engine.
fn run(
    client: *const exona_client,
    options: *const exona_scan_options,
    out: *mut *mut exona_result,
    call: impl FnOnce(&Client, &exona_scan_options) -> Result<Scan, Error>,
) -> exona_code {
    if !out.is_null() {
        unsafe { *out = std::ptr::null_mut() };
    }
    let outcome = unsafe { handle(client, "client") }.and_then(|c| {
        let client = c.client.clone();
        let defaults = exona_scan_options::default();
        let given = unsafe { optional_handle(options) }.unwrap_or(&defaults);
        let own = given.wait.cancel.clone().unwrap_or_default();
        let (cancel, _link) = CancelToken::linked(&[&own, c.closing()]);
        let mut options = given.clone();
        options.wait.cancel = Some(cancel);
        call(&client, &options)
    });
    unsafe { deliver(out, exona_result::from_outcome(&outcome)) }
}

/// What a create call does once the scan exists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Then {
    Wait,
    Return,
}

/// The body of `exona_scan_and_wait` and `exona_scan_create`.
fn create(
    client: *const exona_client,
    company_name: *const c_char,
    company_website: *const c_char,
    options: *const exona_scan_options,
    out: *mut *mut exona_result,
    then: Then,
) -> exona_code {
    run(client, options, out, |c, o| {
        let name = unsafe { required_str(company_name, "company_name") }?;
        let website = unsafe { required_str(company_website, "company_website") }?;
        let request = o.request_for(name, website);
        match then {
            Then::Wait => c.scan_and_wait_with_progress(&request, &o.wait, &mut |p| report(o, p)),
            Then::Return => c.create_scan_with(&request, &o.wait),
        }
    })
}

/// Creates a scan of a company and blocks until it completes or fails, the deadline passes
/// (default 300 s, see `exona_scan_options_set_timeout_ms`), or it is cancelled.
///
/// `company_website` must be an https:// URL with a host that is a domain with a dot (or an IP
/// literal), at most 2,048 characters, with no spaces or control characters anywhere (nothing
/// is trimmed); its scheme and host are sent lower-cased. `company_name` must not be blank and
/// holds at most 500 characters. (The API documents no length limits; these are the library's,
/// far above real names and sites.) `options` may be NULL (defaults). Whenever
/// `out` is non-NULL, `*out` receives a result to free with `exona_result_free`, on success and
/// on failure alike. A cache hit returns after one request.
///
/// Returns `EXONA_OK` (scan completed); `EXONA_ERR_INVALID_ARGUMENT` (NULL or non-UTF-8
/// argument, invalid website, questionnaire over its limits: nothing was sent);
/// `EXONA_ERR_AUTHENTICATION`, `_PERMISSION`, `_BAD_REQUEST` (the API refused the request);
/// `EXONA_ERR_SCAN_FAILED` (the scan ended failed); `EXONA_ERR_TIMEOUT`, `_CANCELLED` (the
/// scan still runs: its id is in the result, resume with `exona_scan_wait`);
/// `EXONA_ERR_AMBIGUOUS_CREATE`; `EXONA_ERR_RATE_LIMITED`; `EXONA_ERR_SERVER`, `_NETWORK`,
/// `_PROTOCOL`, `_NOT_FOUND`; `EXONA_ERR_INTERNAL`.
///
/// Waiting costs few requests: no poll before the scan can plausibly be done, then polls at
/// the quantiles of observed scan durations (see `exona_scan_options_set_poll_mode`), never
/// sooner than the server's Retry-After, within the key's budget (shared by every client of
/// the key in the process). Cancel from another thread with `exona_cancel` on a token set by
/// `exona_scan_options_set_cancel`: the call returns within milliseconds, except while the
/// create request is in flight, whose answer it awaits so the scan id is not lost.
///
/// Thread-safe: any number of threads may call it on one client. It blocks the calling thread;
/// the progress callback, if set, runs on it.
#[no_mangle]
pub extern "C" fn exona_scan_and_wait(
    client: *mut exona_client,
    company_name: *const c_char,
    company_website: *const c_char,
    options: *const exona_scan_options,
    out: *mut *mut exona_result,
) -> exona_code {
    boundary(|| create(client, company_name, company_website, options, out, Then::Wait))
}

/// Creates a scan and returns at once, without waiting: `*out` holds the new scan (status
/// "processing", HTTP 201) or a cached one (status "completed", `exona_result_cached` true).
/// Keep `exona_result_scan_id` to wait later with `exona_scan_wait`. A create that may have
/// reached the server is never repeated (`EXONA_ERR_AMBIGUOUS_CREATE`). The options' timeout
/// bounds retries of a rate-limited or unconnectable create. Codes and threading as for
/// `exona_scan_and_wait`.
#[no_mangle]
pub extern "C" fn exona_scan_create(
    client: *mut exona_client,
    company_name: *const c_char,
    company_website: *const c_char,
    options: *const exona_scan_options,
    out: *mut *mut exona_result,
) -> exona_code {
    boundary(|| create(client, company_name, company_website, options, out, Then::Return))
}

/// One GET of a scan, whatever its status: `EXONA_OK` with the scan in `*out` (check its
/// "/status"), or the error (`EXONA_ERR_NOT_FOUND` for an unknown id). No retry, no waiting.
/// `*out` as for `exona_scan_and_wait`. Thread-safe.
#[no_mangle]
pub extern "C" fn exona_scan_get(
    client: *mut exona_client,
    scan_id: *const c_char,
    out: *mut *mut exona_result,
) -> exona_code {
    boundary(|| {
        run(client, std::ptr::null(), out, |c, _| {
            let id = unsafe { required_str(scan_id, "scan_id") }?;
            c.get_scan(id)
        })
    })
}

/// Waits for an existing scan by id, sending no POST: how a program resumes a scan after a
/// timeout, a cancel or a crash. Polls at once, then as the server allows. `options` may be
/// NULL; what concerns the wait applies (timeout, cancel token, progress callback, poll mode,
/// expected duration, longest rate-limit wait), what concerns a new scan does not
/// (max_age_days, force_refresh, citations, questionnaire). Codes, `*out` and threading as for
/// `exona_scan_and_wait`.
#[no_mangle]
pub extern "C" fn exona_scan_wait(
    client: *mut exona_client,
    scan_id: *const c_char,
    options: *const exona_scan_options,
    out: *mut *mut exona_result,
) -> exona_code {
    boundary(|| {
        run(client, options, out, |c, o| {
            let id = unsafe { required_str(scan_id, "scan_id") }?;
            c.wait_with_progress(id, &o.wait, &mut |p| report(o, p))
        })
    })
}

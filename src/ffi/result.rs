//! `exona_result`: the outcome of a scan call, success or failure, with everything it carried.
//!
//! Results are immutable after creation, so every accessor may be called from several
//! threads at once. Strings are built once and live until `exona_result_free`.

use std::collections::HashMap;
use std::ffi::{c_char, CString};
use std::sync::Mutex;

use serde_json::Value;

use super::args::{free, handle, into_raw, required_str};
use super::boundary::boundary;
use super::codes::exona_code;
use crate::error::{Code, Error};
use crate::Scan;

/// The outcome of a scan call (an opaque handle). Free it with `exona_result_free`.
///
/// No string a result hands out contains the API key: whatever came from the network (the
/// message, hint, param, error code, request id and the scan JSON) is scrubbed of the key,
/// of any 12 or more of its characters in a row, and of the token after `Bearer `, each
/// replaced by `[redacted]`, before it reaches a result or a log line, even when a server
/// echoes the key back.
pub struct exona_result {
    code: Code,
    message: Option<CString>,
    scan_id: Option<CString>,
    json_text: Option<CString>,
    json: Option<Value>,
    http_status: u16,
    api_code: Option<CString>,
    hint: Option<CString>,
    param: Option<CString>,
    request_id: Option<CString>,
    cached: bool,
    from_store: bool,
    retry_after_ms: u64,
    /// The request's index in its batch, if it came from one.
    index: Option<usize>,
    /// Strings handed out by `exona_result_get_string`, keyed by pointer: each is built once and
    /// stays valid until the result is freed, however often it is asked for.
    lookups: Mutex<HashMap<String, Option<CString>>>,
}

/// Text for C: interior NUL bytes (possible in JSON strings as \u0000) cannot cross, so a
/// string holding one is given as absent rather than silently cut.
fn c_string(s: &str) -> Option<CString> {
    CString::new(s).ok()
}

/// Messages are ours to shape: drop NUL bytes instead of losing the whole message.
fn c_message(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

impl exona_result {
    fn base(code: Code, scan: Option<&Scan>) -> exona_result {
        exona_result {
            code,
            message: None,
            scan_id: scan.and_then(|s| c_string(s.id())),
            json_text: scan.and_then(|s| c_string(s.raw_json())),
            json: scan.map(|s| s.json().clone()),
            http_status: scan.map_or(0, |s| s.http_status),
            api_code: None,
            hint: None,
            param: None,
            request_id: scan.and_then(|s| s.request_id.as_deref()).and_then(c_string),
            cached: scan.is_some_and(Scan::cached),
            from_store: scan.is_some_and(|s| s.from_store),
            retry_after_ms: 0,
            index: None,
            lookups: Mutex::new(HashMap::new()),
        }
    }

    pub fn from_scan(scan: &Scan) -> exona_result {
        exona_result::base(Code::Ok, Some(scan))
    }

    pub fn from_error(e: &Error) -> exona_result {
        let mut r = exona_result::base(e.code, e.scan.as_ref());
        r.message = Some(c_message(&e.message));
        if let Some(id) = &e.scan_id {
            r.scan_id = c_string(id);
        }
        if let Some(status) = e.http_status {
            r.http_status = status;
        }
        r.api_code = e.api_code.as_deref().and_then(c_string);
        r.hint = e.hint.as_deref().and_then(c_string);
        r.param = e.param.as_deref().and_then(c_string);
        if let Some(id) = &e.request_id {
            r.request_id = c_string(id);
        }
        r.retry_after_ms = e.retry_after.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        r
    }

    /// A result of no scan: a code and what happened (`exona_store_init`).
    pub fn from_message(code: Code, message: &str) -> exona_result {
        let mut r = exona_result::base(code, None);
        r.message = Some(c_message(message));
        r
    }

    /// The same result, marked with its index in a batch.
    pub fn with_index(mut self, index: usize) -> exona_result {
        self.index = Some(index);
        self
    }

    pub fn from_outcome(outcome: &Result<Scan, Error>) -> exona_result {
        match outcome {
            Ok(scan) => exona_result::from_scan(scan),
            Err(e) => exona_result::from_error(e),
        }
    }
}

/// Hands a result to `*out` when `out` is not NULL, and returns its code.
///
/// # Safety
/// `out` is NULL or valid for one pointer write.
pub unsafe fn deliver(out: *mut *mut exona_result, result: exona_result) -> exona_code {
    let code = exona_code::from(result.code);
    if !out.is_null() {
        *out = into_raw(result);
    }
    code
}

fn ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// Reads one field of a result; NULL result gives `on_null`.
fn with<T>(result: *const exona_result, on_null: T, read: impl FnOnce(&exona_result) -> T) -> T {
    match unsafe { result.as_ref() } {
        Some(r) => read(r),
        None => on_null,
    }
}

/// The result's code: `EXONA_OK` or the error class. NULL gives `EXONA_ERR_INVALID_ARGUMENT`.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn exona_result_code(result: *const exona_result) -> exona_code {
    boundary(|| with(result, exona_code::EXONA_ERR_INVALID_ARGUMENT, |r| r.code.into()))
}

/// Why the call failed, for humans (never contains the API key, even one a server echoed);
/// NULL on success or when `result` is NULL. Owned by the result: valid until `exona_result_free`. Thread-safe.
#[no_mangle]
pub extern "C" fn exona_result_message(result: *const exona_result) -> *const c_char {
    boundary(|| with(result, std::ptr::null(), |r| ptr(&r.message)))
}

/// The scan's id, whenever a scan exists: on success, and on timeout, cancel and failed
/// scan, so `exona_scan_wait` can resume it. NULL if no scan was created (or `result` is NULL).
/// Owned by the result. Thread-safe.
#[no_mangle]
pub extern "C" fn exona_result_scan_id(result: *const exona_result) -> *const c_char {
    boundary(|| with(result, std::ptr::null(), |r| ptr(&r.scan_id)))
}

/// The scan object as received (JSON text), when the call saw one: on success, and on a
/// failed or still-processing scan. NULL otherwise. Owned by the result. Thread-safe.
#[no_mangle]
pub extern "C" fn exona_result_json(result: *const exona_result) -> *const c_char {
    boundary(|| with(result, std::ptr::null(), |r| ptr(&r.json_text)))
}

/// A string inside the scan object, by RFC 6901 JSON pointer, e.g.
/// "/result/risk_assessment/overall_risk_level". NULL when the result has no scan object,
/// the pointer matches nothing, the value is not a string (or holds a NUL character), or an
/// argument is NULL or not UTF-8. The string is owned by the result and stays valid until
/// `exona_result_free`, however often it is asked for. Thread-safe.
#[no_mangle]
pub extern "C" fn exona_result_get_string(
    result: *const exona_result,
    json_pointer: *const c_char,
) -> *const c_char {
    boundary(|| {
        let (Ok(r), Ok(pointer)) =
            (unsafe { handle(result, "result") }, unsafe { required_str(json_pointer, "json_pointer") })
        else {
            return std::ptr::null();
        };
        let Some(json) = &r.json else {
            return std::ptr::null();
        };
        let mut lookups = r.lookups.lock().unwrap_or_else(|p| p.into_inner());
        let entry = lookups
            .entry(pointer.to_owned())
            .or_insert_with(|| json.pointer(pointer).and_then(Value::as_str).and_then(c_string));
        // The CString's heap buffer does not move when the map grows, so the pointer stays valid.
        ptr(entry)
    })
}

/// An integer inside the scan object, by JSON pointer (e.g. "/result/risk_assessment/autonomy/score"),
/// written to `*out`. Returns `EXONA_OK`; `EXONA_ERR_NOT_FOUND` when the pointer matches nothing
/// or the value is not an integer that fits int64_t (`*out` is then left unchanged);
/// `EXONA_ERR_INVALID_ARGUMENT` when an argument is NULL or the pointer is not UTF-8. Thread-safe.
#[no_mangle]
pub extern "C" fn exona_result_get_int(
    result: *const exona_result,
    json_pointer: *const c_char,
    out: *mut i64,
) -> exona_code {
    boundary(|| {
        let (Ok(r), Ok(pointer)) =
            (unsafe { handle(result, "result") }, unsafe { required_str(json_pointer, "json_pointer") })
        else {
            return exona_code::EXONA_ERR_INVALID_ARGUMENT;
        };
        if out.is_null() {
            return exona_code::EXONA_ERR_INVALID_ARGUMENT;
        }
        match r.json.as_ref().and_then(|j| j.pointer(pointer)).and_then(Value::as_i64) {
            Some(v) => {
                unsafe { *out = v };
                exona_code::EXONA_OK
            }
            None => exona_code::EXONA_ERR_NOT_FOUND,
        }
    })
}

/// The HTTP status of the response that decided the outcome (201 new scan, 200 cached or
/// polled, 4xx/5xx errors); 0 when no response was received or `result` is NULL. Thread-safe.
#[no_mangle]
pub extern "C" fn exona_result_http_status(result: *const exona_result) -> u16 {
    boundary(|| with(result, 0, |r| r.http_status))
}

/// The API's machine-readable `error.code`: of the request's error envelope (e.g.
/// "INVALID_API_KEY", "RATE_LIMIT_EXCEEDED") or, with `EXONA_ERR_SCAN_FAILED`, of the failed
/// scan. Treat it as an open set of strings. NULL when there is none. Owned by the result.
#[no_mangle]
pub extern "C" fn exona_result_error_code(result: *const exona_result) -> *const c_char {
    boundary(|| with(result, std::ptr::null(), |r| ptr(&r.api_code)))
}

/// The API's suggested fix (`error.hint`), or the library's advice (e.g. how to reconcile an
/// ambiguous create). NULL when there is none. Owned by the result. Thread-safe.
#[no_mangle]
pub extern "C" fn exona_result_hint(result: *const exona_result) -> *const c_char {
    boundary(|| with(result, std::ptr::null(), |r| ptr(&r.hint)))
}

/// The request parameter the API blamed (`error.param`, e.g. "company_website"), or NULL.
/// Owned by the result. Thread-safe.
#[no_mangle]
pub extern "C" fn exona_result_param(result: *const exona_result) -> *const c_char {
    boundary(|| with(result, std::ptr::null(), |r| ptr(&r.param)))
}

/// The `X-Request-ID` of the deciding response: quote it to Exona support. NULL when no
/// response carried one. Owned by the result. Thread-safe.
#[no_mangle]
pub extern "C" fn exona_result_request_id(result: *const exona_result) -> *const c_char {
    boundary(|| with(result, std::ptr::null(), |r| ptr(&r.request_id)))
}

/// True when the scan was served from a cache: the API's (`"cached": true`: no new scan, no
/// credit) or the local state store (see `exona_result_from_store`). False otherwise or when
/// `result` is NULL. Thread-safe.
#[no_mangle]
pub extern "C" fn exona_result_cached(result: *const exona_result) -> bool {
    boundary(|| with(result, false, |r| r.cached))
}

/// True when the local state store answered (a completed scan of the same website within
/// `max_age_days`, stored by this or another process on the host): no request was sent.
/// False otherwise or when `result` is NULL. Thread-safe.
#[no_mangle]
pub extern "C" fn exona_result_from_store(result: *const exona_result) -> bool {
    boundary(|| with(result, false, |r| r.from_store))
}

/// With `EXONA_ERR_RATE_LIMITED`: how long until a request may go, in milliseconds (the
/// server's `Retry-After`, or the end of the key's window as the library keeps it).
/// 0 otherwise or when `result` is NULL. Thread-safe.
#[no_mangle]
pub extern "C" fn exona_result_retry_after_ms(result: *const exona_result) -> u64 {
    boundary(|| with(result, 0, |r| r.retry_after_ms))
}

/// For a result from a batch, the index of its request (the order of `exona_batch_add`);
/// `SIZE_MAX` otherwise or when `result` is NULL. Thread-safe.
#[no_mangle]
pub extern "C" fn exona_result_index(result: *const exona_result) -> usize {
    boundary(|| with(result, usize::MAX, |r| r.index.unwrap_or(usize::MAX)))
}

/// Frees a result and every string it handed out. NULL is a no-op. Not thread-safe with
/// respect to the same result: no other thread may be using it. Freeing twice is undefined.
#[no_mangle]
pub extern "C" fn exona_result_free(result: *mut exona_result) {
    boundary(|| unsafe { free(result) })
}

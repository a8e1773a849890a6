//! `exona_batch`: many scans at once on one client, in the spirit of libcurl's multi interface.

use std::ffi::{c_char, c_int, c_void};

use super::args::{
    code_of, free, handle, into_raw, limit_ms, optional_handle, required_out, required_str, write_optional,
};
use super::boundary::boundary;
use super::client::exona_client;
use super::codes::exona_code;
use super::result::exona_result;
use super::scan_options::exona_scan_options;
use crate::batch::{Batch, Next};

/// A batch of scans (an opaque handle). Add requests, then collect their results as they
/// finish with `exona_batch_next` or `exona_batch_run`. Every added request ends with exactly
/// one result, carrying its index (`exona_result_index`) and its scan id whenever a scan was
/// created. All requests go through the client's budget governor, so a batch of thousands
/// never outruns the API key's rate limit. Every function may be called from any thread;
/// results come back in the order they finish.
pub struct exona_batch {
    batch: Batch,
}

/// Called by `exona_batch_run` on the calling thread for each finished request. The result
/// is owned by the library and freed when the callback returns: copy what you keep. Return 0
/// to go on; non-zero stops `exona_batch_run` (the other requests keep running).
pub type exona_batch_fn =
    Option<unsafe extern "C" fn(index: usize, result: *const exona_result, user_data: *mut c_void) -> c_int>;

/// A new, empty batch on `client`, or NULL when `client` is NULL. The batch holds its own
/// reference to the client's engine, so the two may be freed in either order.
#[no_mangle]
pub extern "C" fn exona_batch_new(client: *mut exona_client) -> *mut exona_batch {
    boundary(|| match unsafe { handle(client, "client") } {
        Ok(c) => into_raw(exona_batch { batch: Batch::new(&c.client) }),
        Err(_) => std::ptr::null_mut(),
    })
}

/// Frees the batch: requests still running are cancelled (nothing more is sent for them) and
/// results not collected are freed. Results already handed out stay valid. NULL is a no-op.
/// No other thread may be using the batch.
#[no_mangle]
pub extern "C" fn exona_batch_free(batch: *mut exona_batch) {
    boundary(|| unsafe { free(batch) })
}

/// Adds a scan of a company (create, then wait, with `options`: NULL for the defaults; their
/// progress callback is not used in a batch). Its index (0, 1, 2, ... in the order added) is
/// written to `*index_out` when that is not NULL. A request the API would refuse (an http://
/// website, say) is still added: its result says why. Returns `EXONA_OK`, or
/// `EXONA_ERR_INVALID_ARGUMENT` (nothing added) when `batch`, `company_name` or
/// `company_website` is NULL or a string is not UTF-8.
#[no_mangle]
pub extern "C" fn exona_batch_add(
    batch: *mut exona_batch,
    company_name: *const c_char,
    company_website: *const c_char,
    options: *const exona_scan_options,
    index_out: *mut usize,
) -> exona_code {
    boundary(|| {
        code_of((|| {
            let b = unsafe { handle(batch, "batch") }?;
            let name = unsafe { required_str(company_name, "company_name") }?;
            let website = unsafe { required_str(company_website, "company_website") }?;
            let defaults = exona_scan_options::default();
            let o = unsafe { optional_handle(options) }.unwrap_or(&defaults);
            let index = b.batch.add(o.request_for(name, website), &o.wait);
            unsafe { write_optional(index_out, index) };
            Ok(())
        })())
    })
}

/// Waits up to `timeout_ms` (`UINT64_MAX`: without limit; 0: just look) for the next
/// finished request, and hands its result to `*out` (free it with `exona_result_free`; its
/// own code says whether the scan completed). Returns `EXONA_OK` with a result;
/// `EXONA_ERR_TIMEOUT` when none finished in time (`*out` NULL); `EXONA_ERR_NOT_FOUND` when
/// every added request's result has been collected (`*out` NULL);
/// `EXONA_ERR_INVALID_ARGUMENT` when `batch` or `out` is NULL.
#[no_mangle]
pub extern "C" fn exona_batch_next(
    batch: *mut exona_batch,
    timeout_ms: u64,
    out: *mut *mut exona_result,
) -> exona_code {
    boundary(|| {
        let checked = unsafe { required_out(out, "out") }.and_then(|()| unsafe { handle(batch, "batch") });
        let b = match checked {
            Ok(b) => b,
            Err(e) => return e.code.into(),
        };
        match b.batch.next(limit_ms(timeout_ms)) {
            Next::Ready(index, outcome) => {
                unsafe { *out = into_raw(exona_result::from_outcome(&outcome).with_index(index)) };
                exona_code::EXONA_OK
            }
            Next::Pending => exona_code::EXONA_ERR_TIMEOUT,
            Next::Empty => exona_code::EXONA_ERR_NOT_FOUND,
        }
    })
}

/// Calls `callback` on this thread for each request as it finishes, until every result has
/// been delivered (`EXONA_OK`), `timeout_ms` passes (`EXONA_ERR_TIMEOUT`; `UINT64_MAX`: no
/// limit), or the callback returns non-zero (`EXONA_ERR_CANCELLED`). Requests not delivered
/// stay in the batch. `EXONA_ERR_INVALID_ARGUMENT` when `batch` or `callback` is NULL.
#[no_mangle]
pub extern "C" fn exona_batch_run(
    batch: *mut exona_batch,
    timeout_ms: u64,
    callback: exona_batch_fn,
    user_data: *mut c_void,
) -> exona_code {
    boundary(|| {
        let b = match unsafe { handle(batch, "batch") } {
            Ok(b) => b,
            Err(e) => return e.code.into(),
        };
        let Some(f) = callback else {
            return exona_code::EXONA_ERR_INVALID_ARGUMENT;
        };
        let deadline = limit_ms(timeout_ms).and_then(|l| std::time::Instant::now().checked_add(l));
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
            match b.batch.next(left) {
                Next::Ready(index, outcome) => {
                    let result = exona_result::from_outcome(&outcome).with_index(index);
                    if unsafe { f(index, &result, user_data) } != 0 {
                        return exona_code::EXONA_ERR_CANCELLED;
                    }
                }
                Next::Pending => return exona_code::EXONA_ERR_TIMEOUT,
                Next::Empty => return exona_code::EXONA_OK,
            }
        }
    })
}

/// Cancels one request: its result becomes `EXONA_ERR_CANCELLED` (with its scan id when a
/// scan exists) and nothing more is sent for it. Returns `EXONA_OK` (also when it had
/// finished already), or `EXONA_ERR_INVALID_ARGUMENT` for NULL or an index never added.
#[no_mangle]
pub extern "C" fn exona_batch_cancel(batch: *mut exona_batch, index: usize) -> exona_code {
    boundary(|| code_of(unsafe { handle(batch, "batch") }.and_then(|b| b.batch.cancel(index))))
}

/// Cancels every request still running. Returns `EXONA_OK`, or `EXONA_ERR_INVALID_ARGUMENT`
/// for NULL.
#[no_mangle]
pub extern "C" fn exona_batch_cancel_all(batch: *mut exona_batch) -> exona_code {
    boundary(|| code_of(unsafe { handle(batch, "batch") }.map(|b| b.batch.cancel_all())))
}

/// How many requests are queued (not created yet: waiting for the budget), in flight
/// (created, being waited for) and done (finished, collected or not). Any out pointer may be
/// NULL. Returns `EXONA_OK`, or `EXONA_ERR_INVALID_ARGUMENT` when `batch` is NULL.
#[no_mangle]
pub extern "C" fn exona_batch_counts(
    batch: *const exona_batch,
    queued: *mut usize,
    in_flight: *mut usize,
    done: *mut usize,
) -> exona_code {
    boundary(|| {
        code_of(unsafe { handle(batch, "batch") }.map(|b| {
            let c = b.batch.counts();
            for (ptr, value) in [(queued, c.queued), (in_flight, c.in_flight), (done, c.done)] {
                unsafe { write_optional(ptr, value) };
            }
        }))
    })
}

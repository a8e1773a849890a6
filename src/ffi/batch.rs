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
    progress: std::sync::Mutex<Option<(ProgressFn, usize)>>,
}

type ProgressFn = unsafe extern "C" fn(status: *const exona_batch_status, user_data: *mut c_void);

/// Where a batch stands (`exona_batch_get_status`, and the batch progress callback).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct exona_batch_status {
    /// Rows not created yet (waiting for the key's budget, or their create in flight).
    pub queued: usize,
    /// Rows created and being waited for.
    pub in_flight: usize,
    /// Rows whose scan completed.
    pub completed: usize,
    /// Rows that ended without completing (a failed scan, or an error).
    pub failed: usize,
    /// Requests this process sent on the key since the batch was made.
    pub requests: u64,
    /// Requests the key's budget allows now.
    pub budget_left: u32,
    /// Seconds until the last row should end, from the key's budget and the rows left (the
    /// other processes' work on the key counted, with a state store); -1 when nothing is left
    /// to estimate, or when no one figure is known to within a factor of two (the key's window
    /// not learned yet, or other processes on the key whose rows may be served before or after
    /// these).
    pub eta_seconds: f64,
}

impl exona_batch_status {
    fn of(batch: &Batch) -> exona_batch_status {
        let s = batch.status();
        exona_batch_status {
            queued: s.queued,
            in_flight: s.in_flight,
            completed: s.completed,
            failed: s.failed,
            requests: s.requests,
            budget_left: s.budget_left,
            eta_seconds: s.eta.map_or(-1.0, |d| d.as_secs_f64()),
        }
    }
}

/// Called on the thread of `exona_batch_next` or `exona_batch_run` with where the batch
/// stands: when a result is handed out, and about once a second while they wait. The status
/// is valid during the call only. It must not free the batch.
pub type exona_batch_progress_fn =
    Option<unsafe extern "C" fn(status: *const exona_batch_status, user_data: *mut c_void)>;

impl exona_batch {
    /// Tells the progress callback, if any, where the batch stands.
    fn report(&self) {
        let callback = *self.progress.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((f, user_data)) = callback {
            let status = exona_batch_status::of(&self.batch);
            unsafe { f(&status, user_data as *mut c_void) };
        }
    }

    /// `Batch::next`, reporting progress about once a second while it waits.
    fn next_reporting(&self, limit: Option<std::time::Duration>) -> Next {
        let has_progress = self.progress.lock().unwrap_or_else(|p| p.into_inner()).is_some();
        if !has_progress {
            return self.batch.next(limit);
        }
        let tick = std::time::Duration::from_secs(1);
        let deadline = limit.and_then(|l| std::time::Instant::now().checked_add(l));
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
            let step = left.map_or(tick, |l| l.min(tick));
            match self.batch.next(Some(step)) {
                Next::Pending if left.is_none_or(|l| l > step) => self.report(),
                other => {
                    self.report();
                    return other;
                }
            }
        }
    }
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
        Ok(c) => into_raw(exona_batch { batch: Batch::new(&c.client), progress: Default::default() }),
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

/// Journals the batch's rows in the SQLite file at `path` (created, with its directory, if
/// need be): every row's state is written before and after each step (queued, creating,
/// created with its scan id, completed, failed, error). A batch made again on the same journal,
/// with the same rows added in the same order, resumes: rows that completed or failed come
/// back at once with no request, created rows are waited for by scan id (no new scan), and
/// only rows that never began their create are created. A row whose create was sent but not
/// answered before the process stopped ends `EXONA_ERR_AMBIGUOUS_CREATE` (its scan may exist),
/// unless `exona_batch_set_reconcile` is on. A row journaled for another request ends
/// `EXONA_ERR_INVALID_ARGUMENT`.
///
/// Call it before the first `exona_batch_add`. `path` is copied. Returns `EXONA_OK`;
/// `EXONA_ERR_INVALID_ARGUMENT` when `batch` or `path` is NULL, `path` is not UTF-8, rows were
/// added already, a journal is set already, or the file cannot be opened as one (the reason is
/// logged at warn level: `exona_set_log_callback`, `EXONA_LOG`). A journal that fails later is
/// logged and left; the batch goes on.
#[no_mangle]
pub extern "C" fn exona_batch_set_journal(batch: *mut exona_batch, path: *const c_char) -> exona_code {
    boundary(|| {
        code_of((|| {
            let b = unsafe { handle(batch, "batch") }?;
            let path = unsafe { required_str(path, "path") }?;
            b.batch.set_journal(std::path::Path::new(path)).inspect_err(|e| {
                crate::log::log(crate::log::Level::Warn, || e.message.clone());
            })
        })())
    })
}

/// With `on` non-zero, rows a crash left between sending their create and journaling its
/// answer are created again with `max_age_days` of at least 1, so that the API returns the
/// scan if it completed, instead of ending `EXONA_ERR_AMBIGUOUS_CREATE`. (A twin still
/// processing is not found that way: the API reuses completed scans only.) Returns
/// `EXONA_OK`, or `EXONA_ERR_INVALID_ARGUMENT` when `batch` is NULL.
#[no_mangle]
pub extern "C" fn exona_batch_set_reconcile(batch: *mut exona_batch, on: c_int) -> exona_code {
    boundary(|| code_of(unsafe { handle(batch, "batch") }.map(|b| b.batch.set_reconcile(on != 0))))
}

/// Sets (or, with a NULL `callback`, removes) the batch's progress callback: see
/// `exona_batch_progress_fn`. `user_data` is passed as is. Returns `EXONA_OK`, or
/// `EXONA_ERR_INVALID_ARGUMENT` when `batch` is NULL.
#[no_mangle]
pub extern "C" fn exona_batch_set_progress(
    batch: *mut exona_batch,
    callback: exona_batch_progress_fn,
    user_data: *mut c_void,
) -> exona_code {
    boundary(|| {
        code_of(unsafe { handle(batch, "batch") }.map(|b| {
            *b.progress.lock().unwrap_or_else(|p| p.into_inner()) = callback.map(|f| (f, user_data as usize));
        }))
    })
}

/// Writes where the batch stands to `*out` (counts, requests used, budget left, an estimate of
/// the end). Returns `EXONA_OK`, or `EXONA_ERR_INVALID_ARGUMENT` when `batch` or `out` is NULL.
#[no_mangle]
pub extern "C" fn exona_batch_get_status(
    batch: *const exona_batch,
    out: *mut exona_batch_status,
) -> exona_code {
    boundary(|| {
        code_of((|| {
            let b = unsafe { handle(batch, "batch") }?;
            if out.is_null() {
                return Err(crate::error::Error::invalid_argument("out is NULL"));
            }
            unsafe { *out = exona_batch_status::of(&b.batch) };
            Ok(())
        })())
    })
}

/// Adds a scan of a company (create, then wait, with `options`: NULL for the defaults; their
/// progress callback is not used in a batch). The options' deadline counts from the row's
/// scan's creation: a row waiting for the key's budget waits as long as the batch lives, and
/// never fails merely for its turn. Its index (0, 1, 2, ... in the order added) is
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
        match b.next_reporting(limit_ms(timeout_ms)) {
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
            match b.next_reporting(left) {
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

//! `exona_cancel_token` and `exona_cancel`: a token that stops waits from another thread.

use super::args::{code_of, free, handle, into_raw, optional_handle};
use super::boundary::boundary;
use super::codes::exona_code;
use crate::CancelToken;

/// A cancellation token (an opaque handle). Attach it to scan options with
/// `exona_scan_options_set_cancel`; `exona_cancel` then stops every wait using it.
pub struct exona_cancel_token {
    pub(crate) token: CancelToken,
}

/// A new, uncancelled token. Free it with `exona_cancel_free`. NULL only if out of memory.
#[no_mangle]
pub extern "C" fn exona_cancel_new() -> *mut exona_cancel_token {
    boundary(|| into_raw(exona_cancel_token { token: CancelToken::new() }))
}

/// Cancels: every wait using this token returns `EXONA_ERR_CANCELLED` within milliseconds and
/// sends no further request. Idempotent and permanent. Safe to call from any thread, including
/// a signal-free watchdog thread, while other threads wait. Returns `EXONA_OK`, or
/// `EXONA_ERR_INVALID_ARGUMENT` when `cancel` is NULL.
#[no_mangle]
pub extern "C" fn exona_cancel(cancel: *const exona_cancel_token) -> exona_code {
    boundary(|| code_of(unsafe { handle(cancel, "cancel") }.map(|c| c.token.cancel())))
}

/// True once `exona_cancel` was called on this token; false for NULL. Thread-safe.
#[no_mangle]
pub extern "C" fn exona_cancel_is_cancelled(cancel: *const exona_cancel_token) -> bool {
    boundary(|| unsafe { optional_handle(cancel) }.is_some_and(|c| c.token.is_cancelled()))
}

/// Frees the token. Options it was attached to keep working (they hold their own reference).
/// NULL is a no-op. No other thread may be using this handle.
#[no_mangle]
pub extern "C" fn exona_cancel_free(cancel: *mut exona_cancel_token) {
    boundary(|| unsafe { free(cancel) })
}

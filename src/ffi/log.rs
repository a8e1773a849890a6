//! `exona_set_log_callback`: where libexona's log lines go.

use std::ffi::{c_char, c_int, c_void, CString};

use super::boundary::boundary;
use super::codes::exona_code;
use crate::log::{set_hook, Level};

/// Receives one log line: `level` 1 error, 2 warn, 3 info, 4 debug; `message` is valid only
/// during the call. Called from libexona's own threads (the scheduler, the HTTP workers) as
/// well as from calling threads, possibly at once: it must be thread-safe and quick, and must
/// not call back into libexona. Lines never contain the API key.
pub type exona_log_fn =
    Option<unsafe extern "C" fn(level: c_int, message: *const c_char, user_data: *mut c_void)>;

/// The user data pointer is the caller's business; we only hand it back.
struct UserData(*mut c_void);
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

impl UserData {
    /// A method, so closures capture the whole (Send + Sync) wrapper, not its raw field.
    fn get(&self) -> *mut c_void {
        self.0
    }
}

/// Sends log lines up to `max_level` (1 error ... 4 debug) to `callback`, with `user_data`,
/// instead of stderr (where they go when `EXONA_LOG=error|warn|info|debug` is set). A NULL
/// callback turns it off again. Process-wide; may be called at any time from any thread.
/// No line holds the API key: text from the network is scrubbed of it first.
/// Returns `EXONA_OK`, or `EXONA_ERR_INVALID_ARGUMENT` for a `max_level` outside 1–4.
#[no_mangle]
pub extern "C" fn exona_set_log_callback(
    callback: exona_log_fn,
    max_level: c_int,
    user_data: *mut c_void,
) -> exona_code {
    boundary(|| {
        let Some(f) = callback else {
            set_hook(None);
            return exona_code::EXONA_OK;
        };
        let Some(max) = Level::from_raw(max_level as i64) else {
            return exona_code::EXONA_ERR_INVALID_ARGUMENT;
        };
        let data = UserData(user_data);
        set_hook(Some((
            max,
            Box::new(move |level, message| {
                let line = CString::new(message.replace('\0', "")).unwrap_or_default();
                // SAFETY: the caller registered this function for exactly this call.
                unsafe { f(level as c_int, line.as_ptr(), data.get()) };
            }),
        )));
        exona_code::EXONA_OK
    })
}

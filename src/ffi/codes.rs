//! Result codes and their names.

use std::ffi::{c_char, c_int};

use super::boundary::{boundary, PanicDefault};
use crate::error::Code;

/// The outcome of a call. `EXONA_OK` is 0; every other value is an error class. Numbers are
/// never reused; new codes may be added at the end, so treat unknown values as errors.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum exona_code {
    /// Success.
    EXONA_OK = 0,
    /// A NULL, non-UTF-8 or out-of-range argument; nothing was sent. The message names it.
    EXONA_ERR_INVALID_ARGUMENT = 1,
    /// HTTP 401: the API key is missing, malformed, unknown, expired or revoked.
    EXONA_ERR_AUTHENTICATION = 2,
    /// HTTP 403: the key is valid but not allowed (e.g. the IP is not on its allowlist).
    EXONA_ERR_PERMISSION = 3,
    /// HTTP 400 (or another 4xx): the API rejected the request; see the error code and param.
    EXONA_ERR_BAD_REQUEST = 4,
    /// HTTP 404: no scan with this id exists under this key. Also: `exona_batch_next` has no
    /// request left, `exona_result_get_int` finds nothing at the pointer.
    EXONA_ERR_NOT_FOUND = 5,
    /// HTTP 429 that could not be waited out within the deadline, or the key's request budget
    /// (as the library keeps it from the rate-limit headers) allowing no request before the
    /// deadline: then nothing the server would refuse was sent. See the retry-after.
    EXONA_ERR_RATE_LIMITED = 6,
    /// HTTP 5xx, after the retries that were safe to make.
    EXONA_ERR_SERVER = 7,
    /// The server could not be reached or the connection failed.
    EXONA_ERR_NETWORK = 8,
    /// The server answered something other than the documented JSON.
    EXONA_ERR_PROTOCOL = 9,
    /// The deadline passed while the scan was still processing; the result carries its id.
    EXONA_ERR_TIMEOUT = 10,
    /// The wait was cancelled; the result carries the scan id if a scan exists.
    EXONA_ERR_CANCELLED = 11,
    /// The scan ended `failed`; the result carries the scan's error code and message.
    EXONA_ERR_SCAN_FAILED = 12,
    /// A create request may have reached the server but no scan id came back. It was not
    /// repeated (that could create a duplicate scan); see the result's hint to reconcile.
    EXONA_ERR_AMBIGUOUS_CREATE = 13,
    /// A bug in libexona (a caught panic). Please report it.
    EXONA_ERR_INTERNAL = 14,
}

/// What an export returning a code returns when its body panicked.
impl PanicDefault for exona_code {
    fn on_panic() -> Self {
        exona_code::EXONA_ERR_INTERNAL
    }
}

impl From<Code> for exona_code {
    fn from(code: Code) -> exona_code {
        use exona_code::*;
        match code {
            Code::Ok => EXONA_OK,
            Code::InvalidArgument => EXONA_ERR_INVALID_ARGUMENT,
            Code::Authentication => EXONA_ERR_AUTHENTICATION,
            Code::Permission => EXONA_ERR_PERMISSION,
            Code::BadRequest => EXONA_ERR_BAD_REQUEST,
            Code::NotFound => EXONA_ERR_NOT_FOUND,
            Code::RateLimited => EXONA_ERR_RATE_LIMITED,
            Code::Server => EXONA_ERR_SERVER,
            Code::Network => EXONA_ERR_NETWORK,
            Code::Protocol => EXONA_ERR_PROTOCOL,
            Code::Timeout => EXONA_ERR_TIMEOUT,
            Code::Cancelled => EXONA_ERR_CANCELLED,
            Code::ScanFailed => EXONA_ERR_SCAN_FAILED,
            Code::AmbiguousCreate => EXONA_ERR_AMBIGUOUS_CREATE,
            Code::Internal => EXONA_ERR_INTERNAL,
        }
    }
}

/// The linked library's version and the commit it was built from, as semver with build
/// metadata: e.g. "0.1.0+4f2a9c1b7d3e"; just "0.1.0" when the build knew no commit. The part
/// before any '+' is what `EXONA_VERSION_STRING` says for a header of the same release.
/// Static storage: never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn exona_version() -> *const c_char {
    boundary(|| concat!(env!("EXONA_VERSION_FULL"), "\0").as_ptr().cast())
}

/// The name of a code, e.g. "EXONA_ERR_TIMEOUT". Takes a plain int so that any value a
/// program passes is defined behaviour: values that are no code give "EXONA_ERR_UNKNOWN".
/// Returns static storage (never NULL, never free it). Thread-safe.
#[no_mangle]
pub extern "C" fn exona_code_name(code: c_int) -> *const c_char {
    boundary(|| {
        // Built once from the one code table (error.rs); static for the life of the program.
        static NAMES: std::sync::OnceLock<Vec<std::ffi::CString>> = std::sync::OnceLock::new();
        let names = NAMES.get_or_init(|| {
            Code::ALL.iter().map(|c| std::ffi::CString::new(c.name()).unwrap_or_default()).collect()
        });
        match Code::ALL.iter().position(|c| *c as i64 == code as i64) {
            Some(at) => names[at].as_ptr(),
            None => c"EXONA_ERR_UNKNOWN".as_ptr(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn numbers_and_names_agree_between_rust_and_c() {
        for &code in Code::ALL {
            assert_eq!(exona_code::from(code) as u32, code as u32);
            let name = unsafe { CStr::from_ptr(exona_code_name(code as c_int)) };
            assert_eq!(name.to_str().unwrap(), code.name());
            assert_eq!(format!("{:?}", exona_code::from(code)), code.name());
        }
        for unknown in [-1, 15, 1000, c_int::MAX, c_int::MIN] {
            let name = unsafe { CStr::from_ptr(exona_code_name(unknown)) };
            assert_eq!(name.to_str().unwrap(), "EXONA_ERR_UNKNOWN");
        }
    }
}

//! The error type of every fallible call, and the stable code that classifies it.

use std::ffi::CStr;
use std::fmt;
use std::time::Duration;

use crate::model::Scan;

/// What went wrong, in the classes a caller acts on. The numbers are part of the C ABI:
/// they never change and are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Code {
    Ok = 0,
    InvalidArgument = 1,
    Authentication = 2,
    Permission = 3,
    BadRequest = 4,
    NotFound = 5,
    RateLimited = 6,
    Server = 7,
    Network = 8,
    Protocol = 9,
    Timeout = 10,
    Cancelled = 11,
    ScanFailed = 12,
    AmbiguousCreate = 13,
    Internal = 14,
}

impl Code {
    /// Every code, in numeric order.
    pub const ALL: [Code; 15] = [
        Code::Ok,
        Code::InvalidArgument,
        Code::Authentication,
        Code::Permission,
        Code::BadRequest,
        Code::NotFound,
        Code::RateLimited,
        Code::Server,
        Code::Network,
        Code::Protocol,
        Code::Timeout,
        Code::Cancelled,
        Code::ScanFailed,
        Code::AmbiguousCreate,
        Code::Internal,
    ];

    /// The C name of the code, e.g. `"EXONA_ERR_TIMEOUT"`.
    pub fn name(self) -> &'static str {
        // The C names are ASCII, so this never fails.
        self.c_name().to_str().unwrap_or("EXONA_ERR_UNKNOWN")
    }

    /// The C name as a NUL-terminated static string, for the C surface.
    pub fn c_name(self) -> &'static CStr {
        match self {
            Code::Ok => c"EXONA_OK",
            Code::InvalidArgument => c"EXONA_ERR_INVALID_ARGUMENT",
            Code::Authentication => c"EXONA_ERR_AUTHENTICATION",
            Code::Permission => c"EXONA_ERR_PERMISSION",
            Code::BadRequest => c"EXONA_ERR_BAD_REQUEST",
            Code::NotFound => c"EXONA_ERR_NOT_FOUND",
            Code::RateLimited => c"EXONA_ERR_RATE_LIMITED",
            Code::Server => c"EXONA_ERR_SERVER",
            Code::Network => c"EXONA_ERR_NETWORK",
            Code::Protocol => c"EXONA_ERR_PROTOCOL",
            Code::Timeout => c"EXONA_ERR_TIMEOUT",
            Code::Cancelled => c"EXONA_ERR_CANCELLED",
            Code::ScanFailed => c"EXONA_ERR_SCAN_FAILED",
            Code::AmbiguousCreate => c"EXONA_ERR_AMBIGUOUS_CREATE",
            Code::Internal => c"EXONA_ERR_INTERNAL",
        }
    }

    /// The code for a raw integer from C; `None` for numbers no code has.
    pub fn from_raw(raw: i64) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| *c as i64 == raw)
    }

    /// The class of an HTTP error status.
    pub fn for_http_status(status: u16) -> Code {
        match status {
            400 => Code::BadRequest,
            401 => Code::Authentication,
            403 => Code::Permission,
            404 => Code::NotFound,
            429 => Code::RateLimited,
            500..=599 => Code::Server,
            // Undocumented client errors (409, 413, 422, ...) are still the request's fault.
            402 | 405..=428 | 430..=499 => Code::BadRequest,
            _ => Code::Protocol,
        }
    }
}

/// A failed call: the class, a message for humans, and everything the API said about it.
///
/// The message never contains the API key.
#[derive(Clone, Debug)]
pub struct Error {
    pub code: Code,
    pub message: String,
    /// HTTP status of the response that decided the outcome, if there was one.
    pub http_status: Option<u16>,
    /// The API's `error.code`: of the request's error envelope, or of a failed scan.
    pub api_code: Option<String>,
    pub hint: Option<String>,
    pub param: Option<String>,
    /// `X-Request-ID` (or the envelope's `request_id`) of the deciding response.
    pub request_id: Option<String>,
    /// The scan the call was about, when one exists (timeout, cancel, failed scan, ...).
    pub scan_id: Option<String>,
    /// The last scan object received, if any (a failed scan, or one still processing).
    pub scan: Option<Scan>,
    /// For `RateLimited`: how long the server asked to wait.
    pub retry_after: Option<Duration>,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
            http_status: None,
            api_code: None,
            hint: None,
            param: None,
            request_id: None,
            scan_id: None,
            scan: None,
            retry_after: None,
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Error {
        Error::new(Code::InvalidArgument, message)
    }

    /// Attaches the scan id, unless one is already known.
    pub fn with_scan_id(mut self, id: Option<&str>) -> Error {
        if self.scan_id.is_none() {
            self.scan_id = id.map(str::to_owned);
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

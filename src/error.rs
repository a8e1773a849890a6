//! The error type of every fallible call, and the stable code that classifies it.

use std::fmt;
use std::time::Duration;

use crate::scan::Scan;

/// Declares [`Code`] from one list of (variant, number): the enum, [`Code::ALL`] and
/// [`Code::from_raw`] all come from it. The C enum (ffi/codes.rs) mirrors it for cbindgen, and
/// a compiler-checked `match` maps one onto the other.
macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $number:literal,)*) => {
        /// What went wrong, in the classes a caller acts on. The numbers are part of the C ABI:
        /// they never change and are never reused.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum Code {
            $($(#[$doc])* $variant = $number,)*
        }

        impl Code {
            /// Every code, in numeric order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            fn identifier(self) -> &'static str {
                match self {
                    $(Code::$variant => stringify!($variant),)*
                }
            }
        }
    };
}

codes! {
    Ok = 0,
    /// An argument was NULL, not UTF-8 or out of range; nothing was sent.
    InvalidArgument = 1,
    /// 401.
    Authentication = 2,
    /// 403.
    Permission = 3,
    /// 400 (and other 4xx the API does not document).
    BadRequest = 4,
    /// 404.
    NotFound = 5,
    /// A 429 that cannot be waited out within the deadline.
    RateLimited = 6,
    /// 5xx after retries.
    Server = 7,
    Network = 8,
    /// A response that is not the documented JSON.
    Protocol = 9,
    /// The deadline passed with the scan still processing (the scan id is kept).
    Timeout = 10,
    Cancelled = 11,
    /// The scan ended `failed`.
    ScanFailed = 12,
    /// A create that may have reached the server, with no scan id back.
    AmbiguousCreate = 13,
    /// A caught panic or a bug.
    Internal = 14,
}

impl Code {
    /// The stable name of the code on every surface (the C enum, the command's output), made
    /// from the variant: `Ok` is `EXONA_OK`, `ScanFailed` is `EXONA_ERR_SCAN_FAILED`.
    pub fn name(self) -> &'static str {
        static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        let names = NAMES.get_or_init(|| Code::ALL.iter().map(|c| symbolic_name(c.identifier())).collect());
        let at = Code::ALL.iter().position(|c| *c == self).unwrap_or(0);
        &names[at]
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

/// `ScanFailed` -> `EXONA_ERR_SCAN_FAILED`; `Ok` -> `EXONA_OK`.
fn symbolic_name(identifier: &str) -> String {
    let mut snake = String::new();
    for (i, ch) in identifier.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(ch.to_ascii_uppercase());
    }
    if snake == "OK" {
        "EXONA_OK".to_owned()
    } else {
        format!("EXONA_ERR_{snake}")
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

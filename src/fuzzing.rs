//! Entry points for the fuzz targets (fuzz/), behind the `fuzzing` feature: the parsers and
//! decoders that read what the network sends, reached without making them public API.

use crate::transport::{Headers, Response};

pub use crate::engine::retry_after::{parse_reset, parse_retry_after, LONGEST};
pub use crate::model::normalize_website;
pub use crate::redact::Redactor;

fn response(status: u16, body: &[u8]) -> Response {
    Response { status, headers: Headers::default(), body: body.to_vec() }
}

/// A 2xx body read as a scan, then checked as a completed one would be.
pub fn decode_scan(status: u16, body: &[u8]) -> Result<crate::Scan, crate::Error> {
    crate::engine::decode::scan(&response(status, body)).and_then(crate::engine::decode::completed)
}

/// A non-2xx body read as the API's error envelope.
pub fn decode_error(status: u16, body: &[u8]) -> crate::Error {
    crate::engine::decode::api_error(&response(status, body))
}

/// A C result holding the scan of `body`, if it is one (free it with `exona_result_free`).
pub fn result_from_body(body: &[u8]) -> Option<*mut crate::ffi::result::exona_result> {
    let scan = crate::Scan::from_body(body, 200, None).ok()?;
    Some(Box::into_raw(Box::new(crate::ffi::result::exona_result::from_scan(&scan))))
}

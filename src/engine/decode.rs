//! Turns HTTP responses into scans and errors, keeping everything support will ask for.

use serde_json::Value;

use crate::error::{Code, Error};
use crate::scan::Scan;
use crate::transport::{Response, TransportError};

/// A 2xx response's scan object, or a protocol error naming what was wrong with it.
pub fn scan(response: &Response) -> Result<Scan, Error> {
    Scan::from_body(&response.body, response.status, response.headers.request_id.clone()).map_err(|why| {
        let mut e = Error::new(
            Code::Protocol,
            format!("HTTP {} response is not a scan object: {why}", response.status),
        );
        e.http_status = Some(response.status);
        e.request_id = response.headers.request_id.clone();
        e
    })
}

/// A scan reported `completed` must carry its `result` object: one without is not the
/// documented answer, and returning it as success would hand the caller nothing to read.
pub fn completed(scan: Scan) -> Result<Scan, Error> {
    if has_result(&scan) {
        return Ok(scan);
    }
    let mut e = Error::new(
        Code::Protocol,
        format!("scan {} is reported completed, but its object has no 'result' object", scan.id()),
    );
    e.http_status = Some(scan.http_status);
    e.request_id = scan.request_id.clone();
    e.scan_id = Some(scan.id().to_owned());
    e.scan = Some(scan);
    Err(e)
}

/// Whether a scan object carries its `result` object.
pub fn has_result(scan: &Scan) -> bool {
    scan.json().get("result").is_some_and(Value::is_object)
}

/// A GET of scan `asked` answered with another scan: a misrouted or cached response.
pub fn wrong_scan(asked: &str, scan: &Scan) -> Error {
    let mut e = Error::new(
        Code::Protocol,
        format!("GET /scans/{asked} answered with scan {}; the answer was not used", scan.id()),
    );
    e.http_status = Some(scan.http_status);
    e.request_id = scan.request_id.clone();
    e.scan_id = Some(asked.to_owned());
    e
}

/// The error of a non-2xx response, read from the API's envelope
/// `{"error": {"code", "message", "param", "hint", "request_id"}}` when there is one.
pub fn api_error(response: &Response) -> Error {
    let envelope: Option<Value> = serde_json::from_slice(&response.body).ok();
    let field = |name: &str| {
        envelope
            .as_ref()
            .and_then(|v| v.pointer(&format!("/error/{name}")))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let api_code = field("code");
    let message = match (field("message"), &api_code) {
        (Some(m), Some(c)) => format!("HTTP {} {c}: {m}", response.status),
        (Some(m), None) => format!("HTTP {}: {m}", response.status),
        (None, Some(c)) => format!("HTTP {} {c}", response.status),
        (None, None) => format!("HTTP {} without the API's error envelope", response.status),
    };
    // The API answers a scan it does not know with SCAN_NOT_FOUND: any other 404 is a path
    // the server does not serve, most often a base URL without its /api/v1 (issue 36).
    let message = if response.status == 404 && api_code.as_deref() != Some("SCAN_NOT_FOUND") {
        format!("{message} (not the API's answer for an unknown scan: check the base URL, which ends in /api/v1, e.g. https://api.example/api/v1)")
    } else {
        message
    };
    let mut e = Error::new(Code::for_http_status(response.status), message);
    e.http_status = Some(response.status);
    e.api_code = api_code;
    e.hint = field("hint");
    e.param = field("param");
    e.request_id = response.headers.request_id.clone().or_else(|| field("request_id"));
    e
}

/// A failure before any response was read.
pub fn transport_error(what: &str, e: &TransportError) -> Error {
    let code = match e {
        TransportError::Unusable(_) => Code::Protocol,
        _ => Code::Network,
    };
    Error::new(code, format!("{what}: {}", e.message()))
}

/// The error for a scan that ended `failed`: its own code, message and hint.
pub fn scan_failed(scan: Scan) -> Error {
    let (code, message, hint) = scan.failure();
    // Many callers log only the message: it names the scan's own error code too.
    let message = message.unwrap_or("no message given");
    let text = match code {
        Some(c) => format!("scan {} failed [{c}]: {message}", scan.id()),
        None => format!("scan {} failed: {message}", scan.id()),
    };
    let mut e = Error::new(Code::ScanFailed, text);
    e.api_code = code.map(str::to_owned);
    e.hint = hint.map(str::to_owned);
    e.http_status = Some(scan.http_status);
    e.request_id = scan.request_id.clone();
    e.scan_id = Some(scan.id().to_owned());
    e.scan = Some(scan);
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Headers;

    #[test]
    fn a_bare_404_points_at_the_base_url() {
        let e = api_error(&response(404, "<html>Not Found</html>", None));
        assert_eq!(e.code, Code::NotFound);
        assert!(e.message.contains("ends in /api/v1") && e.message.contains("base URL"), "{}", e.message);
        let e = api_error(&response(
            404,
            r#"{"error":{"code":"SCAN_NOT_FOUND","message":"no such scan"}}"#,
            None,
        ));
        assert!(!e.message.contains("base URL"), "{}", e.message);
    }

    fn response(status: u16, body: &str, request_id: Option<&str>) -> Response {
        Response {
            status,
            headers: Headers { request_id: request_id.map(str::to_owned), ..Default::default() },
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn envelope_fields_are_kept() {
        let e = api_error(&response(
            400,
            r#"{"error":{"code":"INVALID_COMPANY_WEBSITE","message":"must be https","param":"company_website","hint":"use https","request_id":"req_body"}}"#,
            Some("req_header"),
        ));
        assert_eq!(e.code, Code::BadRequest);
        assert_eq!(e.api_code.as_deref(), Some("INVALID_COMPANY_WEBSITE"));
        assert_eq!(e.param.as_deref(), Some("company_website"));
        assert_eq!(e.hint.as_deref(), Some("use https"));
        assert_eq!(e.request_id.as_deref(), Some("req_header"));
        assert_eq!(e.http_status, Some(400));
    }

    #[test]
    fn a_failed_scan_names_its_error_code_in_the_message() {
        let scan = Scan::from_body(
            br#"{"id":"scn_1","status":"failed","error":{"code":"WEBSITE_UNREACHABLE","message":"The company website could not be reached."}}"#,
            200,
            None,
        )
        .unwrap();
        let e = scan_failed(scan);
        assert_eq!(
            e.message,
            "scan scn_1 failed [WEBSITE_UNREACHABLE]: The company website could not be reached."
        );
        assert_eq!(e.api_code.as_deref(), Some("WEBSITE_UNREACHABLE"));
    }

    #[test]
    fn no_envelope_still_classifies_by_status() {
        let e = api_error(&response(502, "<html>bad gateway</html>", None));
        assert_eq!(e.code, Code::Server);
        assert!(e.api_code.is_none());
        let e = api_error(&response(418, "", None));
        assert_eq!(e.code, Code::BadRequest);
        let e = api_error(&response(
            404,
            r#"{"error":{"code":"SCAN_NOT_FOUND","message":"x","request_id":"req_1"}}"#,
            None,
        ));
        assert_eq!((e.code, e.request_id.as_deref()), (Code::NotFound, Some("req_1")));
    }
}

//! The scan object the API returns, with the response facts that came with it.

use serde_json::Value;

/// Where a scan is in its lifecycle. Unknown states are kept, not rejected: the API may add some.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanStatus {
    Processing,
    Completed,
    Failed,
    Other(String),
}

impl ScanStatus {
    fn parse(s: &str) -> ScanStatus {
        match s {
            "processing" => ScanStatus::Processing,
            "completed" => ScanStatus::Completed,
            "failed" => ScanStatus::Failed,
            other => ScanStatus::Other(other.to_owned()),
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, ScanStatus::Completed | ScanStatus::Failed)
    }
}

/// A scan object as the API sent it, with the response facts that came with it.
#[derive(Clone, Debug)]
pub struct Scan {
    id: String,
    status: ScanStatus,
    json: Value,
    raw: String,
    /// HTTP status of the response that carried it (201 new, 200 cached or GET).
    pub http_status: u16,
    pub request_id: Option<String>,
    /// Answered from the local state store, with no request (`cached()` is true too).
    pub from_store: bool,
}

impl Scan {
    /// Reads a scan object from a response body. The API's examples are the bare object; the
    /// overview speaks of a wrapper, so a `{"data": {...}}` envelope is accepted too.
    pub fn from_body(body: &[u8], http_status: u16, request_id: Option<String>) -> Result<Scan, String> {
        let value: Value = serde_json::from_slice(body).map_err(|e| format!("the body is not JSON ({e})"))?;
        let (json, raw) = match value.get("data") {
            Some(inner) if value.get("id").is_none() && inner.get("id").is_some() => {
                (inner.clone(), inner.to_string())
            }
            _ => (value, String::from_utf8_lossy(body).into_owned()),
        };
        let id = match json.get("id") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            _ => return Err("the scan object has no string 'id'".into()),
        };
        let status = match json.get("status") {
            Some(Value::String(s)) => ScanStatus::parse(s),
            _ => return Err(format!("scan {id} has no string 'status'")),
        };
        Ok(Scan { id, status, json, raw, http_status, request_id, from_store: false })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn status(&self) -> &ScanStatus {
        &self.status
    }

    /// The scan object, parsed.
    pub fn json(&self) -> &Value {
        &self.json
    }

    /// The scan object's text as received.
    pub fn raw_json(&self) -> &str {
        &self.raw
    }

    /// True when POST returned an existing completed scan (or the local store answered). A
    /// missing field means false.
    pub fn cached(&self) -> bool {
        self.from_store || self.json.get("cached").and_then(Value::as_bool).unwrap_or(false)
    }

    /// A string inside the scan object, by RFC 6901 JSON pointer.
    pub fn get_str(&self, pointer: &str) -> Option<&str> {
        self.json.pointer(pointer).and_then(Value::as_str)
    }

    /// For a failed scan: its `error.code`, `error.message` and `error.hint`.
    pub fn failure(&self) -> (Option<&str>, Option<&str>, Option<&str>) {
        (self.get_str("/error/code"), self.get_str("/error/message"), self.get_str("/error/hint"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_parsing_is_tolerant() {
        let s = Scan::from_body(br#"{"id":"scn_1","status":"queued","extra":1}"#, 200, None).unwrap();
        assert_eq!(s.status(), &ScanStatus::Other("queued".into()));
        assert!(!s.cached());
        let s = Scan::from_body(br#"{"data":{"id":"scn_2","status":"completed","cached":true}}"#, 200, None)
            .unwrap();
        assert_eq!(s.id(), "scn_2");
        assert!(s.cached());
        assert!(Scan::from_body(b"{}", 200, None).is_err());
        assert!(Scan::from_body(b"<html>", 200, None).is_err());
        assert!(Scan::from_body(br#"{"id":"scn_3"}"#, 200, None).is_err());
    }
}

//! API errors in the documented envelope `{"error": {code, message, param?, hint?, request_id}}`.

use serde_json::{json, Value};

#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
    pub hint: Option<&'static str>,
    /// Seconds, for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), param: None, hint: None, retry_after: None }
    }

    pub fn param(mut self, param: impl Into<String>) -> ApiError {
        self.param = Some(param.into());
        self
    }

    pub fn hint(mut self, hint: &'static str) -> ApiError {
        self.hint = Some(hint);
        self
    }

    pub fn body(&self, request_id: &str) -> Value {
        let mut error = json!({"code": self.code, "message": self.message, "request_id": request_id});
        if let Some(p) = &self.param {
            error["param"] = json!(p);
        }
        if let Some(h) = self.hint {
            error["hint"] = json!(h);
        }
        json!({ "error": error })
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>, param: impl Into<String>) -> ApiError {
        ApiError::new(400, code, message).param(param)
    }
}

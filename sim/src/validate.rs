//! Validation of POST /scans bodies, in the documented order and with the documented codes.

use serde_json::Value;

use crate::envelope::ApiError;

#[derive(Clone, Debug)]
pub struct CreateRequest {
    pub company_name: String,
    pub company_website: String,
    pub has_questionnaire: bool,
    pub max_age_days: u64,
    pub force_refresh: bool,
    pub include_field_citations: bool,
}

/// Not documented (exona-api.md §2.2): a simulator-only code for bodies that are not JSON
/// objects or hold fields of the wrong type.
const INVALID_REQUEST: &str = "INVALID_REQUEST";

pub fn validate(content_type: Option<&str>, body: &[u8]) -> Result<CreateRequest, ApiError> {
    let is_json = content_type
        .and_then(|c| c.split(';').next())
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(400, INVALID_REQUEST, "Content-Type must be application/json."));
    }
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(400, INVALID_REQUEST, format!("The body is not valid JSON: {e}")))?;
    let Value::Object(body) = body else {
        return Err(ApiError::new(400, INVALID_REQUEST, "The body must be a JSON object."));
    };
    let required = |name: &str| -> Result<String, ApiError> {
        match body.get(name) {
            None | Some(Value::Null) => {
                Err(ApiError::bad_request("MISSING_REQUIRED_FIELD", format!("{name} is required."), name))
            }
            Some(Value::String(s)) if s.trim().is_empty() => Err(ApiError::bad_request(
                "MISSING_REQUIRED_FIELD",
                format!("{name} is required and must not be empty."),
                name,
            )),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(ApiError::bad_request(INVALID_REQUEST, format!("{name} must be a string."), name)),
        }
    };
    let company_name = required("company_name")?;
    let company_website = required("company_website")?;
    if !is_https_url(&company_website) {
        return Err(ApiError::bad_request(
            "INVALID_COMPANY_WEBSITE",
            "company_website must be a valid URL including scheme (e.g. https://acme.com)",
            "company_website",
        )
        .hint("Ensure the URL starts with https:// and points to a publicly accessible website."));
    }
    let max_age_days = match body.get("max_age_days") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|d| d <= 365) => n.as_u64().unwrap_or(0),
        Some(_) => {
            return Err(ApiError::bad_request(
                "INVALID_MAX_AGE_DAYS",
                "max_age_days must be an integer between 0 and 365.",
                "max_age_days",
            ))
        }
    };
    let flag = |name: &str| -> Result<bool, ApiError> {
        match body.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => {
                Err(ApiError::bad_request(INVALID_REQUEST, format!("{name} must be a boolean."), name))
            }
        }
    };
    let force_refresh = flag("force_refresh")?;
    let include_field_citations = flag("include_field_citations")?;
    let has_questionnaire = validate_questionnaire(body.get("questionnaire"))?;
    Ok(CreateRequest {
        company_name,
        company_website,
        has_questionnaire,
        max_age_days,
        force_refresh,
        include_field_citations,
    })
}

fn is_https_url(s: &str) -> bool {
    s.starts_with("https://") && url::Url::parse(s).is_ok_and(|u| u.host_str().is_some_and(|h| !h.is_empty()))
}

/// True when a non-empty questionnaire was given (an empty array counts as absent).
fn validate_questionnaire(q: Option<&Value>) -> Result<bool, ApiError> {
    let items = match q {
        None | Some(Value::Null) => return Ok(false),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ApiError::bad_request(
                INVALID_REQUEST,
                "questionnaire must be an array.",
                "questionnaire",
            ))
        }
    };
    let too_large = |why: String| ApiError::bad_request("QUESTIONNAIRE_TOO_LARGE", why, "questionnaire");
    if items.len() > 50 {
        return Err(too_large(format!("questionnaire has {} items; at most 50 are allowed.", items.len())));
    }
    let mut total = 0;
    for (i, item) in items.iter().enumerate() {
        for field in ["question", "answer"] {
            match item.get(field) {
                Some(Value::String(_)) => {}
                None | Some(Value::Null) => {
                    return Err(ApiError::bad_request(
                        "MISSING_REQUIRED_FIELD",
                        format!("questionnaire[{i}].{field} is required."),
                        format!("questionnaire[{i}].{field}"),
                    ))
                }
                Some(_) => {
                    return Err(ApiError::bad_request(
                        INVALID_REQUEST,
                        format!("questionnaire[{i}].{field} must be a string."),
                        format!("questionnaire[{i}].{field}"),
                    ))
                }
            }
        }
        let chars = item["answer"].as_str().map_or(0, |a| a.chars().count());
        if chars > 5_000 {
            return Err(too_large(format!(
                "questionnaire[{i}].answer has {chars} characters; at most 5000 are allowed."
            )));
        }
        total += chars;
    }
    if total > 20_000 {
        return Err(too_large(format!(
            "questionnaire answers total {total} characters; at most 20000 are allowed."
        )));
    }
    Ok(!items.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(body: &str) -> Result<CreateRequest, ApiError> {
        validate(Some("application/json"), body.as_bytes())
    }

    #[test]
    fn documented_codes() {
        assert!(v(r#"{"company_name":"A","company_website":"https://a.ai"}"#).is_ok());
        let e = v(r#"{"company_website":"https://a.ai"}"#).unwrap_err();
        assert_eq!((e.code, e.param.as_deref()), ("MISSING_REQUIRED_FIELD", Some("company_name")));
        let e = v(r#"{"company_name":"A","company_website":"http://a.ai"}"#).unwrap_err();
        assert_eq!(e.code, "INVALID_COMPANY_WEBSITE");
        for bad in ["366", "1.5", "true", "\"3\"", "-1"] {
            let e = v(&format!(
                r#"{{"company_name":"A","company_website":"https://a.ai","max_age_days":{bad}}}"#
            ))
            .unwrap_err();
            assert_eq!(e.code, "INVALID_MAX_AGE_DAYS", "{bad}");
        }
        let items = vec![r#"{"question":"q","answer":"a"}"#; 51].join(",");
        let e = v(&format!(
            r#"{{"company_name":"A","company_website":"https://a.ai","questionnaire":[{items}]}}"#
        ))
        .unwrap_err();
        assert_eq!(e.code, "QUESTIONNAIRE_TOO_LARGE");
        let e =
            v(r#"{"company_name":"A","company_website":"https://a.ai","questionnaire":[{"question":"q"}]}"#)
                .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("questionnaire[0].answer"));
        assert_eq!(validate(Some("text/plain"), b"{}").unwrap_err().status, 400);
    }
}

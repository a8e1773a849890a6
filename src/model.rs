//! The request a caller builds: its fields, validation, normalization and JSON body.

use serde_json::{json, Map, Value};

use crate::error::Error;

/// Documented limits of POST /scans (exona-api.md §4.2, §9), checked before any request.
pub const MAX_AGE_DAYS: u32 = 365;
pub const MAX_QUESTIONS: usize = 50;
pub const MAX_ANSWER_CHARS: usize = 5_000;
/// Counted over answers only: the docs do not say whether questions count, and rejecting
/// what the server might accept would be worse than letting the server decide.
pub const MAX_TOTAL_ANSWER_CHARS: usize = 20_000;
/// Local caps of our own (the API's docs name none): far above any real company's name or
/// home page, low enough that a runaway buffer is refused before it costs a request.
pub const MAX_COMPANY_NAME_CHARS: usize = 500;
pub const MAX_WEBSITE_CHARS: usize = 2_048;

/// One questionnaire item: a question from the insured's application and its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub question: String,
    pub answer: String,
}

/// Everything POST /scans accepts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanRequest {
    pub company_name: String,
    pub company_website: String,
    pub questionnaire: Vec<Question>,
    /// `None` omits the field (the API then always creates a new scan).
    pub max_age_days: Option<u32>,
    pub force_refresh: bool,
    pub include_field_citations: bool,
}

impl ScanRequest {
    pub fn new(company_name: impl Into<String>, company_website: impl Into<String>) -> Self {
        ScanRequest {
            company_name: company_name.into(),
            company_website: company_website.into(),
            ..Default::default()
        }
    }

    /// Checks what the API documents, so a bad request costs no request from the budget.
    pub fn validate(&self) -> Result<(), Error> {
        self.normalized().map(|_| ())
    }

    /// The request as it is sent: checked, with the website's scheme and host lower-cased.
    pub fn normalized(&self) -> Result<ScanRequest, Error> {
        if self.company_name.trim().is_empty() {
            return Err(Error::invalid_argument("company_name must not be empty"));
        }
        let chars = self.company_name.chars().count();
        if chars > MAX_COMPANY_NAME_CHARS {
            return Err(Error::invalid_argument(format!(
                "company_name has {chars} characters: at most {MAX_COMPANY_NAME_CHARS} are allowed"
            )));
        }
        let company_website = normalize_website(&self.company_website)?;
        if let Some(days) = self.max_age_days {
            validate_max_age_days(days)?;
        }
        validate_questionnaire(&self.questionnaire)?;
        Ok(ScanRequest { company_website, ..self.clone() })
    }

    /// The JSON body of POST /scans. Optional fields at their defaults are left out.
    pub fn to_json(&self) -> Value {
        let mut body = Map::new();
        body.insert("company_name".into(), json!(self.company_name));
        body.insert("company_website".into(), json!(self.company_website));
        if !self.questionnaire.is_empty() {
            let items: Vec<Value> = self
                .questionnaire
                .iter()
                .map(|q| json!({"question": q.question, "answer": q.answer}))
                .collect();
            body.insert("questionnaire".into(), Value::Array(items));
        }
        if let Some(days) = self.max_age_days {
            body.insert("max_age_days".into(), json!(days));
        }
        if self.force_refresh {
            body.insert("force_refresh".into(), json!(true));
        }
        if self.include_field_citations {
            body.insert("include_field_citations".into(), json!(true));
        }
        Value::Object(body)
    }
}

/// `company_website` must be an https URL with a host (exona-api.md §4.2).
pub fn validate_website(website: &str) -> Result<(), Error> {
    normalize_website(website).map(|_| ())
}

/// Checks `company_website` strictly and returns it with its scheme and host lower-cased.
///
/// Strict where a lenient URL parser would guess: `" https://acme.ai"`, `"https:acme.ai"`,
/// `"https:///acme.ai"`, `"https://acme .ai"` and CR/LF are refused here instead of costing a
/// request that the API answers 400. The host is a domain with a dot, or an IP literal.
pub fn normalize_website(website: &str) -> Result<String, Error> {
    let bad = |why: &str| {
        Error::invalid_argument(format!(
            "company_website {why}: it must be an https:// URL such as https://acme.ai"
        ))
    };
    if website.is_empty() {
        return Err(bad("is empty"));
    }
    let chars = website.chars().count();
    if chars > MAX_WEBSITE_CHARS {
        return Err(bad(&format!("has {chars} characters (at most {MAX_WEBSITE_CHARS})")));
    }
    if let Some((at, c)) = website.char_indices().find(|(_, c)| c.is_whitespace() || c.is_control()) {
        return Err(bad(&format!("holds {c:?} at byte {at} (no spaces or control characters)")));
    }
    let Some(rest) = website.get(..8).filter(|p| p.eq_ignore_ascii_case("https://")).map(|_| &website[8..])
    else {
        let scheme = website.split_once(':').map_or(website, |(s, _)| s);
        return Err(bad(&format!("does not start with https:// (it starts with {:?})", scheme)));
    };
    if rest.starts_with('/') || rest.starts_with('\\') {
        return Err(bad("has more than two slashes after https:"));
    }
    let url = url::Url::parse(website).map_err(|e| bad(&format!("is not a valid URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("holds a user name or password"));
    }
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let labels: Vec<&str> = d.strip_suffix('.').unwrap_or(d).split('.').collect();
            if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
                return Err(bad(&format!("has the host {d:?}, which is not a domain name such as acme.ai")));
            }
        }
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {}
        None => return Err(bad("has no host")),
    }
    // Lower-case the scheme and the authority (host and port); the path is the site's own.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Ok(format!("https://{}{}", rest[..end].to_ascii_lowercase(), &rest[end..]))
}

pub fn validate_max_age_days(days: u32) -> Result<(), Error> {
    if days > MAX_AGE_DAYS {
        return Err(Error::invalid_argument(format!(
            "max_age_days is {days}: it must be between 0 and {MAX_AGE_DAYS}"
        )));
    }
    Ok(())
}

/// The limits that one more item could break (count, answer length).
pub fn validate_question(index: usize, question: &Question) -> Result<(), Error> {
    if index >= MAX_QUESTIONS {
        return Err(Error::invalid_argument(format!(
            "questionnaire holds at most {MAX_QUESTIONS} questions; question {} is one too many",
            index + 1
        )));
    }
    let chars = question.answer.chars().count();
    if chars > MAX_ANSWER_CHARS {
        return Err(Error::invalid_argument(format!(
            "answer of question {} has {chars} characters: at most {MAX_ANSWER_CHARS} are allowed",
            index + 1
        )));
    }
    Ok(())
}

/// Every documented questionnaire limit, including the total, which only the whole list shows.
pub fn validate_questionnaire(questions: &[Question]) -> Result<(), Error> {
    for (i, q) in questions.iter().enumerate() {
        validate_question(i, q)?;
    }
    let total: usize = questions.iter().map(|q| q.answer.chars().count()).sum();
    if total > MAX_TOTAL_ANSWER_CHARS {
        return Err(Error::invalid_argument(format!(
            "questionnaire answers total {total} characters: at most {MAX_TOTAL_ANSWER_CHARS} are allowed"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> ScanRequest {
        ScanRequest::new("Acme AI Ltd", "https://acme.ai")
    }

    #[test]
    fn website_rules() {
        assert!(validate_website("https://acme.ai").is_ok());
        assert!(validate_website("https://acme.ai/about?x=1").is_ok());
        for bad in ["", "acme.ai", "http://acme.ai", "ftp://acme.ai", "https://", "not a url"] {
            let err = validate_website(bad).unwrap_err();
            assert!(err.message.contains("company_website"), "{bad}: {}", err.message);
        }
    }

    #[test]
    fn malformed_websites_cost_no_request() {
        let long = format!("https://acme.ai/{}", "a".repeat(MAX_WEBSITE_CHARS));
        for bad in [
            " https://acme.ai",
            "https://acme.ai ",
            "https:acme.ai",
            "https:///acme.ai",
            "https://acme .ai",
            "https://acme.ai\r\nX-Evil: 1",
            "https://acme.ai\n",
            "https://\tacme.ai",
            "https://localhost",
            "https://acme..ai",
            "https://user:pw@acme.ai",
            "https:\\\\acme.ai",
            long.as_str(),
        ] {
            let err = normalize_website(bad).unwrap_err();
            assert_eq!(err.code, crate::error::Code::InvalidArgument, "{bad:?}");
            assert!(err.message.starts_with("company_website"), "{bad:?}: {}", err.message);
        }
    }

    #[test]
    fn websites_are_normalized_where_unambiguous() {
        assert_eq!(normalize_website("HTTPS://Acme.AI/About?Q=1").unwrap(), "https://acme.ai/About?Q=1");
        assert_eq!(normalize_website("https://acme.ai").unwrap(), "https://acme.ai");
        assert_eq!(normalize_website("https://ACME.ai:8443").unwrap(), "https://acme.ai:8443");
        assert_eq!(normalize_website("https://127.0.0.1/x").unwrap(), "https://127.0.0.1/x");
        assert_eq!(normalize_website("https://[::1]/").unwrap(), "https://[::1]/");
        let r = ScanRequest::new("Acme", "HTTPS://ACME.AI").normalized().unwrap();
        assert_eq!(r.company_website, "https://acme.ai");
        let long_name = ScanRequest::new("n".repeat(MAX_COMPANY_NAME_CHARS + 1), "https://acme.ai");
        assert!(long_name.validate().unwrap_err().message.contains("company_name"));
    }

    #[test]
    fn questionnaire_limits() {
        let q = |n: usize| Question { question: "q".into(), answer: "a".repeat(n) };
        assert!(validate_questionnaire(&vec![q(10); 50]).is_ok());
        assert!(validate_questionnaire(&vec![q(10); 51]).is_err());
        assert!(validate_questionnaire(&[q(5_000)]).is_ok());
        assert!(validate_questionnaire(&[q(5_001)]).is_err());
        assert!(validate_questionnaire(&vec![q(5_000); 4]).is_ok());
        let err = validate_questionnaire(&[q(5_000), q(5_000), q(5_000), q(5_000), q(1)]).unwrap_err();
        assert!(err.message.contains("20000"), "{}", err.message);
        // Characters, not bytes: 5,000 two-byte characters are within the limit.
        assert!(
            validate_questionnaire(&[Question { question: "q".into(), answer: "é".repeat(5_000) }]).is_ok()
        );
    }

    #[test]
    fn body_leaves_defaults_out() {
        let body = valid().to_json();
        assert_eq!(body, json!({"company_name": "Acme AI Ltd", "company_website": "https://acme.ai"}));
        let mut full = valid();
        full.max_age_days = Some(0);
        full.force_refresh = true;
        full.include_field_citations = true;
        full.questionnaire.push(Question { question: "Q?".into(), answer: "A".into() });
        let body = full.to_json();
        assert_eq!(body["max_age_days"], 0);
        assert_eq!(body["force_refresh"], true);
        assert_eq!(body["include_field_citations"], true);
        assert_eq!(body["questionnaire"][0]["answer"], "A");
    }
}

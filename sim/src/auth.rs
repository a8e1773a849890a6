//! `Authorization: Bearer exo_(live|test)_<36 alphanumerics>` (exona-api.md §3).

use crate::config::Config;
use crate::envelope::ApiError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub key: String,
    pub test: bool,
}

pub fn authenticate(header: Option<&str>, config: &Config) -> Result<Key, ApiError> {
    let Some(header) = header else {
        return Err(ApiError::new(401, "AUTHENTICATION_REQUIRED", "No API key was sent.")
            .hint("Send the header Authorization: Bearer <key>."));
    };
    let invalid = || {
        ApiError::new(401, "INVALID_API_KEY", "The API key provided is invalid or has been revoked.")
            .hint("Check the key in the Developers dashboard at platform.exonalab.com/developers.")
    };
    let key = header.strip_prefix("Bearer ").ok_or_else(invalid)?.trim();
    let (test, secret) = if let Some(s) = key.strip_prefix("exo_test_") {
        (true, s)
    } else if let Some(s) = key.strip_prefix("exo_live_") {
        (false, s)
    } else {
        return Err(invalid());
    };
    if secret.len() != 36 || !secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid());
    }
    if config.revoked_keys.iter().any(|k| k == key) {
        return Err(invalid());
    }
    if config.forbidden_keys.iter().any(|k| k == key) {
        return Err(ApiError::new(403, "FORBIDDEN_IP", "This IP address is not on the API key's allowlist.")
            .hint("Add this IP to the key's allowlist."));
    }
    Ok(Key { key: key.to_owned(), test })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "exo_test_abcdefghijklmnopqrstuvwxyz0123456789";

    #[test]
    fn key_shapes() {
        let c = Config::default();
        assert!(authenticate(Some(&format!("Bearer {GOOD}")), &c).unwrap().test);
        assert_eq!(authenticate(None, &c).unwrap_err().code, "AUTHENTICATION_REQUIRED");
        for bad in [
            "Token x",
            "Bearer exo_test_short",
            "Bearer exo_prod_abcdefghijklmnopqrstuvwxyz0123456789",
            "Bearer ",
        ] {
            assert_eq!(authenticate(Some(bad), &c).unwrap_err().code, "INVALID_API_KEY", "{bad}");
        }
        let c = Config { forbidden_keys: vec![GOOD.into()], ..Config::default() };
        assert_eq!(authenticate(Some(&format!("Bearer {GOOD}")), &c).unwrap_err().status, 403);
    }
}

//! `company_website` values of any shape: validation never panics, and what it accepts is a
//! normalized https URL without whitespace or control characters that validates to itself.
#![no_main]

use exona::fuzzing::normalize_website;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(n) = normalize_website(text) {
        assert!(n.starts_with("https://"), "{n:?}");
        assert!(!n.chars().any(|c| c.is_whitespace() || c.is_control()), "{n:?}");
        assert_eq!(normalize_website(&n).ok().as_deref(), Some(n.as_str()), "normalizing twice changes {text:?}");
    }
});

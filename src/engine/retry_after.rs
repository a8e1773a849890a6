//! `Retry-After` and `X-RateLimit-Reset`: what the server says about when to come back.
//!
//! `Retry-After` may be delta-seconds (`47`), decimal seconds (`0.5`, sent by our simulator
//! and tolerated from others), or an HTTP date in any of the three forms of RFC 9110
//! (IMF-fixdate, RFC 850, asctime). A date is measured against the response's own `Date`
//! header, so a server whose clock is hours off still means what it says. Anything else,
//! or a time already past, gives `None`: the caller falls back to its own schedule.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Waits are capped here so arithmetic on them never overflows; anything this long is
/// "too long to wait" for every caller.
pub const LONGEST: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parses a `Retry-After` value. `date` is the response's `Date` header; `local_now` is used
/// when it is missing or unreadable.
pub fn parse_retry_after(value: &str, date: Option<&str>, local_now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return parse_seconds(value);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let now = server_now(date, local_now);
    positive(at.duration_since(now).ok()?)
}

/// Parses `X-RateLimit-Reset` (Unix seconds) into the time left until the window resets;
/// zero when it has passed (the header has whole seconds, so "just now" is common).
pub fn parse_reset(value: &str, date: Option<&str>, local_now: SystemTime) -> Option<Duration> {
    let secs: u64 = value.trim().parse().ok()?;
    let at = UNIX_EPOCH.checked_add(Duration::from_secs(secs.min(LONGEST.as_secs() * 100)))?;
    let now = server_now(date, local_now);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO).min(LONGEST))
}

/// How long a 429 asks to wait: its `Retry-After`; else, when the window is spent
/// (`X-RateLimit-Remaining: 0`), until `X-RateLimit-Reset`. `None` when neither says: the
/// caller backs off instead (a reset an hour away is no reason to wait while budget is left).
pub fn rate_limit_wait(h: &crate::transport::Headers, local_now: SystemTime) -> Option<Duration> {
    let date = h.date.as_deref();
    if let Some(d) = h.retry_after.as_deref().and_then(|v| parse_retry_after(v, date, local_now)) {
        return Some(d);
    }
    let spent = h.rate_limit_remaining.as_deref().is_some_and(|r| r.trim() == "0");
    if spent {
        return h
            .rate_limit_reset
            .as_deref()
            .and_then(|v| parse_reset(v, date, local_now))
            .filter(|d| !d.is_zero());
    }
    None
}

fn parse_seconds(value: &str) -> Option<Duration> {
    // Digits with at most one dot, and at least one digit: "5", "0.25", "5." but not "." or "1.2.3".
    if value.matches('.').count() > 1 || !value.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: f64 = value.parse().ok()?;
    let d = Duration::try_from_secs_f64(secs).unwrap_or(LONGEST);
    Some(d.min(LONGEST))
}

fn server_now(date: Option<&str>, local_now: SystemTime) -> SystemTime {
    date.and_then(|d| httpdate::parse_http_date(d.trim()).ok()).unwrap_or(local_now)
}

fn positive(d: Duration) -> Option<Duration> {
    if d.is_zero() {
        None
    } else {
        Some(d.min(LONGEST))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_743_602_000)
    }

    #[test]
    fn delta_and_decimal_seconds() {
        assert_eq!(parse_retry_after("47", None, now()), Some(Duration::from_secs(47)));
        assert_eq!(parse_retry_after(" 10 ", None, now()), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after("0.25", None, now()), Some(Duration::from_millis(250)));
        assert_eq!(parse_retry_after("0", None, now()), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("99999999999999999999999", None, now()), Some(LONGEST));
    }

    #[test]
    fn garbage_is_none() {
        for bad in ["", "-5", "+5", "soon", ".", "1.2.3", "NaN", "inf", "1e3", "5 s", "\u{0}"] {
            assert_eq!(parse_retry_after(bad, None, now()), None, "{bad:?}");
        }
    }

    #[test]
    fn all_three_http_date_forms_against_the_date_header() {
        // The server's clock says 09:00:00; the local clock is two hours ahead and must not matter.
        let date = Some("Thu, 03 Apr 2025 09:00:00 GMT");
        let local = httpdate::parse_http_date("Thu, 03 Apr 2025 11:00:00 GMT").unwrap();
        for value in
            ["Thu, 03 Apr 2025 09:00:30 GMT", "Thursday, 03-Apr-25 09:00:30 GMT", "Thu Apr  3 09:00:30 2025"]
        {
            assert_eq!(parse_retry_after(value, date, local), Some(Duration::from_secs(30)), "{value}");
        }
    }

    #[test]
    fn past_dates_fall_back() {
        let date = Some("Thu, 03 Apr 2025 09:00:00 GMT");
        assert_eq!(parse_retry_after("Thu, 03 Apr 2025 08:00:00 GMT", date, now()), None);
        assert_eq!(parse_retry_after("Thu, 03 Apr 2025 09:00:00 GMT", date, now()), None);
    }

    #[test]
    fn reset_is_relative_to_the_server_clock() {
        let date = httpdate::fmt_http_date(now());
        assert_eq!(parse_reset("1743602060", Some(&date), now()), Some(Duration::from_secs(60)));
        assert_eq!(parse_reset("1743601000", Some(&date), now()), Some(Duration::ZERO));
        assert_eq!(parse_reset("garbage", None, now()), None);
        assert!(parse_reset("18446744073709551615", None, now()).is_some());
    }
}

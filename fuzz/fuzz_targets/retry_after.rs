//! `Retry-After` and `X-RateLimit-Reset` values and `Date` headers of any shape: parsing never
//! panics, and every wait it yields is finite and at most the documented cap.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use exona::fuzzing::{parse_reset, parse_retry_after, LONGEST};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (value, date) = text.split_once('\n').unwrap_or((&text, ""));
    let now = UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    for date in [None, Some(date)] {
        if let Some(d) = parse_retry_after(value, date, now) {
            // "0" (or a fraction under a nanosecond) is a valid delta: come back now.
            assert!(d <= LONGEST, "{value:?} gave {d:?}");
        }
        if let Some(d) = parse_reset(value, date, now) {
            assert!(d <= LONGEST, "{value:?} gave {d:?}");
        }
    }
    let _ = SystemTime::now();
});

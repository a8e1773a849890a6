//! Any response body with any status: decoding it as a scan or an error envelope never
//! panics, and the key never survives scrubbing.
#![no_main]

use exona::fuzzing::{decode_error, decode_scan, Redactor};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "exo_test_fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz";

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = 100 + u16::from_le_bytes([data[0], data[1]]) % 500;
    let body = &data[2..];
    let _ = decode_scan(status, body);
    let e = decode_error(status, body);
    assert!(!e.message.is_empty());
    let scrubbed = Redactor::new(KEY).scrub_bytes(body);
    assert!(!scrubbed.windows(12).any(|w| KEY.as_bytes().windows(12).any(|k| k == w)));
});

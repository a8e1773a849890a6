//! Property tests: the parsers, decoders and validators fed arbitrary input. They must never
//! panic, and must agree with simple oracles. proptest shrinks any failure and records it in
//! tests/properties.proptest-regressions, which is committed and replayed first thereafter.

use std::ffi::{CStr, CString};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use exona::ffi::result::*;
use exona::model::{
    validate_questionnaire, Question, MAX_ANSWER_CHARS, MAX_QUESTIONS, MAX_TOTAL_ANSWER_CHARS,
};
use exona::retry_after::{parse_reset, parse_retry_after, LONGEST};
use exona::Scan;
use proptest::prelude::*;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_780_000_000)
}

/// Arbitrary JSON, nested a little.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-z_/~0-9]{0,8}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Scan-shaped JSON with arbitrary parts, so decoding gets past the id and status checks.
fn scan_json() -> impl Strategy<Value = serde_json::Value> {
    (
        json(),
        json(),
        prop::option::of("[a-z_0-9]{1,12}"),
        prop::option::of("processing|completed|failed|.{0,6}"),
    )
        .prop_map(|(result, extra, id, status)| {
            let mut v = serde_json::json!({"result": result, "extra": extra});
            if let Some(id) = id {
                v["id"] = id.into();
            }
            if let Some(s) = status {
                v["status"] = s.into();
            }
            v
        })
}

proptest! {
    #[test]
    fn retry_after_never_panics(value in ".{0,40}", date in prop::option::of(".{0,40}")) {
        if let Some(d) = parse_retry_after(&value, date.as_deref(), now()) {
            prop_assert!(d <= LONGEST);
        }
    }

    #[test]
    fn retry_after_reads_whole_and_decimal_seconds(secs in 0u64..1_000_000, millis in 0u32..1000) {
        prop_assert_eq!(parse_retry_after(&secs.to_string(), None, now()), Some(Duration::from_secs(secs)));
        let decimal = format!("{secs}.{millis:03}");
        let d = parse_retry_after(&decimal, None, now()).unwrap();
        let expected = secs as f64 + millis as f64 / 1000.0;
        prop_assert!((d.as_secs_f64() - expected).abs() < 1e-6);
    }

    #[test]
    fn retry_after_dates_are_measured_on_the_server_clock(ahead in 1u64..100_000, skew in 0u64..86_400) {
        let server_now = now() + Duration::from_secs(skew);
        let date = httpdate::fmt_http_date(server_now);
        let at = httpdate::fmt_http_date(server_now + Duration::from_secs(ahead));
        // The local clock is `skew` behind; only the server's Date header counts.
        prop_assert_eq!(parse_retry_after(&at, Some(&date), now()), Some(Duration::from_secs(ahead)));
    }

    #[test]
    fn rate_limit_reset_never_panics(value in ".{0,30}", n in any::<u64>()) {
        let _ = parse_reset(&value, None, now());
        let _ = parse_reset(&n.to_string(), Some("garbage"), now());
    }

    #[test]
    fn scan_decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200), value in scan_json()) {
        let _ = Scan::from_body(&bytes, 200, None);
        if let Ok(scan) = Scan::from_body(value.to_string().as_bytes(), 200, None) {
            prop_assert!(!scan.id().is_empty());
            prop_assert_eq!(Some(scan.id()), value["id"].as_str());
        }
    }

    #[test]
    fn pointer_accessors_never_panic_and_stay_stable(value in scan_json(), pointers in prop::collection::vec(".{0,16}", 1..8)) {
        let Ok(scan) = Scan::from_body(value.to_string().as_bytes(), 200, None) else { return Ok(()) };
        let result = Box::into_raw(Box::new(exona_result::from_scan(&scan)));
        for p in &pointers {
            let Ok(c) = CString::new(p.as_str()) else { continue };
            let first = exona_result_get_string(result, c.as_ptr());
            let second = exona_result_get_string(result, c.as_ptr());
            prop_assert_eq!(first, second, "the same pointer for the same question");
            let expected = value.pointer(p).and_then(|v| v.as_str()).filter(|s| !s.contains('\0'));
            let got = (!first.is_null()).then(|| unsafe { CStr::from_ptr(first) }.to_str().unwrap().to_owned());
            prop_assert_eq!(got.as_deref(), expected);
            let mut n = 0i64;
            let code = exona_result_get_int(result, c.as_ptr(), &mut n);
            let expected_int = value.pointer(p).and_then(|v| v.as_i64());
            prop_assert_eq!(code == exona::ffi::codes::exona_code::EXONA_OK, expected_int.is_some());
            if let Some(e) = expected_int { prop_assert_eq!(n, e); }
        }
        exona_result_free(result);
    }

    #[test]
    fn questionnaire_validation_matches_the_documented_limits(answers in prop::collection::vec(0usize..6_000, 0..60), wide in any::<bool>()) {
        let ch = if wide { "é" } else { "a" };
        let questions: Vec<Question> = answers.iter().map(|&n| Question { question: "q".into(), answer: ch.repeat(n) }).collect();
        let ok = answers.len() <= MAX_QUESTIONS
            && answers.iter().all(|&n| n <= MAX_ANSWER_CHARS)
            && answers.iter().sum::<usize>() <= MAX_TOTAL_ANSWER_CHARS;
        prop_assert_eq!(validate_questionnaire(&questions).is_ok(), ok);
    }
}

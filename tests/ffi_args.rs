//! The C surface's argument checks, called as C would call them: NULLs, invalid UTF-8,
//! out-of-range numbers. Each gets its documented code and sends nothing.

use std::ffi::{c_char, CStr, CString};
use std::ptr::{null, null_mut};

use exona::ffi::cancel::*;
use exona::ffi::client::*;
use exona::ffi::client_options::*;
use exona::ffi::codes::exona_code::{self, *};
use exona::ffi::codes::*;
use exona::ffi::result::*;
use exona::ffi::scan::*;
use exona::ffi::scan_options::*;

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn text(p: *const c_char) -> Option<String> {
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

const NOT_UTF8: &[u8] = b"\xff\xfe bad\0";

/// A client that cannot reach anything: argument errors must be caught before sending.
fn offline_client() -> *mut exona_client {
    let key = c("exo_test_abcdefghijklmnopqrstuvwxyz0123456789");
    let url = c("http://127.0.0.1:9/api/v1");
    let client = exona_client_new(key.as_ptr(), url.as_ptr());
    assert!(!client.is_null());
    client
}

fn expect(code: exona_code, result: *mut exona_result, expected: exona_code, names: &str) {
    assert_eq!(code, expected);
    assert_eq!(exona_result_code(result), expected);
    let message = text(exona_result_message(result)).unwrap_or_default();
    assert!(message.contains(names), "message {message:?} should name {names}");
    assert!(exona_result_scan_id(result).is_null());
    assert_eq!(exona_result_http_status(result), 0, "no request was sent");
    exona_result_free(result);
}

#[test]
fn scan_calls_name_the_bad_argument() {
    let client = offline_client();
    let name = c("Acme");
    let site = c("https://acme.ai");
    let mut out = null_mut();
    let rc = exona_scan_and_wait(null_mut(), name.as_ptr(), site.as_ptr(), null(), &mut out);
    expect(rc, out, EXONA_ERR_INVALID_ARGUMENT, "client");
    let rc = exona_scan_and_wait(client, null(), site.as_ptr(), null(), &mut out);
    expect(rc, out, EXONA_ERR_INVALID_ARGUMENT, "company_name");
    let rc = exona_scan_and_wait(client, name.as_ptr(), null(), null(), &mut out);
    expect(rc, out, EXONA_ERR_INVALID_ARGUMENT, "company_website");
    let rc = exona_scan_and_wait(client, NOT_UTF8.as_ptr().cast(), site.as_ptr(), null(), &mut out);
    expect(rc, out, EXONA_ERR_INVALID_ARGUMENT, "company_name is not valid UTF-8");
    let http = c("http://acme.ai");
    let rc = exona_scan_and_wait(client, name.as_ptr(), http.as_ptr(), null(), &mut out);
    expect(rc, out, EXONA_ERR_INVALID_ARGUMENT, "company_website");
    let rc = exona_scan_create(client, name.as_ptr(), null(), null(), &mut out);
    expect(rc, out, EXONA_ERR_INVALID_ARGUMENT, "company_website");
    let rc = exona_scan_get(client, null(), &mut out);
    expect(rc, out, EXONA_ERR_INVALID_ARGUMENT, "scan_id");
    let rc = exona_scan_wait(client, NOT_UTF8.as_ptr().cast(), null(), &mut out);
    expect(rc, out, EXONA_ERR_INVALID_ARGUMENT, "scan_id");
    // out may be NULL: the code still comes back.
    assert_eq!(exona_scan_and_wait(client, null(), null(), null(), null_mut()), EXONA_ERR_INVALID_ARGUMENT);
    exona_client_free(client);
}

#[test]
fn options_refuse_bad_values_and_stay_unchanged() {
    let o = exona_scan_options_new();
    assert_eq!(exona_scan_options_set_max_age_days(o, 365), EXONA_OK);
    assert_eq!(exona_scan_options_set_max_age_days(o, 400), EXONA_ERR_INVALID_ARGUMENT);
    assert_eq!(exona_scan_options_set_max_age_days(null_mut(), 1), EXONA_ERR_INVALID_ARGUMENT);
    assert_eq!(exona_scan_options_set_timeout_ms(o, 0), EXONA_ERR_INVALID_ARGUMENT);
    assert_eq!(exona_scan_options_set_timeout_ms(o, u64::MAX), EXONA_OK);
    assert_eq!(exona_scan_options_set_expected_duration_ms(o, 5, 1), EXONA_ERR_INVALID_ARGUMENT);
    assert_eq!(exona_scan_options_set_force_refresh(null_mut(), true), EXONA_ERR_INVALID_ARGUMENT);
    assert_eq!(exona_scan_options_set_include_field_citations(o, true), EXONA_OK);
    let (q, a) = (c("Does the AI decide alone?"), c("No"));
    for _ in 0..50 {
        assert_eq!(exona_scan_options_add_question(o, q.as_ptr(), a.as_ptr()), EXONA_OK);
    }
    assert_eq!(
        exona_scan_options_add_question(o, q.as_ptr(), a.as_ptr()),
        EXONA_ERR_INVALID_ARGUMENT,
        "the 51st"
    );
    assert_eq!(exona_scan_options_add_question(o, null(), a.as_ptr()), EXONA_ERR_INVALID_ARGUMENT);
    assert_eq!(
        exona_scan_options_add_question(o, q.as_ptr(), NOT_UTF8.as_ptr().cast()),
        EXONA_ERR_INVALID_ARGUMENT
    );
    assert_eq!(exona_scan_options_set_thrift_permille(o, 250), EXONA_OK);
    for bad in [1001, -2, i32::MIN, i32::MAX] {
        assert_eq!(exona_scan_options_set_thrift_permille(o, bad), EXONA_ERR_INVALID_ARGUMENT, "{bad}");
    }
    assert_eq!(exona_scan_options_set_thrift_permille(null_mut(), 0), EXONA_ERR_INVALID_ARGUMENT);
    let opts = unsafe { &*o };
    assert_eq!(opts.request.max_age_days, Some(365), "a refused value leaves the old one");
    assert_eq!(opts.request.questionnaire.len(), 50);
    assert_eq!(opts.wait.thrift, Some(0.25), "a refused thrift leaves the old one");
    assert_eq!(exona_scan_options_set_thrift_permille(o, -1), EXONA_OK);
    assert_eq!(unsafe { &*o }.wait.thrift, None, "-1 leaves the choice to the mode");
    exona_scan_options_free(o);
    exona_scan_options_free(null_mut());

    let o = exona_scan_options_new();
    let long = c(&"x".repeat(5_001));
    assert_eq!(exona_scan_options_add_question(o, q.as_ptr(), long.as_ptr()), EXONA_ERR_INVALID_ARGUMENT);
    exona_scan_options_free(o);
}

#[test]
fn the_total_answer_length_is_checked_at_the_call() {
    let client = offline_client();
    let o = exona_scan_options_new();
    let (q, a) = (c("q"), c(&"a".repeat(4_500)));
    for _ in 0..5 {
        assert_eq!(exona_scan_options_add_question(o, q.as_ptr(), a.as_ptr()), EXONA_OK);
    }
    let (name, site) = (c("Acme"), c("https://acme.ai"));
    let mut out = null_mut();
    let rc = exona_scan_and_wait(client, name.as_ptr(), site.as_ptr(), o, &mut out);
    expect(rc, out, EXONA_ERR_INVALID_ARGUMENT, "20000");
    exona_scan_options_free(o);
    exona_client_free(client);
}

const GOOD_KEY: &[u8] = b"exo_test_abcdefghijklmnopqrstuvwxyz0123456789\0";

#[test]
fn client_constructors_say_why() {
    let url = c("http://127.0.0.1:9/api/v1");
    let cases: Vec<(Option<&[u8]>, Option<&[u8]>, &str)> = vec![
        (Some(b"\0"), Some(b"http://127.0.0.1:9/api/v1\0"), "api_key is empty"),
        (Some(b"exo_test_a\r\nX: y\0"), Some(b"http://127.0.0.1:9/api/v1\0"), "api_key"),
        (Some(NOT_UTF8), Some(b"http://127.0.0.1:9/api/v1\0"), "api_key is not valid UTF-8"),
        (Some(GOOD_KEY), Some(b"http://example.com/api/v1\0"), "http://"),
        (Some(GOOD_KEY), Some(b"not a url\0"), "base_url"),
        (Some(b"exo_test_x\0"), Some(b"http://127.0.0.1:9/api/v1\0"), "shape of an Exona key"),
    ];
    for (key, base, names) in cases {
        let key = key.map_or(null(), |k| k.as_ptr().cast());
        let base = base.map_or(null(), |b| b.as_ptr().cast());
        assert!(exona_client_new(key, base).is_null());
        let mut client = 1 as *mut exona_client;
        let mut err = null_mut();
        assert_eq!(exona_client_create(key, base, &mut client, &mut err), EXONA_ERR_INVALID_ARGUMENT);
        assert!(client.is_null());
        let message = text(exona_result_message(err)).unwrap();
        assert!(message.contains(names), "{message:?} should name {names}");
        assert!(!message.contains("X: y"));
        exona_result_free(err);
    }
    let key = c("exo_test_abcdefghijklmnopqrstuvwxyz0123456789");
    assert_eq!(
        exona_client_create(key.as_ptr(), url.as_ptr(), null_mut(), null_mut()),
        EXONA_ERR_INVALID_ARGUMENT
    );
    let mut client = null_mut();
    let mut err = 1 as *mut exona_result;
    assert_eq!(exona_client_create(key.as_ptr(), url.as_ptr(), &mut client, &mut err), EXONA_OK);
    assert!(err.is_null() && !client.is_null());
    exona_client_free(client);
    exona_client_free(null_mut());
}

#[test]
fn accessors_accept_null() {
    assert_eq!(exona_result_code(null()), EXONA_ERR_INVALID_ARGUMENT);
    assert!(exona_result_message(null()).is_null());
    assert!(exona_result_scan_id(null()).is_null());
    assert!(exona_result_json(null()).is_null());
    assert!(exona_result_get_string(null(), c("/id").as_ptr()).is_null());
    assert!(exona_result_error_code(null()).is_null());
    assert!(exona_result_hint(null()).is_null());
    assert!(exona_result_param(null()).is_null());
    assert!(exona_result_request_id(null()).is_null());
    assert!(!exona_result_cached(null()));
    assert_eq!(exona_result_http_status(null()), 0);
    assert_eq!(exona_result_retry_after_ms(null()), 0);
    let mut v = 7;
    assert_eq!(exona_result_get_int(null(), c("/x").as_ptr(), &mut v), EXONA_ERR_INVALID_ARGUMENT);
    assert_eq!(v, 7);
    exona_result_free(null_mut());
    assert_eq!(exona_cancel(null()), EXONA_ERR_INVALID_ARGUMENT);
    assert!(!exona_cancel_is_cancelled(null()));
    exona_cancel_free(null_mut());
    assert_eq!(text(exona_version()).unwrap().split('+').next(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(text(exona_code_name(-3)).unwrap(), "EXONA_ERR_UNKNOWN");
}

#[test]
fn cancel_tokens_outlive_their_handle_inside_options() {
    let token = exona_cancel_new();
    let o = exona_scan_options_new();
    assert_eq!(exona_scan_options_set_cancel(o, token), EXONA_OK);
    assert_eq!(exona_cancel(token), EXONA_OK);
    assert!(exona_cancel_is_cancelled(token));
    exona_cancel_free(token);
    assert!(unsafe { &*o }.wait.cancel.as_ref().unwrap().is_cancelled());
    exona_scan_options_free(o);
}

#[test]
fn the_state_url_setter_checks_its_url_and_creation_refuses_a_bad_one_without_its_password() {
    let url = c("postgresql://exona:hunter2-secret@127.0.0.1:1/fleet");
    assert_eq!(exona_client_options_set_state_url(null_mut(), url.as_ptr()), EXONA_ERR_INVALID_ARGUMENT);
    let o = exona_client_options_new();
    assert_eq!(exona_client_options_set_state_url(o, url.as_ptr()), EXONA_OK);
    assert_eq!(exona_client_options_set_state_url(o, c("off").as_ptr()), EXONA_OK);
    assert_eq!(exona_client_options_set_state_url(o, null()), EXONA_OK, "NULL: the environment's");
    assert_eq!(
        exona_client_options_set_state_url(o, c("mysql://exona:hunter2-secret@h/x").as_ptr()),
        EXONA_ERR_INVALID_ARGUMENT
    );
    // A database that is down does not stop the client (it is reached on first use).
    assert_eq!(exona_client_options_set_state_url(o, url.as_ptr()), EXONA_OK);
    let key = c("exo_test_000000000000000000000000000000000042");
    let base = c("http://127.0.0.1:1/api/v1");
    let (mut client, mut err) = (null_mut(), null_mut());
    assert_eq!(
        exona_client_create_with_options(key.as_ptr(), base.as_ptr(), o, &mut client, &mut err),
        EXONA_OK
    );
    exona_client_free(client);
    exona_client_options_free(o);
    // Through the environment, a URL that is not postgresql:// is refused by name.
    let config = exona::ClientConfig {
        state_url: Some(exona::config::StateUrl::new("mysql://exona:hunter2-secret@h/x")),
        ..exona::ClientConfig::new("exo_test_000000000000000000000000000000000042", None)
    };
    let e = config.validate().err().unwrap();
    assert!(e.message.contains("EXONA_STATE_URL") && !e.message.contains("hunter2"), "{}", e.message);
    let shown = format!("{config:?}");
    assert!(!shown.contains("hunter2") && shown.contains("exona:***@h"), "{shown}");
}

//! The API key never appears in what the library says: error messages, hints, Debug output,
//! progress events, results read through the C surface, or the C examples' output.

mod common;

use std::time::Duration;

use common::fast_policy;
use exona::{Client, Code, Error, Progress, Question, ScanRequest, WaitOptions};
use exona_sim::Config;

/// Recognisable, and of the documented shape so the simulator accepts it.
const SECRET: &str = "exo_test_SECRETsecretSECRET1234567890abcdefgh";
/// Any 12 characters of the secret part would be a leak too.
fn leaks(text: &str) -> bool {
    let secret = &SECRET["exo_test_".len()..];
    (0..=secret.len() - 12).any(|i| text.contains(&secret[i..i + 12]))
}

fn everything_about(e: &Error) -> String {
    format!("{e} {e:?} {:?} {:?} {:?}", e.hint, e.message, e.scan.as_ref().map(|s| s.raw_json()))
}

#[test]
fn no_error_path_reveals_the_key() {
    assert_eq!(SECRET.len() - "exo_test_".len(), 36);
    // Every log line at the most verbose level is collected and searched too.
    let logged = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = logged.clone();
    exona::log::set_hook(Some((
        exona::log::Level::Debug,
        Box::new(move |level, line| sink.lock().unwrap().push_str(&format!("{level:?} {line}\n"))),
    )));
    let sim = exona_sim::spawn(Config::fast()).unwrap();
    let limited = exona_sim::spawn(Config { rate_limit: 1, ..Config::fast() }).unwrap();
    let client = Client::with_policy(SECRET, Some(&sim.base_url), fast_policy()).unwrap();
    let mut said = format!("{client:?}");
    let short = WaitOptions { deadline: Some(Duration::from_millis(800)), ..WaitOptions::default() };
    let mut progress_seen = String::new();
    let mut record = |p: &Progress| {
        progress_seen.push_str(&format!("{p:?}"));
        true
    };
    let requests = [
        ScanRequest::new("Acme", "https://acme.ai"),
        ScanRequest::new("Acme", "http://acme.ai"),
        ScanRequest::new("Gone", "https://gone.invalid"),
        ScanRequest::new("Stuck", "https://stuck.acme.ai"),
        ScanRequest::new("Post", "https://post500.acme.ai"),
        ScanRequest::new("Junk", "https://garbage.acme.ai"),
        ScanRequest::new("Gone", "https://vanish.acme.ai"),
        // A server that echoes the Authorization header in every field of its 400.
        ScanRequest::new("Echo", "https://echokey.acme.ai"),
        ScanRequest {
            questionnaire: vec![Question { question: "q".into(), answer: "a".repeat(6000) }; 1],
            ..ScanRequest::new("Q", "https://q.ai")
        },
    ];
    let mut codes = Vec::new();
    for r in &requests {
        match client.scan_and_wait_with_progress(r, &short, &mut record) {
            Ok(scan) => said.push_str(&format!("{scan:?}")),
            Err(e) => {
                codes.push(e.code);
                said.push_str(&everything_about(&e));
            }
        }
    }
    // Unauthenticated, forbidden and unreachable paths.
    for e in [
        client.get_scan("scn_test_unknown").unwrap_err(),
        Client::with_policy(SECRET, Some("http://127.0.0.1:9/api/v1"), fast_policy())
            .unwrap()
            .scan_and_wait(&requests[0], &short)
            .unwrap_err(),
        Client::new(&format!("{SECRET}\r\n"), Some(&sim.base_url)).unwrap_err(),
        Client::new(SECRET, Some("http://example.com/api/v1")).unwrap_err(),
        Client::with_policy(SECRET, Some(&limited.base_url), fast_policy())
            .unwrap()
            .scan_and_wait(&requests[0], &short)
            .unwrap_err(),
    ] {
        codes.push(e.code);
        said.push_str(&everything_about(&e));
    }
    for code in [
        Code::InvalidArgument,
        Code::ScanFailed,
        Code::Timeout,
        Code::AmbiguousCreate,
        Code::NotFound,
        Code::Network,
        Code::Protocol,
        Code::RateLimited,
        Code::BadRequest,
    ] {
        assert!(codes.contains(&code), "{code:?} was not exercised: {codes:?}");
    }
    assert!(!leaks(&said), "the key leaked: {said}");
    assert!(!leaks(&progress_seen), "the key leaked into progress events");
    exona::log::set_hook(None);
    let logged = logged.lock().unwrap();
    assert!(logged.contains("POST /scans -> 201"), "requests are logged at debug level: {logged}");
    assert!(logged.contains("scan call ended"), "call outcomes are logged at info level: {logged}");
    assert!(!leaks(&logged), "the key leaked into the log");
}

#[test]
fn the_key_is_refused_not_echoed_when_it_cannot_be_sent() {
    let e = Client::new("exo_test_\u{7f}SECRETsecretSECRET", Some("http://127.0.0.1:9/api/v1")).unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(!e.message.contains("SECRETsecret"), "{}", e.message);
}

//! The Rust API against exona-sim, over real HTTP: every documented outcome of a scan call.

mod common;

use std::time::Duration;

use common::{client, key, sim, sim_with};
use exona::{Code, Question, ScanRequest, ScanStatus, WaitOptions};
use exona_sim::Config;

fn request(website: &str) -> ScanRequest {
    ScanRequest::new("Acme AI Ltd", website)
}

fn within(ms: u64) -> WaitOptions {
    WaitOptions { deadline: Some(Duration::from_millis(ms)), ..WaitOptions::default() }
}

#[test]
fn a_scan_completes_with_a_risk_assessment() {
    let sim = sim();
    let k = key(1);
    let scan = client(&sim, &k).scan_and_wait(&request("https://acme.ai"), &within(10_000)).unwrap();
    assert_eq!(scan.status(), &ScanStatus::Completed);
    assert!(scan.id().starts_with("scn_test_"), "{}", scan.id());
    let level = scan.get_str("/result/risk_assessment/overall_risk_level").unwrap();
    assert!(["Low", "Medium", "High", "Very High"].contains(&level), "{level}");
    assert!(scan.json()["result"]["risk_assessment"]["autonomy"]["score"].is_u64());
    assert_eq!(scan.http_status, 200);
    assert!(scan.request_id.as_deref().unwrap().starts_with("req_"));
    let stats = sim.stats(&k);
    assert_eq!((stats.posts, stats.scans_created), (1, 1));
}

#[test]
fn a_cache_hit_costs_one_request_and_no_new_scan() {
    let sim = sim();
    let k = key(2);
    let c = client(&sim, &k);
    let first = c.scan_and_wait(&request("https://acme.ai"), &within(10_000)).unwrap();
    let before = sim.stats(&k);
    let mut again = request("https://ACME.ai/");
    again.max_age_days = Some(30);
    let hit = c.scan_and_wait(&again, &within(10_000)).unwrap();
    assert!(hit.cached());
    assert_eq!(hit.id(), first.id());
    assert_eq!(hit.http_status, 200);
    let after = sim.stats(&k);
    assert_eq!(after.posts - before.posts, 1);
    assert_eq!(after.gets, before.gets, "a cache hit needs no poll");
    assert_eq!(after.scans_created, 1);
}

#[test]
fn force_refresh_and_questionnaire_bypass_the_cache() {
    let sim = sim();
    let k = key(3);
    let c = client(&sim, &k);
    c.scan_and_wait(&request("https://acme.ai"), &within(10_000)).unwrap();
    let mut forced = request("https://acme.ai");
    forced.max_age_days = Some(30);
    forced.force_refresh = true;
    assert!(!c.scan_and_wait(&forced, &within(10_000)).unwrap().cached());
    let mut with_q = request("https://acme.ai");
    with_q.max_age_days = Some(30);
    with_q.questionnaire.push(Question { question: "Does the AI decide alone?".into(), answer: "No".into() });
    assert!(!c.scan_and_wait(&with_q, &within(10_000)).unwrap().cached());
    assert_eq!(sim.stats(&k).scans_created, 3);
}

#[test]
fn a_failed_scan_carries_its_code_message_and_id() {
    let sim = sim();
    let e =
        client(&sim, &key(4)).scan_and_wait(&request("https://down.invalid"), &within(10_000)).unwrap_err();
    assert_eq!(e.code, Code::ScanFailed);
    assert_eq!(e.api_code.as_deref(), Some("WEBSITE_UNREACHABLE"));
    assert!(e.message.contains("could not be reached"), "{}", e.message);
    assert!(e.scan_id.as_deref().unwrap().starts_with("scn_test_"));
    assert!(e.scan.is_some());
}

#[test]
fn auth_errors_carry_the_api_code_and_request_id() {
    let revoked = key(5);
    let forbidden = key(6);
    let sim = sim_with(Config {
        revoked_keys: vec![revoked.clone()],
        forbidden_keys: vec![forbidden.clone()],
        ..Config::fast()
    });
    let e = client(&sim, &revoked).scan_and_wait(&request("https://acme.ai"), &within(5_000)).unwrap_err();
    assert_eq!(
        (e.code, e.http_status, e.api_code.as_deref()),
        (Code::Authentication, Some(401), Some("INVALID_API_KEY"))
    );
    assert!(e.request_id.as_deref().unwrap().starts_with("req_"));
    assert!(e.scan_id.is_none());
    // A key of the wrong shape is refused before anything is sent.
    let e = exona::Client::with_policy("exo_test_malformed", Some(&sim.base_url), common::fast_policy())
        .unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(e.message.contains("shape"), "{}", e.message);
    let e = client(&sim, &forbidden).scan_and_wait(&request("https://acme.ai"), &within(5_000)).unwrap_err();
    assert_eq!(
        (e.code, e.http_status, e.api_code.as_deref()),
        (Code::Permission, Some(403), Some("FORBIDDEN_IP"))
    );
}

#[test]
fn invalid_input_is_refused_before_any_request() {
    let sim = sim();
    let k = key(7);
    let c = client(&sim, &k);
    let mut bad = vec![
        request("http://acme.ai"),
        request("acme.ai"),
        request("https://"),
        ScanRequest::new("", "https://acme.ai"),
    ];
    let mut too_old = request("https://acme.ai");
    too_old.max_age_days = Some(400);
    bad.push(too_old);
    let mut too_many = request("https://acme.ai");
    too_many.questionnaire = vec![Question { question: "q".into(), answer: "a".into() }; 51];
    bad.push(too_many);
    let mut too_long = request("https://acme.ai");
    too_long.questionnaire = vec![Question { question: "q".into(), answer: "a".repeat(4_500) }; 5];
    bad.push(too_long);
    for r in &bad {
        let e = c.scan_and_wait(r, &within(5_000)).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument, "{r:?}");
        let named = ["company_website", "company_name", "max_age_days", "questionnaire"];
        assert!(named.iter().any(|n| e.message.contains(n)), "{}", e.message);
    }
    assert_eq!(sim.stats(&k), Default::default(), "no request may be sent");
}

#[test]
fn get_retries_through_server_errors() {
    let sim = sim();
    let k = key(8);
    let scan = client(&sim, &k).scan_and_wait(&request("https://flaky.acme.ai"), &within(10_000)).unwrap();
    assert_eq!(scan.status(), &ScanStatus::Completed);
    assert!(sim.stats(&k).gets >= 3, "two 500s, then the answer");
}

#[test]
fn a_create_that_may_have_landed_is_not_repeated() {
    let sim = sim();
    let k = key(9);
    let e = client(&sim, &k).scan_and_wait(&request("https://post500.acme.ai"), &within(10_000)).unwrap_err();
    assert_eq!(e.code, Code::AmbiguousCreate);
    assert_eq!(e.http_status, Some(500));
    assert!(e.request_id.is_some());
    assert!(e.hint.as_deref().unwrap().contains("max_age_days"));
    let stats = sim.stats(&k);
    assert_eq!((stats.posts, stats.scans_created), (1, 1), "exactly one POST, one scan");
}

#[test]
fn a_deadline_returns_the_scan_id_and_wait_resumes_without_a_post() {
    let sim = sim();
    let k = key(10);
    let c = client(&sim, &k);
    let e = c.scan_and_wait(&request("https://stuck.acme.ai"), &within(600)).unwrap_err();
    assert_eq!(e.code, Code::Timeout);
    let id = e.scan_id.clone().unwrap();
    assert!(e.scan.as_ref().is_some_and(|s| s.status() == &ScanStatus::Processing));
    let e = c.wait(&id, &within(300)).unwrap_err();
    assert_eq!((e.code, e.scan_id.as_deref()), (Code::Timeout, Some(id.as_str())));
    assert_eq!(c.get_scan(&id).unwrap().status(), &ScanStatus::Processing);
    assert_eq!(sim.stats(&k).posts, 1);
}

#[test]
fn create_then_wait_by_id() {
    let sim = sim();
    let k = key(11);
    let c = client(&sim, &k);
    let created = c.create_scan(&request("https://acme.ai")).unwrap();
    assert_eq!(
        (created.status(), created.http_status, created.cached()),
        (&ScanStatus::Processing, 201, false)
    );
    let done = c.wait(created.id(), &within(10_000)).unwrap();
    assert_eq!(done.id(), created.id());
    assert_eq!(done.status(), &ScanStatus::Completed);
    assert_eq!(sim.stats(&k).posts, 1);
}

#[test]
fn unknown_and_vanishing_scans_are_not_found() {
    let sim = sim();
    let c = client(&sim, &key(12));
    let e = c.get_scan("scn_test_doesnotexist").unwrap_err();
    assert_eq!((e.code, e.api_code.as_deref()), (Code::NotFound, Some("SCAN_NOT_FOUND")));
    let e = c.get_scan("../../etc").unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    let e = c.scan_and_wait(&request("https://vanish.acme.ai"), &within(10_000)).unwrap_err();
    assert_eq!(e.code, Code::NotFound);
    assert!(e.scan_id.is_some(), "the id of the scan that vanished is kept");
}

#[test]
fn a_body_that_is_not_json_is_a_protocol_error_after_retries() {
    let sim = sim();
    let e = client(&sim, &key(13))
        .scan_and_wait(&request("https://garbage.acme.ai"), &within(10_000))
        .unwrap_err();
    assert_eq!(e.code, Code::Protocol);
    assert!(e.scan_id.is_some());
    assert!(e.message.contains("not a scan object"), "{}", e.message);
}

#[test]
fn the_governor_waits_for_the_window_instead_of_meeting_a_429() {
    let sim = sim_with(Config { rate_limit: 2, rate_window: Duration::from_millis(1500), ..Config::fast() });
    let k = key(14);
    let scan = client(&sim, &k).scan_and_wait(&request("https://acme.ai"), &within(10_000)).unwrap();
    assert_eq!(scan.status(), &ScanStatus::Completed);
    assert_eq!(sim.stats(&k).rate_limited, 0, "the headers said what was left: no 429 needed");
}

/// Another process spends the key's window first: raw requests, no governor of ours.
fn spend_budget_elsewhere(sim: &exona_sim::SimHandle, k: &str, requests: usize) {
    use exona::transport::{HttpConfig, HttpTransport, Method, Request, Transport};
    let other = HttpTransport::new(HttpConfig {
        base_url: sim.base_url.clone(),
        api_key: k.to_owned().into(),
        connect_timeout: Duration::from_secs(5),
        user_agent: "other-process".into(),
        extra_ca_pem: None,
        proxy: None,
    })
    .unwrap();
    for _ in 0..requests {
        let body = serde_json::to_vec(&request("https://other.acme.ai").to_json()).unwrap();
        let r = other
            .send(&Request {
                method: Method::Post,
                path: "/scans".into(),
                body: Some(body),
                timeout: Duration::from_secs(5),
            })
            .unwrap();
        assert_eq!(r.status, 201);
    }
}

#[test]
fn a_429_caused_elsewhere_is_waited_out_when_it_fits_the_deadline() {
    // An hour's window, spent elsewhere; the 429 asks for 1 s, and the window opens again
    // when the client reports that it waits on a 429 (an event, not a race with the clock).
    let sim = sim_with(Config { rate_limit: 3, rate_limited_retry_after: Some(1), ..Config::fast() });
    let k = key(14_001);
    spend_budget_elsewhere(&sim, &k, 3);
    let mut reopened = false;
    let scan = client(&sim, &k)
        .scan_and_wait_with_progress(&request("https://acme.ai"), &within(10_000), &mut |p| {
            if p.reason == exona::Reason::RateLimit && !reopened {
                sim.reset_window(&k);
                reopened = true;
            }
            true
        })
        .unwrap();
    assert!(reopened, "the client never reported waiting on the 429");
    assert_eq!(scan.status(), &ScanStatus::Completed);
    let stats = sim.stats(&k);
    assert!(stats.rate_limited >= 1, "{stats:?}");
    assert_eq!(stats.scans_created, 4, "the refused POST was sent again, once");
}

#[test]
fn a_429_past_the_deadline_returns_at_once_with_the_retry_time() {
    let sim = sim_with(Config { rate_limit: 2, rate_window: Duration::from_secs(3600), ..Config::fast() });
    let k = key(15);
    spend_budget_elsewhere(&sim, &k, 2);
    let started = std::time::Instant::now();
    // A deadline far from "at once" on any machine: a client that slept would be seen.
    let e = client(&sim, &k).scan_and_wait(&request("https://acme.ai"), &within(120_000)).unwrap_err();
    assert_eq!((e.code, e.api_code.as_deref()), (Code::RateLimited, Some("RATE_LIMIT_EXCEEDED")));
    assert!(e.retry_after.unwrap() > Duration::from_secs(3000));
    assert!(e.scan_id.is_none(), "the POST was refused: no scan exists");
    assert!(started.elapsed() < Duration::from_secs(60), "returned without sleeping to the deadline");
}

#[test]
fn a_budget_spent_before_the_deadline_returns_at_once_with_the_scan_id() {
    let sim = sim_with(Config { rate_limit: 1, rate_window: Duration::from_secs(3600), ..Config::fast() });
    let k = key(15_001);
    let started = std::time::Instant::now();
    let e = client(&sim, &k).scan_and_wait(&request("https://acme.ai"), &within(120_000)).unwrap_err();
    assert_eq!(e.code, Code::RateLimited);
    assert!(e.retry_after.unwrap() > Duration::from_secs(3000));
    assert!(e.scan_id.is_some(), "the scan was created before the budget ran out");
    assert_eq!(sim.stats(&k).rate_limited, 0, "no request was sent that the server would refuse");
    assert!(started.elapsed() < Duration::from_secs(60), "returned without sleeping to the deadline");
}

#[test]
fn an_unreachable_server_is_a_network_error_and_no_scan() {
    // A port nobody listens on: connect fails, so the POST is retried, then reported.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v1", listener.local_addr().unwrap());
    drop(listener);
    let c = exona::Client::with_policy(&key(16), Some(&url), common::fast_policy()).unwrap();
    let e = c.scan_and_wait(&request("https://acme.ai"), &within(5_000)).unwrap_err();
    assert_eq!(e.code, Code::Network);
    assert!(e.message.contains("no scan was created"), "{}", e.message);
    assert!(e.scan_id.is_none());
}

//! The waiting engine on virtual time, against a scripted transport: when each request goes
//! out, and how many, asserted exactly. No test here sleeps.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exona::transport::{Headers, Method, Request, Response, Transport, TransportError};
use exona::{CancelToken, Client, Code, Mode, Policy, ScanRequest, WaitOptions};
use exona::{Clock, VirtualClock};

type Reply = Result<Response, TransportError>;

/// Answers from a script and logs (virtual time, method) of every request.
struct Script {
    clock: Arc<VirtualClock>,
    replies: Mutex<VecDeque<Reply>>,
    log: Mutex<Vec<(Duration, Method)>>,
    /// Cancels this token when the n-th request (1-based) arrives.
    cancel_at: Option<(usize, CancelToken)>,
}

impl Transport for Script {
    fn send(&self, request: &Request) -> Reply {
        let mut log = self.log.lock().unwrap();
        log.push((self.clock.now(), request.method));
        if let Some((n, token)) = &self.cancel_at {
            if log.len() == *n {
                token.cancel();
            }
        }
        self.replies.lock().unwrap().pop_front().expect("the script ran out: an unexpected request")
    }
}

fn scan_body(status: &str) -> Vec<u8> {
    let mut body =
        serde_json::json!({"id": "scn_test_1", "status": status, "created_at": "2026-04-03T09:00:00Z"});
    if status == "completed" {
        body["result"] = serde_json::json!({"risk_assessment": {"overall_risk_level": "Low"}});
    }
    if status == "failed" {
        body["error"] = serde_json::json!({"code": "WEBSITE_UNREACHABLE", "message": "down"});
    }
    body.to_string().into_bytes()
}

fn reply(status: u16, body: Vec<u8>, retry_after: Option<&str>) -> Reply {
    Ok(Response {
        status,
        headers: Headers {
            retry_after: retry_after.map(str::to_owned),
            request_id: Some("req_test".into()),
            ..Headers::default()
        },
        body,
    })
}

fn created() -> Reply {
    reply(201, scan_body("processing"), None)
}
fn processing(retry_after: Option<&str>) -> Reply {
    reply(200, scan_body("processing"), retry_after)
}
fn completed() -> Reply {
    reply(200, scan_body("completed"), None)
}
fn too_many(retry_after: &str) -> Reply {
    reply(
        429,
        br#"{"error":{"code":"RATE_LIMIT_EXCEEDED","message":"slow down","request_id":"req_429"}}"#.to_vec(),
        Some(retry_after),
    )
}
fn server_error() -> Reply {
    reply(
        500,
        br#"{"error":{"code":"INTERNAL_ERROR","message":"oops","request_id":"req_500"}}"#.to_vec(),
        None,
    )
}

struct Harness {
    clock: Arc<VirtualClock>,
    script: Arc<Script>,
    client: Client,
}

fn harness(replies: Vec<Reply>, cancel_at: Option<(usize, CancelToken)>) -> Harness {
    let clock = Arc::new(VirtualClock::new());
    let script = Arc::new(Script {
        clock: Arc::clone(&clock),
        replies: Mutex::new(replies.into()),
        log: Mutex::new(Vec::new()),
        cancel_at,
    });
    // Latency mode: polls from the shortest expected duration on, as often as allowed, so
    // these tests see the Retry-After, deadline and retry rules unmixed with the quantile plan.
    let policy = Policy { mode: Mode::Latency, ..Policy::default() };
    let client = Client::with_transport("http://sim/api/v1".into(), script.clone(), clock.clone(), policy);
    Harness { clock, script, client }
}

impl Harness {
    fn times(&self) -> Vec<u64> {
        self.script.log.lock().unwrap().iter().map(|(t, _)| t.as_secs()).collect()
    }
    fn posts(&self) -> usize {
        self.script.log.lock().unwrap().iter().filter(|(_, m)| *m == Method::Post).count()
    }
}

fn request() -> ScanRequest {
    ScanRequest::new("Acme", "https://acme.ai")
}

fn timeout(secs: u64) -> WaitOptions {
    WaitOptions { deadline: Some(Duration::from_secs(secs)), ..WaitOptions::default() }
}

#[test]
fn first_poll_waits_for_the_shortest_expected_duration_then_honours_retry_after() {
    let h = harness(vec![created(), processing(Some("7")), processing(Some("7")), completed()], None);
    let scan = h.client.scan_and_wait(&request(), &timeout(300)).unwrap();
    assert_eq!(scan.get_str("/result/risk_assessment/overall_risk_level"), Some("Low"));
    assert_eq!(h.times(), vec![0, 30, 37, 44]);
}

#[test]
fn without_retry_after_it_polls_every_ten_seconds() {
    let h = harness(vec![created(), processing(None), processing(None), completed()], None);
    h.client.scan_and_wait(&request(), &timeout(300)).unwrap();
    assert_eq!(h.times(), vec![0, 30, 40, 50]);
}

#[test]
fn decimal_and_http_date_retry_after_are_understood() {
    // The date form is measured against the response's Date header, not the local clock.
    let mut dated = processing(Some("Thu, 03 Apr 2025 09:00:04 GMT"));
    if let Ok(r) = &mut dated {
        r.headers.date = Some("Thu, 03 Apr 2025 09:00:00 GMT".into());
    }
    let h = harness(vec![processing(Some("2.5")), dated, processing(Some("garbage")), completed()], None);
    h.client.wait("scn_test_1", &timeout(300)).unwrap();
    let log = h.script.log.lock().unwrap();
    let t: Vec<u128> = log.iter().map(|(t, _)| t.as_millis()).collect();
    assert_eq!(t, vec![0, 2_500, 6_500, 16_500], "garbage falls back to the 10 s schedule");
}

#[test]
fn resuming_by_id_polls_at_once_and_sends_no_post() {
    let h = harness(vec![completed()], None);
    h.client.wait("scn_test_1", &timeout(300)).unwrap();
    assert_eq!((h.times(), h.posts()), (vec![0], 0));
}

#[test]
fn the_deadline_gets_a_final_poll_then_a_timeout_with_the_scan_id() {
    // No Retry-After: the schedule is ours, so the last poll moves to just before the deadline.
    let mut replies = vec![created()];
    replies.extend((0..5).map(|_| processing(None)));
    let h = harness(replies, None);
    let e = h.client.scan_and_wait(&request(), &timeout(65)).unwrap_err();
    assert_eq!((e.code, e.scan_id.as_deref()), (Code::Timeout, Some("scn_test_1")));
    assert_eq!(h.times(), vec![0, 30, 40, 50, 60, 63]);
    assert!(h.clock.now() <= Duration::from_secs(65));
}

#[test]
fn retry_after_is_a_floor_even_at_the_deadline() {
    // The server forbids polling before t=70, past the deadline of 65: return at once.
    let h = harness(vec![created(), processing(Some("40"))], None);
    let e = h.client.scan_and_wait(&request(), &timeout(65)).unwrap_err();
    assert_eq!(e.code, Code::Timeout);
    assert_eq!(h.times(), vec![0, 30]);
    assert_eq!(h.clock.now(), Duration::from_secs(30), "no pointless sleep until the deadline");
}

#[test]
fn a_429_that_fits_is_waited_out_and_one_that_does_not_returns_at_once() {
    let h = harness(vec![created(), too_many("20"), completed()], None);
    h.client.scan_and_wait(&request(), &timeout(300)).unwrap();
    assert_eq!(h.times(), vec![0, 30, 50]);

    let h = harness(vec![created(), too_many("3600")], None);
    let e = h.client.scan_and_wait(&request(), &timeout(300)).unwrap_err();
    assert_eq!((e.code, e.retry_after), (Code::RateLimited, Some(Duration::from_secs(3600))));
    assert_eq!(e.scan_id.as_deref(), Some("scn_test_1"));
    assert_eq!(h.clock.now(), Duration::from_secs(30), "it did not sleep");
}

#[test]
fn a_429_on_create_is_safe_to_retry() {
    let h = harness(vec![too_many("5"), created(), completed()], None);
    h.client.scan_and_wait(&request(), &timeout(300)).unwrap();
    assert_eq!(h.posts(), 2);
    assert_eq!(h.times(), vec![0, 5, 35]);
}

#[test]
fn server_errors_on_get_back_off_with_jitter_then_give_up_keeping_the_id() {
    let h = harness(vec![created(), server_error(), server_error(), completed()], None);
    h.client.scan_and_wait(&request(), &timeout(300)).unwrap();
    let t = h.times();
    assert!((31..=32).contains(&t[2]), "first retry 1–2 s later: {t:?}");
    assert!((t[3] - t[2]) >= 2 && (t[3] - t[2]) <= 4, "second retry 2–4 s later: {t:?}");

    let mut replies = vec![created()];
    replies.extend((0..6).map(|_| server_error()));
    let h = harness(replies, None);
    let e = h.client.scan_and_wait(&request(), &timeout(3_600)).unwrap_err();
    assert_eq!((e.code, e.scan_id.as_deref(), e.http_status), (Code::Server, Some("scn_test_1"), Some(500)));
}

#[test]
fn an_unsent_create_is_retried_and_a_maybe_sent_one_is_not() {
    let not_sent = || Err(TransportError::NotSent("connection refused".into()));
    let h = harness(vec![not_sent(), created(), completed()], None);
    h.client.scan_and_wait(&request(), &timeout(300)).unwrap();
    assert_eq!(h.posts(), 2);

    let lost = Err(TransportError::Failed { message: "connection reset".into(), timed_out: false });
    let h = harness(vec![lost], None);
    let e = h.client.scan_and_wait(&request(), &timeout(300)).unwrap_err();
    assert_eq!(e.code, Code::AmbiguousCreate);
    assert!(e.message.contains("https://acme.ai") && e.message.contains("connection reset"), "{}", e.message);
    assert_eq!(h.posts(), 1);

    let h = harness(vec![server_error()], None);
    assert_eq!(h.client.scan_and_wait(&request(), &timeout(300)).unwrap_err().code, Code::AmbiguousCreate);
    assert_eq!(h.posts(), 1);
}

#[test]
fn a_201_without_a_readable_id_is_ambiguous_not_lost() {
    let h = harness(vec![reply(201, b"{\"status\":\"processing\"}".to_vec(), None)], None);
    let e = h.client.scan_and_wait(&request(), &timeout(300)).unwrap_err();
    assert_eq!((e.code, e.http_status), (Code::AmbiguousCreate, Some(201)));
}

#[test]
fn cancelling_stops_the_wait_and_sends_nothing_more() {
    let token = CancelToken::new();
    let h = harness(vec![created(), processing(Some("10")), completed()], Some((2, token.clone())));
    let options = WaitOptions { cancel: Some(token), ..timeout(300) };
    let e = h.client.scan_and_wait(&request(), &options).unwrap_err();
    assert_eq!((e.code, e.scan_id.as_deref()), (Code::Cancelled, Some("scn_test_1")));
    assert_eq!(h.times(), vec![0, 30], "no request after the cancel");
}

#[test]
fn unknown_states_keep_the_wait_going_and_failed_scans_end_it() {
    let h = harness(
        vec![reply(200, scan_body("queued"), Some("5")), reply(200, scan_body("failed"), None)],
        None,
    );
    let e = h.client.wait("scn_test_1", &timeout(300)).unwrap_err();
    assert_eq!((e.code, e.api_code.as_deref()), (Code::ScanFailed, Some("WEBSITE_UNREACHABLE")));
    assert_eq!(h.times(), vec![0, 5]);
}

#[test]
fn no_deadline_means_no_deadline() {
    let mut replies = vec![created()];
    replies.extend((0..400).map(|_| processing(Some("60"))));
    replies.push(completed());
    let h = harness(replies, None);
    let options = WaitOptions { deadline: None, ..WaitOptions::default() };
    h.client.scan_and_wait(&request(), &options).unwrap();
    assert_eq!(h.clock.now(), Duration::from_secs(30 + 400 * 60));
}

/// A cache hit whose POST answer has no `result` (the docs leave it open): one GET, at once,
/// fetches the scan with its result; no second POST.
#[test]
fn a_cache_hit_without_its_result_is_fetched_with_one_get() {
    let bare = serde_json::json!({"id": "scn_test_1", "status": "completed", "cached": true})
        .to_string()
        .into_bytes();
    for create_only in [false, true] {
        let h = harness(vec![reply(200, bare.clone(), None), completed()], None);
        let scan = if create_only {
            h.client.create_scan_with(&request(), &timeout(300)).unwrap()
        } else {
            h.client.scan_and_wait(&request(), &timeout(300)).unwrap()
        };
        assert_eq!(scan.get_str("/result/risk_assessment/overall_risk_level"), Some("Low"));
        assert_eq!(h.times(), vec![0, 0], "one GET right after the POST");
        assert_eq!(h.posts(), 1);
    }
    // The GET must then carry the result: without it, the answer is a protocol error.
    let h = harness(vec![reply(200, bare.clone(), None), reply(200, bare, None)], None);
    let e = h.client.scan_and_wait(&request(), &timeout(300)).unwrap_err();
    assert_eq!(e.code, Code::Protocol, "{}", e.message);
    assert_eq!(e.scan_id.as_deref(), Some("scn_test_1"));
}

//! A bug inside the engine's threads must not hang a caller: a transport that panics ends the
//! call with EXONA_ERR_INTERNAL (scan id kept), and the client goes on serving other calls.

#![allow(clippy::result_large_err)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use exona::transport::{Headers, Method, Request, Response, Transport, TransportError};
use exona::{Client, Code, Policy, ScanRequest, WaitOptions};

/// Answers a POST with a new scan, and panics on the `panic_on`-th request (1-based).
struct Panicky {
    panic_on: usize,
    seen: AtomicUsize,
}

impl Transport for Panicky {
    fn send(&self, request: &Request) -> Result<Response, TransportError> {
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.panic_on {
            panic!("a transport bug on request {n}");
        }
        let body = match request.method {
            Method::Post => {
                r#"{"id":"scn_test_panic","status":"processing","created_at":"2026-11-30T00:00:00Z"}"#
            }
            Method::Get => {
                r#"{"id":"scn_test_panic","status":"completed","created_at":"2026-11-30T00:00:00Z","completed_at":"2026-11-30T00:00:01Z","result":{}}"#
            }
        };
        Ok(Response {
            status: if request.method == Method::Post { 201 } else { 200 },
            headers: Headers::default(),
            body: body.into(),
        })
    }
}

fn policy() -> Policy {
    Policy { expected_duration: (Duration::from_millis(10), Duration::from_millis(20)), ..Policy::default() }
}

/// Runs one scan on its own thread; a call that never returns fails the test instead of
/// hanging the suite.
fn scan(client: &Client) -> Result<exona::Scan, exona::Error> {
    let (tx, rx) = mpsc::channel();
    let c = client.clone();
    std::thread::spawn(move || {
        let r = c.scan_and_wait(&ScanRequest::new("Acme", "https://acme.ai"), &WaitOptions::default());
        let _ = tx.send(r);
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("the call hung after a panic in the engine")
}

#[test]
fn a_panic_while_creating_ends_the_call_with_internal() {
    let t = Arc::new(Panicky { panic_on: 1, seen: AtomicUsize::new(0) });
    let client = Client::threaded_with_transport("http://v/api/v1".into(), t, policy()).unwrap();
    let e = scan(&client).unwrap_err();
    assert_eq!(e.code, Code::Internal, "{}", e.message);
    assert!(e.message.contains("a transport bug on request 1"), "{}", e.message);
    // The worker survived: the next call on the same client completes.
    let scan = scan(&client).expect("the client still works");
    assert_eq!(scan.id(), "scn_test_panic");
}

#[test]
fn a_panic_while_polling_keeps_the_scan_id() {
    let t = Arc::new(Panicky { panic_on: 2, seen: AtomicUsize::new(0) });
    let client = Client::threaded_with_transport("http://v/api/v1".into(), t, policy()).unwrap();
    let e = scan(&client).unwrap_err();
    assert_eq!(e.code, Code::Internal, "{}", e.message);
    assert_eq!(e.scan_id.as_deref(), Some("scn_test_panic"));
}

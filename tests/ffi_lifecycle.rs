//! A client's life through the C surface: freeing it while other threads wait on it ends
//! their calls (CANCELLED, scan id kept) instead of leaving them blocked past any deadline.

mod common;

use std::ffi::{c_char, CStr, CString};
use std::ptr::null_mut;
use std::sync::mpsc;
use std::time::Duration;

use exona::ffi::client::*;
use exona::ffi::codes::exona_code::{self, *};
use exona::ffi::result::*;
use exona::ffi::scan::*;
use exona::ffi::scan_options::*;

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn text(p: *const c_char) -> Option<String> {
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// A raw pointer that may cross threads (the C contract says the client is thread-safe).
#[derive(Clone, Copy)]
struct Shared(*mut exona_client);
unsafe impl Send for Shared {}

/// What a waiting thread saw: its code, message and scan id.
type Seen = (exona_code, String, Option<String>);

fn wait_on_stuck_scan(client: Shared, website: &str, done: mpsc::Sender<Seen>) {
    let (name, website) = (c("Stuck Co"), c(website));
    let options = exona_scan_options_new();
    // A long deadline: only the free can end this call in time.
    assert_eq!(exona_scan_options_set_timeout_ms(options, 600_000), EXONA_OK);
    let mut result = null_mut();
    let code = exona_scan_and_wait(client.0, name.as_ptr(), website.as_ptr(), options, &mut result);
    let seen =
        (code, text(exona_result_message(result)).unwrap_or_default(), text(exona_result_scan_id(result)));
    exona_result_free(result);
    exona_scan_options_free(options);
    let _ = done.send(seen);
}

#[test]
fn freeing_a_client_ends_the_calls_waiting_on_it() {
    let sim = common::sim();
    let key = c(&common::key(9001));
    let url = c(&sim.base_url);
    let client = exona_client_new(key.as_ptr(), url.as_ptr());
    assert!(!client.is_null());
    let (tx, rx) = mpsc::channel();
    let shared = Shared(client);
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let tx = tx.clone();
            std::thread::spawn(move || wait_on_stuck_scan(shared, &format!("https://stuck.w{i}.example"), tx))
        })
        .collect();
    // Wait until every thread's scan exists on the server (its create has been answered).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sim.stats(&common::key(9001)).scans_created < 3 {
        assert!(std::time::Instant::now() < deadline, "the scans were never created");
        std::thread::sleep(Duration::from_millis(10));
    }
    exona_client_free(client);
    for _ in 0..3 {
        // Bounded so a regression fails instead of hanging the suite.
        let (code, message, scan_id) =
            rx.recv_timeout(Duration::from_secs(60)).expect("a waiting call did not return after the free");
        assert_eq!(code, EXONA_ERR_CANCELLED, "{message}");
        assert!(message.contains("client was freed"), "{message}");
        assert!(scan_id.is_some_and(|id| id.starts_with("scn_")), "the scan id is handed back");
    }
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn freeing_an_idle_client_returns_at_once_and_null_is_a_no_op() {
    let key = c(&common::key(9002));
    let url = c("http://127.0.0.1:9/api/v1");
    let client = exona_client_new(key.as_ptr(), url.as_ptr());
    assert!(!client.is_null());
    exona_client_free(client);
    exona_client_free(null_mut());
    let _: exona_code = EXONA_OK;
}

//! Client settings through the C surface: user agent suffix, explicit proxy, timeouts, and
//! what is refused. A raw TCP server records what arrives.

use std::ffi::CString;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::ptr::{null, null_mut};
use std::sync::mpsc;

use exona::ffi::client::*;
use exona::ffi::client_options::*;
use exona::ffi::codes::exona_code::*;
use exona::ffi::result::*;
use exona::ffi::scan::*;

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// Answers one request with a 404 envelope and sends its head (request line and headers) back.
fn recorder() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 8192];
        let n = s.read(&mut buf).unwrap();
        let head = String::from_utf8_lossy(&buf[..n]).into_owned();
        let body = r#"{"error":{"code":"SCAN_NOT_FOUND","message":"no","request_id":"req_rec"}}"#;
        let reply = format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = s.write_all(reply.as_bytes());
        let _ = tx.send(head);
    });
    (format!("http://{addr}"), rx)
}

const KEY: &str = "exo_test_abcdefghijklmnopqrstuvwxyz0123456789";

fn client_with(options: *const exona_client_options, base_url: &str) -> *mut exona_client {
    let (key, url) = (c(KEY), c(base_url));
    let mut client = null_mut();
    let mut err = null_mut();
    let rc = exona_client_create_with_options(key.as_ptr(), url.as_ptr(), options, &mut client, &mut err);
    assert_eq!(rc, EXONA_OK);
    client
}

fn get_once(client: *mut exona_client) -> *mut exona_result {
    let id = c("scn_test_x");
    let mut out = null_mut();
    assert_eq!(exona_scan_get(client, id.as_ptr(), &mut out), EXONA_ERR_NOT_FOUND);
    out
}

#[test]
fn user_agent_suffix_is_sent() {
    let (url, heads) = recorder();
    let o = exona_client_options_new();
    assert_eq!(exona_client_options_set_user_agent_suffix(o, c("acme-uw/2.1").as_ptr()), EXONA_OK);
    assert_eq!(
        exona_client_options_set_user_agent_suffix(o, c("bad\r\nheader").as_ptr()),
        EXONA_ERR_INVALID_ARGUMENT
    );
    let client = client_with(o, &format!("{url}/api/v1"));
    exona_client_options_free(o);
    exona_result_free(get_once(client));
    let head = heads.recv().unwrap().to_ascii_lowercase();
    assert!(
        head.contains(&format!("user-agent: libexona/{} acme-uw/2.1", env!("CARGO_PKG_VERSION"))),
        "{head}"
    );
    exona_client_free(client);
}

#[test]
fn an_explicit_proxy_carries_every_request() {
    let (proxy, heads) = recorder();
    let o = exona_client_options_new();
    assert_eq!(exona_client_options_set_proxy(o, c(&proxy).as_ptr()), EXONA_OK);
    assert_eq!(exona_client_options_set_proxy(o, c("not a url").as_ptr()), EXONA_ERR_INVALID_ARGUMENT);
    // The API host does not exist; only the proxy can answer.
    let client = client_with(o, "http://127.0.0.1:9/api/v1");
    exona_client_options_free(o);
    let r = get_once(client);
    assert_eq!(exona_result_http_status(r), 404);
    exona_result_free(r);
    let head = heads.recv().unwrap();
    assert!(head.starts_with("GET http://127.0.0.1:9/api/v1/scans/scn_test_x HTTP/1.1"), "{head}");
    exona_client_free(client);
}

#[test]
fn settings_are_checked() {
    let o = exona_client_options_new();
    assert_eq!(exona_client_options_set_connect_timeout_ms(o, 0), EXONA_ERR_INVALID_ARGUMENT);
    assert_eq!(exona_client_options_set_connect_timeout_ms(o, 500), EXONA_OK);
    assert_eq!(exona_client_options_set_attempt_timeout_ms(o, 0), EXONA_ERR_INVALID_ARGUMENT);
    assert_eq!(exona_client_options_set_attempt_timeout_ms(o, 5_000), EXONA_OK);
    assert_eq!(exona_client_options_set_poll_mode(o, 7), EXONA_ERR_INVALID_ARGUMENT);
    assert_eq!(exona_client_options_set_poll_mode(o, 2), EXONA_OK);
    assert_eq!(exona_client_options_set_expected_duration_ms(o, 10, 5), EXONA_ERR_INVALID_ARGUMENT);
    assert_eq!(
        exona_client_options_set_ca_bundle_file(o, c("/nonexistent/ca.pem").as_ptr()),
        EXONA_ERR_INVALID_ARGUMENT
    );
    assert_eq!(exona_client_options_set_connect_timeout_ms(null_mut(), 1), EXONA_ERR_INVALID_ARGUMENT);
    // A bundle that is not PEM is refused when the client is made, with a reason.
    let bad = std::env::temp_dir().join("libexona-not-pem.txt");
    std::fs::write(&bad, "hello").unwrap();
    assert_eq!(exona_client_options_set_ca_bundle_file(o, c(bad.to_str().unwrap()).as_ptr()), EXONA_OK);
    let (key, url) = (c(KEY), c("https://127.0.0.1:9/api/v1"));
    let mut client = null_mut();
    let mut err = null_mut();
    let rc = exona_client_create_with_options(key.as_ptr(), url.as_ptr(), o, &mut client, &mut err);
    assert_eq!(rc, EXONA_ERR_INVALID_ARGUMENT);
    assert!(client.is_null());
    let msg = unsafe { std::ffi::CStr::from_ptr(exona_result_message(err)) }.to_string_lossy().into_owned();
    assert!(msg.contains("CA bundle"), "{msg}");
    exona_result_free(err);
    exona_client_options_free(o);
    exona_client_options_free(null_mut());
    // NULL options: the defaults.
    let mut client = null_mut();
    assert_eq!(
        exona_client_create_with_options(key.as_ptr(), url.as_ptr(), null(), &mut client, null_mut()),
        EXONA_OK
    );
    exona_client_free(client);
}

/// A server that accepts connections and never answers: only a timeout ends a request to it.
fn staller() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        // Bounded: a few connections, held until the test process ends.
        for conn in listener.incoming().take(8) {
            held.push(conn);
        }
        std::thread::sleep(std::time::Duration::from_secs(120));
    });
    format!("http://{addr}")
}

#[test]
fn the_attempt_timeout_takes_effect() {
    // 300 ms per attempt, against a server that never answers. The default (30 s) would
    // hold this GET for half a minute; the bound below sits far from both, so it only shows
    // which setting was in force, not how fast the machine is.
    let options = exona_client_options_new();
    assert_eq!(exona_client_options_set_attempt_timeout_ms(options, 300), EXONA_OK);
    let client = client_with(options, &staller());
    let id = c("scn_test_x");
    let mut out = null_mut();
    let started = std::time::Instant::now();
    let rc = exona_scan_get(client, id.as_ptr(), &mut out);
    let waited = started.elapsed();
    assert_eq!(rc, EXONA_ERR_NETWORK);
    let message =
        unsafe { std::ffi::CStr::from_ptr(exona_result_message(out)) }.to_string_lossy().into_owned();
    assert!(message.contains("timed out") || message.contains("timeout"), "{message}");
    assert!(waited < std::time::Duration::from_secs(15), "the attempt timeout was not applied: {waited:?}");
    exona_result_free(out);
    exona_client_free(client);
    exona_client_options_free(options);
}

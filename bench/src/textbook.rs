//! The textbook client, as the API's docs describe it (exona-api.md §5.4 and §7), as a
//! baseline: create, then GET every `Retry-After` (10 s without one) until the scan ends, five
//! worker threads. Every documented path is followed, in the benchmark's compressed time
//! (`SCALE`, the docs' seconds divided by ten), so no figure rests on a path where the
//! baseline is kinder or harsher than the real thing:
//! - a 429 waits its `Retry-After`, or 60 s without one;
//! - a failed GET (5xx, network) is retried with 2^n s back-off, and the scan is given up
//!   after 3 errors in a row (the sample raises on every error status);
//! - a 5xx or network error on POST is raised: the scan is counted failed, never re-sent;
//! - the polling loop stops at the sample's 300 s deadline (a soft error: counted failed).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exona::transport::{HttpConfig, HttpTransport, Method, Request, Response, Transport};

/// The benchmark's time compression: the docs' seconds become tenths.
const SCALE: f64 = 10.0;

thread_local! {
    /// This worker's time scale: `SCALE`, or 1 for runs at the API's own pace.
    static TIME_SCALE: std::cell::Cell<f64> = const { std::cell::Cell::new(SCALE) };
}

fn docs_seconds(s: f64) -> Duration {
    Duration::from_secs_f64(s / TIME_SCALE.with(|t| t.get()))
}

pub struct Finished {
    pub scan_id: String,
    pub at: Instant,
}

/// `Retry-After` in seconds (the simulator sends them already compressed).
fn retry_after(r: &Response) -> Option<Duration> {
    r.headers.retry_after.as_deref().and_then(|v| v.trim().parse::<f64>().ok()).map(Duration::from_secs_f64)
}

/// Scans every website with `workers` threads; returns when each scan was seen finished.
/// As [`run`], with the docs' seconds divided by `time_scale` (1: the API's own pace).
pub fn run_at(
    base_url: &str,
    key: &str,
    websites: Vec<String>,
    workers: usize,
    time_scale: f64,
) -> Vec<Finished> {
    let transport = Arc::new(
        HttpTransport::new(HttpConfig {
            base_url: base_url.to_owned(),
            api_key: key.to_owned().into(),
            connect_timeout: Duration::from_secs(5),
            user_agent: "textbook".into(),
            extra_ca_pem: None,
            proxy: None,
        })
        .expect("transport"),
    );
    let queue = Arc::new(Mutex::new(websites));
    let done = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let (transport, queue, done) = (transport.clone(), queue.clone(), done.clone());
            std::thread::spawn(move || loop {
                TIME_SCALE.with(|t| t.set(time_scale));
                let Some(site) = queue.lock().unwrap().pop() else {
                    return;
                };
                if let Some(f) = scan_one(&*transport, &site) {
                    done.lock().unwrap().push(f);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    Arc::try_unwrap(done).ok().unwrap().into_inner().unwrap()
}

/// What one request came to, after the documented handling of 429 and errors.
enum Sent {
    Answer(Response),
    /// Raised: an error status or a network error the sample does not retry.
    Raised,
}

/// Sends a request; a 429 waits its `Retry-After` (60 s without one) and is sent again.
/// GET errors back off 2^n s and give up after 3; POST errors are raised at once.
fn send(t: &dyn Transport, method: Method, path: &str, body: Option<Vec<u8>>) -> Sent {
    let mut errors = 0;
    loop {
        let request =
            Request { method, path: path.to_owned(), body: body.clone(), timeout: Duration::from_secs(30) };
        match t.send(&request) {
            Ok(r) if r.status == 429 => std::thread::sleep(retry_after(&r).unwrap_or(docs_seconds(60.0))),
            Ok(r) if r.status < 400 => return Sent::Answer(r),
            _ if method == Method::Post => return Sent::Raised,
            _ => {
                errors += 1;
                if errors >= 3 {
                    return Sent::Raised;
                }
                std::thread::sleep(docs_seconds(2f64.powi(errors)));
            }
        }
    }
}

fn scan_one(t: &dyn Transport, site: &str) -> Option<Finished> {
    let body =
        serde_json::json!({"company_name": "Bench Co", "company_website": site}).to_string().into_bytes();
    let Sent::Answer(created) = send(t, Method::Post, "/scans", Some(body)) else { return None };
    let scan: serde_json::Value = serde_json::from_slice(&created.body).ok()?;
    let id = scan["id"].as_str()?.to_owned();
    let deadline = Instant::now() + docs_seconds(300.0);
    let mut wait = retry_after(&created).unwrap_or(docs_seconds(10.0));
    loop {
        if Instant::now() + wait > deadline {
            return None; // the sample's timeout: a soft error
        }
        std::thread::sleep(wait);
        let Sent::Answer(r) = send(t, Method::Get, &format!("/scans/{id}"), None) else { return None };
        let scan: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        match scan["status"].as_str() {
            Some("completed") | Some("failed") => return Some(Finished { scan_id: id, at: Instant::now() }),
            _ => wait = retry_after(&r).unwrap_or(docs_seconds(10.0)),
        }
    }
}

//! The textbook client the docs suggest, as a baseline: create, then GET every `Retry-After`
//! seconds until the scan ends, five worker threads, and sleep on 429.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exona::transport::{HttpConfig, HttpTransport, Method, Request, Response, Transport};

pub struct Finished {
    pub scan_id: String,
    pub at: Instant,
}

fn retry_after(r: &Response) -> Duration {
    r.headers
        .retry_after
        .as_deref()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(10))
}

/// Scans every website with `workers` threads; returns when each scan was seen finished.
pub fn run(base_url: &str, key: &str, websites: Vec<String>, workers: usize) -> Vec<Finished> {
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

fn send(t: &dyn Transport, method: Method, path: String, body: Option<Vec<u8>>) -> Response {
    loop {
        let request =
            Request { method, path: path.clone(), body: body.clone(), timeout: Duration::from_secs(30) };
        match t.send(&request) {
            Ok(r) if r.status == 429 => std::thread::sleep(retry_after(&r)),
            Ok(r) => return r,
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

fn scan_one(t: &dyn Transport, site: &str) -> Option<Finished> {
    let body =
        serde_json::json!({"company_name": "Bench Co", "company_website": site}).to_string().into_bytes();
    let created = send(t, Method::Post, "/scans".into(), Some(body));
    let scan: serde_json::Value = serde_json::from_slice(&created.body).ok()?;
    let id = scan["id"].as_str()?.to_owned();
    let mut wait = retry_after(&created).min(Duration::from_secs(1));
    loop {
        std::thread::sleep(wait);
        let r = send(t, Method::Get, format!("/scans/{id}"), None);
        let scan: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        match scan["status"].as_str() {
            Some("completed") | Some("failed") => return Some(Finished { scan_id: id, at: Instant::now() }),
            _ => wait = retry_after(&r),
        }
    }
}

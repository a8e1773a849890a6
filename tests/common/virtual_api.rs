//! An in-memory Exona API on virtual time, for engine tests at scale: scans with seeded
//! durations, `Retry-After` on processing polls, a fixed rate-limit window per key with the
//! documented headers, and 429s. Every request is logged with its virtual time and status.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use exona::transport::{Headers, Method, Request, Response, Transport, TransportError};
use exona::{Clock, VirtualClock};
use serde_json::json;

pub struct VirtualApi {
    pub clock: Arc<VirtualClock>,
    state: Mutex<State>,
}

#[derive(Clone, Copy, Debug)]
pub struct Logged {
    pub at: Duration,
    pub method: Method,
    pub status: u16,
}

struct State {
    durations: (f64, f64),
    retry_after: u64,
    limit: u32,
    window: Duration,
    window_start: Option<Duration>,
    used: u32,
    scans: HashMap<String, (Duration, Duration)>,
    rng: fastrand::Rng,
    log: Vec<Logged>,
    /// For each completion seen by a poll: how long after the scan finished.
    detections: Vec<Duration>,
}

impl VirtualApi {
    pub fn new(
        clock: Arc<VirtualClock>,
        durations_secs: (f64, f64),
        retry_after: u64,
        limit: u32,
        window: Duration,
    ) -> Arc<VirtualApi> {
        Self::seeded(clock, durations_secs, retry_after, limit, window, 7)
    }

    /// As `new`, with the seed of the scans' durations.
    pub fn seeded(
        clock: Arc<VirtualClock>,
        durations_secs: (f64, f64),
        retry_after: u64,
        limit: u32,
        window: Duration,
        seed: u64,
    ) -> Arc<VirtualApi> {
        Arc::new(VirtualApi {
            clock,
            state: Mutex::new(State {
                durations: durations_secs,
                retry_after,
                limit,
                window,
                window_start: None,
                used: 0,
                scans: HashMap::new(),
                rng: fastrand::Rng::with_seed(seed),
                log: Vec::new(),
                detections: Vec::new(),
            }),
        })
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn detections(&self) -> Vec<Duration> {
        self.state.lock().unwrap().detections.clone()
    }

    /// Another process spends what is left of the current window.
    pub fn spend_window_elsewhere(&self) {
        let now = self.clock.now();
        let mut s = self.state.lock().unwrap();
        if s.window_start.is_none_or(|w| now >= w + s.window) {
            s.window_start = Some(now);
        }
        s.used = s.limit;
    }

    fn wall(&self, t: Duration) -> SystemTime {
        self.clock.wall() - self.clock.now() + t
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

impl Transport for VirtualApi {
    fn send(&self, request: &Request) -> Result<Response, TransportError> {
        let now = self.clock.now();
        let wall_now = self.wall(now);
        let mut s = self.state.lock().unwrap();
        if s.window_start.is_none_or(|w| now >= w + s.window) {
            s.window_start = Some(now);
            s.used = 0;
        }
        let reset_at = s.window_start.unwrap() + s.window;
        let reset_unix = self.wall(reset_at).duration_since(UNIX_EPOCH).unwrap().as_secs_f64().ceil() as u64;
        let over = s.used >= s.limit;
        if !over {
            s.used += 1;
        }
        let mut headers = Headers {
            date: Some(httpdate::fmt_http_date(wall_now)),
            request_id: Some(format!("req_{}", s.log.len())),
            rate_limit_limit: Some(s.limit.to_string()),
            rate_limit_remaining: Some((s.limit - s.used).to_string()),
            rate_limit_reset: Some(reset_unix.to_string()),
            retry_after: None,
        };
        let (status, body) = if over {
            headers.retry_after = Some(((reset_at - now).as_secs_f64().ceil() as u64).max(1).to_string());
            (429, json!({"error": {"code": "RATE_LIMIT_EXCEEDED", "message": "over", "request_id": "req_x"}}))
        } else if request.method == Method::Post {
            let id = format!("scn_test_{:06}", s.scans.len());
            let (lo, hi) = s.durations;
            let d = Duration::from_secs_f64(lo + (hi - lo) * s.rng.f64());
            s.scans.insert(id.clone(), (now, d));
            (201, json!({"id": id, "status": "processing", "created_at": rfc3339(wall_now)}))
        } else {
            let id = request.path.trim_start_matches("/scans/").to_owned();
            match s.scans.get(&id).copied() {
                None => (
                    404,
                    json!({"error": {"code": "SCAN_NOT_FOUND", "message": "no", "request_id": "req_x"}}),
                ),
                Some((created, d)) if now < created + d => {
                    headers.retry_after = Some(s.retry_after.to_string());
                    (
                        200,
                        json!({"id": id, "status": "processing", "created_at": rfc3339(self.wall(created))}),
                    )
                }
                Some((created, d)) => {
                    s.detections.push(now - (created + d));
                    (
                        200,
                        json!({
                            "id": id, "status": "completed",
                            "created_at": rfc3339(self.wall(created)),
                            "completed_at": rfc3339(self.wall(created + d)),
                            "result": {"risk_assessment": {"overall_risk_level": "Medium"}}
                        }),
                    )
                }
            }
        };
        s.log.push(Logged { at: now, method: request.method, status });
        Ok(Response { status, headers, body: body.to_string().into_bytes() })
    }
}

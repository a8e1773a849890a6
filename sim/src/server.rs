//! The HTTP surface: POST /scans, GET /scans/{id}, and /_sim/stats for tests.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::auth::{authenticate, Key};
use crate::envelope::ApiError;
use crate::faults::{self, fault_for, Fault};
use crate::state::{random_lower_alnum, rfc3339, State, Window};
use crate::validate::validate;

pub type Shared = Arc<Mutex<State>>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/api/v1/scans", post(create_scan))
        .route("/api/v1/scans/{id}", get(get_scan))
        .route("/_sim/stats", get(stats))
        .fallback(not_found)
        .with_state(state)
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Headers every response carries (exona-api.md §2.4).
struct Meta {
    request_id: String,
    limit: u32,
    remaining: u32,
    reset_unix: u64,
    /// The `Date` header (skewed for the `skew.` fault).
    date: SystemTime,
}

impl Meta {
    fn new(state: &mut State, window: Option<Window>) -> Meta {
        let request_id = format!("req_{}", random_lower_alnum(&mut state.rng, 15));
        let limit = state.config.rate_limit;
        let (used, start) = window.map_or((0, SystemTime::now()), |w| (w.used, w.start_wall));
        let reset = start + state.config.rate_window;
        Meta {
            request_id,
            limit,
            remaining: limit.saturating_sub(used),
            reset_unix: reset.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs_f64().ceil() as u64),
            date: SystemTime::now(),
        }
    }
}

fn respond(status: u16, body: Body, meta: &Meta, retry_after: Option<String>) -> Response {
    let mut r = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .header("x-request-id", &meta.request_id)
        .header("x-ratelimit-limit", meta.limit.to_string())
        .header("x-ratelimit-remaining", meta.remaining.to_string())
        .header("x-ratelimit-reset", meta.reset_unix.to_string())
        .header("date", httpdate::fmt_http_date(meta.date));
    if let Some(ra) = retry_after {
        r = r.header("retry-after", ra);
    }
    r.body(body).unwrap_or_default()
}

fn json_response(status: u16, body: &Value, meta: &Meta, retry_after: Option<String>) -> Response {
    respond(status, Body::from(body.to_string()), meta, retry_after)
}

fn error_response(e: &ApiError, meta: &Meta) -> Response {
    json_response(e.status, &e.body(&meta.request_id), meta, e.retry_after.map(|s| s.to_string()))
}

/// Authentication, then the rate limit; both answer in the envelope with the usual headers.
/// The refusal is boxed: a `Response` is large beside the key and meta a pass carries.
fn gate(state: &mut State, headers: &HeaderMap) -> Result<(Key, Meta), Box<Response>> {
    let auth = headers.get("authorization").map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let key = match authenticate(auth, &state.config) {
        Ok(k) => k,
        Err(e) => {
            let meta = Meta::new(state, None);
            return Err(Box::new(error_response(&e, &meta)));
        }
    };
    match state.admit(&key.key, Instant::now()) {
        Ok(window) => {
            let meta = Meta::new(state, Some(window));
            Ok((key, meta))
        }
        Err(wait_secs) => {
            let stats = state.stats_mut(&key.key);
            stats.rate_limited += 1;
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            stats.rate_limited_at_ms.push(now.as_millis() as u64);
            let window = state.window(&key.key);
            let meta = Meta::new(state, window);
            let mut e = ApiError::new(429, "RATE_LIMIT_EXCEEDED", "The API key is over its rate limit.")
                .hint("Retry after the number of seconds in the Retry-After header.");
            e.retry_after = Some(wait_secs);
            Err(Box::new(error_response(&e, &meta)))
        }
    }
}

fn retry_after_value(secs: f64) -> String {
    if secs.fract() == 0.0 {
        format!("{}", secs as u64)
    } else {
        format!("{secs}")
    }
}

async fn create_scan(AxumState(state): AxumState<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let (response, held) = create_scan_locked(&state, &headers, &body);
    if let Some(d) = held {
        tokio::time::sleep(d).await;
    }
    response
}

/// The create, and how long its answer is held (the `heldpost.` fault).
fn create_scan_locked(
    state: &Shared,
    headers: &HeaderMap,
    body: &Bytes,
) -> (Response, Option<std::time::Duration>) {
    let mut s = lock(state);
    let (key, meta) = match gate(&mut s, headers) {
        Ok(ok) => ok,
        Err(response) => return (*response, None),
    };
    s.stats_mut(&key.key).posts += 1;
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
    let req = match validate(content_type, body) {
        Ok(r) => r,
        Err(e) => return (error_response(&e, &meta), None),
    };
    let now = Instant::now();
    // force_refresh wins over max_age_days; a questionnaire disables the cache (§4.2).
    if !req.force_refresh && !req.has_questionnaire && req.max_age_days > 0 {
        if let Some(hit) = s.cache_hit(&key.key, &req.company_website, req.max_age_days, now) {
            let mut scan = hit.to_json(now);
            scan["cached"] = json!(true);
            scan["cached_at"] = json!(rfc3339(SystemTime::now()));
            s.stats_mut(&key.key).cache_hits += 1;
            return (json_response(200, &scan, &meta, None), None);
        }
    }
    let fault = fault_for(&req.company_website);
    if fault == Fault::EchoKey {
        return (echo_key(headers, &meta), None);
    }
    if fault == Fault::DropPost {
        drop(s);
        faults::drop_connection();
    }
    let record = s.new_scan(&key.key, key.test, &req, fault, now);
    if fault == Fault::LostPost {
        drop(s);
        faults::drop_connection();
    }
    if fault == Fault::Post500 {
        let e = ApiError::new(
            500,
            "INTERNAL_ERROR",
            "An internal error occurred (simulated after the scan was created).",
        );
        return (error_response(&e, &meta), None);
    }
    let mut scan = record.to_json(now);
    scan["cached"] = json!(false);
    let held = (fault == Fault::HeldPost).then_some(s.config.slow_response);
    (json_response(201, &scan, &meta, None), held)
}

/// The `echokey.` fault: a 400 that repeats the caller's `Authorization` header everywhere.
fn echo_key(headers: &HeaderMap, meta: &Meta) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let key = auth.strip_prefix("Bearer ").unwrap_or(&auth).to_owned();
    let body = json!({"error": {
        "code": "INVALID_COMPANY_WEBSITE",
        "message": format!("you sent {auth}, which cannot scan this website"),
        "hint": format!("key {key} has no access to this host"),
        "param": key,
        "request_id": format!("req_{key}"),
    }});
    let mut r = json_response(400, &body, meta, None);
    if let Ok(v) = format!("req_{key}").parse() {
        r.headers_mut().insert("x-request-id", v);
    }
    r
}

async fn get_scan(
    AxumState(state): AxumState<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (reply, delay) = {
        let mut s = lock(&state);
        get_scan_locked(&mut s, &id, &headers)
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    match reply {
        Reply::Response(r) => r,
        Reply::Drop => faults::drop_connection(),
    }
}

enum Reply {
    Response(Response),
    /// Close the connection without an answer.
    Drop,
}

fn get_scan_locked(s: &mut State, id: &str, headers: &HeaderMap) -> (Reply, Option<std::time::Duration>) {
    let (key, mut meta) = match gate(s, headers) {
        Ok(ok) => ok,
        Err(response) => return (Reply::Response(*response), None),
    };
    s.stats_mut(&key.key).gets += 1;
    let retry_after = retry_after_value(s.config.retry_after_secs);
    let slow = s.config.slow_response;
    let not_found = || {
        ApiError::new(404, "SCAN_NOT_FOUND", format!("No scan with id {id} exists under this API key."))
            .param("id")
    };
    let Some(record) = s.scans.get_mut(id).filter(|r| r.key == key.key) else {
        return (Reply::Response(error_response(&not_found(), &meta)), None);
    };
    record.gets += 1;
    let gets = record.gets;
    let now = Instant::now();
    let scan = record.to_json(now);
    let processing = scan["status"] == "processing";
    let server_error =
        || error_response(&ApiError::new(500, "INTERNAL_ERROR", "Simulated server error."), &meta);
    let too_many = |retry_after: String, meta: &Meta| {
        let e = ApiError::new(429, "RATE_LIMIT_EXCEEDED", "Simulated rate-limit storm.");
        let mut r = error_response(&e, meta);
        r.headers_mut().insert("retry-after", retry_after.parse().expect("header value"));
        r
    };
    let reply = match record.fault {
        Fault::Flaky if gets <= 2 => Reply::Response(server_error()),
        Fault::Burst500 if gets <= 4 => Reply::Response(server_error()),
        Fault::Down500 => Reply::Response(server_error()),
        Fault::DropGet if gets <= 2 => Reply::Drop,
        Fault::HalfBody if gets <= 2 => {
            let text = scan.to_string().into_bytes();
            let half = text[..text.len() / 2].to_vec();
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                vec![Ok(half), Err(std::io::Error::other("simulated connection loss mid-body"))];
            Reply::Response(respond(200, Body::from_stream(futures_util::stream::iter(chunks)), &meta, None))
        }
        Fault::Vanish if gets >= 2 => Reply::Response(error_response(&not_found(), &meta)),
        Fault::Garbage => {
            Reply::Response(respond(200, Body::from("<html>this is not JSON</html>"), &meta, None))
        }
        Fault::Truncated => {
            let text = scan.to_string();
            Reply::Response(respond(200, Body::from(text[..text.len() / 2].to_owned()), &meta, None))
        }
        Fault::Huge => {
            // 17 MiB of JSON whitespace around the scan: valid JSON, too large to accept.
            let chunk = vec![b' '; 1 << 20];
            let mut chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                (0..17).map(|_| Ok(chunk.clone())).collect();
            chunks.push(Ok(scan.to_string().into_bytes()));
            Reply::Response(respond(200, Body::from_stream(futures_util::stream::iter(chunks)), &meta, None))
        }
        Fault::WrongType => {
            let mut r = json_response(200, &scan, &meta, processing.then_some(retry_after));
            r.headers_mut().insert("content-type", "text/html; charset=utf-8".parse().expect("header value"));
            Reply::Response(r)
        }
        Fault::Storm if gets <= 3 => Reply::Response(too_many("soon".into(), &meta)),
        Fault::StormDate if gets <= 2 => {
            let at = httpdate::fmt_http_date(meta.date + std::time::Duration::from_secs(1));
            Reply::Response(too_many(at, &meta))
        }
        Fault::StormLong => Reply::Response(too_many("7200".into(), &meta)),
        Fault::Busy503 => {
            let e = ApiError::new(503, "SERVICE_UNAVAILABLE", "Simulated overload; retry later.");
            Reply::Response(json_response(503, &e.body(&meta.request_id), &meta, Some("3600".into())))
        }
        Fault::OtherId => {
            let mut other = scan.clone();
            other["id"] = json!(format!("{id}_other"));
            Reply::Response(json_response(200, &other, &meta, processing.then_some(retry_after)))
        }
        Fault::NoResult => {
            let mut bare = scan.clone();
            if let Some(o) = bare.as_object_mut() {
                o.remove("result");
            }
            Reply::Response(json_response(200, &bare, &meta, processing.then_some(retry_after)))
        }
        Fault::Skew => {
            meta.date = SystemTime::now() + std::time::Duration::from_secs(3 * 3600);
            let ra = httpdate::fmt_http_date(meta.date + std::time::Duration::from_secs(1));
            Reply::Response(json_response(200, &scan, &meta, processing.then_some(ra)))
        }
        _ => Reply::Response(json_response(200, &scan, &meta, processing.then_some(retry_after))),
    };
    let delay = (record.fault == Fault::Slow).then_some(slow);
    (reply, delay)
}

async fn stats(AxumState(state): AxumState<Shared>) -> Response {
    let s = lock(&state);
    let body: serde_json::Map<String, Value> = s
        .stats
        .iter()
        .map(|(key, st)| {
            let shown = masked(key);
            (shown, json!({
                "posts": st.posts, "gets": st.gets, "rate_limited": st.rate_limited,
                "scans_created": st.scans_created, "cache_hits": st.cache_hits, "credits_used": st.credits_used
            }))
        })
        .collect();
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(Value::Object(body).to_string()))
        .unwrap_or_default()
}

/// A key as the stats show it: its prefix, its last four characters and a fingerprint of the
/// whole key, so two keys never share a row and no key is shown whole.
fn masked(key: &str) -> String {
    let hash =
        key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let prefix: String = key.chars().take(9).collect();
    let tail: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("{prefix}…{tail} #{:08x}", hash as u32)
}

async fn not_found(AxumState(state): AxumState<Shared>) -> Response {
    let mut s = lock(&state);
    let meta = Meta::new(&mut s, None);
    error_response(&ApiError::new(404, "NOT_FOUND", "No such endpoint (simulator-only code)."), &meta)
}

#[cfg(test)]
mod tests {
    use super::masked;

    #[test]
    fn stats_keep_keys_apart_and_never_show_one_whole() {
        let a = "exo_test_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1";
        let b = "exo_test_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab0001";
        assert_ne!(masked(a), masked(b), "keys that share a long prefix stay apart");
        assert!(!masked(a).contains(&a[9..20]), "{}", masked(a));
        assert!(masked(a).starts_with("exo_test_…aaa1 #"));
    }
}

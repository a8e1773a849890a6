//! The two request flows: creating a scan (never repeating a POST that may have landed) and
//! waiting for one (polling no sooner than the server allows, within a deadline).
//!
//! This is the simple per-call loop. The budget-first engine (a governor per key and a shared
//! poll scheduler) will replace `wait`'s schedule; the seam is [`Policy`] and [`Call`].

use std::time::Duration;

use super::backoff;
use super::cancel::CancelToken;
use super::clock::Clock;
use super::decode;
use super::retry_after::{parse_reset, parse_retry_after};
use crate::error::{Code, Error};
use crate::model::{Scan, ScanRequest, ScanStatus};
use crate::transport::{Method, Request, Response, Transport, TransportError};

/// The tunables of the flows.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Upper bound of one HTTP exchange (further clipped to the deadline).
    pub attempt_timeout: Duration,
    /// Poll interval when the server sends no `Retry-After` (the docs recommend 10 s).
    pub default_poll_interval: Duration,
    /// GET failures in a row (5xx, network, unreadable body) tolerated before giving up.
    pub max_consecutive_failures: u32,
    /// Attempts for a POST whose connection could not be opened (nothing was sent).
    pub max_create_attempts: u32,
    /// The longest 429 wait worth sleeping through; longer ones return `RateLimited` at once.
    pub max_rate_limit_wait: Duration,
    /// How long before the deadline the final poll starts, so it ends by the deadline.
    pub final_poll_allowance: Duration,
    /// Retry backoff: `base * 2^n`, capped, with equal jitter (2 s and 60 s by default).
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// How long scans usually take (the docs: 30–120 s). No poll is sent before the shortest.
    pub expected_duration: (Duration, Duration),
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            attempt_timeout: Duration::from_secs(30),
            default_poll_interval: Duration::from_secs(10),
            max_consecutive_failures: 5,
            max_create_attempts: 3,
            max_rate_limit_wait: Duration::from_secs(15 * 60),
            final_poll_allowance: Duration::from_secs(2),
            backoff_base: backoff::BASE,
            backoff_cap: backoff::CAP,
            expected_duration: (Duration::from_secs(30), Duration::from_secs(120)),
        }
    }
}

/// Shortest timeout given to an exchange, even right at the deadline.
const MIN_ATTEMPT: Duration = Duration::from_millis(250);

/// What one call needs: where to send, what time it is, and its limits.
pub struct Call<'a> {
    pub transport: &'a dyn Transport,
    pub clock: &'a dyn Clock,
    pub policy: &'a Policy,
    /// Absolute monotonic deadline (on `clock`); `None` waits without limit.
    pub deadline: Option<Duration>,
    pub cancel: &'a CancelToken,
    /// This call's expected scan duration (the policy's unless the caller set one).
    pub expected_duration: (Duration, Duration),
}

impl Call<'_> {
    fn attempt_timeout(&self) -> Duration {
        match self.deadline {
            Some(dl) => dl.saturating_sub(self.clock.now()).clamp(MIN_ATTEMPT, self.policy.attempt_timeout),
            None => self.policy.attempt_timeout,
        }
    }

    fn backoff(&self, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
        backoff::equal_jitter(attempt, self.policy.backoff_base, self.policy.backoff_cap, rng)
    }

    fn send(&self, method: Method, path: String, body: Option<Vec<u8>>) -> Result<Response, TransportError> {
        let request = Request { method, path, body, timeout: self.attempt_timeout() };
        self.transport.send(&request)
    }

    /// How long a 429 asks us to wait: `Retry-After`, else the window reset, else backoff.
    fn rate_limit_wait(&self, response: &Response, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
        let h = &response.headers;
        let wall = self.clock.wall();
        h.retry_after
            .as_deref()
            .and_then(|v| parse_retry_after(v, h.date.as_deref(), wall))
            .or_else(|| h.rate_limit_reset.as_deref().and_then(|v| parse_reset(v, h.date.as_deref(), wall)))
            .unwrap_or_else(|| self.backoff(attempt, rng))
    }

    /// Sleeps out a 429 if it fits the deadline and the policy; else the `RateLimited` error.
    fn wait_out_rate_limit(&self, response: &Response, wait: Duration) -> Result<(), Error> {
        let until = self.clock.now() + wait;
        if let Some(e) = self.too_long(response, wait) {
            return Err(e);
        }
        if !self.clock.sleep_until(until, self.cancel) {
            return Err(cancelled());
        }
        Ok(())
    }

    /// The `RateLimited` error when a 429's wait is past the deadline or the policy's maximum.
    fn too_long(&self, response: &Response, wait: Duration) -> Option<Error> {
        let past_deadline = self.deadline.is_some_and(|dl| self.clock.now() + wait > dl);
        if !past_deadline && wait <= self.policy.max_rate_limit_wait {
            return None;
        }
        let mut e = decode::api_error(response);
        e.retry_after = Some(wait);
        e.message = format!(
            "{} (the server asks to wait {:.1} s, which is past {})",
            e.message,
            wait.as_secs_f64(),
            if past_deadline { "the deadline" } else { "max_rate_limit_wait" }
        );
        Some(e)
    }
}

fn cancelled() -> Error {
    Error::new(Code::Cancelled, "the wait was cancelled")
}

/// POST /scans. A request that may have reached the server is never sent again: that would
/// risk a second scan and a second credit. It is reported as `AmbiguousCreate` instead.
pub fn create(call: &Call, request: &ScanRequest) -> Result<Scan, Error> {
    request.validate()?;
    let body = serde_json::to_vec(&request.to_json()).map_err(|e| Error::new(Code::Internal, e.to_string()))?;
    let mut rng = fastrand::Rng::new();
    let mut unsent_attempts = 0;
    let mut rate_limited = 0;
    loop {
        if call.cancel.is_cancelled() {
            return Err(cancelled());
        }
        match call.send(Method::Post, "/scans".into(), Some(body.clone())) {
            Ok(response) if (200..300).contains(&response.status) => {
                return decode::scan(&response).map_err(|e| ambiguous(request, e.message, Some(&response)));
            }
            Ok(response) if response.status == 429 => {
                // A 429 is an answer: the scan was not created, so asking again is safe.
                let wait = call.rate_limit_wait(&response, rate_limited, &mut rng);
                rate_limited += 1;
                call.wait_out_rate_limit(&response, wait)?;
            }
            Ok(response) if response.status >= 500 => {
                let e = decode::api_error(&response);
                return Err(ambiguous(request, e.message, Some(&response)));
            }
            Ok(response) => return Err(decode::api_error(&response)),
            Err(TransportError::NotSent(why)) => {
                unsent_attempts += 1;
                let retry_at = call.clock.now() + call.backoff(unsent_attempts - 1, &mut rng);
                let fits = call.deadline.is_none_or(|dl| retry_at < dl);
                if unsent_attempts >= call.policy.max_create_attempts || !fits {
                    return Err(Error::new(
                        Code::Network,
                        format!(
                            "could not connect to create the scan after {unsent_attempts} attempt(s): {why} \
                             (no request reached the server, so no scan was created)"
                        ),
                    ));
                }
                if !call.clock.sleep_until(retry_at, call.cancel) {
                    return Err(cancelled());
                }
            }
            Err(e @ TransportError::Failed { .. }) => {
                return Err(ambiguous(request, e.message().to_owned(), None));
            }
        }
    }
}

fn ambiguous(request: &ScanRequest, why: String, response: Option<&Response>) -> Error {
    let mut e = Error::new(
        Code::AmbiguousCreate,
        format!(
            "the request to create a scan of {} may have reached the server, but no scan id came \
             back ({why}); it was not repeated, to avoid a duplicate scan",
            request.company_website
        ),
    );
    e.hint = Some(
        "Reconcile before creating again: a scan created by this request completes as usual; \
         creating again with max_age_days > 0 after it completes returns it without a new scan"
            .into(),
    );
    if let Some(r) = response {
        let api = decode::api_error(r);
        e.http_status = Some(r.status);
        e.api_code = api.api_code;
        e.request_id = api.request_id;
    }
    e
}

/// GET /scans/{id}, once.
pub fn get(call: &Call, id: &str) -> Result<Scan, Error> {
    let path = scan_path(id)?;
    match call.send(Method::Get, path, None) {
        Ok(response) if (200..300).contains(&response.status) => decode::scan(&response),
        Ok(response) => Err(decode::api_error(&response)),
        Err(e) => Err(decode::transport_error("GET scan failed", &e)),
    }
    .map_err(|e| e.with_scan_id(Some(id)))
}

fn scan_path(id: &str) -> Result<String, Error> {
    // Ids are opaque, but must stay one path segment.
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(Error::invalid_argument(format!(
            "scan_id {id:?} is not a scan id (letters, digits, '_' and '-' only)"
        )));
    }
    Ok(format!("/scans/{id}"))
}

/// Polls scan `id` until it completes or fails, the deadline passes, or the call is cancelled.
/// `first_poll_after` is how long to wait before the first poll (zero when resuming by id).
pub fn wait(call: &Call, id: &str, first_poll_after: Duration) -> Result<Scan, Error> {
    let path = scan_path(id)?;
    let mut rng = fastrand::Rng::new();
    let mut last_scan: Option<Scan> = None;
    let mut failures: u32 = 0;
    let mut rate_limited: u32 = 0;
    // When we would like to poll, and the earliest the server allows (Retry-After is a floor).
    let mut desired = call.clock.now() + first_poll_after;
    let mut floor = call.clock.now();
    loop {
        let mut is_final = false;
        if let Some(dl) = call.deadline {
            let final_start = dl.saturating_sub(call.policy.final_poll_allowance);
            if floor > dl {
                return Err(timeout(id, last_scan, "the server's Retry-After reaches past the deadline"));
            }
            if desired >= final_start {
                desired = floor.max(final_start);
                is_final = true;
            }
        }
        if !call.clock.sleep_until(desired.max(floor), call.cancel) {
            return Err(cancelled().with_scan_id(Some(id)));
        }
        let outcome = call.send(Method::Get, path.clone(), None);
        let now = call.clock.now();
        floor = now;
        let error = match outcome {
            Ok(response) if (200..300).contains(&response.status) => match decode::scan(&response) {
                Ok(scan) => {
                    failures = 0;
                    match scan.status() {
                        ScanStatus::Completed => return Ok(scan),
                        ScanStatus::Failed => return Err(decode::scan_failed(scan)),
                        // Processing, or a state this version does not know: keep waiting.
                        _ => {}
                    }
                    let interval = server_delay(call, &response).unwrap_or(call.policy.default_poll_interval);
                    if response.headers.retry_after.is_some() {
                        floor = now + interval;
                    }
                    desired = now + interval;
                    last_scan = Some(scan);
                    if is_final {
                        return Err(timeout(id, last_scan, "the scan was still processing at the deadline"));
                    }
                    continue;
                }
                Err(e) => e,
            },
            Ok(response) if response.status == 429 => {
                let wait = call.rate_limit_wait(&response, rate_limited, &mut rng);
                rate_limited += 1;
                if let Some(e) = call.too_long(&response, wait) {
                    return Err(e.with_scan_id(Some(id)));
                }
                floor = now + wait;
                desired = floor;
                continue;
            }
            Ok(response) if response.status >= 500 => {
                let e = decode::api_error(&response);
                if let Some(d) = server_delay(call, &response) {
                    floor = now + d;
                }
                e
            }
            // 400, 401, 403, 404: asking again will not change the answer.
            Ok(response) => return Err(decode::api_error(&response).with_scan_id(Some(id))),
            Err(e) => decode::transport_error("polling the scan failed", &e),
        };
        failures += 1;
        if is_final {
            let why = format!("the final poll failed: {}", error.message);
            return Err(timeout(id, last_scan, &why));
        }
        if failures > call.policy.max_consecutive_failures {
            let mut e = error.with_scan_id(Some(id));
            e.message = format!("{} ({failures} failed poll(s) in a row)", e.message);
            e.scan = last_scan;
            return Err(e);
        }
        desired = now + call.backoff(failures - 1, &mut rng);
    }
}

fn server_delay(call: &Call, response: &Response) -> Option<Duration> {
    let h = &response.headers;
    parse_retry_after(h.retry_after.as_deref()?, h.date.as_deref(), call.clock.wall())
}

fn timeout(id: &str, last_scan: Option<Scan>, why: &str) -> Error {
    let mut e = Error::new(
        Code::Timeout,
        format!("scan {id} did not finish before the deadline: {why}; resume with its id"),
    );
    e.scan_id = Some(id.to_owned());
    if let Some(s) = &last_scan {
        e.http_status = Some(s.http_status);
        e.request_id = s.request_id.clone();
    }
    e.scan = last_scan;
    e
}

/// Create, then wait: one request for a cache hit, and no poll before the scan can plausibly
/// be done (the shortest expected duration).
pub fn scan_and_wait(call: &Call, request: &ScanRequest) -> Result<Scan, Error> {
    let created = create(call, request)?;
    match created.status() {
        ScanStatus::Completed => Ok(created),
        ScanStatus::Failed => Err(decode::scan_failed(created)),
        _ => {
            let id = created.id().to_owned();
            wait(call, &id, call.expected_duration.0).map_err(|mut e| {
                if e.scan.is_none() {
                    e.scan = Some(created);
                }
                e
            })
        }
    }
}

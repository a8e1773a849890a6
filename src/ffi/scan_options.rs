//! `exona_scan_options`: the optional parts of a scan request and the limits of its wait.

use std::ffi::{c_char, c_int, c_void};
use std::time::Duration;

use super::args::{free, handle, into_raw, limit_ms, required_str, update};
use super::boundary::boundary;
use super::cancel::exona_cancel_token;
use super::codes::exona_code;
use super::progress::{exona_progress_fn, ProgressCallback};
use crate::client::WaitOptions;
use crate::error::Error;
use crate::model::{validate_max_age_days, validate_question, Question, ScanRequest};
use crate::Mode;

/// Options for one scan call (an opaque handle). Defaults: no questionnaire, `max_age_days`
/// left out (always a new scan), no force refresh, no field citations, a 300 s deadline.
/// Not thread-safe while being modified; once set up, one options handle may be passed to
/// calls on several threads at once (calls only read it).
#[derive(Clone, Debug, Default)]
pub struct exona_scan_options {
    pub request: ScanRequest,
    pub wait: WaitOptions,
    pub progress: Option<ProgressCallback>,
}

impl exona_scan_options {
    /// The request for a company, with these options applied.
    pub fn request_for(&self, company_name: &str, company_website: &str) -> ScanRequest {
        ScanRequest {
            company_name: company_name.to_owned(),
            company_website: company_website.to_owned(),
            ..self.request.clone()
        }
    }
}

/// New options with the defaults above. Free with `exona_scan_options_free`.
/// NULL only if out of memory.
#[no_mangle]
pub extern "C" fn exona_scan_options_new() -> *mut exona_scan_options {
    boundary(|| into_raw(exona_scan_options::default()))
}

/// Frees options. NULL is a no-op. Calls that used them keep nothing of them.
#[no_mangle]
pub extern "C" fn exona_scan_options_free(options: *mut exona_scan_options) {
    boundary(|| unsafe { free(options) })
}

/// Reuse a completed scan of the same website finished within `days` days (0–365; 0 means
/// always a new scan). A cache hit costs no credit and returns after one request. The API
/// ignores it when a questionnaire is given. Returns `EXONA_OK`, or
/// `EXONA_ERR_INVALID_ARGUMENT` (options unchanged) for NULL options or `days` > 365.
#[no_mangle]
pub extern "C" fn exona_scan_options_set_max_age_days(
    options: *mut exona_scan_options,
    days: u32,
) -> exona_code {
    boundary(|| {
        update(options, |o| {
            validate_max_age_days(days)?;
            o.request.max_age_days = Some(days);
            Ok(())
        })
    })
}

/// Always create a new scan, even when a cached one would do (uses a credit).
/// Returns `EXONA_OK`, or `EXONA_ERR_INVALID_ARGUMENT` for NULL options.
#[no_mangle]
pub extern "C" fn exona_scan_options_set_force_refresh(
    options: *mut exona_scan_options,
    on: bool,
) -> exona_code {
    boundary(|| {
        update(options, |o| {
            o.request.force_refresh = on;
            Ok(())
        })
    })
}

/// Ask for the source URLs cited for each enrichment field (the shape is not documented by
/// the API: read it from `exona_result_json`). Returns `EXONA_OK`, or
/// `EXONA_ERR_INVALID_ARGUMENT` for NULL options.
#[no_mangle]
pub extern "C" fn exona_scan_options_set_include_field_citations(
    options: *mut exona_scan_options,
    on: bool,
) -> exona_code {
    boundary(|| {
        update(options, |o| {
            o.request.include_field_citations = on;
            Ok(())
        })
    })
}

/// Appends a questionnaire item. Both strings are copied (the caller keeps ownership).
/// Returns `EXONA_OK`, or `EXONA_ERR_INVALID_ARGUMENT` (options unchanged) when an argument
/// is NULL or not UTF-8, when 50 questions are already set, or when the answer is longer than
/// 5,000 characters. The 20,000-character total is checked when the scan is requested.
#[no_mangle]
pub extern "C" fn exona_scan_options_add_question(
    options: *mut exona_scan_options,
    question: *const c_char,
    answer: *const c_char,
) -> exona_code {
    boundary(|| {
        update(options, |o| {
            let question = unsafe { required_str(question, "question") }?;
            let answer = unsafe { required_str(answer, "answer") }?;
            let item = Question { question: question.to_owned(), answer: answer.to_owned() };
            validate_question(o.request.questionnaire.len(), &item)?;
            o.request.questionnaire.push(item);
            Ok(())
        })
    })
}

/// The deadline of a waiting call, in milliseconds from the call's start (default 300,000).
/// `UINT64_MAX` means no deadline. 0 is refused (`EXONA_ERR_INVALID_ARGUMENT`, options
/// unchanged), as are NULL options.
#[no_mangle]
pub extern "C" fn exona_scan_options_set_timeout_ms(options: *mut exona_scan_options, ms: u64) -> exona_code {
    boundary(|| {
        update(options, |o| {
            if ms == 0 {
                return Err(Error::invalid_argument("timeout_ms is 0; use UINT64_MAX for no deadline"));
            }
            o.wait.deadline = limit_ms(ms);
            Ok(())
        })
    })
}

/// How long this scan is expected to take, in milliseconds (default: the client's, normally
/// 30,000–120,000 as the API documents). No poll is sent before `min_ms`. Returns `EXONA_OK`,
/// or `EXONA_ERR_INVALID_ARGUMENT` (options unchanged) for NULL options or `min_ms > max_ms`.
#[no_mangle]
pub extern "C" fn exona_scan_options_set_expected_duration_ms(
    options: *mut exona_scan_options,
    min_ms: u64,
    max_ms: u64,
) -> exona_code {
    boundary(|| {
        update(options, |o| {
            o.wait.expected_duration = Some(duration_range(min_ms, max_ms)?);
            Ok(())
        })
    })
}

/// Attaches a cancellation token (NULL detaches). The options take their own reference: the
/// token may be freed afterwards. Returns `EXONA_OK`, or `EXONA_ERR_INVALID_ARGUMENT` for
/// NULL options.
#[no_mangle]
pub extern "C" fn exona_scan_options_set_cancel(
    options: *mut exona_scan_options,
    cancel: *const exona_cancel_token,
) -> exona_code {
    boundary(|| {
        update(options, |o| {
            o.wait.cancel = unsafe { handle(cancel, "cancel") }.ok().map(|c| c.token.clone());
            Ok(())
        })
    })
}

/// How a scan call trades requests against how soon it notices completion. The API allows
/// 100 requests per hour per key, so requests are the currency.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum exona_poll_mode {
    /// About 1.6 polls per scan once durations are learned (about 2.6 requests per fresh
    /// scan, counting its POST and early scans polled on the prior), at quantiles of the scan
    /// durations seen, whatever the budget.
    EXONA_POLL_BALANCED = 0,
    /// Polls as often as Retry-After allows once a scan may be done: notices completion
    /// within one Retry-After, at several times the requests.
    EXONA_POLL_LATENCY = 1,
    /// About 1.1 polls per scan (about 2.1 requests per fresh scan); completion is noticed late.
    EXONA_POLL_FRUGAL = 2,
    /// The default: polls like `EXONA_POLL_LATENCY` while the key's rate-limit window has
    /// requests to spare (after the polls promised to admitted scans, the scans waiting to be
    /// created, and a tenth of the limit kept for other processes), moving continuously
    /// toward `EXONA_POLL_FRUGAL` as it tightens. A window's unspent requests are lost at its
    /// reset; this mode spends them on noticing completions sooner. The progress callback's
    /// `regime` and `thrift_permille` say where a wait stands.
    EXONA_POLL_ADAPTIVE = 3,
}

/// The mode an `exona_poll_mode` integer names (shared with the client options).
pub(crate) fn poll_mode(raw: c_int) -> Result<Mode, Error> {
    match raw {
        0 => Ok(Mode::Balanced),
        1 => Ok(Mode::Latency),
        2 => Ok(Mode::Frugal),
        3 => Ok(Mode::Adaptive),
        other => Err(Error::invalid_argument(format!("mode {other} is not an exona_poll_mode"))),
    }
}

/// An expected-duration range in milliseconds, checked (shared with the client options).
pub(crate) fn duration_range(min_ms: u64, max_ms: u64) -> Result<(Duration, Duration), Error> {
    if min_ms > max_ms {
        return Err(Error::invalid_argument(format!("min_ms ({min_ms}) is greater than max_ms ({max_ms})")));
    }
    Ok((Duration::from_millis(min_ms), Duration::from_millis(max_ms)))
}

/// Sets the poll mode of this call (an `exona_poll_mode` value; default: the client's,
/// `EXONA_POLL_ADAPTIVE` unless `exona_client_options_set_poll_mode` chose another). Takes a
/// plain int so any value is defined: unknown values return `EXONA_ERR_INVALID_ARGUMENT` and
/// leave the options unchanged, as do NULL options.
#[no_mangle]
pub extern "C" fn exona_scan_options_set_poll_mode(
    options: *mut exona_scan_options,
    mode: c_int,
) -> exona_code {
    boundary(|| {
        update(options, |o| {
            o.wait.mode = Some(poll_mode(mode)?);
            Ok(())
        })
    })
}

/// Fixes how thrifty this call's polling is, for callers who know their trade-off: from 0
/// (poll as often as Retry-After allows once the scan may be done, like `EXONA_POLL_LATENCY`:
/// completion noticed within one Retry-After, at several times the requests) to 1000 (like
/// `EXONA_POLL_FRUGAL`: about 1.1 polls per scan, completion noticed late). The call then
/// follows `EXONA_POLL_ADAPTIVE`'s schedule at that point whatever the key's window, instead
/// of moving along it as the window tightens (docs/waiting.md shows requests per scan against
/// detection delay for each point). The key's budget still admits every request: a fixed
/// thrift never brings a 429, it can only wait longer for the budget. `-1` (the default)
/// leaves the choice to the poll mode. Returns `EXONA_OK`, or `EXONA_ERR_INVALID_ARGUMENT`
/// for any other value or NULL options (which are then unchanged). While set, it wins over
/// `exona_scan_options_set_poll_mode` and the client's mode: the progress callback reports the
/// regime `EXONA_POLL_ADAPTIVE` (`EXONA_POLL_LATENCY` at 0, `EXONA_POLL_FRUGAL` at 1000) and
/// this `thrift_permille`.
#[no_mangle]
pub extern "C" fn exona_scan_options_set_thrift_permille(
    options: *mut exona_scan_options,
    permille: c_int,
) -> exona_code {
    boundary(|| {
        update(options, |o| {
            o.wait.thrift = match permille {
                -1 => None,
                0..=1000 => Some(f64::from(permille) / 1000.0),
                other => {
                    return Err(Error::invalid_argument(format!(
                        "thrift_permille {other} is outside 0..1000 (or -1 for the mode's choice)"
                    )))
                }
            };
            Ok(())
        })
    })
}

/// The longest wait for a 429 (rate limited) that the call sleeps through, in milliseconds
/// (default 900,000: 15 minutes). A longer one, or one past the deadline, returns
/// `EXONA_ERR_RATE_LIMITED` at once with `exona_result_retry_after_ms`. Returns `EXONA_OK`,
/// or `EXONA_ERR_INVALID_ARGUMENT` for NULL options.
#[no_mangle]
pub extern "C" fn exona_scan_options_set_max_rate_limit_wait_ms(
    options: *mut exona_scan_options,
    ms: u64,
) -> exona_code {
    boundary(|| {
        update(options, |o| {
            o.wait.max_rate_limit_wait = Some(Duration::from_millis(ms));
            Ok(())
        })
    })
}

/// Sets a progress callback (NULL removes it). It is called before every wait of
/// `exona_scan_and_wait` and `exona_scan_wait`, on the calling thread, with `user_data`;
/// a non-zero return cancels the call. The library never dereferences `user_data`.
/// Returns `EXONA_OK`, or `EXONA_ERR_INVALID_ARGUMENT` for NULL options.
#[no_mangle]
pub extern "C" fn exona_scan_options_set_progress(
    options: *mut exona_scan_options,
    callback: exona_progress_fn,
    user_data: *mut c_void,
) -> exona_code {
    boundary(|| {
        update(options, |o| {
            o.progress = callback.map(|f| ProgressCallback { f, user_data });
            Ok(())
        })
    })
}

//! `exona scan`, `exona get`, `exona wait`: one scan, printed as a summary or as JSON.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exona::{Client, Code, Error, Progress, Reason, Scan, ScanRequest, WaitOptions};

use crate::interrupt::Interrupt;
use crate::summary;
use crate::Failure;

pub struct ScanArgs {
    pub name: String,
    pub website: String,
    pub max_age_days: Option<u32>,
    pub force_refresh: bool,
    pub citations: bool,
    pub timeout: Duration,
    pub json: bool,
}

pub fn scan(client: &Client, a: ScanArgs, interrupt: &Interrupt) -> Result<(), Failure> {
    let request = ScanRequest {
        max_age_days: a.max_age_days,
        force_refresh: a.force_refresh,
        include_field_citations: a.citations,
        ..ScanRequest::new(a.name, a.website)
    };
    let options = options(a.timeout, interrupt);
    let mut spinner = Spinner::new();
    let outcome = client.scan_and_wait_with_progress(&request, &options, &mut |p| spinner.tick(p));
    spinner.finish();
    show(outcome, a.json, interrupt)
}

pub fn get(client: &Client, scan_id: &str, json: bool, interrupt: &Interrupt) -> Result<(), Failure> {
    check_scan_id(scan_id)?;
    show(client.get_scan(scan_id), json, interrupt)
}

/// A scan id has the API's shape (`scn_...`, `scn_test_...` for test keys): anything else is
/// refused before a request is sent (issue 36: `exona wait hello` asked the API).
fn check_scan_id(scan_id: &str) -> Result<(), Failure> {
    let rest = scan_id.strip_prefix("scn_").unwrap_or("");
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(Failure::usage(format!(
            "{scan_id:?} is not a scan id: ids start with scn_ (scn_test_ for test keys), as \
             `exona scan --json`, a batch's output or an interrupted scan print them"
        )));
    }
    Ok(())
}

pub fn wait(
    client: &Client,
    scan_id: &str,
    timeout: Duration,
    json: bool,
    interrupt: &Interrupt,
) -> Result<(), Failure> {
    check_scan_id(scan_id)?;
    let options = options(timeout, interrupt);
    let mut spinner = Spinner::new();
    let outcome = client.wait_with_progress(scan_id, &options, &mut |p| spinner.tick(p));
    spinner.finish();
    show(outcome, json, interrupt)
}

fn options(timeout: Duration, interrupt: &Interrupt) -> WaitOptions {
    WaitOptions { deadline: Some(timeout), cancel: Some(interrupt.token.clone()), ..WaitOptions::default() }
}

/// Prints a scan (completed, failed or still processing) or an error. Exit status: 0 for a
/// completed scan (or one still processing, from `get`), 2 for an argument the library
/// refused (a website, a number out of range), 1 for a failed scan or another error, 130 when
/// interrupted.
fn show(outcome: Result<Scan, Error>, json: bool, interrupt: &Interrupt) -> Result<(), Failure> {
    match outcome {
        Ok(scan) => {
            print_scan(&scan, json);
            Ok(())
        }
        Err(e) => {
            if let Some(scan) = &e.scan {
                print_scan(scan, json);
            }
            let resume = match (&e.scan_id, e.code) {
                (
                    Some(id),
                    Code::Timeout | Code::Cancelled | Code::RateLimited | Code::Network | Code::Server,
                ) => {
                    format!("\nresume with: exona wait {id}")
                }
                _ => String::new(),
            };
            let message = format!("{}: {}{resume}", e.code.name(), e.message);
            if e.code == Code::Cancelled && interrupt.happened() {
                return Err(Failure::interrupted(interrupt, message));
            }
            if e.code == Code::InvalidArgument {
                return Err(Failure::usage(message));
            }
            Err(Failure::failed(message))
        }
    }
}

fn print_scan(scan: &Scan, json: bool) {
    if json {
        println!("{}", scan.raw_json());
    } else {
        print!("{}", summary::render(scan));
    }
    let _ = std::io::Write::flush(&mut std::io::stdout());
}

/// On a terminal, a line that says what the wait is for and counts down to the next request;
/// elsewhere nothing.
struct Spinner {
    bar: Option<indicatif::ProgressBar>,
    /// When the next request is due, read by the bar's `{countdown}` on every steady tick (the
    /// engine reports a wait once, when it begins).
    next_request: Arc<Mutex<Instant>>,
}

impl Spinner {
    fn new() -> Spinner {
        let next_request = Arc::new(Mutex::new(Instant::now()));
        let due = Arc::clone(&next_request);
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            let style =
                indicatif::ProgressStyle::with_template("{spinner} {prefix}{countdown}{msg}").map(|s| {
                    s.with_key(
                        "countdown",
                        move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let left = due
                                .lock()
                                .map(|d| d.saturating_duration_since(Instant::now()))
                                .unwrap_or_default();
                            let _ = write!(w, ", next request in {} s", left.as_secs_f64().ceil() as u64);
                        },
                    )
                });
            if let Ok(style) = style {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Spinner { bar, next_request }
    }

    fn tick(&mut self, p: &Progress) -> bool {
        if let Some(bar) = &self.bar {
            if let Ok(mut due) = self.next_request.lock() {
                *due = Instant::now() + p.wait;
            }
            let id = p.scan_id.as_deref().map(|id| format!("{id}: ")).unwrap_or_default();
            bar.set_prefix(format!("{id}{}", waiting_for(p.reason)));
            bar.set_message(format!(" ({} sent, {} left in the key's budget)", p.requests, p.budget_left));
        }
        true
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// What a wait is for, in a user's words (the engine's `Reason` names are internal).
pub fn waiting_for(reason: Reason) -> &'static str {
    match reason {
        Reason::Create => "creating the scan",
        Reason::Schedule => "waiting for the scan",
        Reason::RetryAfter => "waiting for the scan (as the server asked)",
        Reason::Backoff => "retrying after a failed request",
        Reason::RateLimit => "waiting: the API answered 429 (too many requests)",
        Reason::Budget => "waiting for the key's window",
        Reason::FinalPoll => "waiting for the last poll before the timeout",
        Reason::OtherCreate => "waiting for another process's create of the same company",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_named_in_a_users_words_not_the_engines() {
        let all = [
            Reason::Create,
            Reason::Schedule,
            Reason::RetryAfter,
            Reason::Backoff,
            Reason::RateLimit,
            Reason::Budget,
            Reason::FinalPoll,
            Reason::OtherCreate,
        ];
        for reason in all {
            let words = waiting_for(reason);
            assert!(!words.contains(&format!("{reason:?}")), "{words:?} shows the internal name {reason:?}");
            assert!(words.chars().all(|c| !c.is_uppercase() || words.contains("API")), "{words:?}");
        }
        assert_eq!(waiting_for(Reason::Create), "creating the scan");
        assert_eq!(waiting_for(Reason::Schedule), "waiting for the scan");
        assert_eq!(waiting_for(Reason::Budget), "waiting for the key's window");
    }
}

//! `exona scan`, `exona get`, `exona wait`: one scan, printed as a summary or as JSON.

use std::io::IsTerminal;
use std::time::Duration;

use exona::{Client, Code, Error, Progress, Scan, ScanRequest, WaitOptions};

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
    show(client.get_scan(scan_id), json, interrupt)
}

pub fn wait(
    client: &Client,
    scan_id: &str,
    timeout: Duration,
    json: bool,
    interrupt: &Interrupt,
) -> Result<(), Failure> {
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
/// completed scan (or one still processing, from `get`), 1 for a failed scan or an error,
/// 130 when interrupted.
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
                return Err(Failure::interrupted(message));
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

/// On a terminal, a line that says what the wait is for; elsewhere nothing.
struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    fn new() -> Spinner {
        Spinner(std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        }))
    }

    fn tick(&mut self, p: &Progress) -> bool {
        if let Some(bar) = &self.0 {
            let id = p.scan_id.as_deref().unwrap_or("creating the scan");
            bar.set_message(format!(
                "{id}: {:?}, next request in {:.0} s ({} sent, {} left in the key's budget)",
                p.reason,
                p.wait.as_secs_f64(),
                p.requests,
                p.budget_left
            ));
        }
        true
    }

    fn finish(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

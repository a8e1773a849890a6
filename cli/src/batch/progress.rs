//! How a long batch shows where it stands: a bar on a terminal (completed, failed, in flight,
//! queued, requests used, budget left, ETA), a plain line every few seconds elsewhere.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use exona::Status;

pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    /// Rows OUTPUT held before this run (they count as done).
    already: u64,
    every: Duration,
    last_line: Instant,
}

/// How this run's rows ended, as OUTPUT says it: "failed" is the API's verdict on a company
/// (the scan failed), "error" a row that could not be scanned (refused input, a timeout, ...).
/// The library's `Status::failed` counts both, and a cancelled row too, so the command keeps
/// its own count of what it wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ended {
    pub completed: usize,
    pub failed: usize,
    pub errors: usize,
}

impl Ended {
    pub fn total(&self) -> usize {
        self.completed + self.failed + self.errors
    }
}

pub fn describe(ended: &Ended, s: &Status) -> String {
    let eta = match s.eta {
        Some(d) => format!(", about {} to go", humantime::format_duration(Duration::from_secs(d.as_secs()))),
        None => String::new(),
    };
    format!(
        "{} completed, {} failed, {} error, {} in flight, {} queued; {} requests used, {} left in the key's \
         budget{eta}",
        ended.completed, ended.failed, ended.errors, s.in_flight, s.queued, s.requests, s.budget_left
    )
}

impl Progress {
    pub fn new(total: u64, already: u64) -> Progress {
        let every = std::env::var("EXONA_PROGRESS_SECONDS")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .unwrap_or(Duration::from_secs(5));
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} rows  {msg}") {
                bar.set_style(style);
            }
            bar.set_position(already);
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Progress { bar, already, every, last_line: Instant::now() }
    }

    pub fn update(&mut self, ended: &Ended, status: &Status) {
        let done = self.already + ended.total() as u64;
        match &self.bar {
            Some(bar) => {
                bar.set_position(done);
                bar.set_message(describe(ended, status));
            }
            None if self.last_line.elapsed() >= self.every => {
                self.last_line = Instant::now();
                eprintln!("exona: {done} rows done: {}", describe(ended, status));
            }
            None => {}
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

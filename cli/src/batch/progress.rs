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
    let words = |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs())).to_string();
    let eta = match (s.eta, s.eta_range) {
        (Some(d), _) => format!(", about {} to go", words(d)),
        // Other processes share the key: the end depends on whose rows the window serves first.
        (None, Some((first, last))) => {
            format!(", {} to {} to go (other processes share the key)", words(first), words(last))
        }
        // Rows left but no estimate: it would span windows whose length is not known yet.
        (None, None) if s.queued + s.in_flight > 0 => {
            ", time to go not known yet (the key's window not learned)".to_owned()
        }
        (None, None) => String::new(),
    };
    let others = match s.waiting_on_other_create {
        0 => String::new(),
        n => format!(" ({n} waiting on another process's create of the same company)"),
    };
    let reset = match s.window_resets_in {
        Some(d) => format!("; the window resets at {}", reset_at(d, std::time::SystemTime::now())),
        None => String::new(),
    };
    format!(
        "{} completed, {} failed, {} error, {} in flight, {} queued{others}; {} requests used, {} left in the \
         key's budget{reset}{eta}",
        ended.completed, ended.failed, ended.errors, s.in_flight, s.queued, s.requests, s.budget_left
    )
}

/// "13:06 UTC, in 41 min": when a window that resets `after` from `now` does.
pub fn reset_at(after: Duration, now: std::time::SystemTime) -> String {
    let at = humantime::format_rfc3339_seconds(now + after).to_string();
    let clock = at.get(11..16).unwrap_or(&at);
    let secs = after.as_secs();
    let wait = if secs >= 90 { format!("{} min", (secs + 30) / 60) } else { format!("{secs} s") };
    format!("{clock} UTC, in {wait}")
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows waiting for the key's window say when it resets (an outside check saw "0 requests
    /// used, 9 left in the key's budget, about 1h 40m to go" and no word of the window).
    #[test]
    fn rows_waiting_for_the_window_say_when_it_resets() {
        let waiting = Status {
            queued: 20,
            budget_left: 9,
            eta: Some(Duration::from_secs(56 * 60)),
            window_resets_in: Some(Duration::from_secs(55 * 60)),
            ..Status::default()
        };
        let line = describe(&Ended::default(), &waiting);
        assert!(line.contains("9 left in the key's budget; the window resets at "), "{line}");
        assert!(line.contains(" UTC, in 55 min, about 56m to go"), "{line}");
        let flowing = Status { window_resets_in: None, ..waiting };
        assert!(!describe(&Ended::default(), &flowing).contains("resets"));
        let joined = Status { waiting_on_other_create: 3, ..flowing };
        let line = describe(&Ended::default(), &joined);
        assert!(
            line.contains("20 queued (3 waiting on another process's create of the same company);"),
            "{line}"
        );
        let at = std::time::UNIX_EPOCH + Duration::from_secs(12 * 3600);
        assert_eq!(reset_at(Duration::from_secs(41 * 60), at), "12:41 UTC, in 41 min");
        assert_eq!(reset_at(Duration::from_secs(30), at), "12:00 UTC, in 30 s");
    }

    /// Issue 35: what the line says of the end when it cannot say one time: with other
    /// processes on the key, between this process's rows going first and going last; before
    /// the key's window is learned, that it does not know (not "about 1h 43s" for 2 minutes).
    #[test]
    fn an_end_not_known_to_a_factor_of_two_is_said_so() {
        let shared = Status {
            queued: 5,
            eta_range: Some((Duration::from_secs(50), Duration::from_secs(330))),
            ..Status::default()
        };
        let line = describe(&Ended::default(), &shared);
        assert!(line.ends_with(", 50s to 5m 30s to go (other processes share the key)"), "{line}");
        let unknown = Status { eta_range: None, ..shared };
        let line = describe(&Ended::default(), &unknown);
        assert!(line.ends_with(", time to go not known yet (the key's window not learned)"), "{line}");
        let done = Status { queued: 0, ..unknown };
        assert!(!describe(&Ended::default(), &done).contains("to go"));
    }
}

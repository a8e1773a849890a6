//! `exona-bench adaptive`: the adaptive poll mode (the default) at issue 13's three figures,
//! each beside the textbook client in the same run. Runs of one figure go at once, each on
//! its own simulator and key (they share nothing but the machine), so the scenario takes
//! about as long as its slowest run.

use std::time::Duration;

use exona::{Mode, Policy};
use exona_sim::{Config, SimHandle};

use super::{
    key, print_seeded_row, run_libexona_with, run_textbook, run_textbook_at, websites, Report, SCAN_MAX,
    SCAN_MIN,
};

fn sim(
    durations: (Duration, Duration),
    retry_after: f64,
    limit: u32,
    window: Duration,
    seed: u64,
) -> SimHandle {
    exona_sim::spawn(Config {
        scan_duration_min: durations.0,
        scan_duration_max: durations.1,
        retry_after_secs: retry_after,
        rate_limit: limit,
        rate_window: window,
        seed,
        ..Config::default()
    })
    .expect("simulator")
}

/// One run of a figure: libexona in `mode` (with the given prior) or, with `None`, the
/// textbook client.
struct Job {
    seed: u64,
    mode: Option<Mode>,
    prior: (Duration, Duration),
}

/// Runs `jobs` at once, `scans` each, on simulators made by `make_sim`.
fn run_all(
    jobs: Vec<Job>,
    scans: usize,
    tag: &str,
    first_key: u32,
    make_sim: impl Fn(u64) -> SimHandle + Sync,
) -> Vec<(u64, Report)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .into_iter()
            .enumerate()
            .map(|(i, job)| {
                let make_sim = &make_sim;
                s.spawn(move || {
                    let sim = make_sim(job.seed);
                    let k = key(first_key + i as u32);
                    let sites = websites(scans, &format!("{tag}{i}-"));
                    let report = match job.mode {
                        Some(mode) => {
                            let policy = Policy { mode, expected_duration: job.prior, ..Policy::default() };
                            run_libexona_with(&sim, &k, policy, sites)
                        }
                        None if job.prior == (SCAN_MIN, SCAN_MAX) => run_textbook(&sim, &k, sites),
                        // Scans at the API's own length: the textbook client at its own pace.
                        None => run_textbook_at(&sim, &k, sites, 1.0),
                    };
                    (job.seed, report)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a run panicked")).collect()
    })
}

fn header() {
    println!("| client | seed | scans | failed | requests per scan | polls per scan | 429s | detection p50 (s) | detection p95 (s) | makespan (s) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// The figures of one mode over its runs: worst makespan, requests per scan, 429s, failures.
fn summary(name: &str, runs: &[&Report]) {
    let worst = runs.iter().map(|r| r.makespan.as_secs_f64()).fold(0.0, f64::max);
    let per_scan = runs.iter().map(|r| r.per_scan()).fold(0.0, f64::max);
    let limited: u64 = runs.iter().map(|r| r.rate_limited).sum();
    let failed: usize = runs.iter().map(|r| r.failed).sum();
    println!(
        "{name}: worst makespan {worst:.1} s, at most {per_scan:.2} requests per scan, {limited} × 429, {failed} failed"
    );
}

pub fn run() {
    let real = (Duration::from_secs(30), Duration::from_secs(120));
    let short = (SCAN_MIN, SCAN_MAX);

    println!("## Adaptive waiting (issue 13)\n");
    println!("### 8 scans of 30–120 s, Retry-After 10 s, default prior, 100 requests per hour\n");
    let jobs = vec![
        Job { seed: 31, mode: Some(Mode::Adaptive), prior: real },
        Job { seed: 31, mode: Some(Mode::Balanced), prior: real },
        Job { seed: 31, mode: None, prior: real },
    ];
    let runs = run_all(jobs, 8, "pl", 300, |seed| sim(real, 10.0, 100, Duration::from_secs(3600), seed));
    header();
    for (seed, r) in &runs {
        print_seeded_row(r, *seed);
    }
    for (_, r) in &runs {
        println!(
            "\n{}: mean detection {:.1} s, worst {:.1} s, {:.2} requests per scan, {} × 429",
            r.name,
            mean(&r.detection),
            r.detection.iter().copied().fold(0.0, f64::max),
            r.per_scan(),
            r.rate_limited
        );
    }
    println!();

    for (scans, title) in [(20, "20 scans"), (30, "30 scans (the budget binds)")] {
        println!("### {title} of 3–12 s, Retry-After 1 s, 30 requests per 60 s, seeds 5, 6 and 8\n");
        let mut jobs = Vec::new();
        for seed in [5, 6, 8] {
            jobs.push(Job { seed, mode: Some(Mode::Adaptive), prior: short });
            jobs.push(Job { seed, mode: None, prior: short });
        }
        let runs = run_all(jobs, scans, &format!("pr{scans}"), 310 + scans as u32, |seed| {
            sim(short, 1.0, 30, Duration::from_secs(60), seed)
        });
        header();
        for (seed, r) in &runs {
            print_seeded_row(r, *seed);
        }
        println!();
        for name in ["libexona adaptive", "textbook (5 workers)"] {
            let of: Vec<&Report> = runs.iter().map(|(_, r)| r).filter(|r| r.name == name).collect();
            summary(name, &of);
        }
        println!();
    }
}

//! `exona-bench no-hint`: processes told nothing of how long scans take (issue 35, DESIGN.md
//! 9.4). Three `exona-bench store-worker` processes × 12 scans on one key at 20 requests per
//! 40 s, with the documented 30-120 s prior only, sharing a state store and blind side by side
//! on the same seed; scans of 3-12 s (a test key's) and of 30-120 s (the prior's own). Each
//! call's time from its start to its result, and from its scan's end to its result.

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::store::{collect, sim_seeded, sites, spawn_worker, state_dir, WorkerReport};

/// What one run of three processes saw.
pub struct Run {
    pub slowest: f64,
    pub requests: u64,
    pub rate_limited: u64,
    pub failed: usize,
    /// Each call's time from the batch's start to its result, and from its scan's end.
    pub call_times: Vec<f64>,
    pub after_end: Vec<f64>,
}

/// Mean and 90th percentile.
pub fn mean_p90(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let p90 = v[((v.len() as f64 * 0.9).ceil() as usize).clamp(1, v.len()) - 1];
    (v.iter().sum::<f64>() / v.len() as f64, p90)
}

/// Three processes × 12 scans of `scans` seconds, sharing a store or blind.
pub fn three(scans: (u64, u64), seed: u64, shared: bool, key_n: u32) -> Run {
    let sim = sim_seeded(
        20,
        Duration::from_secs(40),
        Duration::from_secs(scans.0),
        Duration::from_secs(scans.1),
        seed,
    );
    let key = super::key(key_n);
    let dir = if shared { state_dir(&format!("nohint{key_n}")) } else { PathBuf::from("off") };
    let groups: Vec<Vec<String>> = (0..3).map(|p| sites(&format!("nh{key_n}p{p}"), 12)).collect();
    let children: Vec<Child> = groups.iter().map(|g| spawn_worker(&sim, &key, &dir, "none", g)).collect();
    let reports: Vec<WorkerReport> = children.into_iter().map(collect).collect();
    // The simulator's clock to Unix time (its completion times are instants of this process).
    let (instant, unix) =
        (Instant::now(), SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64());
    let to_unix = |at: Instant| match at.checked_duration_since(instant) {
        Some(later) => unix + later.as_secs_f64(),
        None => unix - instant.duration_since(at).as_secs_f64(),
    };
    let mut call_times = Vec::new();
    let mut after_end = Vec::new();
    for r in &reports {
        for (id, ended) in &r.calls {
            call_times.push(ended - r.started_unix);
            if let Some(done) = sim.finished_at(id) {
                after_end.push((ended - to_unix(done)).max(0.0));
            }
        }
    }
    let stats = sim.stats(&key);
    if shared {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Run {
        slowest: reports.iter().map(|r| r.elapsed).fold(0.0, f64::max),
        requests: stats.posts + stats.gets,
        rate_limited: stats.rate_limited,
        failed: reports.iter().map(|r| r.failed).sum(),
        call_times,
        after_end,
    }
}

pub fn run() {
    println!("## No duration hint: sharing a store against blind processes (issue 35)\n");
    println!(
        "Three `exona-bench store-worker` processes × 12 scans on one key, 20 requests per 40 s, \
         no `EXONA_SCAN_DURATION_MS` (the documented 30–120 s prior), the same simulator seed \
         for the shared and the blind run. \"call\": each call's time from the batch's start to \
         its result; \"after the scan's end\": from its scan's completion to its result.\n"
    );
    println!("| scans | seed | state store | slowest process | ÷ blind | requests | 429s | failed | call mean / p90 | after the scan's end mean / p90 |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut key_n = 1300;
    for scans in [(3, 12), (30, 120)] {
        for seed in [11, 12] {
            key_n += 2;
            let shared = three(scans, seed, true, key_n);
            let blind = three(scans, seed, false, key_n + 1);
            for (label, r) in [("shared", &shared), ("none (blind)", &blind)] {
                let (cm, cp) = mean_p90(&r.call_times);
                let (em, ep) = mean_p90(&r.after_end);
                println!(
                    "| {}–{} s | {seed} | {label} | {:.1} s | {:.2} | {} | {} | {} | {cm:.1} / {cp:.1} s | {em:.1} / {ep:.1} s |",
                    scans.0,
                    scans.1,
                    r.slowest,
                    r.slowest / blind.slowest,
                    r.requests,
                    r.rate_limited,
                    r.failed,
                );
            }
        }
    }
    println!();
}

//! The `store` scenario: processes of one host sharing a key through the state store (issue
//! 11). Every "process" is a real child process (this binary, run as `store-worker`), so the
//! only thing they share is the state directory, as separate services would.
//!
//! - three processes × 12 scans under 20 requests per 40 s, with the store and without;
//! - a fourth process asking again for 12 completed companies (max_age_days 30);
//! - two processes asking at once for the same 6 companies, with the store and without;
//! - a fresh process with no duration hint, after a run that learned 2–4 s scans;
//! - the ledger's cost per request (one transaction to grant, one to observe).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use exona::{Batch, ClientConfig, Next, Policy, ScanRequest, WaitOptions};
use exona_sim::{Config, SimHandle};

/// What a worker process prints on its last line.
pub struct WorkerReport {
    pub completed: usize,
    pub failed: usize,
    pub from_store: usize,
    pub elapsed: f64,
    /// When the worker's last call ended (Unix seconds).
    pub ended_unix: f64,
    /// When it started (Unix seconds), and each completed call's scan id and end.
    pub started_unix: f64,
    pub calls: Vec<(String, f64)>,
}

/// `exona-bench store-worker BASE_URL STATE_DIR|off HINT|none SITE...`, the key in
/// `EXONA_API_KEY` (and the fleet store's database in `EXONA_STATE_URL`, when set): scans
/// every site in one batch (max_age_days 30), prints one line.
pub fn worker(args: &[String]) {
    let [base_url, state, hint, sites @ ..] = args else {
        eprintln!("store-worker: BASE_URL STATE_DIR|off HINT|none SITE...");
        std::process::exit(2);
    };
    let key = std::env::var("EXONA_API_KEY").expect("EXONA_API_KEY");
    let mut policy = Policy::default();
    if let Some((lo, hi)) = hint.split_once('-') {
        let secs = |s: &str| Duration::from_secs_f64(s.parse().expect("hint seconds"));
        policy.expected_duration = (secs(lo), secs(hi));
    }
    let config = ClientConfig {
        policy,
        state_dir: (state != "off").then(|| PathBuf::from(state)),
        state_url: std::env::var("EXONA_STATE_URL").ok().map(|u| exona::config::StateUrl::new(&u)),
        ..ClientConfig::new(&key, Some(base_url))
    };
    let client = config.build().expect("client");
    let started = Instant::now();
    let unix_now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    println!("started {:.3}", unix_now().as_secs_f64());
    let batch = Batch::new(&client);
    let options = WaitOptions { deadline: Some(Duration::from_secs(1800)), ..WaitOptions::default() };
    for site in sites {
        batch.add(ScanRequest { max_age_days: Some(30), ..ScanRequest::new("Bench Co", site) }, &options);
    }
    let (mut completed, mut failed, mut from_store) = (0, 0, 0);
    while let Next::Ready(_, outcome) = batch.next(None) {
        match outcome {
            Ok(scan) => {
                completed += 1;
                from_store += scan.from_store as usize;
                println!("call {} {:.3}", scan.id(), unix_now().as_secs_f64());
            }
            Err(e) => {
                failed += 1;
                eprintln!("store-worker: {e}");
            }
        }
    }
    let ended = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    println!(
        "report {completed} {failed} {from_store} {:.3} {:.3}",
        started.elapsed().as_secs_f64(),
        ended.as_secs_f64()
    );
}

pub fn spawn_worker(sim: &SimHandle, key: &str, state: &Path, hint: &str, sites: &[String]) -> Child {
    Command::new(std::env::current_exe().expect("own path"))
        .arg("store-worker")
        .arg(&sim.base_url)
        .arg(state)
        .arg(hint)
        .args(sites)
        .env("EXONA_API_KEY", key)
        .env_remove("EXONA_STATE_DIR")
        .env_remove("EXONA_STATE_URL")
        .env_remove("EXONA_SCAN_DURATION_MS")
        .stdout(Stdio::piped())
        .spawn()
        .expect("worker starts")
}

pub fn collect(child: Child) -> WorkerReport {
    let out = child.wait_with_output().expect("worker ends");
    parse_report(&String::from_utf8_lossy(&out.stdout))
}

/// The report line a worker printed (see [`worker`]).
pub fn parse_report(text: &str) -> WorkerReport {
    let line = text.lines().find(|l| l.starts_with("report ")).expect("worker report");
    let f: Vec<&str> = line.split_whitespace().collect();
    let started_unix =
        text.lines().find_map(|l| l.strip_prefix("started ")?.trim().parse().ok()).unwrap_or(0.0);
    let calls = text
        .lines()
        .filter_map(|l| {
            let mut f = l.strip_prefix("call ")?.split_whitespace();
            Some((f.next()?.to_owned(), f.next()?.parse().ok()?))
        })
        .collect();
    WorkerReport {
        started_unix,
        calls,
        completed: f[1].parse().unwrap(),
        failed: f[2].parse().unwrap(),
        from_store: f[3].parse().unwrap(),
        elapsed: f[4].parse().unwrap(),
        ended_unix: f[5].parse().unwrap(),
    }
}

pub fn state_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("exona-bench-store-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

pub fn sites(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("https://{tag}-{i}.example")).collect()
}

pub fn sim_with(limit: u32, window: Duration, min: Duration, max: Duration) -> SimHandle {
    sim_seeded(limit, window, min, max, 11)
}

pub fn sim_seeded(limit: u32, window: Duration, min: Duration, max: Duration, seed: u64) -> SimHandle {
    exona_sim::spawn(Config {
        scan_duration_min: min,
        scan_duration_max: max,
        retry_after_secs: 1.0,
        rate_limit: limit,
        rate_window: window,
        seed,
        ..Config::default()
    })
    .expect("simulator")
}

/// Three processes × 12 scans on one key, 20 requests per 40 s; then a fourth asking again.
fn three_processes() {
    println!("### Three processes × 12 scans on one key, 20 requests per 40 s\n");
    println!("Scans 3–12 s, each process's duration hint set to match; every process is a batch of 12.\n");
    println!(
        "| state store | processes | scans | completed | failed | requests | 429s | last process done (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut shared = None;
    let runs = [
        ("shared (ledger)", true, 3),
        ("none (each process alone)", false, 3),
        ("none: one process with all 36, for reference", false, 1),
    ];
    for (n, (label, with_store, processes)) in runs.into_iter().enumerate() {
        let sim = sim_with(20, Duration::from_secs(40), super::SCAN_MIN, super::SCAN_MAX);
        let key = super::key(1101 + n as u32);
        let dir = if with_store { state_dir("three") } else { PathBuf::from("off") };
        let groups: Vec<Vec<String>> = (0..3).map(|p| sites(&format!("p{p}"), 12)).collect();
        let children: Vec<Child> = if processes == 3 {
            groups.iter().map(|g| spawn_worker(&sim, &key, &dir, "3-12", g)).collect()
        } else {
            vec![spawn_worker(&sim, &key, &dir, "3-12", &groups.concat())]
        };
        let reports: Vec<WorkerReport> = children.into_iter().map(collect).collect();
        let stats = sim.stats(&key);
        println!(
            "| {label} | {processes} | 36 | {} | {} | {} | {} | {:.1} |",
            reports.iter().map(|r| r.completed).sum::<usize>(),
            reports.iter().map(|r| r.failed).sum::<usize>(),
            stats.posts + stats.gets,
            stats.rate_limited,
            reports.iter().map(|r| r.elapsed).fold(0.0, f64::max),
        );
        if with_store {
            shared = Some((sim, key, dir, groups));
        }
    }
    let (sim, key, dir, groups) = shared.expect("the shared run");
    let before = sim.stats(&key);
    let again = collect(spawn_worker(&sim, &key, &dir, "3-12", &groups[0]));
    let after = sim.stats(&key);
    println!(
        "\nA fourth process asking again for the first process's 12 companies (max_age_days 30): \
         {} completed, {} of them from the state store, {} requests sent, in {:.3} s.\n",
        again.completed,
        again.from_store,
        (after.posts + after.gets) - (before.posts + before.gets),
        again.elapsed
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Three processes asking at once for the same 12 companies (max_age_days set), 20 requests
/// per 40 s: the scans a process joins end for it when the creator's do (read from the store).
fn shared_companies() {
    println!(
        "### Three processes asking at once for the same 12 companies, 20 requests per 40 s
"
    );
    println!("Each process a batch of the same 12 (max_age_days 30); scans 3–12 s. \"returns\": when each process's last call ended, from the first process's start.\n");
    println!("| state store | scans created | completed | failed | requests | 429s | processes returned at (s) | spread (s) |");
    println!("|---|---|---|---|---|---|---|---|");
    for (n, with_store) in [true, false].into_iter().enumerate() {
        let sim = sim_with(20, Duration::from_secs(40), super::SCAN_MIN, super::SCAN_MAX);
        let key = super::key(1121 + n as u32);
        let dir = if with_store { state_dir("same12") } else { PathBuf::from("off") };
        let same = sites("same12", 12);
        let started =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let children: Vec<Child> = (0..3).map(|_| spawn_worker(&sim, &key, &dir, "3-12", &same)).collect();
        let reports: Vec<WorkerReport> = children.into_iter().map(collect).collect();
        let stats = sim.stats(&key);
        let mut ends: Vec<f64> = reports.iter().map(|r| r.ended_unix - started).collect();
        ends.sort_by(f64::total_cmp);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} |",
            if with_store { "shared" } else { "none" },
            stats.scans_created,
            reports.iter().map(|r| r.completed).sum::<usize>(),
            reports.iter().map(|r| r.failed).sum::<usize>(),
            stats.posts + stats.gets,
            stats.rate_limited,
            ends.iter().map(|e| format!("{e:.1}")).collect::<Vec<_>>().join(", "),
            ends[2] - ends[0],
        );
        if with_store {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    println!();
}

/// Two processes asking at once for the same six companies.
fn twins() {
    println!("### Two processes asking at once for the same 6 companies\n");
    println!("| state store | scans asked for | scans created | completed | failed |");
    println!("|---|---|---|---|---|");
    for (label, with_store) in [("shared (claims)", true), ("none", false)] {
        let sim = sim_with(1000, Duration::from_secs(3600), super::SCAN_MIN, super::SCAN_MAX);
        let key = super::key(if with_store { 1113 } else { 1114 });
        let dir = if with_store { state_dir("twins") } else { PathBuf::from("off") };
        let same = sites("same", 6);
        let children: Vec<Child> = (0..2).map(|_| spawn_worker(&sim, &key, &dir, "3-12", &same)).collect();
        let reports: Vec<WorkerReport> = children.into_iter().map(collect).collect();
        println!(
            "| {label} | 12 | {} | {} | {} |",
            sim.stats(&key).scans_created,
            reports.iter().map(|r| r.completed).sum::<usize>(),
            reports.iter().map(|r| r.failed).sum::<usize>(),
        );
        if with_store {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    println!();
}

/// A fresh process with no duration hint, after a run that learned 2–4 s scans.
fn fresh_process() {
    println!("### A fresh process with no duration hint, after a run that learned 2–4 s scans\n");
    println!("The learning run: 36 scans with a 2–4 s hint. Then one process, default prior (30–120 s), 3 new scans.\n");
    println!("| state store | durations loaded | 3 scans done in (s) |");
    println!("|---|---|---|");
    for (label, with_store) in [("shared", true), ("none", false)] {
        let sim = sim_with(1000, Duration::from_secs(3600), Duration::from_secs(2), Duration::from_secs(4));
        let key = super::key(if with_store { 1115 } else { 1116 });
        let dir = if with_store { state_dir("fresh") } else { PathBuf::from("off") };
        collect(spawn_worker(&sim, &key, &dir, "2-4", &sites("learn", 36)));
        let loaded = if with_store {
            let config =
                ClientConfig { state_dir: Some(dir.clone()), ..ClientConfig::new(&key, Some(&sim.base_url)) };
            config.build().expect("client").durations_learned()
        } else {
            0
        };
        let fresh = collect(spawn_worker(&sim, &key, &dir, "none", &sites("fresh", 3)));
        println!("| {label} | {loaded} | {:.1} |", fresh.elapsed);
        if with_store {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    println!();
}

/// The ledger's cost: the time a request's two ledger transactions (grant, observe) take,
/// measured through the governor of a client with a store, against one without.
fn ledger_overhead() {
    println!("### The ledger's cost per request\n");
    let sim =
        sim_with(1_000_000, Duration::from_secs(3600), Duration::from_millis(1), Duration::from_millis(2));
    let n = 2000;
    let mut rows = Vec::new();
    for (label, with_store) in [("with the ledger", true), ("without", false)] {
        let key = super::key(if with_store { 1117 } else { 1118 });
        let dir = state_dir("overhead");
        let config = ClientConfig {
            state_dir: with_store.then(|| dir.clone()),
            ..ClientConfig::new(&key, Some(&sim.base_url))
        };
        let client = config.build().expect("client");
        // Warm up: the first exchange informs the governor of the window.
        client.get_scan("scn_missing").ok();
        let started = Instant::now();
        for _ in 0..n {
            let _ = client.get_scan("scn_missing");
        }
        let per = started.elapsed().as_secs_f64() * 1e3 / n as f64;
        rows.push((label, per));
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!("{n} sequential GETs (answered 404 by the simulator on 127.0.0.1), one client with a state store and one without:\n");
    println!("| client | ms per request |");
    println!("|---|---|");
    for (label, per) in &rows {
        println!("| {label} | {per:.3} |");
    }
    println!(
        "\nThe store's cost: {:.3} ms per request (the ledger's transactions to grant and to learn from the answer, and the rest of the store's work for a call).\n",
        rows[0].1 - rows[1].1
    );
}

/// Just the two sharing scenarios (issue 23's figures): three processes with their own
/// companies, and with the same ones.
pub fn sharing() {
    println!("## State store: processes sharing a key's window\n");
    three_processes();
    shared_companies();
}

pub fn run() {
    println!("## State store: processes sharing a key\n");
    three_processes();
    shared_companies();
    twins();
    fresh_process();
    ledger_overhead();
}

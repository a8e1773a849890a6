//! exona-bench: how many requests libexona spends per scan, and what it costs in latency,
//! against exona-sim with time compressed tenfold (scans of 3–12 s, `Retry-After: 1`), beside
//! a textbook client. Prints Markdown tables for BENCHMARKS.md.
//!
//!   cargo run --release -p exona-bench -- efficiency   # 100 scans, a limit that never binds
//!   cargo run --release -p exona-bench -- pressure     # 20 scans, 30 requests per 60 s
//!   cargo run --release -p exona-bench -- cancel       # how soon a cancelled wait returns
//!   cargo run --release -p exona-bench -- scale        # 100, 1,000, 10,000 scans in flight
//!   cargo run --release -p exona-bench -- store        # processes sharing a key (state store)
//!   cargo run --release -p exona-bench -- store-share  # just its two window-sharing scenarios
//!   cargo run --release -p exona-bench -- fleet-outage [RUNS]  # the database stopped mid-run, hosts' logs kept
//!   cargo run --release -p exona-bench -- fleet-dba [RUNS]     # TLS, a DML-only role, PgBouncer; a silent database
//!   cargo run --release -p exona-bench -- portfolio    # the exona command: kill -9 and resume, 1,000 rows
//!   cargo run --release -p exona-bench -- adaptive     # the adaptive mode at issue 13's three figures
//!   cargo run --release -p exona-bench -- curve        # virtual time: requests per scan against delay
//!   exona-bench crash                                  # processes killed and resumed (needs the
//!                                                      # command built with --features crash-points)
//!   cargo run --release -p exona-bench -- all

mod adaptive;
mod crash;
mod curve;
mod eta;
mod fleet;
mod no_hint;
mod on_signal;
mod pause_pairs;
mod portfolio;
mod store;
mod textbook;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exona::Outcome;
use exona::{Client, Goal, Mode, Policy, Progress, ScanRequest, Sink, WaitOptions};
use exona_sim::{Config, SimHandle};

/// The simulator's time scale: the API's 30–120 s scans become 3–12 s.
const SCAN_MIN: Duration = Duration::from_secs(3);
const SCAN_MAX: Duration = Duration::from_secs(12);

fn key(n: u32) -> String {
    format!("exo_test_{:0>36}", format!("bench{n}"))
}

fn sim(limit: u32, window: Duration, seed: u64) -> SimHandle {
    exona_sim::spawn(Config {
        scan_duration_min: SCAN_MIN,
        scan_duration_max: SCAN_MAX,
        retry_after_secs: 1.0,
        rate_limit: limit,
        rate_window: window,
        seed,
        ..Config::default()
    })
    .expect("simulator")
}

fn websites(n: usize, tag: &str) -> Vec<String> {
    (0..n).map(|i| format!("https://{tag}{i}.example")).collect()
}

#[derive(Default)]
struct Collect {
    done: Mutex<Vec<(Instant, Outcome)>>,
}

impl Sink for Collect {
    fn progress(&self, _: Progress) {}
    fn finish(&self, outcome: Outcome) {
        self.done.lock().unwrap().push((Instant::now(), outcome));
    }
}

struct Report {
    name: String,
    scans: usize,
    failed: usize,
    posts: u64,
    gets: u64,
    rate_limited: u64,
    detection: Vec<f64>,
    /// Each completed call's time from its start (every call starts with the run) to its result.
    call_times: Vec<f64>,
    makespan: Duration,
}

impl Report {
    fn per_scan(&self) -> f64 {
        (self.posts + self.gets) as f64 / self.scans as f64
    }
    fn quantile(&self, p: f64) -> f64 {
        let mut d = self.detection.clone();
        d.sort_by(f64::total_cmp);
        if d.is_empty() {
            return f64::NAN;
        }
        d[((d.len() - 1) as f64 * p).round() as usize]
    }
}

/// All scans through one libexona client (its scheduler thread and workers).
fn run_libexona(sim: &SimHandle, k: &str, mode: Mode, sites: Vec<String>) -> Report {
    let policy = Policy { mode, expected_duration: (SCAN_MIN, SCAN_MAX), ..Policy::default() };
    run_libexona_with(sim, k, policy, sites)
}

/// As `run_libexona`, with the whole policy given (the mode, the duration prior).
fn run_libexona_with(sim: &SimHandle, k: &str, policy: Policy, sites: Vec<String>) -> Report {
    let mode = policy.mode;
    let client = Client::with_policy(k, Some(&sim.base_url), policy).expect("client");
    let sink = Arc::new(Collect::default());
    let options = WaitOptions { deadline: Some(Duration::from_secs(1800)), ..WaitOptions::default() };
    let started = Instant::now();
    let n = sites.len();
    for site in sites {
        let request = ScanRequest::new("Bench Co", site);
        client.submit(Goal::Create { request, create_only: false }, &options, sink.clone()).expect("submit");
    }
    while sink.done.lock().unwrap().len() < n {
        std::thread::sleep(Duration::from_millis(20));
    }
    let makespan = started.elapsed();
    let done = std::mem::take(&mut *sink.done.lock().unwrap());
    let mut detection = Vec::new();
    let mut failed = 0;
    let mut call_times = Vec::new();
    for (at, outcome) in &done {
        match outcome {
            Ok(scan) => {
                if let Some(finished) = sim.finished_at(scan.id()) {
                    detection.push(at.saturating_duration_since(finished).as_secs_f64());
                }
                call_times.push(at.saturating_duration_since(started).as_secs_f64());
            }
            Err(_) => failed += 1,
        }
    }
    let stats = sim.stats(k);
    Report {
        name: format!("libexona {mode:?}").to_lowercase(),
        scans: n,
        failed,
        posts: stats.posts,
        gets: stats.gets,
        rate_limited: stats.rate_limited,
        detection,
        call_times,
        makespan,
    }
}

fn run_textbook(sim: &SimHandle, k: &str, sites: Vec<String>) -> Report {
    run_textbook_at(sim, k, sites, 10.0)
}

/// The textbook client with the docs' seconds divided by `time_scale` (1: the API's pace).
fn run_textbook_at(sim: &SimHandle, k: &str, sites: Vec<String>, time_scale: f64) -> Report {
    let started = Instant::now();
    let n = sites.len();
    let done = textbook::run_at(&sim.base_url, k, sites, 5, time_scale);
    let makespan = started.elapsed();
    let detection = done
        .iter()
        .filter_map(|f| sim.finished_at(&f.scan_id).map(|t| f.at.saturating_duration_since(t).as_secs_f64()))
        .collect();
    let call_times = done.iter().map(|f| f.at.saturating_duration_since(started).as_secs_f64()).collect();
    let stats = sim.stats(k);
    Report {
        call_times,
        name: "textbook (5 workers)".into(),
        scans: n,
        failed: n - done.len(),
        posts: stats.posts,
        gets: stats.gets,
        rate_limited: stats.rate_limited,
        detection,
        makespan,
    }
}

fn efficiency() {
    println!("## Efficiency: 100 scans, a limit that never binds\n");
    println!("| client | scans | failed | requests per scan | polls per scan | 429s | detection p50 (s) | detection p95 (s) | makespan (s) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let runs: Vec<(&str, Option<Mode>)> = vec![
        ("ada", Some(Mode::Adaptive)),
        ("lat", Some(Mode::Latency)),
        ("bal", Some(Mode::Balanced)),
        ("fru", Some(Mode::Frugal)),
        ("txt", None),
    ];
    for (i, (tag, mode)) in runs.into_iter().enumerate() {
        let sim = sim(1_000_000, Duration::from_secs(3600), 10 + i as u64);
        let k = key(i as u32);
        let sites = websites(100, tag);
        let r = match mode {
            Some(mode) => run_libexona(&sim, &k, mode, sites),
            None => run_textbook(&sim, &k, sites),
        };
        print_row(&r);
    }
    println!();
}

fn pressure() {
    println!("## Pressure: 20 scans, 30 requests per 60 s window, seeds 5, 6 and 8\n");
    println!("| client | seed | scans | failed | requests per scan | polls per scan | 429s | detection p50 (s) | detection p95 (s) | makespan (s) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut spans: Vec<(&str, f64)> = Vec::new();
    for seed in [5u64, 6, 8] {
        let sim_a = sim(30, Duration::from_secs(60), seed);
        let r = run_libexona(&sim_a, &key(10 + seed as u32), Mode::Balanced, websites(20, "pb"));
        print_seeded_row(&r, seed);
        spans.push(("libexona balanced", r.makespan.as_secs_f64()));
        let sim_b = sim(30, Duration::from_secs(60), seed);
        let r = run_textbook(&sim_b, &key(20 + seed as u32), websites(20, "pt"));
        print_seeded_row(&r, seed);
        spans.push(("textbook", r.makespan.as_secs_f64()));
    }
    for name in ["libexona balanced", "textbook"] {
        let m: Vec<f64> = spans.iter().filter(|(n, _)| *n == name).map(|(_, s)| *s).collect();
        let (lo, hi) = (m.iter().copied().fold(f64::MAX, f64::min), m.iter().copied().fold(0.0, f64::max));
        println!("\n{name}: makespan {lo:.1}–{hi:.1} s over the three seeds");
    }
    println!();
}

/// `exona-bench call-times` (issue 35): each call's time from its start to its result, and
/// from its scan's end to its result, for every poll mode and the API guide's client: 20 scans
/// under pressure (30 requests per 60 s) and 8 with budget to spare (100 per hour), scans
/// 3-12 s, each mode told so. The clients of a seed run side by side, each on its own
/// simulator and key.
fn call_times() {
    println!("## Each call's time to its result, by poll mode (issue 35)\n");
    println!(
        "Every call starts with the run; \"call\" is the time from then to its result, \"after the end\" \
         from its scan's completion to its result. Scans 3–12 s, each libexona client told so; the \
         guide's client: 5 workers polling every Retry-After.\n"
    );
    println!("| run | client | seed | failed | requests per scan | 429s | call mean / p90 (s) | after the end mean / p90 (s) |");
    println!("|---|---|---|---|---|---|---|---|");
    let modes = [Mode::Adaptive, Mode::Latency, Mode::Balanced, Mode::Frugal];
    let runs: [(&str, u32, Duration, usize); 2] = [
        ("20 scans, 30 requests per 60 s", 30, Duration::from_secs(60), 20),
        ("8 scans, 100 requests per hour", 100, Duration::from_secs(3600), 8),
    ];
    let mut means: Vec<(String, String, f64)> = Vec::new();
    for (label, limit, window, n) in runs {
        for seed in [5u64, 6, 8] {
            let reports: Vec<Report> = std::thread::scope(|s| {
                let mut handles: Vec<_> = modes
                    .iter()
                    .enumerate()
                    .map(|(i, mode)| {
                        s.spawn(move || {
                            let sim = sim(limit, window, seed);
                            let k = key(3000 + seed as u32 * 10 + i as u32 + limit);
                            run_libexona(&sim, &k, *mode, websites(n, &format!("ct{i}")))
                        })
                    })
                    .collect();
                handles.push(s.spawn(move || {
                    let sim = sim(limit, window, seed);
                    run_textbook(&sim, &key(3009 + seed as u32 * 10 + limit), websites(n, "ctt"))
                }));
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for r in &reports {
                let (cm, cp) = no_hint::mean_p90(&r.call_times);
                let (dm, dp) = no_hint::mean_p90(&r.detection);
                println!(
                    "| {label} | {} | {seed} | {} | {:.2} | {} | {cm:.1} / {cp:.1} | {dm:.1} / {dp:.1} |",
                    r.name,
                    r.failed,
                    r.per_scan(),
                    r.rate_limited
                );
                means.push((label.to_owned(), r.name.clone(), cm));
            }
        }
    }
    println!("\nMean call time over the three seeds:\n");
    println!("| run | client | mean call (s) |");
    println!("|---|---|---|");
    for (label, ..) in runs {
        let mut names: Vec<String> = Vec::new();
        for m in means.iter().filter(|m| m.0 == label) {
            if !names.contains(&m.1) {
                names.push(m.1.clone());
            }
        }
        for name in names {
            let v: Vec<f64> = means.iter().filter(|m| m.0 == label && m.1 == name).map(|m| m.2).collect();
            println!("| {label} | {name} | {:.1} |", v.iter().sum::<f64>() / v.len() as f64);
        }
    }
    println!();
}

fn print_seeded_row(r: &Report, seed: u64) {
    println!("| {} | {seed} | {}", r.name, row_cells(r));
}

/// How soon a blocked `scan_and_wait` returns after `cancel` from another thread.
fn cancel_latency() {
    println!("## Cancel: a wait blocked on a scan that never ends, cancelled from another thread\n");
    let sim = sim(1_000_000, Duration::from_secs(3600), 31);
    let k = key(30);
    let policy = Policy { expected_duration: (SCAN_MIN, SCAN_MAX), ..Policy::default() };
    let client = Client::with_policy(&k, Some(&sim.base_url), policy).expect("client");
    let mut latencies = Vec::new();
    for i in 0..50 {
        let token = exona::CancelToken::new();
        let options = WaitOptions { cancel: Some(token.clone()), ..WaitOptions::default() };
        let c = client.clone();
        let waiter = std::thread::spawn(move || {
            let r =
                c.scan_and_wait(&ScanRequest::new("Stuck", format!("https://stuck.c{i}.example")), &options);
            (Instant::now(), r)
        });
        // Let the create finish and the wait settle into its schedule first.
        std::thread::sleep(Duration::from_millis(300));
        let cancelled_at = Instant::now();
        token.cancel();
        let (returned_at, r) = waiter.join().unwrap();
        let e = r.expect_err("cancelled");
        assert_eq!(e.code, exona::Code::Cancelled);
        assert!(e.scan_id.is_some());
        latencies.push(returned_at.duration_since(cancelled_at).as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!("| trials | p50 (ms) | p99 (ms) | max (ms) |");
    println!("|---|---|---|---|");
    println!("| {} | {:.3} | {:.3} | {:.3} |\n", latencies.len(), q(0.5), q(0.99), q(1.0));
}

/// The bench process's threads, resident memory (KiB) and CPU time.
fn process_sample() -> (usize, u64, Duration) {
    let threads = std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
    let rss_kib = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4);
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv =
        |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    (threads, rss_kib, tv(usage.ru_utime) + tv(usage.ru_stime))
}

/// Many scans in flight at once through one client's batch, with the simulator in its own
/// process so only the client is measured: threads, peak RSS and CPU per scan.
fn scale() {
    println!("## Scale: N scans in flight at once through one client (exona-sim in another process)\n");
    println!("| scans | completed | max threads | RSS before (MiB) | peak RSS (MiB) | CPU per scan (ms) | wall (s) |");
    println!("|---|---|---|---|---|---|---|");
    let sim_bin = std::env::current_exe().expect("exe").with_file_name("exona-sim");
    for (i, n) in [100usize, 1_000, 10_000].into_iter().enumerate() {
        let mut child = std::process::Command::new(&sim_bin)
            .args(["--scan-min", "3", "--scan-max", "12", "--retry-after", "1", "--rate-limit", "10000000"])
            .args(["--exit-after", "600"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("exona-sim next to exona-bench (cargo build --release -p exona-sim)");
        let mut first = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut first)
            .unwrap();
        let base_url = first.trim().to_owned();
        let k = key(40 + i as u32);
        let policy = Policy { expected_duration: (SCAN_MIN, SCAN_MAX), ..Policy::default() };
        let client = Client::with_policy(&k, Some(&base_url), policy).expect("client");
        let batch = exona::Batch::new(&client);
        let options = WaitOptions { deadline: Some(Duration::from_secs(600)), ..WaitOptions::default() };
        let (_, rss_before, cpu_before) = process_sample();
        let started = Instant::now();
        for j in 0..n {
            batch.add(ScanRequest::new("Scale Co", format!("https://scale{i}-{j}.example")), &options);
        }
        let (mut max_threads, mut peak_rss, mut completed, mut collected) = (0, 0, 0, 0);
        while collected < n {
            match batch.next(Some(Duration::from_millis(200))) {
                exona::Next::Ready(_, outcome) => {
                    collected += 1;
                    completed += outcome.is_ok() as usize;
                }
                exona::Next::Empty => break,
                exona::Next::Pending => {}
            }
            let (threads, rss, _) = process_sample();
            max_threads = max_threads.max(threads);
            peak_rss = peak_rss.max(rss);
        }
        let wall = started.elapsed();
        let (_, _, cpu_after) = process_sample();
        let cpu_per_scan = (cpu_after - cpu_before).as_secs_f64() * 1000.0 / n as f64;
        println!(
            "| {n} | {completed} | {max_threads} | {:.1} | {:.1} | {cpu_per_scan:.3} | {:.1} |",
            rss_before as f64 / 1024.0,
            peak_rss as f64 / 1024.0,
            wall.as_secs_f64()
        );
        drop(batch);
        drop(client);
        let _ = child.kill();
        let _ = child.wait();
    }
    println!();
}

fn print_row(r: &Report) {
    println!("| {} | {}", r.name, row_cells(r));
}

/// The cells after the client's name: scans, failed, requests and polls per scan, 429s,
/// detection p50 and p95, makespan.
fn row_cells(r: &Report) -> String {
    format!(
        "{} | {} | {:.2} | {:.2} | {} | {:.2} | {:.2} | {:.1} |",
        r.scans,
        r.failed,
        r.per_scan(),
        r.gets as f64 / r.scans as f64,
        r.rate_limited,
        r.quantile(0.5),
        r.quantile(0.95),
        r.makespan.as_secs_f64()
    )
}

/// The commit the figures are of (with "+dirty" when the tree has changes), so BENCHMARKS.md
/// can say which code it measured.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let hash = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{hash}+dirty")
    } else {
        hash
    }
}

/// What `exona-bench --help` (or `help`, or `-h` after any scenario) prints: nothing runs.
const USAGE: &str = "usage: exona-bench [SCENARIO] [RUNS]

Runs a benchmark against local simulators (127.0.0.1 only) and prints what it saw, with the
commit it measured. Every scenario is bounded in time and stops its servers by itself.

Scenarios:
  efficiency    requests per scan against the simulator, per poll mode
  pressure      a budget-bound key (20 scans, 30 requests per 60 s)
  cancel        how soon a cancelled wait returns
  scale         thousands of scans in flight
  store         processes sharing a key through the state store (twins, a fresh process, cost)
  store-share   three processes x 12 scans on one store, against the same processes blind
  eta           whether the ETAs exona batch prints come true, alone and three processes on a key
  call-times    each call's time to its result by poll mode and the guide's client, under pressure and with budget to spare
  no-hint       the same with no duration hint, scans of 3-12 s and of 30-120 s, with call times
  portfolio     the exona command on portfolios
  adaptive      adaptive waiting: detection, requests per scan, makespan
  curve         the thrift curve
  pair          two portfolios on a fresh key
  crash         exona batch processes killed and resumed
  crash-pause   exona batch processes stopped past their lease (and killed) and continued, then pause-pairs
  crash-pause-pg  the pause runs on the fleet store (needs Debian's postgresql)
  pause-pairs   two processes on the same companies, one stopped with its creates on the wire; a pause after a reset
  fleet         four hosts on one key through PostgreSQL (needs Debian's postgresql)
  fleet-cost    the ledger's cost on PostgreSQL
  fleet-nohint  four hosts on PostgreSQL with no duration hint against blind hosts, three seeds
  fleet-outage [RUNS]  the database stopped mid-run, RUNS times (default 3)
  fleet-dba [RUNS]     four hosts through TLS, a DML-only role and PgBouncer beside plain, and the database gone silent (default 2)
  all           efficiency, pressure, cancel, scale, store, portfolio, adaptive, curve (default)
";

fn main() {
    on_signal::watch();
    let what = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    if std::env::args().skip(1).any(|a| a == "--help" || a == "-h" || a == "help") {
        print!("{USAGE}");
        return;
    }
    if what == "store-worker" {
        // A child process of the store scenario: no header, one report line.
        let args: Vec<String> = std::env::args().skip(2).collect();
        return store::worker(&args);
    }
    println!("exona-bench {what} at commit {}\n", commit());
    // (Scenarios with a setup of their own say it in their own header.)
    let own_setup = [
        "crash",
        "crash-pause",
        "pause-pairs",
        "crash-pause-pg",
        "no-hint",
        "no-hint-one",
        "eta",
        "fleet",
        "fleet-cost",
        "fleet-nohint",
        "fleet-dba",
        "fleet-outage",
    ];
    if !own_setup.contains(&what.as_str()) {
        println!("exona-bench {what}: scans uniform in {SCAN_MIN:?}–{SCAN_MAX:?}, Retry-After 1 s, duration prior set to match\n");
    }
    match what.as_str() {
        "efficiency" => efficiency(),
        "pressure" => pressure(),
        "cancel" => cancel_latency(),
        "scale" => scale(),
        "store" => store::run(),
        "store-share" => store::sharing(),
        "no-hint" => no_hint::run(),
        // One run of `no-hint` (to look at one seed closely, with EXONA_LOG set for the workers).
        "no-hint-one" => {
            let arg = |n: usize| std::env::args().nth(n).and_then(|v| v.parse::<u64>().ok());
            let (seed, lo, hi) = (arg(2).unwrap_or(12), arg(3).unwrap_or(30), arg(4).unwrap_or(120));
            let shared = std::env::args().nth(5).as_deref() != Some("blind");
            let r = no_hint::three((lo, hi), seed, shared, 1390);
            println!(
                "slowest {:.1} s, {} requests, {} × 429, {} failed",
                r.slowest, r.requests, r.rate_limited, r.failed
            );
        }
        "call-times" => call_times(),
        "eta" => eta::run(),
        "portfolio" => portfolio::run(),
        "adaptive" => adaptive::run(),
        "curve" => curve::run(),
        "crash" => crash::run(),
        "crash-pause" => {
            crash::run_pauses();
            pause_pairs::run();
        }
        "pause-pairs" => pause_pairs::run(),
        "crash-pause-pg" => crash::run_pauses_pg(),
        "fleet" => fleet::run(),
        "fleet-cost" => fleet::run_cost(),
        "fleet-nohint" => fleet::run_no_hint(),
        "fleet-dba" => fleet::run_dba(std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(2)),
        "fleet-outage" => {
            fleet::run_outage(std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(3))
        }
        "pair" => portfolio::two_portfolios(),
        "all" => {
            efficiency();
            pressure();
            cancel_latency();
            scale();
            store::run();
            portfolio::run();
            adaptive::run();
            curve::run();
        }
        other => {
            eprintln!("exona-bench: unknown scenario {other:?}\n\n{USAGE}");
            std::process::exit(2);
        }
    }
}

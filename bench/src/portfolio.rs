//! The `portfolio` scenario (issue 12): the `exona` command on long portfolios.
//!
//! - 40 rows at 30 requests per 30 s: the command is killed (SIGKILL) after 20 s and run
//!   again; OUTPUT must hold each row once, the simulator must have created 40 scans, no 429.
//! - 1,000 rows at the real limit's shape (100 requests per window) with time compressed
//!   360-fold (the hour is 10 s, scans 0.08–0.33 s): requests per row beside a plain
//!   single-process library batch, and the ETA printed after the first window against the
//!   actual finish.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use exona::{Batch, ClientConfig, Next, Policy, ScanRequest, WaitOptions};
use exona_sim::{Config, SimHandle};

/// The `exona` command built beside this benchmark.
fn exona_bin() -> PathBuf {
    let me = std::env::current_exe().expect("own path");
    let bin = me.with_file_name("exona");
    assert!(bin.exists(), "build the command first: cargo build --release -p exona-cli ({})", bin.display());
    bin
}

fn work_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("exona-bench-portfolio-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_csv(dir: &Path, n: usize, tag: &str) -> PathBuf {
    let mut csv = String::from("company_name,company_website,portfolio_id\n");
    for i in 0..n {
        csv += &format!("Company {i},https://{tag}-{i}.example,{tag}-{i}\n");
    }
    let p = dir.join("portfolio.csv");
    std::fs::write(&p, csv).unwrap();
    p
}

fn command(sim: &SimHandle, key: &str, dir: &Path, input: &Path, output: &Path, hint_ms: &str) -> Command {
    let mut c = Command::new(exona_bin());
    c.args(["batch", input.to_str().unwrap(), "--output", output.to_str().unwrap()])
        .env("EXONA_API_KEY", key)
        .env("EXONA_BASE_URL", &sim.base_url)
        .env("EXONA_STATE_DIR", dir.join("state"))
        .env("EXONA_SCAN_DURATION_MS", hint_ms)
        .env("EXONA_PROGRESS_SECONDS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    c
}

fn output_rows(output: &Path) -> Vec<u64> {
    std::fs::read_to_string(output)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?.get("row")?.as_u64())
        .collect()
}

fn killed_and_resumed() {
    println!("### 40 rows, 30 requests per 30 s, `kill -9` after 20 s, then run again\n");
    let sim = exona_sim::spawn(Config {
        scan_duration_min: super::SCAN_MIN,
        scan_duration_max: super::SCAN_MAX,
        retry_after_secs: 1.0,
        rate_limit: 30,
        rate_window: Duration::from_secs(30),
        seed: 12,
        ..Config::default()
    })
    .expect("simulator");
    let key = super::key(1201);
    let dir = work_dir("kill");
    let input = write_csv(&dir, 40, "kill");
    let output = dir.join("out.jsonl");
    let hint = "3000-12000";
    let started = Instant::now();
    let mut first: Child =
        command(&sim, &key, &dir, &input, &output, hint).stderr(Stdio::null()).spawn().expect("exona runs");
    std::thread::sleep(Duration::from_secs(20));
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    let after_kill = (output_rows(&output).len(), sim.stats(&key).scans_created);
    let second = command(&sim, &key, &dir, &input, &output, hint).stderr(Stdio::null()).status().unwrap();
    let after_second = output_rows(&output).len();
    // Rows whose create was in flight at the kill are settled by a run with --reconcile.
    let third = (after_second < 40).then(|| {
        command(&sim, &key, &dir, &input, &output, hint)
            .arg("--reconcile")
            .stderr(Stdio::null())
            .status()
            .unwrap()
    });
    let total = started.elapsed();
    let mut rows = output_rows(&output);
    rows.sort();
    let once = rows == (1..=40).collect::<Vec<u64>>();
    let stats = sim.stats(&key);
    println!("| stage | rows in OUTPUT | scans created (simulator) | exit status |");
    println!("|---|---|---|---|");
    println!("| killed at 20 s | {} | {} | SIGKILL |", after_kill.0, after_kill.1);
    println!("| run again | {after_second} | {} | {} |", stats.scans_created, second.code().unwrap_or(-1));
    if let Some(third) = third {
        println!(
            "| run again with --reconcile | {} | {} | {} |",
            rows.len(),
            stats.scans_created,
            third.code().unwrap_or(-1)
        );
    }
    println!(
        "\nEvery row exactly once in OUTPUT: {}; scans created: {}; requests: {} ({} POST, {} GET); 429s: {}; {:.1} s in all.\n",
        if once { "yes" } else { "NO" },
        stats.scans_created,
        stats.posts + stats.gets,
        stats.posts,
        stats.gets,
        stats.rate_limited,
        total.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The real limit's shape (100 requests per window, scans 30–120 s with Retry-After 10),
/// time compressed 360-fold.
const COMPRESSION: f64 = 360.0;

fn compressed_sim(seed: u64) -> SimHandle {
    exona_sim::spawn(Config {
        scan_duration_min: Duration::from_secs_f64(30.0 / COMPRESSION),
        scan_duration_max: Duration::from_secs_f64(120.0 / COMPRESSION),
        retry_after_secs: 10.0 / COMPRESSION,
        rate_limit: 100,
        rate_window: Duration::from_secs_f64(3600.0 / COMPRESSION),
        seed,
        ..Config::default()
    })
    .expect("simulator")
}

fn thousand_rows() {
    let n = 1000;
    println!("### 1,000 rows at the real limit's shape, time compressed {COMPRESSION}-fold\n");
    println!(
        "100 requests per window of {:.0} s (the hour), scans {:.2}–{:.2} s (30–120 s), Retry-After {:.3} s.\n",
        3600.0 / COMPRESSION,
        30.0 / COMPRESSION,
        120.0 / COMPRESSION,
        10.0 / COMPRESSION
    );
    let hint = format!("{}-{}", (30_000.0 / COMPRESSION) as u64, (120_000.0 / COMPRESSION) as u64);

    // The command, with its journal and state store.
    let sim = compressed_sim(21);
    let key = super::key(1202);
    let dir = work_dir("thousand");
    let input = write_csv(&dir, n, "big");
    let output = dir.join("out.jsonl");
    let started = Instant::now();
    let mut child =
        command(&sim, &key, &dir, &input, &output, &hint).stderr(Stdio::piped()).spawn().expect("exona runs");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut etas: Vec<(f64, String)> = Vec::new();
    for line in stderr.lines().map_while(Result::ok) {
        if let Some(i) = line.find("about ") {
            let eta = line[i + 6..].trim_end_matches(" to go").to_owned();
            etas.push((started.elapsed().as_secs_f64(), eta));
        }
    }
    let status = child.wait().unwrap();
    let finished = started.elapsed().as_secs_f64();
    let cli_stats = sim.stats(&key);
    let rows = output_rows(&output).len();
    let window = 3600.0 / COMPRESSION;
    let after_first_window = etas.iter().find(|(t, _)| *t >= window);

    // The same portfolio through a plain library batch in one process (no journal, no store).
    let sim2 = compressed_sim(21);
    let key2 = super::key(1203);
    let policy = Policy {
        expected_duration: (
            Duration::from_secs_f64(30.0 / COMPRESSION),
            Duration::from_secs_f64(120.0 / COMPRESSION),
        ),
        ..Policy::default()
    };
    let client =
        ClientConfig { policy, ..ClientConfig::new(&key2, Some(&sim2.base_url)) }.build().expect("client");
    let batch = Batch::new(&client);
    let options = WaitOptions { deadline: Some(Duration::from_secs(600)), ..WaitOptions::default() };
    let started2 = Instant::now();
    for i in 0..n {
        batch.add(ScanRequest::new(format!("Company {i}"), format!("https://big-{i}.example")), &options);
    }
    let mut completed2 = 0;
    while let Next::Ready(_, outcome) = batch.next(None) {
        completed2 += outcome.is_ok() as usize;
    }
    let finished2 = started2.elapsed().as_secs_f64();
    let lib_stats = sim2.stats(&key2);

    let per_row = |s: &exona_sim::KeyStats| (s.posts + s.gets) as f64 / n as f64;
    println!("| run | rows done | requests per row | 429s | finished (s) |");
    println!("|---|---|---|---|---|");
    println!(
        "| `exona batch` (journal, state store) | {rows} | {:.3} | {} | {finished:.1} |",
        per_row(&cli_stats),
        cli_stats.rate_limited
    );
    println!(
        "| library batch, one process | {completed2} | {:.3} | {} | {finished2:.1} |",
        per_row(&lib_stats),
        lib_stats.rate_limited
    );
    println!(
        "\nRequests per row, the command against the library batch: {:+.1} %. Exit status {}.",
        (per_row(&cli_stats) / per_row(&lib_stats) - 1.0) * 100.0,
        status.code().unwrap_or(-1)
    );
    match after_first_window {
        Some((t, eta)) => {
            let said = humantime::parse_duration(eta).map(|d| d.as_secs_f64()).unwrap_or(f64::NAN);
            let predicted = t + said;
            println!(
                "The ETA printed {t:.1} s in (after the first {window:.0} s window): \"{eta}\", i.e. a finish at {predicted:.0} s; \
                 the actual finish: {finished:.1} s ({:+.1} %).\n",
                (predicted / finished - 1.0) * 100.0
            );
        }
        None => println!("No ETA was printed after the first window ({} progress lines).\n", etas.len()),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

pub fn run() {
    println!("## Portfolios: the `exona` command\n");
    killed_and_resumed();
    thousand_rows();
}

/// Issue 23's case: two portfolios of 20, one right after the other, on a fresh key at the
/// real limit's shape compressed tenfold (100 requests per 360 s, scans 3–12 s, Retry-After 1),
/// by the `exona` command with a fresh state directory, in each poll mode.
pub fn two_portfolios() {
    println!("## Two portfolios on a fresh key (issue 23)\n");
    println!("`exona batch` of 20 companies, then another 20 as soon as it ends; 100 requests per 360 s,");
    println!(
        "scans 3–12 s, `Retry-After: 1`, `EXONA_SCAN_DURATION_MS=3000-12000`, a fresh state directory.\n"
    );
    println!("| mode | seed | first ends (s) | pair ends (s) | requests | 429s | pair against frugal's |");
    println!("|---|---|---|---|---|---|---|");
    // Balanced on the first seed only: it spends the window on the first portfolio and the
    // second waits for the reset (six minutes a run).
    for (seed, modes) in [
        (5u64, &["frugal", "adaptive", "balanced"][..]),
        (6, &["frugal", "adaptive"][..]),
        (8, &["frugal", "adaptive"][..]),
    ] {
        let mut frugal_pair = None;
        for &mode in modes {
            let sim = exona_sim::spawn(Config {
                scan_duration_min: Duration::from_secs(3),
                scan_duration_max: Duration::from_secs(12),
                retry_after_secs: 1.0,
                rate_limit: 100,
                rate_window: Duration::from_secs(360),
                seed,
                ..Config::default()
            })
            .expect("simulator");
            let key = super::key(2300 + seed as u32 * 10 + mode.len() as u32);
            let dir = work_dir(&format!("pair-{mode}-{seed}"));
            let started = Instant::now();
            let mut ends = Vec::new();
            for part in ["a", "b"] {
                let input_dir = dir.join(part);
                std::fs::create_dir_all(&input_dir).unwrap();
                let input = write_csv(&input_dir, 20, &format!("pair-{part}"));
                let output = input_dir.join("out.jsonl");
                let status = command(&sim, &key, &dir, &input, &output, "3000-12000")
                    .args(["--mode", mode])
                    .stderr(Stdio::null())
                    .status()
                    .expect("exona runs");
                assert!(status.success() || status.code() == Some(1), "exona batch: {status}");
                ends.push(started.elapsed().as_secs_f64());
            }
            let stats = sim.stats(&key);
            let pair = ends[1];
            if mode == "frugal" {
                frugal_pair = Some(pair);
            }
            println!(
                "| {mode} | {seed} | {:.1} | {pair:.1} | {} | {} | {:.2} × |",
                ends[0],
                stats.posts + stats.gets + stats.rate_limited,
                stats.rate_limited,
                pair / frugal_pair.expect("frugal runs first")
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    println!();
}

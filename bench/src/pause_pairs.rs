//! The issue-32 checks of `exona-bench crash-pause` beyond the fleet run: two processes on the
//! same companies, the first stopped with its creates on the wire (the simulator makes each
//! scan and holds its answer 3 s); and a process stopped for 60 s just after a window's reset.
//! Each counts what the simulator saw: scans per company, 429s (after the resume).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use exona_sim::{Config, SimHandle};

fn exona_bin() -> PathBuf {
    let bin = std::env::current_exe().expect("own path").with_file_name("exona");
    assert!(bin.exists(), "build the command first: cargo build --release -p exona-cli ({})", bin.display());
    bin
}

fn work_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("exona-bench-pair-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn csv(dir: &Path, name: &str, sites: &[String]) -> PathBuf {
    let mut text = String::from("company_name,company_website\n");
    for (i, site) in sites.iter().enumerate() {
        text += &format!("Company {i},{site}\n");
    }
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `exona batch` on `input`, on the shared state directory, its stderr kept in the work dir.
fn batch(sim: &SimHandle, key: &str, dir: &Path, who: &str, input: &Path, max_age: Option<u32>) -> Child {
    let mut c = Command::new(exona_bin());
    c.args(["batch", input.to_str().unwrap(), "--timeout", "10m", "--output"])
        .arg(dir.join(format!("out-{who}.jsonl")))
        .env("EXONA_API_KEY", key)
        .env("EXONA_BASE_URL", &sim.base_url)
        .env("EXONA_STATE_DIR", dir.join("state"))
        .env_remove("EXONA_SCAN_DURATION_MS")
        .env("EXONA_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(dir.join(format!("log-{who}.txt")))
                .map(Stdio::from)
                .unwrap_or(Stdio::null()),
        );
    if let Some(days) = max_age {
        c.args(["--max-age-days", &days.to_string()]);
    }
    c.spawn().expect("exona runs")
}

fn rows_done(dir: &Path, who: &str) -> usize {
    std::fs::read_to_string(dir.join(format!("out-{who}.jsonl")))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"status\":\"completed\""))
        .count()
}

fn stop(child: &Child) {
    unsafe { libc::kill(child.id() as i32, libc::SIGSTOP) };
}

fn cont(child: &Child) {
    unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
}

/// P1 and P2 on the same `n` companies; P1 stopped for `pause` once its first create is on the
/// wire, P2 started then. (most scans of one company, P1 exit and rows, P2 exit and rows, P2's
/// time, 429s).
fn pair(tag: &str, scans: (u64, u64), pause: u64, max_age: Option<u32>, n: usize) -> String {
    let sim = exona_sim::spawn(Config {
        scan_duration_min: Duration::from_secs(scans.0),
        scan_duration_max: Duration::from_secs(scans.1),
        retry_after_secs: 1.0,
        slow_response: Duration::from_secs(3),
        rate_limit: 20,
        rate_window: Duration::from_secs(40),
        seed: 3,
        ..Config::default()
    })
    .expect("simulator");
    let key = super::key(1500 + pause as u32 + scans.1 as u32);
    let dir = work_dir(tag);
    let sites: Vec<String> = (0..n).map(|i| format!("https://heldpost.c{i}.{tag}.example")).collect();
    let input = csv(&dir, "in.csv", &sites);
    let p1 = batch(&sim, &key, &dir, "1", &input, max_age);
    let started = Instant::now();
    while sim.stats(&key).posts < 1 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop(&p1);
    let p2_started = Instant::now();
    let mut p2 = batch(&sim, &key, &dir, "2", &input, max_age);
    std::thread::sleep(Duration::from_secs(pause));
    cont(&p1);
    let mut p1 = p1;
    let code2 = p2.wait().unwrap().code();
    let p2_time = p2_started.elapsed().as_secs_f64();
    let code1 = p1.wait().unwrap().code();
    let most = sim.scans_by_website(&key).values().copied().max().unwrap_or(0);
    let stats = sim.stats(&key);
    let blamed = ["1", "2"].iter().any(|who| {
        std::fs::read_to_string(dir.join(format!("log-{who}.txt")))
            .unwrap_or_default()
            .contains("earlier run")
    });
    let line = format!(
        "| {}–{} s | {pause} s | {} | {most} | {} | P1 exit {}, {}/{n} rows | P2 exit {}, {}/{n} rows in {p2_time:.0} s | {} | {} |",
        scans.0,
        scans.1,
        max_age.map_or("none".to_owned(), |d| d.to_string()),
        stats.scans_created,
        code1.unwrap_or(-1),
        rows_done(&dir, "1"),
        code2.unwrap_or(-1),
        rows_done(&dir, "2"),
        stats.rate_limited,
        if blamed { "yes" } else { "no" },
    );
    if most <= 1 || max_age.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("exona-bench: {tag}: a twin; logs kept in {}", dir.display());
    }
    line
}

/// Three processes × 20 companies of their own, 20 requests per 40 s, scans 3–12 s; P1 stopped
/// for 60 s one second after the first window's reset. (429s before, 429s after the resume,
/// every process done).
fn pause_after_reset() -> String {
    let sim = exona_sim::spawn(Config {
        scan_duration_min: Duration::from_secs(3),
        scan_duration_max: Duration::from_secs(12),
        retry_after_secs: 1.0,
        rate_limit: 20,
        rate_window: Duration::from_secs(40),
        seed: 4,
        ..Config::default()
    })
    .expect("simulator");
    let key = super::key(1561);
    let dir = work_dir("reset");
    let mut children: Vec<Child> = (0..3)
        .map(|who| {
            let sites: Vec<String> = (0..20).map(|i| format!("https://r{who}-{i}.reset.example")).collect();
            let input = csv(&dir, &format!("in-{who}.csv"), &sites);
            batch(&sim, &key, &dir, &who.to_string(), &input, Some(30))
        })
        .collect();
    // Windows start at their first request: the first reset is 40 s after it.
    let started = Instant::now();
    while sim.stats(&key).posts + sim.stats(&key).gets < 1 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_secs(41));
    stop(&children[0]);
    std::thread::sleep(Duration::from_secs(60));
    let resumed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    cont(&children[0]);
    let codes: Vec<Option<i32>> = children.iter_mut().map(|c| c.wait().unwrap().code()).collect();
    let at = sim.stats(&key).rate_limited_at_ms;
    let after = at.iter().filter(|t| **t >= resumed).count();
    let done: usize = (0..3).map(|who| rows_done(&dir, &who.to_string())).sum();
    let _ = std::fs::remove_dir_all(&dir);
    format!(
        "| 3 processes × 20 rows, P1 stopped 60 s from 1 s after the first reset | {} | {after} | {done}/60 rows, exits {:?} |",
        at.len() - after,
        codes.iter().map(|c| c.unwrap_or(-1)).collect::<Vec<_>>()
    )
}

pub fn run() {
    println!("### Two processes on the same companies, the first stopped with its creates on the wire\n");
    println!(
        "`exona batch` P1 on 10 companies, stopped as its first create is sent (the simulator makes each \
         scan and holds its answer 3 s), P2 started then on the same companies and state directory, P1 \
         continued after the pause. 20 requests per 40 s, no duration hint. \"most scans\": the most \
         scans created for one company (1: no twin; without `--max-age-days` each process asks for its own \
         fresh scans, so up to 2).\n"
    );
    println!("| scans | pause | --max-age-days | most scans of a company | scans created | P1 | P2 | 429s | a row blamed on an earlier run |");
    println!("|---|---|---|---|---|---|---|---|---|");
    println!("{}", pair("short30", (2, 4), 30, Some(30), 10));
    println!("{}", pair("long40", (40, 60), 40, Some(30), 10));
    println!("{}", pair("fresh40", (40, 60), 40, None, 10));
    println!();
    println!("### A process stopped for 60 s just after a window's reset\n");
    println!("| run | 429s before the resume | 429s after it | done |");
    println!("|---|---|---|---|");
    println!("{}", pause_after_reset());
    println!();
}

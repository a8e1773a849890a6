//! The `crash` scenario (issue 22, DESIGN.md 8.3): `exona batch` processes on one key and one
//! state directory, with overlapping companies, killed with SIGKILL and resumed, checked
//! against the simulator: every row exactly once in every output, each company created at most
//! once, no 429, and how long a killed process's claims and holds stay (its leases).
//!
//! Needs the command built with the crash points (the test-only feature):
//!   cargo build --release -p exona-sim -p exona-bench && \
//!   cargo build --release -p exona-cli --features crash-points && \
//!   ./target/release/exona-bench crash

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use exona_sim::{Config, SimHandle};

fn exona_bin() -> PathBuf {
    let bin = std::env::current_exe().expect("own path").with_file_name("exona");
    assert!(
        bin.exists(),
        "build the command first: cargo build --release -p exona-cli --features crash-points"
    );
    bin
}

fn sim(seed: u64, scans: (Duration, Duration)) -> SimHandle {
    // 20 requests per 40 s: the real limit's shape (100 an hour) compressed, budget-bound.
    exona_sim::spawn(Config {
        scan_duration_min: scans.0,
        scan_duration_max: scans.1,
        retry_after_secs: 1.0,
        rate_limit: 20,
        rate_window: Duration::from_secs(40),
        seed,
        ..Config::default()
    })
    .expect("simulator")
}

struct Fleet {
    sim: SimHandle,
    key: String,
    dir: PathBuf,
    inputs: Vec<PathBuf>,
    /// What the processes are told a scan takes (the simulator's range), in ms.
    hint: String,
    /// The fleet store's database, when the processes share PostgreSQL instead of the file.
    state_url: Option<String>,
}

impl Fleet {
    /// `processes` portfolios of `own + shared` rows; the `shared` companies are in every one.
    fn new(tag: &str, n: u32, processes: usize, own: usize, shared: usize) -> Fleet {
        Fleet::with_scans(tag, n, processes, own, shared, (super::SCAN_MIN, super::SCAN_MAX))
    }

    fn with_scans(
        tag: &str,
        n: u32,
        processes: usize,
        own: usize,
        shared: usize,
        scans: (Duration, Duration),
    ) -> Fleet {
        let dir = std::env::temp_dir().join(format!("exona-bench-crash-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let inputs = (0..processes)
            .map(|who| {
                let mut csv = String::from("company_name,company_website\n");
                for i in 0..own.max(shared) {
                    if i < shared {
                        csv += &format!("Shared {i},https://shared-{i}.{tag}.example\n");
                    }
                    if i < own {
                        csv += &format!("Own {who}-{i},https://own-{who}-{i}.{tag}.example\n");
                    }
                }
                let p = dir.join(format!("in-{who}.csv"));
                std::fs::write(&p, csv).unwrap();
                p
            })
            .collect();
        let hint = format!("{}-{}", scans.0.as_millis(), scans.1.as_millis());
        Fleet { sim: sim(u64::from(n), scans), key: super::key(n), dir, inputs, hint, state_url: None }
    }

    fn output(&self, who: usize) -> PathBuf {
        self.dir.join(format!("out-{who}.jsonl"))
    }

    fn start(&self, who: usize, crash: Option<&str>) -> Child {
        let mut c = Command::new(exona_bin());
        c.args(["batch", self.inputs[who].to_str().unwrap(), "--output", self.output(who).to_str().unwrap()])
            .args(["--max-age-days", "30", "--reconcile", "--timeout", "10m"])
            .env("EXONA_API_KEY", &self.key)
            .env("EXONA_BASE_URL", &self.sim.base_url)
            .env("EXONA_STATE_DIR", self.dir.join("state"))
            .env("EXONA_SCAN_DURATION_MS", &self.hint)
            .env("EXONA_LOG", "warn")
            .env_remove("EXONA_CRASH_AT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Each process's warnings (a store bypassed, a twin named), kept when a check fails.
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join(format!("log-{who}.txt")))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            );
        if let Some(point) = crash {
            c.env("EXONA_CRASH_AT", point);
        }
        match &self.state_url {
            Some(url) => c.env("EXONA_STATE_URL", url),
            None => c.env_remove("EXONA_STATE_URL"),
        };
        c.spawn().expect("exona runs")
    }

    /// Runs process `who` again until a run ends with status 0 (at most 8 runs).
    fn finish(&self, who: usize) -> bool {
        (0..8).any(|_| self.start(who, None).wait().unwrap().code() == Some(0))
    }

    /// (every row exactly once in every output, no company created twice, 429s, scans).
    fn verdict(&self) -> (bool, bool, u64, u64) {
        let once = (0..self.inputs.len()).all(|who| {
            let rows = std::fs::read_to_string(&self.inputs[who]).unwrap().lines().count() as u64 - 1;
            let mut numbers: Vec<u64> = std::fs::read_to_string(self.output(who))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("\"status\":\"completed\""))
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?.get("row")?.as_u64())
                .collect();
            numbers.sort_unstable();
            let all = std::fs::read_to_string(self.output(who)).unwrap_or_default().lines().count() as u64;
            numbers == (1..=rows).collect::<Vec<_>>() && all == rows
        });
        let by_site = self.sim.scans_by_website(&self.key);
        let stats = self.sim.stats(&self.key);
        (once, by_site.values().all(|n| *n <= 1), stats.rate_limited, stats.scans_created)
    }

    /// How long after now the leases of process `pid` (claims and holds) still run: the time
    /// until what it held is free to every other process.
    fn leases_left(&self, pid: u32) -> Option<Duration> {
        let conn = rusqlite::Connection::open(self.dir.join("state/exona-state.sqlite3")).ok()?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_millis() as i64;
        let prefix = format!("{pid}-%");
        let until: Option<i64> = conn
            .query_row(
                "SELECT MAX(u) FROM (SELECT lease_until_ms AS u FROM in_flight WHERE owner LIKE ?1
                     UNION ALL SELECT lease_until_ms FROM holds WHERE holder LIKE ?1)",
                [&prefix],
                |r| r.get(0),
            )
            .ok()?;
        until.map(|u| Duration::from_millis((u - now).max(0) as u64))
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let twins: Vec<String> = self
            .sim
            .scans_by_website(&self.key)
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(w, n)| format!("{w} ({n})"))
            .collect();
        let rate_limited = self.sim.stats(&self.key).rate_limited;
        if twins.is_empty() && rate_limited == 0 {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            // Kept for the post-mortem: inputs, outputs, the state store, each process's log.
            eprintln!(
                "exona-bench: twins {twins:?}, {rate_limited} × 429; logs and state kept in {}",
                self.dir.display()
            );
        }
    }
}

fn yes(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "**NO**"
    }
}

/// 3 processes × 40 rows sharing 20 companies; `kills` SIGKILLs per process at random moments
/// of the first `spread`, each run resumed at once. Returns (makespan, the worst lease left
/// after a kill, the verdict).
fn fleet_run(
    tag: &str,
    n: u32,
    kills: usize,
    spread: Duration,
    seed: u64,
) -> (Duration, Duration, (bool, bool, u64, u64)) {
    let fleet = Fleet::new(tag, n, 3, 20, 20);
    let mut rng = fastrand::Rng::with_seed(seed);
    let plans: Vec<Vec<Duration>> = (0..3)
        .map(|_| {
            let mut at: Vec<Duration> = (0..kills).map(|_| spread.mul_f64(rng.f64())).collect();
            at.sort();
            at
        })
        .collect();
    let started = Instant::now();
    let worst_lease = std::sync::Mutex::new(Duration::ZERO);
    std::thread::scope(|s| {
        for (who, plan) in plans.iter().enumerate() {
            let (fleet, worst_lease) = (&fleet, &worst_lease);
            s.spawn(move || {
                let mut child = fleet.start(who, None);
                for at in plan {
                    std::thread::sleep(at.saturating_sub(started.elapsed()));
                    if child.try_wait().unwrap().is_none() {
                        let pid = child.id();
                        let _ = child.kill();
                        child.wait().unwrap();
                        if let Some(left) = fleet.leases_left(pid) {
                            let mut w = worst_lease.lock().unwrap();
                            *w = (*w).max(left);
                        }
                    }
                    child = fleet.start(who, None);
                }
                if child.wait().unwrap().code() != Some(0) {
                    fleet.finish(who);
                }
            });
        }
    });
    let makespan = started.elapsed();
    let worst = *worst_lease.lock().unwrap();
    (makespan, worst, fleet.verdict())
}

/// 3 processes × 40 rows sharing 20 companies, scans of 40–60 s (longer than a 20 s lease, so
/// the API's cache, which holds completed scans only, cannot hide a second create made while the
/// first runs); each process stopped (SIGSTOP) `pauses` times at random moments of the first
/// `spread` for 25–60 s, then continued (SIGCONT); with `kill`, also killed once at random and
/// resumed. Returns (makespan, the verdict).
fn pause_run(
    tag: &str,
    n: u32,
    pauses: usize,
    spread: Duration,
    kill: bool,
    seed: u64,
    state_url: Option<&str>,
) -> (Duration, (bool, bool, u64, u64)) {
    let mut fleet = Fleet::with_scans(tag, n, 3, 20, 20, (Duration::from_secs(40), Duration::from_secs(60)));
    fleet.state_url = state_url.map(str::to_owned);
    let mut rng = fastrand::Rng::with_seed(seed);
    // (when, how long; None: a kill)
    let plans: Vec<Vec<(Duration, Option<Duration>)>> = (0..3)
        .map(|_| {
            let mut at: Vec<(Duration, Option<Duration>)> = (0..pauses)
                .map(|_| (spread.mul_f64(rng.f64()), Some(Duration::from_secs(25 + rng.u64(0..=35)))))
                .collect();
            if kill {
                at.push((spread.mul_f64(rng.f64()), None));
            }
            at.sort();
            at
        })
        .collect();
    let started = Instant::now();
    let started_wall = SystemTime::now();
    let timeline = std::sync::Mutex::new(vec![Vec::<String>::new(); plans.len()]);
    std::thread::scope(|s| {
        for (who, plan) in plans.iter().enumerate() {
            let (fleet, timeline) = (&fleet, &timeline);
            s.spawn(move || {
                let mut child = fleet.start(who, None);
                for (at, pause) in plan {
                    std::thread::sleep(at.saturating_sub(started.elapsed()));
                    if child.try_wait().unwrap().is_some() {
                        break;
                    }
                    let pid = child.id() as i32;
                    match pause {
                        Some(d) => {
                            let stopped = started.elapsed();
                            unsafe { libc::kill(pid, libc::SIGSTOP) };
                            std::thread::sleep(*d);
                            unsafe { libc::kill(pid, libc::SIGCONT) };
                            let done = started.elapsed();
                            let entry =
                                format!("stop {:.1}–{:.1}", stopped.as_secs_f64(), done.as_secs_f64());
                            timeline.lock().unwrap()[who].push(entry);
                        }
                        None => {
                            let entry = format!("kill {:.1}", started.elapsed().as_secs_f64());
                            timeline.lock().unwrap()[who].push(entry);
                            let _ = child.kill();
                            child.wait().unwrap();
                            child = fleet.start(who, None);
                        }
                    }
                }
                if child.wait().unwrap().code() != Some(0) {
                    fleet.finish(who);
                }
            });
        }
    });
    let verdict = fleet.verdict();
    if verdict.2 > 0 {
        // Where the 429s fell beside the pauses and kills: what led to them.
        let since = |ms: u64| {
            let start = started_wall.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
            ms.saturating_sub(start) as f64 / 1000.0
        };
        let at: Vec<String> = fleet
            .sim
            .stats(&fleet.key)
            .rate_limited_at_ms
            .iter()
            .map(|ms| format!("{:.1}", since(*ms)))
            .collect();
        eprintln!("exona-bench: {tag}: 429s at {} s", at.join(", "));
        for (who, steps) in timeline.into_inner().unwrap().iter().enumerate() {
            eprintln!("exona-bench: {tag}: process {who}: {}", steps.join(", "));
        }
    }
    (started.elapsed(), verdict)
}

/// `exona-bench crash-pause`: the pause scenarios alone (DESIGN.md 9.1, issue 32).
pub fn run_pauses() {
    println!("## Pauses: processes stopped past their lease and continued (issue 32)\n");
    println!(
        "`exona batch --max-age-days 30 --reconcile` processes on one key and one state directory, 20 requests \
         per 40 s, scans 40–60 s (longer than a lease: the API's cache cannot hide a twin), Retry-After 1 s. \
         3 processes × 40 rows sharing 20 companies (80 companies); each process stopped 5 times at random \
         for 25–60 s. A run that ends with rows left (ambiguous after a pause) is run again until done.\n"
    );
    println!("| run | makespan | rows once | no company twice | 429s | scans created |");
    println!("|---|---|---|---|---|---|");
    for (seed, kill) in [(1u64, false), (2, true)] {
        pause_row(seed, kill, 2400, None);
    }
    println!();
}

/// One pause run on the file's store (`state_url` `None`) or the fleet's, and its table row.
fn pause_row(seed: u64, kill: bool, key_base: u32, state_url: Option<&str>) {
    let tag = format!("{}pause{seed}", if state_url.is_some() { "pg" } else { "" });
    let (span, v) =
        pause_run(&tag, key_base + seed as u32, 5, Duration::from_secs(240), kill, seed, state_url);
    println!(
        "| 5 pauses per process{}, seed {seed} | {:.0} s | {} | {} | {} | {} |",
        if kill { " and a kill" } else { "" },
        span.as_secs_f64(),
        yes(v.0),
        yes(v.1),
        v.2,
        v.3
    );
}

/// `exona-bench crash-pause-pg`: the pause run on the fleet store (PostgreSQL), where a process
/// stopped inside a transaction keeps the key's row locked until the server's
/// idle-in-transaction timeout ends its session (5 s).
pub fn run_pauses_pg() {
    println!("## Pauses on the fleet store (PostgreSQL; issue 32)\n");
    println!(
        "As `crash-pause`, the processes sharing a throwaway PostgreSQL server (`EXONA_STATE_URL`) instead of \
         the SQLite file.\n"
    );
    println!("| run | makespan | rows once | no company twice | 429s | scans created |");
    println!("|---|---|---|---|---|---|");
    super::fleet::with_database(|url| {
        for (seed, kill) in [(5u64, false), (6, true)] {
            pause_row(seed, kill, 2450, Some(url));
        }
    });
    println!();
}

pub fn run() {
    println!("## Crashes: processes killed and resumed (issue 22)\n");
    println!(
        "`exona batch --max-age-days 30 --reconcile` processes on one key and one state directory, 20 requests \
         per 40 s, scans 3–12 s, Retry-After 1 s. Checked against the simulator: every row exactly once in \
         every output (all completed), each company created at most once, 429s.\n"
    );
    println!(
        "### 3 processes × 40 rows sharing 20 companies (80 companies), each killed 5 times at random\n"
    );
    let (base, _, v0) = fleet_run("calm", 2201, 0, Duration::ZERO, 1);
    println!("| run | makespan | rows once | no company twice | 429s | scans created | leases left after a kill (worst) |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| no kills | {:.0} s | {} | {} | {} | {} | - |",
        base.as_secs_f64(),
        yes(v0.0),
        yes(v0.1),
        v0.2,
        v0.3
    );
    for seed in [1u64, 2] {
        let (span, lease, v) =
            fleet_run(&format!("kill{seed}"), 2201 + seed as u32, 5, base.mul_f64(0.8), seed);
        println!(
            "| 5 kills per process, seed {seed} | {:.0} s ({:.2} × no kills) | {} | {} | {} | {} | {:.1} s |",
            span.as_secs_f64(),
            span.as_secs_f64() / base.as_secs_f64(),
            yes(v.0),
            yes(v.1),
            v.2,
            v.3,
            lease.as_secs_f64()
        );
    }
    println!();
    println!("### Every named crash point, 3 times each (2 processes × 12 rows sharing 6 companies)\n");
    println!("| crash point | runs | killed there | rows once | no company twice | 429s |");
    println!("|---|---|---|---|---|---|");
    let results: Vec<(String, usize, bool, bool, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = exona::crash::POINTS
            .iter()
            .enumerate()
            .map(|(p, point)| {
                s.spawn(move || {
                    let mut killed = 0;
                    let (mut once, mut single, mut limited) = (true, true, 0);
                    for round in 0..3u32 {
                        let n = 2300 + 10 * p as u32 + round;
                        let fleet = Fleet::new(&format!("{point}{round}"), n, 2, 6, 6);
                        let hit = format!("{point}:{}", round + 2);
                        let (mut a, mut b) = (fleet.start(0, Some(&hit)), fleet.start(1, None));
                        killed += usize::from(a.wait().unwrap().code().is_none());
                        let b_done = b.wait().unwrap().code() == Some(0);
                        if !b_done {
                            fleet.finish(1);
                        }
                        fleet.finish(0);
                        let v = fleet.verdict();
                        once &= v.0;
                        single &= v.1;
                        limited += v.2;
                    }
                    (point.to_string(), killed, once, single, limited)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (point, killed, once, single, limited) in results {
        println!("| `{point}` | 3 | {killed} | {} | {} | {limited} |", yes(once), yes(single));
    }
    println!();
}

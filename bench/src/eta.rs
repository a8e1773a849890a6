//! `exona-bench eta`: whether the times `exona batch` shows come true (issue 35, DESIGN.md 9.4).
//! A budget-bound batch alone, and three processes on one key and one state store; every
//! estimate ("about X to go", printed each second) is laid beside when that process actually
//! ended. An estimate is true within 0.5-2x of the truth, or within 15 s of it; one more than
//! 60 s too long and above 5x is the kind a user remembers ("about 1h 43s to go", 2 min left).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use exona_sim::SimHandle;

fn exona_bin() -> PathBuf {
    let bin = std::env::current_exe().expect("own path").with_file_name("exona");
    assert!(bin.exists(), "build the command first: cargo build --release -p exona-cli ({})", bin.display());
    bin
}

fn sim(seed: u64) -> SimHandle {
    super::store::sim_seeded(
        20,
        Duration::from_secs(40),
        Duration::from_secs(3),
        Duration::from_secs(12),
        seed,
    )
}

fn csv(dir: &Path, who: usize, rows: usize) -> PathBuf {
    let mut text = String::from("company_name,company_website\n");
    for i in 0..rows {
        text += &format!("Company {who}-{i},https://eta{who}-{i}.example\n");
    }
    let p = dir.join(format!("in-{who}.csv"));
    std::fs::write(&p, text).unwrap();
    p
}

/// (seconds from the start, the estimate in seconds) for each estimate a process printed, and
/// when it ended.
fn run_processes(seed: u64, processes: usize, rows: usize) -> Vec<(Vec<(f64, f64)>, f64)> {
    let sim = sim(seed);
    let key = super::key(1400 + seed as u32 * 10 + processes as u32);
    let dir = std::env::temp_dir().join(format!("exona-bench-eta-{seed}-{processes}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let started = Instant::now();
    let children: Vec<_> = (0..processes)
        .map(|who| {
            let input = csv(&dir, who, rows);
            Command::new(exona_bin())
                .args(["batch", input.to_str().unwrap(), "--output"])
                .arg(dir.join(format!("out-{who}.jsonl")))
                .env("EXONA_API_KEY", &key)
                .env("EXONA_BASE_URL", &sim.base_url)
                .env("EXONA_STATE_DIR", dir.join("state"))
                .env_remove("EXONA_SCAN_DURATION_MS")
                .env("EXONA_PROGRESS_SECONDS", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("exona runs")
        })
        .collect();
    let seen: Vec<_> = children
        .into_iter()
        .map(|mut child| {
            let stderr = BufReader::new(child.stderr.take().unwrap());
            std::thread::spawn(move || {
                let mut etas = Vec::new();
                for line in stderr.lines().map_while(Result::ok) {
                    if let Some(i) = line.find("about ") {
                        let said = line[i + 6..].trim_end_matches(" to go");
                        if let Ok(d) = humantime::parse_duration(said) {
                            etas.push((started.elapsed().as_secs_f64(), d.as_secs_f64()));
                        }
                    }
                }
                let _ = child.wait();
                (etas, started.elapsed().as_secs_f64())
            })
        })
        .collect();
    let out = seen.into_iter().map(|h| h.join().unwrap()).collect();
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// (estimates, true ones, the worst too-long one: (said, truth)).
fn judge(runs: &[(Vec<(f64, f64)>, f64)]) -> (usize, usize, Option<(f64, f64)>, usize) {
    let (mut n, mut ok, mut wild) = (0, 0, 0);
    let mut worst: Option<(f64, f64)> = None;
    for (etas, ended) in runs {
        for &(at, said) in etas {
            let truth = (ended - at).max(0.0);
            n += 1;
            let ratio = said / truth.max(0.001);
            if (0.5..=2.0).contains(&ratio) || (said - truth).abs() <= 15.0 {
                ok += 1;
            }
            if ratio > 5.0 && said - truth > 60.0 {
                wild += 1;
            }
            if worst.is_none_or(|(s, t)| said - truth > s - t) {
                worst = Some((said, truth));
            }
        }
    }
    (n, ok, worst, wild)
}

pub fn run() {
    println!("## Do the ETAs come true? (issue 35)\n");
    println!(
        "`exona batch` with no duration hint, scans 3–12 s, 20 requests per 40 s, a progress line each \
         second. True: within 0.5–2× of the time the process actually had left, or within 15 s of it. \
         Wild: more than 5× and more than 60 s too long.\n"
    );
    println!("| run | seed | estimates | true | wild | the most too long (said / truth) |");
    println!("|---|---|---|---|---|---|");
    for (label, processes, rows) in
        [("one batch of 40 rows", 1, 40), ("three processes × 12 rows, one key", 3, 12)]
    {
        for seed in [31, 32] {
            let runs = run_processes(seed, processes, rows);
            let (n, ok, worst, wild) = judge(&runs);
            let worst = worst.map_or("-".to_owned(), |(s, t)| format!("{s:.0} s / {t:.0} s"));
            println!(
                "| {label} | {seed} | {n} | {ok} ({:.0} %) | {wild} | {worst} |",
                100.0 * ok as f64 / n.max(1) as f64
            );
        }
    }
    println!();
}

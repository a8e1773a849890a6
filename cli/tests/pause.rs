//! Paused processes (DESIGN.md 9.1, issue 32): a process stopped with SIGSTOP (a suspended VM,
//! a frozen container, a long GC) while its create is on the wire, past its lease, while
//! another process runs the same companies on the same state store. Scans last longer than a
//! lease, so the API's cache (completed scans only) cannot hide a second create: the
//! simulator's count of scans created is the proof.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use exona_sim::{Config, SimHandle};
use serde_json::Value;

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("pause-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `exona batch INPUT --max-age-days 30 --output OUT`, its stderr into `log`.
fn batch(sim: &SimHandle, key: &str, state: &Path, input: &Path, out: &Path, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_exona"))
        .env("EXONA_API_KEY", key)
        .env("EXONA_BASE_URL", &sim.base_url)
        .env("EXONA_STATE_DIR", state)
        // What the processes expect of a scan (the simulator's take 25-26 s).
        .env("EXONA_SCAN_DURATION_MS", "25000-40000")
        .env("EXONA_LOG", "info")
        .args(["batch", input.to_str().unwrap(), "--max-age-days", "30", "--timeout", "3m"])
        .args(["--output", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn wait(child: &mut Child, limit: Duration) -> Option<i32> {
    let until = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            return Some(-1);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn rows(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// P1's create is on the wire (the server made the scan and holds its answer 3 s) when P1 is
/// stopped for 30 s, past its 20 s lease; P2 runs the same company on the same store. Before,
/// P2 took the lapsed claim over at 20 s and created the company again (the first scan, of
/// 25-26 s, still ran), and P1, continued, reported its own create as timed out though its
/// answer was in its socket (reqwest checks its timers first). Now P2 waits until the first
/// scan would have completed (the p90 of the expected 25-40 s after the claim's send) or until
/// P1 records it, and P1 reads its answer (the attempt's bound counts only time awake): one
/// scan, both rows complete with it, and nobody blames an earlier run.
#[test]
fn a_process_paused_with_its_create_on_the_wire_causes_no_twin() {
    let sim = exona_sim::spawn(Config {
        scan_duration_min: Duration::from_secs(25),
        scan_duration_max: Duration::from_secs(26),
        retry_after_secs: 1.0,
        slow_response: Duration::from_secs(3),
        ..Config::fast()
    })
    .unwrap();
    let key = format!("exo_test_{:0>36}", "pause1");
    let d = dir("on-the-wire");
    let state = d.join("state");
    let input = d.join("in.csv");
    std::fs::write(&input, "company_name,company_website\nHeld Ltd,https://heldpost.pause.example\n")
        .unwrap();
    let (out1, out2) = (d.join("out-1.jsonl"), d.join("out-2.jsonl"));
    let (log1, log2) = (d.join("log-1.txt"), d.join("log-2.txt"));

    let mut p1 = batch(&sim, &key, &state, &input, &out1, &log1);
    let started = Instant::now();
    while sim.stats(&key).posts < 1 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(sim.stats(&key).posts, 1, "P1 never sent its create");
    // Its create is on the wire: the scan exists, its answer held for 3 s.
    unsafe { libc::kill(p1.id() as i32, libc::SIGSTOP) };
    let mut p2 = batch(&sim, &key, &state, &input, &out2, &log2);
    std::thread::sleep(Duration::from_secs(30));
    unsafe { libc::kill(p1.id() as i32, libc::SIGCONT) };

    let (code1, code2) = (wait(&mut p1, Duration::from_secs(150)), wait(&mut p2, Duration::from_secs(150)));
    let show = || {
        format!(
            "P1 exit {code1:?}:\n{}\nP2 exit {code2:?}:\n{}",
            std::fs::read_to_string(&log1).unwrap_or_default(),
            std::fs::read_to_string(&log2).unwrap_or_default()
        )
    };
    let stats = sim.stats(&key);
    assert_eq!(stats.scans_created, 1, "a twin: {stats:?}\n{}", show());
    assert_eq!(code2, Some(0), "{}", show());
    let r2 = rows(&out2);
    assert_eq!(r2.len(), 1, "{}", show());
    for log in [&log1, &log2] {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(!text.contains("earlier run") && !text.contains("twin scan"), "{}", show());
    }
    // P1 completes its own row: its answer was in its socket when it continued.
    assert_eq!(code1, Some(0), "{}", show());
    let r1 = rows(&out1);
    assert_eq!(r1.len(), 1, "{}", show());
    assert_eq!(r1[0]["scan_id"], r2[0]["scan_id"], "{}", show());
    let _ = std::fs::remove_dir_all(&d);
}

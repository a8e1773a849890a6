//! The `exona` command as a user runs it, against the simulator: summaries and JSON, exit
//! codes, errors a person can act on, CSV edge cases, and a portfolio resumed after SIGKILL
//! and after Ctrl-C with no row created or written twice.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use exona_sim::{Config, SimHandle};
use serde_json::Value;

fn key(n: u32) -> String {
    format!("exo_test_{n:036}")
}

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn sim_with(config: Config) -> SimHandle {
    exona_sim::spawn(config).unwrap()
}

fn fast() -> Config {
    Config::fast()
}

/// The command with the simulator's URL, `key`, and a state directory of its own.
fn exona(sim: &SimHandle, key: &str, state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_exona"));
    c.env("EXONA_API_KEY", key)
        .env("EXONA_BASE_URL", &sim.base_url)
        .env("EXONA_STATE_DIR", state)
        .env("EXONA_SCAN_DURATION_MS", "50-150")
        .env_remove("EXONA_LOG")
        .stdin(Stdio::null());
    c
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// A claim's ask with no settling time (a lapsed claim is free as soon as its lease lapses).
fn ask(token: &str, since: std::time::SystemTime, at: std::time::SystemTime) -> exona::store::Ask<'_> {
    exona::store::Ask { token, since, at, settle: std::time::Duration::ZERO }
}

#[test]
fn scan_prints_a_summary_or_json_and_says_how_it_ended() {
    let sim = sim_with(fast());
    let (k, d) = (key(1), dir("scan"));
    let o = exona(&sim, &k, &d)
        .args(["scan", "Acme AI Ltd", "https://acme.ai", "--max-age-days", "30"])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.contains("overall risk: "), "{out}");
    for dim in [
        "ai_intensity",
        "autonomy",
        "domain_risk",
        "blast_radius",
        "data_content_ip_risk",
        "control_governance",
    ] {
        assert!(out.contains(dim), "{dim} in {out}");
    }
    // Again, as JSON: answered from the state store with no request.
    let before = sim.stats(&k);
    let o = exona(&sim, &k, &d)
        .args(["scan", "Acme AI Ltd", "https://acme.ai", "--max-age-days", "30", "--json"])
        .output()
        .unwrap();
    let scan: Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert_eq!(scan["status"], "completed");
    assert_eq!(sim.stats(&k), before);
    let id = scan["id"].as_str().unwrap().to_owned();
    // get and wait by id.
    let o = exona(&sim, &k, &d).args(["get", &id]).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).0.contains(&id));
    let o = exona(&sim, &k, &d).args(["wait", &id, "--json"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    // A failed scan: its summary, and status 1.
    let o = exona(&sim, &k, &d).args(["scan", "Gone", "https://gone.invalid"]).output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(out.contains("failed: ") && err.contains("EXONA_ERR_SCAN_FAILED"), "{out}\n{err}");
    // A scan still running at the timeout says how to resume it.
    let o = exona(&sim, &k, &d)
        .args(["scan", "Stuck", "https://stuck.cli.example", "--timeout", "1s"])
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("EXONA_ERR_TIMEOUT") && err.contains("resume with: exona wait scn_"), "{err}");
}

#[test]
fn the_version_names_the_release_and_the_commit() {
    let o = Command::new(env!("CARGO_BIN_EXE_exona")).arg("--version").output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    assert_eq!(o.status.code(), Some(0));
    let head = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match head {
        Some(head) => assert_eq!(out, format!("exona {}+{head}", env!("CARGO_PKG_VERSION"))),
        None => assert!(out.starts_with(&format!("exona {}", env!("CARGO_PKG_VERSION"))), "{out}"),
    }
}

#[test]
fn errors_a_person_can_act_on() {
    let sim = sim_with(fast());
    let d = dir("errors");
    let o = exona(&sim, "", &d)
        .env_remove("EXONA_API_KEY")
        .args(["scan", "A", "https://a.example"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("set EXONA_API_KEY") && text(&o).1.contains("exo_live_"), "{}", text(&o).1);
    let o = exona(&sim, "exo_live_short", &d).args(["scan", "A", "https://a.example"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("shape"), "{}", text(&o).1);
    assert_eq!(sim.stats("exo_live_short").posts, 0, "refused before any request");
    let o = exona(&sim, &key(2), &d).args(["scan", "A"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "usage");
    // Issue 36: a website the library refuses is an argument error (2, as the help says),
    // an id of the wrong shape is refused before any request, and a base URL without its
    // /api/v1 is named as the likely cause of a bare 404.
    let o = exona(&sim, &key(2), &d).args(["scan", "X", "acme.ai"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o).1);
    assert!(text(&o).1.contains("EXONA_ERR_INVALID_ARGUMENT"), "{}", text(&o).1);
    for cmd in ["wait", "get"] {
        let o = exona(&sim, &key(2), &d).args([cmd, "hello"]).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o).1);
        assert!(text(&o).1.contains("is not a scan id") && text(&o).1.contains("scn_"), "{}", text(&o).1);
    }
    let root = sim.base_url.trim_end_matches("/api/v1").to_owned();
    let o =
        exona(&sim, &key(2), &d).env("EXONA_BASE_URL", &root).args(["get", "scn_test_x"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o).1);
    assert!(text(&o).1.contains("ends in /api/v1"), "{}", text(&o).1);
    let csv = d.join("in.csv");
    std::fs::write(&csv, "name,site\nA,https://a.example\n").unwrap();
    let o = exona(&sim, &key(2), &d)
        .args(["batch", csv.to_str().unwrap(), "--output", d.join("o.jsonl").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("in.csv:1: no company_name column"), "{}", text(&o).1);
    // A state file that is not a database.
    std::fs::write(&csv, "company_name,company_website\nA,https://a.example\n").unwrap();
    let state = d.join("bad.state");
    std::fs::write(&state, vec![0x42u8; 4096]).unwrap();
    let o = exona(&sim, &key(2), &d)
        .args([
            "batch",
            csv.to_str().unwrap(),
            "--output",
            d.join("o.jsonl").to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    // Status 3: the output or its state file cannot be used (not 2, a usage error).
    assert_eq!(o.status.code(), Some(3), "{}", text(&o).1);
    assert!(text(&o).1.contains("the state file"), "{}", text(&o).1);
    assert_eq!(sim.stats(&key(2)).posts, 0);
}

fn portfolio(d: &Path, n: usize) -> PathBuf {
    let p = d.join("portfolio.csv");
    let mut csv = String::from("policy,company_name,company_website\n");
    for i in 0..n {
        csv += &match i {
            0 => "P0,\"Quoted, Inc.\",https://quoted.example\n".to_owned(),
            1 => "P1,\"The \"\"Best\"\" Co\",https://best.example\n".to_owned(),
            2 => "P2,Plain Http Ltd,http://insecure.example\n".to_owned(),
            3 => "P3,Gone Ltd,https://gone.invalid\n".to_owned(),
            _ => format!("P{i},Co {i},https://co-{i}.example\n"),
        };
    }
    std::fs::write(&p, csv).unwrap();
    p
}

/// `company_name,company_website` and `n` rows of distinct websites under `tag`.
fn numbered_csv(d: &Path, n: usize, tag: &str) -> PathBuf {
    let mut csv = String::from("company_name,company_website\n");
    for i in 0..n {
        csv += &format!("Co {i},https://{tag}-{i}.example\n");
    }
    let input = d.join("in.csv");
    std::fs::write(&input, csv).unwrap();
    input
}

fn rows_of(output: &Path) -> Vec<Value> {
    std::fs::read_to_string(output).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn a_batch_writes_every_row_once_with_its_columns() {
    let sim = sim_with(fast());
    let (k, d) = (key(3), dir("batch"));
    let input = portfolio(&d, 8);
    let out = d.join("out.jsonl");
    let o = exona(&sim, &k, &d)
        .args(["batch", input.to_str().unwrap(), "--output", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "one row is an error (http://)\n{}", text(&o).1);
    // The summary counts a failed scan and a row that could not be scanned apart, as OUTPUT does.
    let err = text(&o).1;
    assert!(err.contains("6 completed, 1 failed, 1 error,"), "{err}");
    let rows = rows_of(&out);
    assert_eq!(rows.len(), 8);
    let by_row = |n: u64| rows.iter().find(|r| r["row"] == n).unwrap();
    assert_eq!(by_row(1)["company_name"], "Quoted, Inc.");
    assert_eq!(by_row(1)["policy"], "P0", "other columns are carried");
    assert_eq!(by_row(2)["company_name"], "The \"Best\" Co");
    assert_eq!(
        (by_row(3)["status"].as_str(), by_row(3)["code"].as_str()),
        (Some("error"), Some("EXONA_ERR_INVALID_ARGUMENT"))
    );
    assert_eq!(by_row(4)["status"], "failed");
    assert!(by_row(4)["scan_id"].as_str().unwrap().starts_with("scn_"));
    assert_eq!(by_row(5)["status"], "completed");
    assert!(by_row(5)["result"]["risk_assessment"]["overall_risk_level"].is_string());
    // CSV out, by extension: a header, the level and the six scores.
    let out_csv = d.join("out.csv");
    let o = exona(&sim, &k, &d)
        .args(["batch", input.to_str().unwrap(), "--output", out_csv.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let text = std::fs::read_to_string(&out_csv).unwrap();
    let header = text.lines().next().unwrap();
    assert!(
        header.starts_with(
            "row,company_name,company_website,status,scan_id,code,message,overall_risk_level,ai_intensity"
        ),
        "{header}"
    );
    assert!(header.ends_with(",policy"), "{header}");
    assert_eq!(text.lines().count(), 9);
    // Running it again writes nothing twice and sends nothing.
    let before = sim.stats(&k);
    exona(&sim, &k, &d)
        .args(["batch", input.to_str().unwrap(), "--output", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(rows_of(&out).len(), 8);
    assert_eq!(sim.stats(&k), before);
}

/// Starts the batch, waits until `enough` scans exist, then sends `signal`.
fn interrupted_run(
    sim: &SimHandle,
    k: &str,
    d: &Path,
    input: &Path,
    out: &Path,
    enough: u64,
    signal: i32,
) -> Option<i32> {
    let mut child = exona(sim, k, d)
        .args(["batch", input.to_str().unwrap(), "--output", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while sim.stats(k).scans_created < enough && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as i32, signal) };
    child.wait().unwrap().code()
}

/// A row whose create was answered by nobody in this run (the connection dropped after the
/// scan was made) is this run's, and the summary says so: it never blames an earlier run for
/// a row of its own (issue 32's outside check).
#[test]
fn an_ambiguous_create_of_this_run_is_called_this_runs() {
    let sim = sim_with(fast());
    let (k, d) = (key(42), dir("ambiguous-now"));
    let input = d.join("in.csv");
    std::fs::write(
        &input,
        "company_name,company_website\nFine,https://fine-now.example\nLost,https://lostpost.acme.ai\n",
    )
    .unwrap();
    let o = exona(&sim, &k, &d)
        .args(["batch", input.to_str().unwrap(), "--output", d.join("out.jsonl").to_str().unwrap()])
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("1 in this run"), "{err}");
    assert!(!err.contains("earlier run"), "a row of this run blamed on an earlier one: {err}");
}

#[test]
fn a_batch_killed_halfway_resumes_without_twins_or_repeats() {
    let sim = sim_with(Config { rate_limit: 30, rate_window: Duration::from_secs(3), ..fast() });
    let (k, d) = (key(4), dir("kill"));
    let input = numbered_csv(&d, 40, "kill");
    let out = d.join("out.jsonl");
    assert_eq!(interrupted_run(&sim, &k, &d, &input, &out, 12, libc::SIGKILL), None, "killed by the signal");
    let created = sim.stats(&k).scans_created;
    assert!(created < 40, "killed halfway ({created} created)");
    let run = |reconcile: bool| {
        let mut c = exona(&sim, &k, &d);
        c.args(["batch", input.to_str().unwrap(), "--output", out.to_str().unwrap()]);
        if reconcile {
            c.arg("--reconcile");
        }
        c.output().unwrap()
    };
    // Rows whose create was in flight at the kill are left out, for --reconcile, and said to
    // be the killed run's.
    let o = run(false);
    let written = rows_of(&out).len();
    let (_, err) = text(&o);
    if written < 40 {
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("--reconcile") && err.contains("when an earlier run stopped"), "{err}");
        assert!(!err.contains("in this run"), "{err}");
    }
    let o = run(true);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
    let rows = rows_of(&out);
    let mut numbers: Vec<u64> = rows.iter().map(|r| r["row"].as_u64().unwrap()).collect();
    numbers.sort();
    assert_eq!(numbers, (1..=40).collect::<Vec<_>>(), "every row exactly once");
    assert!(rows.iter().all(|r| r["status"] == "completed"));
    let stats = sim.stats(&k);
    assert_eq!((stats.scans_created, stats.rate_limited), (40, 0), "one scan per company: {stats:?}");
}

#[test]
fn ctrl_c_stops_cleanly_with_status_130_and_the_next_run_finishes() {
    let sim = sim_with(Config { rate_limit: 20, rate_window: Duration::from_secs(3), ..fast() });
    let (k, d) = (key(5), dir("ctrl-c"));
    let input = numbered_csv(&d, 30, "int");
    let out = d.join("out.jsonl");
    assert_eq!(interrupted_run(&sim, &k, &d, &input, &out, 6, libc::SIGINT), Some(130));
    let after_first = rows_of(&out).len();
    assert!(after_first < 30);
    assert!(
        rows_of(&out).iter().all(|r| r["code"] != "EXONA_ERR_CANCELLED"),
        "a stopped row is not an ended one"
    );
    let o = exona(&sim, &k, &d)
        .args(["batch", input.to_str().unwrap(), "--output", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
    assert_eq!(rows_of(&out).len(), 30);
    let stats = sim.stats(&k);
    assert_eq!((stats.scans_created, stats.rate_limited), (30, 0), "{stats:?}");
}

/// `--mode` on scan, wait and batch, over `EXONA_POLL_MODE` (read by the library, as every
/// binding reads it); a mode that does not exist is a usage error naming the four.
#[test]
fn the_poll_mode_is_chosen_by_flag_or_environment() {
    let sim = sim_with(fast());
    let (k, d) = (key(40), dir("mode"));
    let waits_in = |o: &Output, mode: &str| text(o).1.contains(&format!("{mode} mode"));
    let scan = |extra: &[&str], env_mode: Option<&str>| {
        let mut c = exona(&sim, &k, &d);
        c.env("EXONA_LOG", "debug").args(["scan", "Acme", "https://acme.ai"]).args(extra);
        if let Some(m) = env_mode {
            c.env("EXONA_POLL_MODE", m);
        }
        c.output().unwrap()
    };
    let o = scan(&["--mode", "frugal"], None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
    assert!(waits_in(&o, "frugal"), "{}", text(&o).1);
    let o = scan(&[], Some("balanced"));
    assert!(waits_in(&o, "balanced"), "{}", text(&o).1);
    let o = scan(&["--mode", "latency"], Some("frugal"));
    assert!(waits_in(&o, "latency") && !waits_in(&o, "frugal"), "the flag wins: {}", text(&o).1);

    let o = exona(&sim, &k, &d).args(["scan", "Acme", "https://acme.ai", "--mode", "fast"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("adaptive, latency, balanced or frugal"), "{}", text(&o).1);
    let o = exona(&sim, &k, &d).env("EXONA_POLL_MODE", "fast").args(["get", "scn_x"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("EXONA_POLL_MODE"), "{}", text(&o).1);
    for command in [&["wait", "scn_x"][..], &["batch", "in.csv", "-o", "out.jsonl"][..]] {
        let o = exona(&sim, &k, &d).args(command).args(["--mode", "frugal", "--help"]).output().unwrap();
        assert!(text(&o).0.contains("--mode <MODE>"), "{command:?}: {}", text(&o).0);
    }
}

/// `exona status` reads what the store knows of the key (its window, what each process holds,
/// creates on their way, durations, results) and sends no request; `--json` for programs.
#[test]
fn status_shows_the_keys_budget_and_work_in_flight_without_a_request() {
    let sim = sim_with(fast());
    let (k, d) = (key(41), dir("status"));
    let o = exona(&sim, &k, &d).args(["status"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
    assert!(text(&o).0.contains("no state store in"), "{}", text(&o).0);
    let o = exona(&sim, &k, &d)
        .args(["scan", "Acme", "https://acme.ai", "--max-age-days", "30"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
    // Another process creating a company now: its claim, with its pid.
    let store = exona::store::open(&d, &exona::store::fingerprint(&k, &sim.base_url)).unwrap();
    let now = std::time::SystemTime::now();
    assert_eq!(
        store.claim("https://beta.ai|citations=0", ask("a-call", now, now)),
        exona::store::Claim::Mine
    );
    // And its holds on the window, with its work in sight.
    let now_ms = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    use exona::testing::Ledger;
    store
        .transact(now_ms, &mut |_, mine| {
            *mine = exona::testing::Holds { outstanding: 1, reserved: 3, expected: 5, queued: 8 };
        })
        .unwrap();
    let before = sim.stats(&k);

    let o = exona(&sim, &k, &d).args(["status"]).output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.contains("requests left; resets at"), "{out}");
    assert!(out.contains(&format!("of {} requests left", fast().rate_limit)), "{out}");
    assert!(out.contains(&format!("https://beta.ai: being created by pid {}", std::process::id())), "{out}");
    assert!(out.contains("durations learned: 1 ") && out.contains("results kept: 1 "), "{out}");
    assert!(out.contains("no request was sent"), "{out}");
    assert!(
        out.contains(
            "3 poll(s) promised to its scans, work in sight expected to take 5 poll(s) and 8 request(s)"
        ),
        "{out}"
    );

    let o = exona(&sim, &k, &d).args(["status", "--json"]).output().unwrap();
    let v: Value = serde_json::from_str(&text(&o).0).unwrap_or_else(|e| panic!("{e}: {}", text(&o).0));
    assert_eq!(v["window"]["limit"], fast().rate_limit);
    assert_eq!(v["results"], 1);
    assert_eq!(v["durations"]["learned"], 1);
    assert_eq!(v["in_flight"][0]["identity"], "https://beta.ai|citations=0");
    assert_eq!(v["in_flight"][0]["scan_id"], Value::Null);
    assert_eq!(v["requests_sent"], 0);
    let me = v["processes"].as_array().unwrap().iter().find(|p| p["pid"] == std::process::id()).unwrap();
    assert_eq!((me["expected_polls"].as_u64(), me["queued_requests"].as_u64()), (Some(5), Some(8)));
    assert_eq!(sim.stats(&k), before, "status sent a request");
}

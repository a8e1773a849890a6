//! The files a batch run owns (DESIGN.md 8.2), tried as an operator would: each test is a bug
//! an outside check found (two runs on one output, `-o` naming the input, `/dev/full`, a
//! changed input on resume, files readable by all, `EXONA_STATE_DIR=OFF`, SIGTERM called
//! Ctrl-C, a cell that a spreadsheet runs as a formula).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use exona_sim::{Config, SimHandle};

fn key(n: u32) -> String {
    format!("exo_test_{:0>36}", format!("f{n}"))
}

fn dir(name: &str) -> PathBuf {
    let d =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-files-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The command with the simulator's URL, `key`, and a state directory under `d`.
fn exona(sim: &SimHandle, key: &str, d: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_exona"));
    c.env("EXONA_API_KEY", key)
        .env("EXONA_BASE_URL", &sim.base_url)
        .env("EXONA_STATE_DIR", d.join("state"))
        .env("EXONA_SCAN_DURATION_MS", "50-150")
        .env_remove("EXONA_LOG")
        .current_dir(d)
        .stdin(Stdio::null());
    c
}

fn batch(sim: &SimHandle, k: &str, d: &Path, input: &Path, output: &str) -> Output {
    exona(sim, k, d).args(["batch", input.to_str().unwrap(), "--output", output]).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn csv(d: &Path, rows: &[(&str, &str)]) -> PathBuf {
    let mut text = String::from("company_name,company_website\n");
    for (name, site) in rows {
        text += &format!("{name},{site}\n");
    }
    let p = d.join("in.csv");
    std::fs::write(&p, text).unwrap();
    p
}

fn numbered(d: &Path, n: usize, tag: &str) -> PathBuf {
    let names: Vec<(String, String)> =
        (0..n).map(|i| (format!("Co {i}"), format!("https://{tag}-{i}.example"))).collect();
    let rows: Vec<(&str, &str)> = names.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    csv(d, &rows)
}

/// Waits (bounded) until the simulator has seen `n` scans created on `k`.
fn until_created(sim: &SimHandle, k: &str, n: u64) {
    let started = Instant::now();
    while sim.stats(k).scans_created < n && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(sim.stats(k).scans_created >= n, "no scan was created in 60 s");
}

#[test]
fn a_second_run_on_the_same_output_is_refused_naming_the_first() {
    // Slow enough that the first run is still going when the second starts.
    let sim =
        exona_sim::spawn(Config { rate_limit: 10, rate_window: Duration::from_secs(4), ..Config::fast() })
            .unwrap();
    let (k, d) = (key(1), dir("twice"));
    let input = numbered(&d, 20, "twice");
    let mut first = exona(&sim, &k, &d)
        .args(["batch", input.to_str().unwrap(), "--output", "out.jsonl"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    until_created(&sim, &k, 1);
    let second = batch(&sim, &k, &d, &input, "out.jsonl");
    let err = stderr(&second);
    assert_eq!(second.status.code(), Some(3), "{err}");
    assert!(
        err.contains("in use by another run") && err.contains(&format!("process {}", first.id())),
        "{err}"
    );
    assert_eq!(first.wait().unwrap().code(), Some(0));
    let text = std::fs::read_to_string(d.join("out.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 20, "every row once");
    assert_eq!(sim.stats(&k).scans_created, 20, "no company created twice");
}

#[test]
fn an_output_that_is_the_input_or_not_a_file_is_refused_and_nothing_is_touched() {
    let sim = exona_sim::spawn(Config::fast()).unwrap();
    let (k, d) = (key(2), dir("same"));
    let input = numbered(&d, 3, "same");
    let before = std::fs::read(&input).unwrap();
    for output in [input.to_str().unwrap(), "./in.csv", "/dev/full", "/dev/null"] {
        let o = batch(&sim, &k, &d, &input, output);
        assert_eq!(o.status.code(), Some(3), "{output}: {}", stderr(&o));
        assert!(stderr(&o).contains(output.trim_start_matches("./")), "{output}: {}", stderr(&o));
    }
    // stdout as the output, piped (`| head`): a pipe cannot be read back to resume.
    let o = exona(&sim, &k, &d)
        .args(["batch", input.to_str().unwrap(), "--output", "/dev/stdout"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(std::fs::read(&input).unwrap(), before, "the input is as it was");
    assert_eq!(sim.stats(&k).posts, 0, "nothing was sent");
}

#[test]
fn a_resume_with_a_changed_input_is_refused_before_anything_is_sent() {
    let sim = exona_sim::spawn(Config::fast()).unwrap();
    let (k, d) = (key(3), dir("changed"));
    let rows = [("A", "https://a.changed.example"), ("B", "https://b.changed.example")];
    let input = csv(&d, &rows);
    assert_eq!(batch(&sim, &k, &d, &input, "out.jsonl").status.code(), Some(0));
    let written = std::fs::read(d.join("out.jsonl")).unwrap();
    let sent = sim.stats(&k);
    // A row inserted at the top: rows 1 and 2 now name other companies.
    csv(&d, &[("New", "https://new.changed.example"), rows[0], rows[1]]);
    let o = batch(&sim, &k, &d, &input, "out.jsonl");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("row(s) 1, 2") && err.contains("Nothing was sent"), "{err}");
    assert_eq!(sim.stats(&k), sent, "nothing was sent");
    assert_eq!(std::fs::read(d.join("out.jsonl")).unwrap(), written, "nothing was written");
    // --max-age-days does not change what a row is: a run with it resumes (nothing to do).
    csv(&d, &rows);
    let o = exona(&sim, &k, &d)
        .args(["batch", input.to_str().unwrap(), "--output", "out.jsonl", "--max-age-days", "30"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read(d.join("out.jsonl")).unwrap(), written);
}

#[test]
fn what_a_run_creates_is_readable_by_its_owner_only_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let sim = exona_sim::spawn(Config::fast()).unwrap();
    let (k, d) = (key(4), dir("modes"));
    let input = numbered(&d, 2, "modes");
    let mut c = exona(&sim, &k, &d);
    c.args(["batch", input.to_str().unwrap(), "--output", "out.jsonl"]);
    // SAFETY: umask is async-signal-safe; it runs in the child between fork and exec.
    unsafe {
        c.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mode = |p: PathBuf| std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(d.join("state")), 0o700, "the state directory");
    assert_eq!(mode(d.join("state/exona-state.sqlite3")), 0o600, "the state store");
    assert_eq!(mode(d.join("out.jsonl")), 0o600, "the output");
    assert_eq!(mode(d.join("out.jsonl.state")), 0o600, "the journal");
}

#[test]
fn state_dir_off_in_any_case_creates_nothing() {
    let sim = exona_sim::spawn(Config::fast()).unwrap();
    let (k, d) = (key(5), dir("off"));
    let o = exona(&sim, &k, &d)
        .env("EXONA_STATE_DIR", "OFF")
        .args(["scan", "Acme", "https://acme.ai", "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!d.join("OFF").exists(), "a directory named OFF was created");
}

#[test]
fn sigterm_stops_cleanly_and_is_called_sigterm() {
    let sim =
        exona_sim::spawn(Config { rate_limit: 6, rate_window: Duration::from_secs(3), ..Config::fast() })
            .unwrap();
    let (k, d) = (key(6), dir("term"));
    let input = numbered(&d, 20, "term");
    let child = exona(&sim, &k, &d)
        .args(["batch", input.to_str().unwrap(), "--output", "out.jsonl"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    until_created(&sim, &k, 2);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    // 128 + SIGTERM, as a shell reports a process the signal ended (Ctrl-C's is 130).
    assert_eq!(o.status.code(), Some(143), "{err}");
    assert!(err.contains("stopping on SIGTERM") && err.contains("stopped on SIGTERM"), "{err}");
    assert!(!err.contains("Ctrl-C"), "{err}");
    // Cancelled rows are not counted as done: what the line says is what OUTPUT holds.
    let written = std::fs::read_to_string(d.join("out.jsonl")).unwrap().lines().count();
    assert!(err.contains(&format!("{written} of 20 rows")), "{written} rows written: {err}");
}

#[test]
fn no_input_cell_becomes_a_formula_in_a_csv_output() {
    let sim = exona_sim::spawn(Config::fast()).unwrap();
    let (k, d) = (key(7), dir("formula"));
    let input = d.join("in.csv");
    std::fs::write(
        &input,
        "company_name,company_website,note\n\"=HYPERLINK(\"\"http://x\"\")\",https://f.example,@SUM(A1)\n",
    )
    .unwrap();
    let o = batch(&sim, &k, &d, &input, "out.csv");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(d.join("out.csv")).unwrap();
    let row = text.lines().nth(1).unwrap();
    assert!(row.contains("\"'=HYPERLINK(\"\"http://x\"\")\"") && row.ends_with(",'@SUM(A1)"), "{row}");
}

#[test]
fn a_run_without_its_state_store_says_so_on_stderr() {
    // A 20-hour batch could lose its shared ledger unseen: the warning showed only with
    // EXONA_LOG set.
    let sim = exona_sim::spawn(Config::fast()).unwrap();
    let (k, d) = (key(8), dir("no-store"));
    std::fs::write(d.join("not-a-dir"), b"x").unwrap();
    let o = exona(&sim, &k, &d)
        .env("EXONA_STATE_DIR", d.join("not-a-dir/state"))
        .args(["scan", "Acme", "https://acme.ai", "--json"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "the scan still runs: {err}");
    assert!(err.contains("running without the state store") && err.contains("not used"), "{err}");
}

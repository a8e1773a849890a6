//! scripts/summary.sh, the suite's closing lines: it counts what ran, each failure once and by
//! name, and agrees with the exit status whatever went wrong (a crashed test binary, a build
//! failure, skips, a failed step).

use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// (the closing line, the exit code) for a log and a skip log.
fn summarize(log: &str, skips: &str) -> (String, i32) {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let (log_path, skip_path) = (dir.join(format!("log-{n}")), dir.join(format!("skips-{n}")));
    std::fs::write(&log_path, log).unwrap();
    std::fs::write(&skip_path, skips).unwrap();
    let out = Command::new("bash")
        .arg(format!("{ROOT}/scripts/summary.sh"))
        .arg(&log_path)
        .arg(&skip_path)
        .output()
        .unwrap();
    let _ = (std::fs::remove_file(log_path), std::fs::remove_file(skip_path));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (stdout.trim().lines().last().unwrap_or("").to_owned(), out.status.code().unwrap_or(-1))
}

/// The names the summary lists as failed.
fn failed_names(log: &str) -> Vec<String> {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let path = dir.join(format!("names-{n}"));
    std::fs::write(&path, log).unwrap();
    let out = Command::new("bash").arg(format!("{ROOT}/scripts/summary.sh")).arg(&path).output().unwrap();
    let _ = std::fs::remove_file(path);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().filter(|l| l.starts_with("  ")).map(|l| l.trim().to_owned()).collect()
}

#[test]
fn a_clean_run_counts_every_kind_of_check() {
    let log = "test result: ok. 5 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out\n\
               --- PASS: TestScan (0.10s)\n--- SKIP: TestProxy (0.00s)\n\
               6 runs, 52 assertions, 0 failures, 0 errors, 1 skips\n\
               --- PASS: installed-tree/install\nfuzz website: ok (Done 5 runs in 10 s)\n";
    assert_eq!(summarize(log, ""), ("13 passed, 0 failed, 3 skipped".into(), 0));
}

#[test]
fn a_test_binary_killed_by_a_signal_is_a_failure() {
    let log = "test result: ok. 5 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n\
               error: test failed, to rerun pass `--test c_examples`\n\n\
               Caused by:\n  process didn't exit successfully: `/t/c_examples-1` (signal: 11, SIGSEGV: invalid memory reference)\n\
               step failed: cargo test (exit 101)\n";
    assert_eq!(summarize(log, ""), ("5 passed, 1 failed, 0 skipped".into(), 1));
    assert_eq!(failed_names(log), ["c_examples (killed by a signal)"]);
}

#[test]
fn a_failed_test_counts_once_and_by_name_not_again_as_its_step() {
    // The run that said "274 passed, 2 failed" for one failing test.
    let log = "== step: cargo test\n\
               \x20    Running tests/c_examples.rs (target/debug/deps/c_examples-4f2a9c)\n\
               test scan_prints_the_risk_assessment ... ok\n\
               test the_fault_matrix_is_memory_clean_through_the_c_surface ... FAILED\n\
               test result: FAILED. 20 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n\
               error: 1 target failed:\n    `--test c_examples`\n\
               step failed: cargo test (exit 101)\n\
               == step: Ruby binding\n\
               \x20 1) Failure:\nTestExona#test_cancel [test/test_exona.rb:40]:\nExpected true\n\
               9 runs, 40 assertions, 1 failures, 0 errors, 0 skips\n\
               step failed: Ruby binding (exit 1)\n";
    assert_eq!(summarize(log, ""), ("28 passed, 2 failed, 0 skipped".into(), 1));
    assert_eq!(
        failed_names(log),
        ["c_examples::the_fault_matrix_is_memory_clean_through_the_c_surface", "TestExona#test_cancel"]
    );
}

#[test]
fn a_build_failure_and_a_failed_step_are_failures() {
    let log = "== step: cargo test\nerror: could not compile `exona` (lib) due to 1 previous error\n\
               step failed: cargo test (exit 101)\n";
    let (line, code) = summarize(log, "");
    assert_eq!((line.as_str(), code), ("0 passed, 1 failed, 0 skipped", 1));
    assert_eq!(failed_names(log), ["could not compile `exona` (lib)"]);
    // go vet or a TestMain exit print no "--- FAIL" line; the step's own failure is counted.
    let (line, code) =
        summarize("# example.com/exona\nvet: bad printf\nstep failed: Go binding (exit 1)\n", "");
    assert_eq!((line.as_str(), code), ("0 passed, 1 failed, 0 skipped", 1));
    assert_eq!(
        failed_names("vet: bad printf\nstep failed: Go binding (exit 1)\n"),
        ["step Go binding (exit 1)"]
    );
}

#[test]
fn minitest_skips_and_failures_are_not_passes() {
    let (line, code) = summarize("10 runs, 40 assertions, 1 failures, 1 errors, 3 skips\n", "");
    assert_eq!((line.as_str(), code), ("5 passed, 2 failed, 3 skipped", 1));
}

#[test]
fn tests_skipped_for_a_missing_tool_are_skips() {
    let log = "test result: ok. 4 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n";
    let skips = "skip-test scan_is_clean_under_valgrind: valgrind is not available\n\
                 skip-check threads_share_one_client: valgrind is not available\n";
    assert_eq!(summarize(log, skips), ("3 passed, 0 failed, 2 skipped".into(), 0));
}

#[test]
fn pytest_results_count_and_a_failed_one_is_named_once() {
    let log = "== step: Python binding\n\
               bindings/python/tests/test_client.py::test_scan PASSED [ 33%]\n\
               bindings/python/tests/test_client.py::test_cache SKIPPED (no release build) [ 66%]\n\
               bindings/python/tests/test_waiting.py::test_ctrl_c FAILED [100%]\n\
               FAILED bindings/python/tests/test_waiting.py::test_ctrl_c - AssertionError\n\
               ========== 1 failed, 1 passed, 1 skipped in 2.00s ==========\n\
               step failed: Python binding (exit 1)\n";
    assert_eq!(summarize(log, ""), ("1 passed, 1 failed, 1 skipped".into(), 1));
    assert_eq!(failed_names(log), ["bindings/python/tests/test_waiting.py::test_ctrl_c"]);
}

//! A fleet on one key: `exona` processes with separate state directories (hosts that share no
//! volume) and skewed wall clocks, connected only by one PostgreSQL database
//! (`EXONA_STATE_URL`), a throwaway server the test starts and stops.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use exona_sim::{Config, SimHandle};

#[path = "../../tests/common/postgres.rs"]
mod pg_server;

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("fleet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `exona` as one host of the fleet: a state directory of its own, its clock skewed.
fn host(sim: &SimHandle, key: &str, state: &Path, url: &str, skew_ms: i64) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_exona"));
    c.env("EXONA_API_KEY", key)
        .env("EXONA_BASE_URL", &sim.base_url)
        .env("EXONA_STATE_DIR", state)
        .env("EXONA_STATE_URL", url)
        .env("EXONA_TEST_CLOCK_SKEW_MS", skew_ms.to_string())
        .env("EXONA_SCAN_DURATION_MS", "200-600")
        .env_remove("EXONA_LOG")
        .stdin(Stdio::null());
    c
}

/// `exona store init` on the fleet's database, as its owner would run it once.
fn init(url: &str) {
    let o = Command::new(env!("CARGO_BIN_EXE_exona"))
        .args(["store", "init", "--state-url", url])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains("created the state store's schema exona") && !out.contains("fleet-secret-pw"),
        "{out}"
    );
}

fn companies(d: &Path, n: usize) -> PathBuf {
    let p = d.join("companies.csv");
    let mut csv = String::from("company_name,company_website\n");
    for i in 0..n {
        csv += &format!("Co {i},https://fleet-{i}.example\n");
    }
    std::fs::write(&p, csv).unwrap();
    p
}

#[test]
fn hosts_sharing_only_the_database_make_one_scan_per_company_and_meet_no_429() {
    let Some(pg) = pg_server::PgServer::start_or_skip() else { return };
    // A tight window for what three hosts ask at once.
    let sim = exona_sim::spawn(Config {
        scan_duration_min: Duration::from_millis(200),
        scan_duration_max: Duration::from_millis(600),
        rate_limit: 12,
        rate_window: Duration::from_secs(3),
        ..Config::fast()
    })
    .unwrap();
    init(&pg.url());
    let key = format!("exo_test_{:036}", 7001);
    let d = dir("hosts");
    let input = companies(&d, 6);
    let runs: Vec<_> = [-3_000i64, 0, 3_000]
        .iter()
        .enumerate()
        .map(|(i, &skew)| {
            let state = d.join(format!("host-{i}"));
            let out = d.join(format!("out-{i}.jsonl"));
            let child = host(&sim, &key, &state, &pg.url(), skew)
                .args([
                    "batch",
                    input.to_str().unwrap(),
                    "--output",
                    out.to_str().unwrap(),
                    "--max-age-days",
                    "30",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (child, out)
        })
        .collect();
    for (child, out) in runs {
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{err}");
        assert!(!err.contains("fleet-secret-pw"), "the URL's password was printed: {err}");
        let rows = std::fs::read_to_string(out).unwrap();
        assert_eq!(rows.lines().filter(|l| l.contains("\"completed\"")).count(), 6, "{rows}");
    }
    let stats = sim.stats(&key);
    // Without the database, hosts create twins (14 scans and 2 × 429 in one run).
    assert_eq!(stats.scans_created, 6, "{stats:?}");
    assert_eq!(stats.rate_limited, 0, "{stats:?}");
    // A fourth host asking again within max_age_days is answered by the database: no request.
    let before = stats.posts + stats.gets;
    let out = d.join("out-again.jsonl");
    let o = host(&sim, &key, &d.join("host-3"), &pg.url(), 0)
        .args(["batch", input.to_str().unwrap(), "--output", out.to_str().unwrap(), "--max-age-days", "30"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let after = sim.stats(&key);
    assert_eq!(after.posts + after.gets, before, "{after:?}");
    // `exona status` reads the fleet's database: the key's window and the 6 results, no request.
    let o = host(&sim, &key, &d.join("host-4"), &pg.url(), 0).args(["status", "--json"]).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let status: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(status["window"]["limit"], 12, "{text}");
    assert_eq!(status["results"], 6, "{text}");
    assert!(
        !text.contains("fleet-secret-pw") && status["state_url"].as_str().unwrap().contains("***"),
        "{text}"
    );
    assert_eq!(sim.stats(&key).posts + sim.stats(&key).gets, before);
}

#[test]
fn a_database_that_is_down_costs_one_warning_and_no_scan() {
    let Some(pg) = pg_server::PgServer::start_or_skip() else { return };
    let url = pg.url();
    pg.stop();
    let sim = exona_sim::spawn(Config::fast()).unwrap();
    let key = format!("exo_test_{:036}", 7002);
    let d = dir("down");
    let o = host(&sim, &key, &d, &url, 0)
        .env("EXONA_SCAN_DURATION_MS", "50-150")
        .args(["scan", "Acme", "https://fleet-down.example"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("state store bypassed"), "{err}");
    assert_eq!(err.matches("state store bypassed").count(), 1, "one warning: {err}");
    assert!(!err.contains("fleet-secret-pw") && err.contains("exona:***@127.0.0.1"), "{err}");
    // A URL the library cannot use is refused before anything is sent, without its password.
    let o = host(&sim, &key, &d, "mysql://exona:fleet-secret-pw@127.0.0.1/x", 0)
        .args(["scan", "Acme", "https://fleet-down.example"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0));
    assert!(err.contains("EXONA_STATE_URL") && !err.contains("fleet-secret-pw"), "{err}");
}

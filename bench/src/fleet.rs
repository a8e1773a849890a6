//! The `fleet` scenario: processes with separate state directories (hosts that share no
//! volume) on one key, connected only by a PostgreSQL database (`EXONA_STATE_URL`), a
//! throwaway server this scenario starts and stops (issue 24). Every process is a real child
//! (`exona-bench store-worker`); blind processes (no store) run beside them on the same load.
//!
//! - 4 processes × 12 scans, 20 requests per 40 s: with the database, and blind;
//! - a fifth process asking again for 12 completed companies (max_age_days 30);
//! - two processes asking at once for the same 6 companies;
//! - wall clocks skewed by -3, -1, +1 and +3 s (a test-only skew of each process's clock);
//! - the database stopped mid-run and started again;
//! - the ledger's cost per request on loopback PostgreSQL, p50 and p99, beside SQLite's.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use exona::ClientConfig;
use exona_sim::SimHandle;

use crate::store::{sim_with, sites, state_dir, WorkerReport};

#[path = "../../tests/common/postgres.rs"]
mod pg_server;

/// One host: its own state directory, the fleet's database (or none), its clock skewed; told
/// the scans take 3-12 s.
fn spawn_host(
    sim: &SimHandle,
    key: &str,
    state: &Path,
    url: Option<&str>,
    skew_ms: i64,
    sites: &[String],
    log: Option<&Path>,
) -> Child {
    spawn_host_hinted(sim, key, state, url, skew_ms, sites, log, "3-12")
}

/// [`spawn_host`] with the duration hint given ("none": the documented prior).
#[allow(clippy::too_many_arguments)]
fn spawn_host_hinted(
    sim: &SimHandle,
    key: &str,
    state: &Path,
    url: Option<&str>,
    skew_ms: i64,
    sites: &[String],
    log: Option<&Path>,
    hint: &str,
) -> Child {
    let mut c = Command::new(std::env::current_exe().expect("own path"));
    c.arg("store-worker")
        .arg(&sim.base_url)
        .arg(state)
        .arg(hint)
        .args(sites)
        .env("EXONA_API_KEY", key)
        .env("EXONA_TEST_CLOCK_SKEW_MS", skew_ms.to_string())
        // `fleet-outage` asks for more (EXONA_BENCH_HOST_LOG=debug) to see why a host waits.
        .env("EXONA_LOG", std::env::var("EXONA_BENCH_HOST_LOG").unwrap_or_else(|_| "warn".into()))
        .env_remove("EXONA_STATE_DIR")
        .env_remove("EXONA_SCAN_DURATION_MS")
        .stdout(Stdio::piped());
    // A log file is written as the host runs (to watch a host that waits); else stderr is
    // collected at its end.
    match log {
        Some(path) => c.stderr(std::fs::File::create(path).expect("host log")),
        None => c.stderr(Stdio::piped()),
    };
    match url {
        Some(u) => c.env("EXONA_STATE_URL", u),
        None => c.env_remove("EXONA_STATE_URL"),
    };
    c.spawn().expect("worker starts")
}

/// Where a host of [`four_hosts`] writes its log, with EXONA_BENCH_HOST_LOG_DIR set: named by
/// its state directory and its first site.
fn host_log(state: &Path, sites: &[String]) -> Option<PathBuf> {
    let dir = std::env::var_os("EXONA_BENCH_HOST_LOG_DIR")?;
    let state = state.file_name().map_or("off".into(), |n| n.to_string_lossy().into_owned());
    let site = sites.first().map_or("none".into(), |s| s.replace("https://", "").replace('/', "_"));
    Some(Path::new(&dir).join(format!("{state}-{site}.log")))
}

/// A host's report and what it said on stderr (or in its log file: see [`spawn_host`]).
fn collect(child: Child, log: Option<PathBuf>) -> (WorkerReport, String) {
    let out = child.wait_with_output().expect("worker ends");
    let report = super::store::parse_report(&String::from_utf8_lossy(&out.stdout));
    let err = match log {
        Some(path) => std::fs::read_to_string(path).unwrap_or_default(),
        None => String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (report, err)
}

struct Run {
    completed: usize,
    failed: usize,
    requests: u64,
    rate_limited: u64,
    scans: u64,
    last_done: f64,
    reattached: usize,
    bypassed: usize,
}

/// Four hosts × 12 companies of their own on a fresh key; `during` runs while they do.
fn four_hosts(
    url: Option<&str>,
    skews: [i64; 4],
    n: u32,
    during: impl FnOnce(),
) -> (Run, SimHandle, String, Vec<PathBuf>) {
    let (run, sim, key, dirs, _) = four_hosts_logged(url, skews, n, during);
    (run, sim, key, dirs)
}

/// As [`four_hosts`], with each host's report and stderr.
fn four_hosts_logged(
    url: Option<&str>,
    skews: [i64; 4],
    n: u32,
    during: impl FnOnce(),
) -> (Run, SimHandle, String, Vec<PathBuf>, Vec<(WorkerReport, String)>) {
    let sim = sim_with(20, Duration::from_secs(40), super::SCAN_MIN, super::SCAN_MAX);
    let key = super::key(2400 + n);
    let dirs: Vec<PathBuf> = (0..4).map(|h| state_dir(&format!("fleet-{n}-{h}"))).collect();
    let hosts: Vec<(PathBuf, Vec<String>)> = (0..4)
        .map(|h| {
            let state = if url.is_some() { dirs[h].clone() } else { PathBuf::from("off") };
            (state, sites(&format!("f{n}h{h}"), 12))
        })
        .collect();
    let children: Vec<Child> = hosts
        .iter()
        .enumerate()
        .map(|(h, (state, s))| spawn_host(&sim, &key, state, url, skews[h], s, host_log(state, s).as_deref()))
        .collect();
    during();
    let reports: Vec<(WorkerReport, String)> =
        children.into_iter().zip(&hosts).map(|(c, (state, s))| collect(c, host_log(state, s))).collect();
    let stats = sim.stats(&key);
    let run = Run {
        completed: reports.iter().map(|r| r.0.completed).sum(),
        failed: reports.iter().map(|r| r.0.failed).sum(),
        requests: stats.posts + stats.gets + stats.rate_limited,
        rate_limited: stats.rate_limited,
        scans: stats.scans_created,
        last_done: reports.iter().map(|r| r.0.elapsed).fold(0.0, f64::max),
        reattached: reports.iter().map(|r| r.1.matches("re-attached").count()).sum(),
        bypassed: reports.iter().map(|r| r.1.matches("state store bypassed").count()).sum(),
    };
    (run, sim, key, dirs, reports)
}

fn row(label: &str, r: &Run) {
    println!(
        "| {label} | 48 | {} | {} | {} | {} | {} | {:.1} | {} / {} |",
        r.completed, r.failed, r.scans, r.requests, r.rate_limited, r.last_done, r.bypassed, r.reattached
    );
}

fn hosts(server: &pg_server::PgServer) {
    let url = server.url();
    println!("### Four hosts × 12 scans on one key, 20 requests per 40 s\n");
    println!("Each host a process with a state directory of its own; only the database connects them.");
    println!("Requests count 429s too. Last column: store bypass warnings / re-attachments, summed over the hosts.\n");
    println!("| hosts | scans asked | completed | failed | scans created | requests | 429s | last host done (s) | bypassed / re-attached |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let (shared, sim, key, dirs) = four_hosts(Some(&url), [0; 4], 1, || {});
    row("one database", &shared);
    let (blind, ..) = four_hosts(None, [0; 4], 2, || {});
    row("blind (no store)", &blind);
    let (skewed, ..) = four_hosts(Some(&url), [-3_000, -1_000, 1_000, 3_000], 3, || {});
    row("one database, clocks skewed -3, -1, +1, +3 s", &skewed);
    let (restarted, ..) = four_hosts(Some(&url), [0; 4], 4, || {
        std::thread::sleep(Duration::from_secs(20));
        server.stop();
        std::thread::sleep(Duration::from_secs(5));
        server.start_again().expect("the database starts again");
    });
    row("one database, stopped at 20 s for 5 s", &restarted);

    // A fifth host asks again for the first host's 12 companies, within max_age_days.
    let before = sim.stats(&key);
    let fifth = state_dir("fleet-fifth");
    let (again, _) = collect(spawn_host(&sim, &key, &fifth, Some(&url), 0, &sites("f1h0", 12), None), None);
    let after = sim.stats(&key);
    println!(
        "\nA fifth host (a state directory of its own) asking again for the first host's 12 companies \
         (max_age_days 30): {} completed, {} from the store, {} requests sent, in {:.3} s.\n",
        again.completed,
        again.from_store,
        (after.posts + after.gets + after.rate_limited) - (before.posts + before.gets + before.rate_limited),
        again.elapsed
    );
    for d in dirs.iter().chain(std::iter::once(&fifth)) {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn twins(server: &pg_server::PgServer) {
    println!("### Two hosts asking at once for the same 6 companies\n");
    println!("| store | scans asked for | scans created | completed | failed |");
    println!("|---|---|---|---|---|");
    for (label, url) in [("one database", Some(server.url())), ("none", None)] {
        let sim = sim_with(1000, Duration::from_secs(3600), super::SCAN_MIN, super::SCAN_MAX);
        let key = super::key(if url.is_some() { 2411 } else { 2412 });
        let same = sites("fleet-same", 6);
        let dirs: Vec<PathBuf> = (0..2).map(|h| state_dir(&format!("fleet-twins-{h}"))).collect();
        let children: Vec<Child> = dirs
            .iter()
            .map(|d| {
                let state = if url.is_some() { d.clone() } else { PathBuf::from("off") };
                spawn_host(&sim, &key, &state, url.as_deref(), 0, &same, None)
            })
            .collect();
        let reports: Vec<(WorkerReport, String)> = children.into_iter().map(|c| collect(c, None)).collect();
        println!(
            "| {label} | 12 | {} | {} | {} |",
            sim.stats(&key).scans_created,
            reports.iter().map(|r| r.0.completed).sum::<usize>(),
            reports.iter().map(|r| r.0.failed).sum::<usize>(),
        );
        for d in &dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    println!();
}

/// Per-request latency of sequential GETs through a client with the store, p50 and p99.
fn latencies(config: ClientConfig, n: usize) -> (f64, f64) {
    let client = config.build().expect("client");
    client.get_scan("scn_missing").ok(); // the first exchange informs the ledger and connects
    let mut times: Vec<f64> = (0..n)
        .map(|_| {
            let started = Instant::now();
            let _ = client.get_scan("scn_missing");
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[n / 2], times[n * 99 / 100])
}

fn ledger_cost(server: &pg_server::PgServer) {
    println!("### The ledger's cost per request\n");
    let sim =
        sim_with(1_000_000, Duration::from_secs(3600), Duration::from_millis(1), Duration::from_millis(2));
    let n = 2000;
    println!("{n} sequential GETs (answered 404 by the simulator on 127.0.0.1), per request:\n");
    println!("| client | p50 ms | p99 ms | p50 beyond none | p99 beyond none |");
    println!("|---|---|---|---|---|");
    let dir = state_dir("fleet-cost");
    let none = latencies(ClientConfig::new(&super::key(2421), Some(&sim.base_url)), n);
    let sqlite = latencies(
        ClientConfig {
            state_dir: Some(dir.clone()),
            ..ClientConfig::new(&super::key(2422), Some(&sim.base_url))
        },
        n,
    );
    let pg = latencies(
        ClientConfig {
            state_url: Some(exona::config::StateUrl::new(&server.url())),
            ..ClientConfig::new(&super::key(2423), Some(&sim.base_url))
        },
        n,
    );
    for (label, (p50, p99)) in
        [("no store", none), ("SQLite (a host)", sqlite), ("PostgreSQL on loopback (a fleet)", pg)]
    {
        println!("| {label} | {p50:.3} | {p99:.3} | {:.3} | {:.3} |", p50 - none.0, p99 - none.1);
    }
    println!();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A throwaway server with the store's schema created in it (`exona store init`, as its owner
/// would run it once), or `None` with why, printed.
fn started() -> Option<pg_server::PgServer> {
    let server = match pg_server::PgServer::start() {
        Ok(s) => s,
        Err(e) => {
            println!("skipped: {e}\n");
            return None;
        }
    };
    exona::store::init_url(&server.url()).expect("the store's schema is created");
    crate::on_signal::stop_with_the_bench(Box::new(server.stopper()));
    Some(server)
}

/// Runs `f` with the URL of a throwaway PostgreSQL server whose store schema is made (not at
/// all, with a line saying so, when the server cannot start).
pub fn with_database(f: impl FnOnce(&str)) {
    if let Some(server) = started() {
        f(&server.url());
    }
}

pub fn run() {
    println!("## Fleet: hosts sharing a key through PostgreSQL\n");
    let Some(server) = started() else { return };
    println!("A throwaway PostgreSQL server on 127.0.0.1:{} (initdb + pg_ctl, fsync off).\n", server.port);
    hosts(&server);
    twins(&server);
    ledger_cost(&server);
}

/// `exona-bench fleet-nohint`: four hosts × 12 scans of 3-12 s with no duration hint, on the
/// PostgreSQL store and blind, side by side on three simulator seeds (issue 35: 1.23x blind
/// on one seed, with the hint).
pub fn run_no_hint() {
    println!("## Fleet with no duration hint: four hosts on PostgreSQL against blind hosts (issue 35)\n");
    let Some(server) = started() else { return };
    let url = server.url();
    println!(
        "Four `exona-bench store-worker` hosts × 12 scans of 3–12 s on one key, 20 requests per 40 s, \
         no `EXONA_SCAN_DURATION_MS`; a throwaway PostgreSQL server on 127.0.0.1:{}. The same \
         simulator seed for the shared and the blind run.\n",
        server.port
    );
    println!("| seed | hosts | slowest host | ÷ blind | requests | 429s | failed |");
    println!("|---|---|---|---|---|---|---|");
    for seed in [11, 12, 13] {
        let mut runs = Vec::new();
        for (i, shared) in [true, false].into_iter().enumerate() {
            let sim =
                super::store::sim_seeded(20, Duration::from_secs(40), super::SCAN_MIN, super::SCAN_MAX, seed);
            let key = super::key(2600 + seed as u32 * 2 + i as u32);
            let n = 60 + seed as u32 * 2 + i as u32;
            let children: Vec<(Child, PathBuf)> = (0..4)
                .map(|h| {
                    let state =
                        if shared { state_dir(&format!("nohint-{n}-{h}")) } else { PathBuf::from("off") };
                    let s = sites(&format!("nh{n}h{h}"), 12);
                    let url = shared.then_some(url.as_str());
                    (spawn_host_hinted(&sim, &key, &state, url, 0, &s, None, "none"), state)
                })
                .collect();
            let reports: Vec<WorkerReport> = children
                .into_iter()
                .map(|(c, state)| {
                    let r = collect(c, None).0;
                    if shared {
                        let _ = std::fs::remove_dir_all(&state);
                    }
                    r
                })
                .collect();
            let stats = sim.stats(&key);
            let slowest = reports.iter().map(|r| r.elapsed).fold(0.0, f64::max);
            let failed: usize = reports.iter().map(|r| r.failed).sum();
            runs.push((shared, slowest, stats.posts + stats.gets, stats.rate_limited, failed));
        }
        let blind = runs[1].1;
        for (shared, slowest, requests, rate_limited, failed) in runs {
            println!(
                "| {seed} | {} | {slowest:.1} s | {:.2} | {requests} | {rate_limited} | {failed} |",
                if shared { "PostgreSQL store" } else { "blind" },
                slowest / blind
            );
        }
    }
    println!();
}

/// Only the database outage, `runs` times (`exona-bench fleet-outage [RUNS]`): each host's
/// time and bypasses, and its log kept in a file (set `EXONA_BENCH_HOST_LOG=debug` for the
/// governor's reasons). A host of four once finished at 912.6 s after the outage, where the
/// others took about 175 s.
pub fn run_outage(runs: u32) {
    println!("## Fleet: the database stopped at 20 s for 5 s, {runs} runs\n");
    let Some(server) = started() else { return };
    let url = server.url();
    println!("| run | completed | failed | requests | 429s | hosts done at (s) | bypassed / re-attached per host | logs |");
    println!("|---|---|---|---|---|---|---|---|");
    for n in 0..runs {
        let (run, _sim, _key, dirs, reports) = four_hosts_logged(Some(&url), [0; 4], 40 + n, || {
            std::thread::sleep(Duration::from_secs(20));
            server.stop();
            std::thread::sleep(Duration::from_secs(5));
            server.start_again().expect("the database starts again");
        });
        let logs = std::env::temp_dir().join(format!("exona-fleet-outage-{}-{n}", std::process::id()));
        let _ = std::fs::create_dir_all(&logs);
        for (h, (_, err)) in reports.iter().enumerate() {
            let _ = std::fs::write(logs.join(format!("host{h}.log")), err);
        }
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} | {} |",
            run.completed,
            run.failed,
            run.requests,
            run.rate_limited,
            reports.iter().map(|r| format!("{:.1}", r.0.elapsed)).collect::<Vec<_>>().join(", "),
            reports
                .iter()
                .map(|r| format!(
                    "{}/{}",
                    r.1.matches("state store bypassed").count(),
                    r.1.matches("re-attached").count()
                ))
                .collect::<Vec<_>>()
                .join(", "),
            logs.display()
        );
        for d in &dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    println!();
}

/// Only the ledger's cost (`exona-bench fleet-cost`: seconds, where `fleet` takes twenty minutes).
pub fn run_cost() {
    println!("## Fleet: the ledger's cost on PostgreSQL\n");
    if let Some(server) = started() {
        ledger_cost(&server);
    }
}

/// A private CA and a certificate it signed for 127.0.0.1: (CA PEM, certificate PEM, key PEM).
fn private_ca() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "fleet bench CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
    let cert = params.signed_by(&key, &ca).expect("certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// The fleet as DBAs run PostgreSQL (issue 34), `runs` times each way, alternated
/// (`exona-bench fleet-dba [RUNS]`): four hosts × 12 scans at 20 requests per 40 s on a plain
/// loopback connection as the schema's owner, then through PgBouncer in transaction pooling,
/// over TLS verified against a private CA (verify-full), as a role with DML rights only. Then
/// the database gone silent 20 s into a run (a relay that stops forwarding, connections left
/// open): each host's time, and the longest wait of a store call, as the hosts logged it.
pub fn run_dba(runs: u32) {
    println!("## Fleet: PostgreSQL as DBAs run it (TLS, a DML-only role, PgBouncer), and silent\n");
    let Some(server) = started() else { return };
    let (ca, cert, key) = private_ca();
    let Some(bouncer) = pg_server::PgBouncer::start_tls_or_skip(&server, Some((&cert, &key))) else {
        println!("skipped: pgbouncer is not installed\n");
        return;
    };
    server
        .sql(
            "CREATE ROLE fleet_dml LOGIN; GRANT USAGE ON SCHEMA exona TO fleet_dml; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA exona TO fleet_dml;",
        )
        .expect("the DML role");
    let ca_file = std::env::temp_dir().join(format!("exona-fleet-dba-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca).expect("CA file");
    let plain = server.url();
    let dba = bouncer.tls_url("fleet_dml", &ca_file);
    println!(
        "A throwaway server on 127.0.0.1:{}, PgBouncer {} on :{} (pool_mode transaction, client TLS with a \
         private CA; the pooler to the server plain, on loopback). Plain: `{}`. As DBAs run it: `{}`.\n",
        server.port,
        pgbouncer_version(),
        bouncer.port,
        exona::store::redact_url(&plain),
        exona::store::redact_url(&dba).replace(&ca_file.display().to_string(), "ca.pem")
    );
    println!("| run | connection | completed | failed | scans created | requests | 429s | last host done (s) | bypassed |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut times = (Vec::new(), Vec::new());
    for n in 0..runs {
        for (label, url) in [("plain, owner", &plain), ("TLS verify-full, DML role, PgBouncer", &dba)] {
            let seed = 60 + 2 * n + u32::from(url == &dba);
            let (run, _sim, _key, dirs) = four_hosts(Some(url), [0; 4], seed, || {});
            println!(
                "| {n} | {label} | {} | {} | {} | {} | {} | {:.1} | {} |",
                run.completed,
                run.failed,
                run.scans,
                run.requests,
                run.rate_limited,
                run.last_done,
                run.bypassed
            );
            if url == &dba {
                times.1.push(run.last_done)
            } else {
                times.0.push(run.last_done)
            }
            for d in &dirs {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!(
        "\nMean makespan: plain {:.1} s, as DBAs run it {:.1} s ({:.3}×).\n",
        mean(&times.0),
        mean(&times.1),
        mean(&times.1) / mean(&times.0).max(f64::MIN_POSITIVE)
    );

    println!("### The database goes silent 20 s into the run\n");
    println!("| run | completed | failed | 429s | hosts done at (s) | longest wait of a store call (s) | bypassed / re-attached |");
    println!("|---|---|---|---|---|---|---|");
    // Each host logs at info: a store call that waited more than a second says how long.
    let previous = std::env::var("EXONA_BENCH_HOST_LOG").ok();
    std::env::set_var("EXONA_BENCH_HOST_LOG", "info");
    for n in 0..runs {
        let proxy = pg_server::SilentProxy::start(server.port);
        let url = format!("postgresql://exona:fleet-secret-pw@127.0.0.1:{}/postgres", proxy.port);
        let (run, _sim, _key, dirs, reports) = four_hosts_logged(Some(&url), [0; 4], 80 + n, || {
            std::thread::sleep(Duration::from_secs(20));
            proxy.go_silent();
        });
        let longest = reports
            .iter()
            .flat_map(|r| r.1.lines())
            .filter_map(|l| l.split("a call waited ").nth(1)?.split(' ').next()?.parse::<f64>().ok())
            .fold(0.0, f64::max);
        println!(
            "| {n} | {} | {} | {} | {} | {longest:.1} | {} / {} |",
            run.completed,
            run.failed,
            run.rate_limited,
            reports.iter().map(|r| format!("{:.1}", r.0.elapsed)).collect::<Vec<_>>().join(", "),
            run.bypassed,
            run.reattached
        );
        for d in &dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    match previous {
        Some(v) => std::env::set_var("EXONA_BENCH_HOST_LOG", v),
        None => std::env::remove_var("EXONA_BENCH_HOST_LOG"),
    }
    println!();
    let _ = std::fs::remove_file(ca_file);
}

fn pgbouncer_version() -> String {
    Command::new("/usr/sbin/pgbouncer")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(|l| l.replace("PgBouncer ", "")))
        .unwrap_or_else(|| "?".into())
}

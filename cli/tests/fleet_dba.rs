//! The fleet store on PostgreSQL as DBAs run it (DESIGN.md 9.3), each with a throwaway server
//! this test configures: TLS with a private CA (require, verify-full with the right and the
//! wrong CA, client certificates), a role with DML rights only, PgBouncer in transaction
//! pooling, a database that goes silent mid-run, and secrets in the URL's parameters.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use exona_sim::{Config, SimHandle};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

#[path = "../../tests/common/postgres.rs"]
mod pg_server;
use pg_server::{PgBouncer, PgServer, SilentProxy};

fn dir(name: &str) -> PathBuf {
    let d =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("fleet-dba-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("home")).unwrap();
    d
}

/// `exona` on a host of its own: its state directory, an empty HOME (no ~/.pgpass or
/// ~/.postgresql of the machine's), the fleet's URL.
fn exona(d: &Path, host: &str, url: &str, sim: Option<&SimHandle>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_exona"));
    c.env("HOME", d.join("home"))
        .env("EXONA_STATE_DIR", d.join(host))
        .env("EXONA_STATE_URL", url)
        .env("EXONA_SCAN_DURATION_MS", "200-600")
        .env_remove("EXONA_LOG")
        .env_remove("EXONA_CA_BUNDLE")
        .env_remove("PGSSLMODE")
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null());
    if let Some(sim) = sim {
        c.env("EXONA_BASE_URL", &sim.base_url).env("EXONA_API_KEY", key_of(sim));
    }
    c
}

fn key_of(sim: &SimHandle) -> String {
    format!(
        "exo_test_{:036}",
        sim.base_url.rsplit(':').next().unwrap().trim_end_matches("/api/v1").parse::<u64>().unwrap()
    )
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn init(d: &Path, url: &str) -> Output {
    exona(d, "init", url, None).args(["store", "init"]).output().unwrap()
}

/// A tight window, so that two batches that did not share the ledger would meet 429s.
fn tight_sim() -> SimHandle {
    exona_sim::spawn(Config {
        scan_duration_min: Duration::from_millis(200),
        scan_duration_max: Duration::from_millis(600),
        rate_limit: 12,
        rate_window: Duration::from_secs(3),
        ..Config::fast()
    })
    .unwrap()
}

fn companies(d: &Path, n: usize) -> PathBuf {
    let p = d.join("companies.csv");
    let mut csv = String::from("company_name,company_website\n");
    for i in 0..n {
        csv += &format!("Co {i},https://dba-{i}.example\n");
    }
    std::fs::write(&p, csv).unwrap();
    p
}

/// Two batches of the same companies at once on `url`: both complete every row, attached
/// throughout (no bypass), one scan per company, no 429.
fn two_batches_share_the_store(d: &Path, url: &str, sim: &SimHandle) {
    let input = companies(d, 6);
    let runs: Vec<_> = (0..2)
        .map(|i| {
            let out = d.join(format!("out-{i}.jsonl"));
            let child = exona(d, &format!("host-{i}"), url, Some(sim))
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
        assert!(!err.contains("bypassed"), "the store was not attached: {err}");
        assert!(!err.contains("fleet-secret-pw"), "{err}");
        let rows = std::fs::read_to_string(out).unwrap();
        assert_eq!(rows.lines().filter(|l| l.contains("\"completed\"")).count(), 6, "{rows}");
    }
    let stats = sim.stats(&key_of(sim));
    assert_eq!(stats.scans_created, 6, "{stats:?}");
    assert_eq!(stats.rate_limited, 0, "{stats:?}");
}

struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
    other_ca: String,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A private CA, the database's certificate for 127.0.0.1 and a client's for `certuser`
/// (PostgreSQL's `cert` authentication takes the user from the CN); and a CA that signed
/// neither.
fn pki() -> Pki {
    let root = ca("fleet test CA");
    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "fleet-db");
    let server_cert = params.signed_by(&server_key, &root).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "certuser");
    let client_cert = params.signed_by(&client_key, &root).unwrap();
    Pki {
        ca: root.pem(),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
        other_ca: ca("another CA").pem(),
    }
}

#[test]
fn tls_with_a_private_ca_attaches_as_libpq_would_and_the_wrong_ca_is_named() {
    let pki = pki();
    let Some(pg) = PgServer::start_configured_or_skip(|s| {
        s.write_file("server.crt", &pki.server_cert, true)?;
        s.write_file("server.key", &pki.server_key, true)?;
        s.write_file("ca.crt", &pki.ca, true)?;
        s.write_file(
            "postgresql.conf",
            "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.crt'\n",
            false,
        )?;
        // Every TCP connection encrypted; certuser only with its certificate.
        s.write_file(
            "pg_hba.conf",
            "local all all trust\nhostssl all certuser 127.0.0.1/32 cert\nhostssl all all 127.0.0.1/32 trust\n",
            true,
        )
    }) else {
        return;
    };
    let d = dir("tls");
    let files = d.join("pki");
    std::fs::create_dir_all(&files).unwrap();
    let write = |name: &str, text: &str| {
        let p = files.join(name);
        std::fs::write(&p, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p.display().to_string()
    };
    let (ca, other_ca) = (write("ca.pem", &pki.ca), write("other-ca.pem", &pki.other_ca));
    let (cert, key) = (write("client.crt", &pki.client_cert), write("client.key", &pki.client_key));
    let base = format!("postgresql://exona:fleet-secret-pw@127.0.0.1:{}/postgres", pg.port);

    // require: encrypted, the certificate not checked without roots (libpq's meaning), even
    // when EXONA_CA_BUNDLE names another CA (the API's private one, not the database's).
    let o = init(&d, &format!("{base}?sslmode=require"));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = exona(&d, "init", &format!("{base}?sslmode=require"), None)
        .env("EXONA_CA_BUNDLE", &other_ca)
        .args(["store", "init"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // require with the database's own roots given checks the chain, as libpq does with root.crt.
    let o = init(&d, &format!("{base}?sslmode=require&sslrootcert={other_ca}"));
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    // verify-full with the right CA, given by sslrootcert or by EXONA_CA_BUNDLE.
    let o = init(&d, &format!("{base}?sslmode=verify-full&sslrootcert={ca}"));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("up to date"), "{}", text(&o));
    let o = exona(&d, "init", &format!("{base}?sslmode=verify-full"), None)
        .env("EXONA_CA_BUNDLE", &ca)
        .args(["store", "init"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The wrong CA is refused, by name; so is verify-full with no CA at all.
    let o = init(&d, &format!("{base}?sslmode=verify-full&sslrootcert={other_ca}"));
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o).contains("not signed by a CA in") && text(&o).contains("other-ca.pem"), "{}", text(&o));
    let o = init(&d, &format!("{base}?sslmode=verify-full"));
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o).contains("sslrootcert"), "{}", text(&o));
    // A plaintext connection is refused by the server (hostssl only): named, not hidden.
    let o = init(&d, &format!("{base}?sslmode=disable"));
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o).contains("pg_hba.conf"), "{}", text(&o));
    // A client certificate: accepted with it, refused without.
    pg.sql(
        "CREATE ROLE certuser LOGIN; GRANT USAGE ON SCHEMA exona TO certuser; \
            GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA exona TO certuser;",
    )
    .unwrap();
    let as_certuser =
        format!("postgresql://certuser@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={ca}", pg.port);
    let sim = exona_sim::spawn(Config::fast()).unwrap();
    let o = exona(&d, "cert", &format!("{as_certuser}&sslcert={cert}&sslkey={key}"), Some(&sim))
        .args(["scan", "Acme", "https://tls-acme.example"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!text(&o).contains("bypassed"), "attached with its certificate: {}", text(&o));
    let o = exona(&d, "nocert", &as_certuser, Some(&sim))
        .args(["scan", "Acme", "https://tls-acme.example"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "a scan never fails for its store: {}", text(&o));
    assert!(text(&o).contains("bypassed") && text(&o).contains("certuser"), "{}", text(&o));
    assert!(!text(&o).contains("fleet-secret-pw"));
}

#[test]
fn a_role_with_dml_rights_only_runs_two_batches_attached() {
    let Some(pg) = PgServer::start_or_skip() else { return };
    let d = dir("dml");
    let owner = pg.url();
    let o = init(&d, &owner);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    pg.sql(
        "CREATE ROLE fleet_dml LOGIN; REVOKE CREATE ON SCHEMA public FROM PUBLIC; \
         REVOKE CREATE ON DATABASE postgres FROM PUBLIC; GRANT USAGE ON SCHEMA exona TO fleet_dml; \
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA exona TO fleet_dml;",
    )
    .unwrap();
    let url = format!("postgresql://fleet_dml:fleet-secret-pw@127.0.0.1:{}/postgres", pg.port);
    let sim = tight_sim();
    two_batches_share_the_store(&d, &url, &sim);
    // The role may not create the schema: `store init` says what to do instead.
    let o = init(&d, &format!("{url}&schema=other").replacen('&', "?", 1));
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o).contains("permission denied"), "{}", text(&o));
}

#[test]
fn two_batches_through_pgbouncer_in_transaction_pooling_attach() {
    let Some(pg) = PgServer::start_or_skip() else { return };
    let Some(bouncer) = PgBouncer::start_or_skip(&pg) else { return };
    let d = dir("bouncer");
    let url = bouncer.url("exona");
    let o = init(&d, &url);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let sim = tight_sim();
    two_batches_share_the_store(&d, &url, &sim);
}

#[test]
fn a_password_parameter_is_never_shown() {
    let Some(pg) = PgServer::start_or_skip() else { return };
    let d = dir("secret");
    let url = format!(
        "postgresql://exona@127.0.0.1:{}/postgres?password=fleet-secret-pw&application_name=a%20b",
        pg.port
    );
    let sim = exona_sim::spawn(Config::fast()).unwrap();
    let mut seen = String::new();
    let o = init(&d, &url);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    seen += &text(&o);
    for args in
        [vec!["scan", "Acme", "https://secret-acme.example"], vec!["status"], vec!["status", "--json"]]
    {
        let o = exona(&d, "host", &url, Some(&sim)).env("EXONA_LOG", "debug").args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        seen += &text(&o);
    }
    // A database that is gone: the bypass warning shows the URL.
    pg.stop();
    let o = exona(&d, "host", &url, Some(&sim))
        .args(["scan", "Beta", "https://secret-beta.example"])
        .output()
        .unwrap();
    seen += &text(&o);
    assert!(seen.contains("bypassed") && seen.contains("password=***"), "{seen}");
    assert!(!seen.contains("fleet-secret-pw"), "{seen}");
    assert!(seen.contains("application_name=a%20b"), "the rest as written: {seen}");
}

/// `exona batch` of `rows` companies on a database reached through `proxy` (initialized
/// first), scans of `scans_ms`; its output file, and the simulator (kept alive with it).
fn batch_through(
    d: &Path,
    pg: &PgServer,
    proxy: &SilentProxy,
    rows: usize,
    scans_ms: (u64, u64),
) -> (std::process::Child, PathBuf, SimHandle) {
    let o = init(d, &pg.url());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let url = format!("postgresql://exona:fleet-secret-pw@127.0.0.1:{}/postgres", proxy.port);
    let sim = exona_sim::spawn(Config {
        scan_duration_min: Duration::from_millis(scans_ms.0),
        scan_duration_max: Duration::from_millis(scans_ms.1),
        ..Config::fast()
    })
    .unwrap();
    let input = companies(d, rows);
    let out = d.join("out.jsonl");
    let child = exona(d, "host", &url, Some(&sim))
        .env("EXONA_SCAN_DURATION_MS", format!("{}-{}", scans_ms.0, scans_ms.1))
        .env("EXONA_LOG", "info")
        .args(["batch", input.to_str().unwrap(), "--output", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, out, sim)
}

/// Waits for `child` to end, at most `limit` from `since` (then it is killed and the test
/// fails, saying `what`); its exit code and what it wrote to stderr.
fn ended_within(
    child: &mut std::process::Child,
    since: Instant,
    limit: Duration,
    what: &str,
) -> (Option<i32>, String) {
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if since.elapsed() > limit {
            let _ = child.kill();
            panic!("the batch did not finish within {} s {what}", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    use std::io::Read;
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status.code(), err)
}

fn completed_rows(out: &Path) -> usize {
    std::fs::read_to_string(out).unwrap().lines().filter(|l| l.contains("\"completed\"")).count()
}

#[test]
fn a_batch_whose_database_goes_silent_finishes_without_it() {
    let Some(pg) = PgServer::start_or_skip() else { return };
    let d = dir("silent");
    let proxy = SilentProxy::start(pg.port);
    let (mut child, out, _sim) = batch_through(&d, &pg, &proxy, 12, (500, 1500));
    // Silent once the batch is under way (a row written), as in the report (12 s into it).
    let started = Instant::now();
    while std::fs::read_to_string(&out).unwrap_or_default().lines().count() < 2 {
        assert!(started.elapsed() < Duration::from_secs(120), "the batch never got going");
        std::thread::sleep(Duration::from_millis(50));
    }
    proxy.go_silent();
    // The report's batch hung for minutes (TCP's give-up is ~15 min): bounded at 90 s here.
    let (code, err) =
        ended_within(&mut child, Instant::now(), Duration::from_secs(90), "of the database's silence");
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("bypassed") && err.contains("did not answer within"), "{err}");
    assert_eq!(completed_rows(&out), 12);
}

/// A process stopped (SIGSTOP: a suspended VM, a frozen container) while it waits on the
/// database reads the answer when it runs again. Before, the client's bounds counted the time
/// stopped: continued, it took the database for gone ("did not answer within 2.0 s"), decided
/// its budget alone and sent creates blind (`exona-bench crash-pause-pg`: a 429 per run).
/// Everything to and from the database is held 40 ms by a relay, so that the process mostly waits
/// on it, and it is stopped for 3 s four times.
#[test]
fn a_process_stopped_while_it_waits_on_the_database_reads_its_answer() {
    let Some(pg) = PgServer::start_or_skip() else { return };
    let d = dir("stopped");
    let proxy = SilentProxy::start_slow(pg.port, Duration::from_millis(40));
    let (mut child, out, _sim) = batch_through(&d, &pg, &proxy, 3, (1000, 2000));
    std::thread::sleep(Duration::from_millis(700));
    for _ in 0..4 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        unsafe { libc::kill(child.id() as i32, libc::SIGSTOP) };
        std::thread::sleep(Duration::from_secs(3));
        unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
        std::thread::sleep(Duration::from_millis(900));
    }
    let (code, err) = ended_within(&mut child, Instant::now(), Duration::from_secs(120), "of its last stop");
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("did not answer") && !err.contains("bypassed"), "{err}");
    assert_eq!(completed_rows(&out), 3);
}

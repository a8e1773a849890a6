//! A throwaway PostgreSQL server for tests: a cluster in a temporary directory on a free
//! port of 127.0.0.1, run as the unprivileged `postgres` user when the tests run as root (CI
//! does; PostgreSQL refuses to run as root), stopped and removed when dropped. Shared by the
//! store's contract tests (src/store) and the fleet tests (tests/fleet.rs).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    as_postgres: bool,
}

/// Where initdb and pg_ctl are: `pg_config --bindir`, Debian's /usr/lib/postgresql/N/bin
/// (newest first), or the PATH.
fn bindir() -> Option<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && dir.join("initdb").exists() {
            return Some(dir);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    if let Some(newest) = versions.pop() {
        return Some(newest);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

impl PgServer {
    /// A fresh server; `None` (the running test recorded as skipped, as tests/common's
    /// `tool_missing` does) when PostgreSQL is not installed, unless `EXONA_REQUIRE_TOOLS` is
    /// set (CI), where that fails the test. A server that is installed but will not start fails.
    pub fn start_or_skip() -> Option<PgServer> {
        PgServer::start_configured_or_skip(|_| Ok(()))
    }

    /// `start_or_skip`, with `configure` run on the cluster's directory before the server
    /// starts (certificates, lines for postgresql.conf or pg_hba.conf: see `write_file`).
    pub fn start_configured_or_skip(configure: impl Fn(&PgServer) -> Result<(), String>) -> Option<PgServer> {
        if bindir().is_none() {
            let test = std::thread::current().name().unwrap_or("?").to_owned();
            assert!(
                std::env::var_os("EXONA_REQUIRE_TOOLS").is_none(),
                "{test}: EXONA_REQUIRE_TOOLS is set but PostgreSQL (initdb) is not installed"
            );
            let line = format!("skip-test {test}: PostgreSQL is not installed\n");
            eprint!("{line}");
            if let Some(path) = std::env::var_os("EXONA_SKIP_LOG") {
                use std::io::Write;
                if let Ok(mut f) = std::fs::OpenOptions::new().append(true).create(true).open(path) {
                    let _ = f.write_all(line.as_bytes());
                }
            }
            return None;
        }
        Some(
            PgServer::start_configured(configure)
                .unwrap_or_else(|e| panic!("a throwaway PostgreSQL server did not start: {e}")),
        )
    }

    /// A fresh server, or why there cannot be one here (no PostgreSQL installed).
    pub fn start() -> Result<PgServer, String> {
        PgServer::start_configured(|_| Ok(()))
    }

    /// Appends `text` to the cluster's file `name` (postgresql.conf, pg_hba.conf; a new file
    /// otherwise), owned by the server's user; `replace` writes it whole instead.
    pub fn write_file(&self, name: &str, text: &str, replace: bool) -> Result<(), String> {
        let path = self.dir.join("data").join(name);
        let mut all =
            if replace { String::new() } else { std::fs::read_to_string(&path).unwrap_or_default() };
        all.push_str(text);
        std::fs::write(&path, all).map_err(|e| format!("{}: {e}", path.display()))?;
        if self.as_postgres {
            let _ = Command::new("chown").arg("postgres:postgres").arg(&path).status();
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = if name.ends_with(".key") { 0o600 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())
    }

    fn start_configured(configure: impl Fn(&PgServer) -> Result<(), String>) -> Result<PgServer, String> {
        let bin = bindir().ok_or("PostgreSQL is not installed (no initdb: apt-get install postgresql)")?;
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let n =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("exona-pg-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut server = PgServer { dir, bin, port: free_port(), as_postgres };
        if as_postgres {
            let ok = Command::new("chown").arg("postgres:postgres").arg(&server.dir).status();
            if !matches!(ok, Ok(s) if s.success()) {
                return Err("cannot hand the cluster's directory to the postgres user".into());
            }
        }
        server.run(
            "initdb",
            &["-D", &server.data(), "-A", "trust", "-U", "exona", "--no-sync", "-E", "UTF8"],
        )?;
        configure(&server)?;
        // The free port was free when asked; another process may take it before the server
        // binds it: then another port.
        let mut tries = 0;
        loop {
            match server.start_again() {
                Ok(()) => return Ok(server),
                Err(e) if tries >= 3 => return Err(e),
                Err(_) => {
                    tries += 1;
                    server.port = free_port();
                }
            }
        }
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let path = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.arg("-u").arg("postgres").arg("--").arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = cmd.args(args).current_dir(&self.dir).output().map_err(|e| format!("{tool}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{tool} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Starts the server (again, after `stop`), on the same port.
    pub fn start_again(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        self.run("pg_ctl", &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "-t", "60", "start"])
    }

    /// What stops this server, usable from another thread when the owner cannot drop it (a
    /// benchmark stopped by a signal: `exona-bench`'s watcher).
    pub fn stopper(&self) -> impl Fn() + Send + Sync + 'static {
        let (bin, data, as_postgres) = (self.bin.join("pg_ctl"), self.data(), self.as_postgres);
        move || {
            let mut cmd = if as_postgres {
                let mut c = Command::new("runuser");
                c.arg("-u").arg("postgres").arg("--").arg(&bin);
                c
            } else {
                Command::new(&bin)
            };
            let _ = cmd.args(["-D", &data, "-m", "immediate", "-w", "stop"]).output();
        }
    }

    /// Stops the server at once (connections are cut, as when a database goes away).
    pub fn stop(&self) {
        let _ = self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
    }

    /// A URL of the server, with a password (ignored by trust authentication) so that tests
    /// can check it is never shown.
    pub fn url(&self) -> String {
        format!("postgresql://exona:fleet-secret-pw@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs `sql` as the cluster's superuser with psql (roles, grants: what a DBA would do).
    pub fn sql(&self, sql: &str) -> Result<(), String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "exona", "-d", "postgres", "-c", sql])
            .env("PGSSLMODE", "prefer")
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// PgBouncer in front of a server, in transaction pooling (Debian's `pgbouncer`), on a free
/// port of 127.0.0.1, stopped when dropped.
pub struct PgBouncer {
    child: std::process::Child,
    dir: PathBuf,
    pub port: u16,
}

impl PgBouncer {
    /// `None` (the test recorded as skipped) when pgbouncer is not installed, unless
    /// `EXONA_REQUIRE_TOOLS` is set.
    pub fn start_or_skip(server: &PgServer) -> Option<PgBouncer> {
        PgBouncer::start_tls_or_skip(server, None)
    }

    /// As `start_or_skip`, clients connecting over TLS with `tls` (certificate and key PEM)
    /// when given (the pooler to the server stays plain, on loopback).
    pub fn start_tls_or_skip(server: &PgServer, tls: Option<(&str, &str)>) -> Option<PgBouncer> {
        let bin =
            ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].into_iter().map(PathBuf::from).find(|p| p.exists());
        let Some(bin) = bin else {
            let test = std::thread::current().name().unwrap_or("?").to_owned();
            assert!(
                std::env::var_os("EXONA_REQUIRE_TOOLS").is_none(),
                "{test}: EXONA_REQUIRE_TOOLS is set but pgbouncer is not installed"
            );
            eprintln!("skip-test {test}: pgbouncer is not installed");
            return None;
        };
        Some(PgBouncer::start(&bin, server, tls).unwrap_or_else(|e| panic!("pgbouncer did not start: {e}")))
    }

    fn start(bin: &Path, server: &PgServer, tls: Option<(&str, &str)>) -> Result<PgBouncer, String> {
        let dir = server.dir.join(format!("pgbouncer-{}", free_port()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let port = free_port();
        let mut tls_lines = String::new();
        if let Some((cert, key)) = tls {
            std::fs::write(dir.join("server.crt"), cert).map_err(|e| e.to_string())?;
            std::fs::write(dir.join("server.key"), key).map_err(|e| e.to_string())?;
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir.join("server.key"), std::fs::Permissions::from_mode(0o600));
            tls_lines = format!(
                "client_tls_sslmode = require\nclient_tls_cert_file = {d}/server.crt\nclient_tls_key_file = {d}/server.key\n",
                d = dir.display()
            );
        }
        std::fs::write(dir.join("userlist.txt"), "\"exona\" \"\"\n\"fleet_dml\" \"\"\n")
            .map_err(|e| e.to_string())?;
        std::fs::write(
            dir.join("pgbouncer.ini"),
            format!(
                "[databases]\npostgres = host=127.0.0.1 port={} dbname=postgres\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {d}/userlist.txt\npool_mode = transaction\n\
                 max_client_conn = 200\ndefault_pool_size = 4\nlogfile = {d}/pgbouncer.log\n{tls_lines}",
                server.port,
                d = dir.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let mut cmd = if server.as_postgres {
            let _ = Command::new("chown").arg("-R").arg("postgres:postgres").arg(&dir).status();
            let mut c = Command::new("runuser");
            c.arg("-u").arg("postgres").arg("--").arg(bin);
            c
        } else {
            Command::new(bin)
        };
        let child = cmd
            .arg(dir.join("pgbouncer.ini"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("pgbouncer: {e}"))?;
        let bouncer = PgBouncer { child, dir, port };
        // Ready when it accepts a connection (bounded: 10 s).
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(bouncer);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Err(format!(
            "not listening on {port}: {}",
            std::fs::read_to_string(bouncer.dir.join("pgbouncer.log")).unwrap_or_default()
        ))
    }

    /// A URL through the pooler for `user` (in its auth file: exona, fleet_dml).
    pub fn url(&self, user: &str) -> String {
        format!("postgresql://{user}:fleet-secret-pw@127.0.0.1:{}/postgres?sslmode=disable", self.port)
    }

    /// A URL through the pooler over TLS, the certificate verified against `ca_file` and the
    /// host named (libpq's verify-full).
    pub fn tls_url(&self, user: &str, ca_file: &Path) -> String {
        format!(
            "postgresql://{user}:fleet-secret-pw@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={}",
            self.port,
            ca_file.display()
        )
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // runuser's child: pgbouncer itself.
        let _ = Command::new("pkill").arg("-f").arg(self.dir.join("pgbouncer.ini")).status();
    }
}

/// A TCP relay in front of a server that can go silent: connections stay open, nothing is
/// forwarded either way and new ones are accepted and held (a frozen proxy, a network that
/// drops packets). Lives until dropped... and its threads with the process.
pub struct SilentProxy {
    pub port: u16,
    silent: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SilentProxy {
    pub fn start(target_port: u16) -> SilentProxy {
        SilentProxy::start_slow(target_port, std::time::Duration::ZERO)
    }

    /// A relay that holds everything it forwards `delay` (a database far away, or busy), so
    /// that a client spends most of its time waiting on it.
    pub fn start_slow(target_port: u16, delay: std::time::Duration) -> SilentProxy {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("proxy binds");
        let port = listener.local_addr().unwrap().port();
        let silent = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = silent.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for client in listener.incoming().flatten() {
                if s.load(Ordering::SeqCst) {
                    held.push(client);
                    continue;
                }
                let Ok(upstream) = std::net::TcpStream::connect(("127.0.0.1", target_port)) else { continue };
                for (mut from, mut to) in
                    [(client.try_clone().unwrap(), upstream.try_clone().unwrap()), (upstream, client)]
                {
                    let s = s.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            std::thread::sleep(delay);
                            // Silent: what came in is swallowed and the sockets kept open.
                            while s.load(Ordering::SeqCst) {
                                std::thread::sleep(std::time::Duration::from_millis(200));
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        SilentProxy { port, silent }
    }

    pub fn go_silent(&self) {
        self.silent.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

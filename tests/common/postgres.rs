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
        Some(PgServer::start().unwrap_or_else(|e| panic!("a throwaway PostgreSQL server did not start: {e}")))
    }

    /// A fresh server, or why there cannot be one here (no PostgreSQL installed).
    pub fn start() -> Result<PgServer, String> {
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

    /// Stops the server at once (connections are cut, as when a database goes away).
    pub fn stop(&self) {
        let _ = self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
    }

    /// A URL of the server, with a password (ignored by trust authentication) so that tests
    /// can check it is never shown.
    pub fn url(&self) -> String {
        format!("postgresql://exona:fleet-secret-pw@127.0.0.1:{}/postgres", self.port)
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

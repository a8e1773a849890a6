//! `exona-sim`: serves the simulator until interrupted. Its first stdout line is its base URL.

use std::io::Write;
use std::time::Duration;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "exona-sim", about = "Local simulator of the Exona API, with fault injection")]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Shortest scan, in seconds (decimals allowed).
    #[arg(long, default_value_t = 30.0)]
    scan_min: f64,
    /// Longest scan, in seconds (decimals allowed).
    #[arg(long, default_value_t = 120.0)]
    scan_max: f64,
    /// Retry-After on GET of a processing scan, in seconds (decimals allowed).
    #[arg(long, default_value_t = 10.0)]
    retry_after: f64,
    /// Requests per key per window.
    #[arg(long, default_value_t = 100)]
    rate_limit: u32,
    /// Rate-limit window, in seconds.
    #[arg(long, default_value_t = 3600)]
    rate_window: u64,
    /// Seed for ids and scan durations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A key answered 401 INVALID_API_KEY, as if revoked (repeatable).
    #[arg(long)]
    revoked_key: Vec<String>,
    /// A key answered 403 FORBIDDEN_IP (repeatable).
    #[arg(long)]
    forbidden_key: Vec<String>,
    /// How long the slow.* fault holds each GET, in seconds.
    #[arg(long, default_value_t = 5.0)]
    slow_secs: f64,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Stop by itself after this many seconds (0: run until interrupted).
    #[arg(long, default_value_t = 0)]
    exit_after: u64,
}

fn secs(name: &str, v: f64) -> Duration {
    Duration::try_from_secs_f64(v).unwrap_or_else(|_| {
        eprintln!("exona-sim: --{name} must be a non-negative number of seconds");
        std::process::exit(2)
    })
}

fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        eprintln!("exona-sim: cannot read {}: {e}", path.display());
        std::process::exit(2)
    })
}

fn main() {
    let a = Args::parse();
    let config = exona_sim::Config {
        port: a.port,
        scan_duration_min: secs("scan-min", a.scan_min),
        scan_duration_max: secs("scan-max", a.scan_max.max(a.scan_min)),
        retry_after_secs: secs("retry-after", a.retry_after).as_secs_f64(),
        rate_limit: a.rate_limit,
        rate_window: Duration::from_secs(a.rate_window.max(1)),
        seed: a.seed,
        revoked_keys: a.revoked_key,
        forbidden_keys: a.forbidden_key,
        slow_response: secs("slow-secs", a.slow_secs),
        tls: match (&a.tls_cert, &a.tls_key) {
            (Some(c), Some(k)) => Some((read(c), read(k))),
            _ => None,
        },
        rate_limited_retry_after: None,
    };
    let (lo, hi) = (config.scan_duration_min.as_millis(), config.scan_duration_max.as_millis());
    let sim = match exona_sim::spawn(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("exona-sim: cannot start: {e}");
            std::process::exit(1);
        }
    };
    println!("{}", sim.base_url);
    let _ = std::io::stdout().flush();
    // The client's default expectation is the real API's 30-120 s; against shorter simulated
    // scans it would wait out that prior before its first poll. Say what matches, once.
    eprintln!(
        "exona-sim: scans take {lo}-{hi} ms; clients see them soonest with EXONA_SCAN_DURATION_MS={lo}-{hi}"
    );
    if a.exit_after > 0 {
        std::thread::sleep(Duration::from_secs(a.exit_after));
    } else {
        // Serve until the process is signalled: SIGTERM and SIGINT end it.
        loop {
            std::thread::park();
        }
    }
    drop(sim);
}

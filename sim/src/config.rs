//! The simulator's settings: every timing and limit a test or benchmark may need to change.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    /// 0 picks a free port.
    pub port: u16,
    /// A new scan takes a duration drawn uniformly from this range (the docs say 30–120 s).
    pub scan_duration_min: Duration,
    pub scan_duration_max: Duration,
    /// `Retry-After` on GET of a processing scan, in seconds; fractions are sent as decimals.
    pub retry_after_secs: f64,
    /// Requests per key per window (the docs: 100 per hour).
    pub rate_limit: u32,
    pub rate_window: Duration,
    /// Seeds scan ids and durations. Synthetic results depend only on the website.
    pub seed: u64,
    /// Keys answered with 401 INVALID_API_KEY (revoked).
    pub revoked_keys: Vec<String>,
    /// Keys answered with 403 FORBIDDEN_IP (the caller is not on the allowlist).
    pub forbidden_keys: Vec<String>,
    /// How long the `slow.` fault holds a response.
    pub slow_response: Duration,
    /// Serve HTTPS with this certificate chain and private key (PEM); `None`: plain HTTP.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
    /// Simulator-only: the `Retry-After` of a rate-limit 429, in seconds, instead of the time
    /// to the window's end (tests pair it with `SimHandle::reset_window`).
    pub rate_limited_retry_after: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 0,
            scan_duration_min: Duration::from_secs(30),
            scan_duration_max: Duration::from_secs(120),
            retry_after_secs: 10.0,
            rate_limit: 100,
            rate_window: Duration::from_secs(3600),
            seed: 1,
            revoked_keys: Vec::new(),
            forbidden_keys: Vec::new(),
            slow_response: Duration::from_secs(5),
            tls: None,
            rate_limited_retry_after: None,
        }
    }
}

impl Config {
    /// Settings for tests: scans of 50–150 ms polled every 50 ms, a limit that never binds.
    pub fn fast() -> Config {
        Config {
            scan_duration_min: Duration::from_millis(50),
            scan_duration_max: Duration::from_millis(150),
            retry_after_secs: 0.05,
            rate_limit: 100_000,
            slow_response: Duration::from_secs(2),
            ..Config::default()
        }
    }
}

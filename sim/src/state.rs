//! The simulator's memory: scans, the cache index, per-key rate windows and counters.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use crate::config::Config;
use crate::faults::Fault;
use crate::synth;
use crate::validate::CreateRequest;

#[derive(Clone, Debug)]
pub struct ScanRecord {
    pub id: String,
    pub key: String,
    pub company_name: String,
    pub website: String,
    pub created: Instant,
    pub created_wall: SystemTime,
    pub duration: Duration,
    pub fault: Fault,
    pub cacheable: bool,
    pub citations: bool,
    pub gets: u32,
}

pub enum Phase {
    Processing,
    Completed(SystemTime),
    Failed(SystemTime, &'static str, &'static str),
}

impl ScanRecord {
    pub fn phase(&self, now: Instant) -> Phase {
        if matches!(self.fault, Fault::Stuck | Fault::Vanish | Fault::StormLong | Fault::Down500)
            || now < self.created + self.duration
        {
            return Phase::Processing;
        }
        let done = self.created_wall + self.duration;
        match self.fault {
            Fault::Unreachable => {
                Phase::Failed(done, "WEBSITE_UNREACHABLE", "The company website could not be reached.")
            }
            Fault::InsufficientData => Phase::Failed(
                done,
                "INSUFFICIENT_PUBLIC_DATA",
                "Too little public information was found about the company.",
            ),
            _ => Phase::Completed(done),
        }
    }

    /// The scan object as GET returns it.
    pub fn to_json(&self, now: Instant) -> Value {
        let mut scan = json!({
            "id": self.id,
            "status": "processing",
            "created_at": rfc3339(self.created_wall),
            "company": { "name": self.company_name, "website": self.website },
        });
        match self.phase(now) {
            Phase::Processing => {}
            Phase::Completed(at) => {
                scan["status"] = json!("completed");
                scan["completed_at"] = json!(rfc3339(at));
                scan["result"] = synth::result(&self.company_name, &self.website, self.citations);
            }
            Phase::Failed(at, code, message) => {
                scan["status"] = json!("failed");
                scan["completed_at"] = json!(rfc3339(at));
                scan["error"] =
                    json!({ "code": code, "message": message, "hint": "Check the website and try again." });
            }
        }
        scan
    }
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A fixed window per key, opened by the key's first request (exona-api.md §8).
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub start: Instant,
    pub start_wall: SystemTime,
    pub used: u32,
}

/// What happened, per key: what tests and benchmarks count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyStats {
    pub posts: u64,
    pub gets: u64,
    pub rate_limited: u64,
    /// When each 429 was answered (Unix ms): benchmarks lay them beside what they did to the
    /// clients (a pause, a kill) to find what led to them.
    pub rate_limited_at_ms: Vec<u64>,
    pub scans_created: u64,
    pub cache_hits: u64,
    pub credits_used: u64,
}

pub struct State {
    pub config: Config,
    pub scans: HashMap<String, ScanRecord>,
    /// (key, normalised website) → ids of cacheable scans, oldest first.
    pub cache: HashMap<(String, String), Vec<String>>,
    pub windows: HashMap<String, Window>,
    pub stats: HashMap<String, KeyStats>,
    pub rng: fastrand::Rng,
}

/// The cache key: lower-cased, trailing slashes stripped, nothing more (exona-api.md §10.1).
pub fn normalise(website: &str) -> String {
    website.to_ascii_lowercase().trim_end_matches('/').to_owned()
}

impl State {
    pub fn new(config: Config) -> State {
        let rng = fastrand::Rng::with_seed(config.seed);
        State {
            config,
            scans: HashMap::new(),
            cache: HashMap::new(),
            windows: HashMap::new(),
            stats: HashMap::new(),
            rng,
        }
    }

    /// Counts a request against the key's window. `Err(seconds)` when over the limit.
    pub fn admit(&mut self, key: &str, now: Instant) -> Result<Window, u64> {
        let window_len = self.config.rate_window;
        let limit = self.config.rate_limit;
        let w = self.windows.entry(key.to_owned()).or_insert(Window {
            start: now,
            start_wall: SystemTime::now(),
            used: 0,
        });
        if now >= w.start + window_len {
            *w = Window { start: now, start_wall: SystemTime::now(), used: 0 };
        }
        if w.used >= limit {
            let left = (w.start + window_len).saturating_duration_since(now);
            let wait = left.as_secs_f64().ceil().max(1.0) as u64;
            return Err(self.config.rate_limited_retry_after.unwrap_or(wait));
        }
        w.used += 1;
        Ok(*w)
    }

    pub fn window(&self, key: &str) -> Option<Window> {
        self.windows.get(key).copied()
    }

    pub fn stats_mut(&mut self, key: &str) -> &mut KeyStats {
        self.stats.entry(key.to_owned()).or_default()
    }

    /// The most recent completed, cacheable scan of this website within `max_age_days`.
    pub fn cache_hit(
        &self,
        key: &str,
        website: &str,
        max_age_days: u64,
        now: Instant,
    ) -> Option<&ScanRecord> {
        let ids = self.cache.get(&(key.to_owned(), normalise(website)))?;
        let oldest = SystemTime::now().checked_sub(Duration::from_secs(max_age_days * 86_400))?;
        ids.iter()
            .rev()
            .filter_map(|id| self.scans.get(id))
            .find(|s| matches!(s.phase(now), Phase::Completed(at) if at >= oldest))
    }

    pub fn new_scan(
        &mut self,
        key: &str,
        test: bool,
        req: &CreateRequest,
        fault: Fault,
        now: Instant,
    ) -> ScanRecord {
        let prefix = if test { "scn_test_" } else { "scn_" };
        let id = format!("{prefix}01{}", random_lower_alnum(&mut self.rng, 24));
        let (lo, hi) = (self.config.scan_duration_min, self.config.scan_duration_max);
        let span = hi.saturating_sub(lo).as_millis() as u64;
        let duration = lo + Duration::from_millis(self.rng.u64(0..=span));
        let record = ScanRecord {
            id: id.clone(),
            key: key.to_owned(),
            company_name: req.company_name.clone(),
            website: req.company_website.clone(),
            created: now,
            created_wall: SystemTime::now(),
            duration,
            fault,
            // Questionnaire scans are tailored to one applicant: never served from the cache.
            cacheable: !req.has_questionnaire,
            citations: req.include_field_citations,
            gets: 0,
        };
        if record.cacheable {
            self.cache.entry((key.to_owned(), normalise(&req.company_website))).or_default().push(id.clone());
        }
        self.scans.insert(id, record.clone());
        let stats = self.stats_mut(key);
        stats.scans_created += 1;
        if !test {
            stats.credits_used += 1;
        }
        record
    }
}

pub fn random_lower_alnum(rng: &mut fastrand::Rng, len: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";
    (0..len).map(|_| ALPHABET[rng.usize(0..ALPHABET.len())] as char).collect()
}

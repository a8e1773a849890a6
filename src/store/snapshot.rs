//! What the state store knows of a key, read without writing anything and without a request:
//! `exona status` (and any program that wants to show a key's budget across processes).

use std::time::{Duration, SystemTime};

/// The key's window as the processes sharing the store last left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowView {
    pub limit: u32,
    /// Requests left in the window, as the last response said (less what is out: see holders).
    pub remaining: u32,
    /// When the window resets (wall clock); in the past: a new window has begun, full.
    pub resets_at: SystemTime,
    /// The window's length as learned from the server (an hour until learned).
    pub window: Duration,
    /// Whether a response has told of this window (else it is the documented budget).
    pub informed: bool,
    /// A 429's cooldown: no process sends before it.
    pub cooldown_until: Option<SystemTime>,
}

/// One process's share of the window: grants still out and polls promised to its scans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderView {
    /// The owner id (process id, time, counter).
    pub owner: String,
    pub pid: Option<u32>,
    pub outstanding: u32,
    pub reserved: u32,
    /// What its work in sight is expected to cost: polls of its running scans, requests of
    /// its waiting creates.
    pub expected: u32,
    pub queued: u32,
    pub lease_until: SystemTime,
}

/// A scan in flight, or a claim to create one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlightView {
    /// The website and whether citations were asked for (`site|citations=0`).
    pub identity: String,
    /// `None`: a claim (its create is on its way).
    pub scan_id: Option<String>,
    pub since: SystemTime,
    /// A claim's owner and lease (`None` for a scan, or an ambiguous create's kept claim).
    pub owner: Option<String>,
    pub lease_until: Option<SystemTime>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub window: Option<WindowView>,
    /// Processes whose lease holds, with what they hold.
    pub holders: Vec<HolderView>,
    /// Scans in flight and live claims.
    pub in_flight: Vec<InFlightView>,
    /// Learned scan durations, newest first.
    pub durations: Vec<Duration>,
    /// Completed results kept (each answers a `max_age_days` call with no request).
    pub results: usize,
}

impl Snapshot {
    /// The `q` quantile (0 to 1) of the learned durations, if any.
    pub fn duration_quantile(&self, q: f64) -> Option<Duration> {
        let mut d = self.durations.clone();
        d.sort();
        let last = d.len().checked_sub(1)?;
        Some(d[((last as f64) * q.clamp(0.0, 1.0)).round() as usize])
    }

    /// Requests a process could be granted now: what is left less what every process holds
    /// out; the whole limit once the window has reset.
    pub fn left(&self, now: SystemTime) -> Option<u32> {
        let w = self.window.as_ref()?;
        if w.resets_at <= now {
            return Some(w.limit);
        }
        let out: u32 = self.holders.iter().map(|h| h.outstanding).sum();
        Some(w.remaining.saturating_sub(out))
    }
}

/// The process id in an owner id made by this library (`PID-...`).
pub fn pid_of(owner: &str) -> Option<u32> {
    owner.split('-').next()?.parse().ok()
}

//! `exona status`: the key's budget and work in flight as the state store knows them, shared
//! by every process of the host on the key. Read only: no request, no file written.

use std::time::{Duration, SystemTime};

use exona::store::snapshot::Snapshot;
use exona::ClientConfig;
use serde_json::{json, Value};

use crate::Failure;

pub fn show(config: ClientConfig, json: bool) -> Result<(), Failure> {
    // Where the store is, as it may be shown: the fleet's database (no password) or the directory.
    let place = match (&config.state_url, &config.state_dir) {
        (Some(url), _) => exona::store::redact_url(url.as_str()),
        (None, Some(dir)) => dir.display().to_string(),
        (None, None) => {
            return Err(Failure::usage(
                "no state store: EXONA_STATE_DIR is off, so nothing is shared or kept",
            ))
        }
    };
    let key = if config.state_url.is_some() { "state_url" } else { "state_dir" };
    let snapshot = config.state_snapshot().map_err(|e| match e.code {
        exona::Code::InvalidArgument if e.message.starts_with("cannot read") => Failure::output(e.message),
        _ => Failure::usage(e.message),
    })?;
    let now = SystemTime::now();
    if json {
        let value = match &snapshot {
            Some(s) => as_json(s, now),
            None => json!({ "store": null }),
        };
        let mut value = value;
        value[key] = json!(place);
        value["requests_sent"] = json!(0);
        println!("{value:#}");
        return Ok(());
    }
    match &snapshot {
        Some(s) => print!("{}", as_text(s, now)),
        None => {
            println!("no state store in {place} yet: no process has used this key with it (nothing learned)")
        }
    }
    println!("(read from {place}; no request was sent)");
    Ok(())
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// "in 41 min", "in 12 s", "3 s ago".
fn from_now(t: SystemTime, now: SystemTime) -> String {
    let words = |d: Duration| match d.as_secs() {
        s if s >= 5400 => format!("{:.1} h", s as f64 / 3600.0),
        s if s >= 90 => format!("{} min", (s + 30) / 60),
        s => format!("{s} s"),
    };
    match t.duration_since(now) {
        Ok(d) => format!("in {}", words(d)),
        Err(e) => format!("{} ago", words(e.duration())),
    }
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

pub fn as_text(s: &Snapshot, now: SystemTime) -> String {
    let mut out = String::new();
    let mut line = |l: String| {
        out.push_str(&l);
        out.push('\n');
    };
    match &s.window {
        Some(w) if w.resets_at <= now => line(format!(
            "key's window: {} requests; the last one known reset {} (a new window is full)",
            w.limit,
            from_now(w.resets_at, now)
        )),
        Some(w) => {
            let left = s.left(now).unwrap_or(0);
            line(format!(
                "key's window: {left} of {} requests left; resets at {} ({}); window {}{}",
                w.limit,
                rfc3339(w.resets_at),
                from_now(w.resets_at, now),
                humantime::format_duration(Duration::from_secs(w.window.as_secs())),
                if w.informed { "" } else { " (documented budget: no answer has told of it yet)" }
            ));
            if let Some(until) = w.cooldown_until {
                line(format!(
                    "  after a 429: no request before {} ({})",
                    rfc3339(until),
                    from_now(until, now)
                ));
            }
        }
        None => line("key's window: not known yet (no process has had an answer with this store)".into()),
    }
    if s.holders.is_empty() {
        line("processes: none holds any of the window".into());
    }
    for h in &s.holders {
        let who = h.pid.map_or_else(|| h.owner.clone(), |p| format!("pid {p}"));
        line(format!(
            "process {who}: {} request(s) out, {} poll(s) promised to its scans, work in sight \
             expected to take {} poll(s) and {} request(s) for creates waiting (lease {})",
            h.outstanding,
            h.reserved,
            h.expected,
            h.queued,
            from_now(h.lease_until, now)
        ));
    }
    let claims = s.in_flight.iter().filter(|f| f.scan_id.is_none()).count();
    line(format!("in flight: {} scan(s), {claims} create(s) on their way", s.in_flight.len() - claims));
    for f in &s.in_flight {
        let site = f.identity.split('|').next().unwrap_or(&f.identity);
        match (&f.scan_id, &f.owner) {
            (Some(id), _) => line(format!("  {site}: scan {id}, since {}", from_now(f.since, now))),
            (None, Some(owner)) => line(format!(
                "  {site}: being created by pid {} (its claim lapses {} unless renewed)",
                exona::store::snapshot::pid_of(owner).map_or_else(|| owner.clone(), |p| p.to_string()),
                f.lease_until.map_or_else(String::new, |t| from_now(t, now))
            )),
            (None, None) => line(format!(
                "  {site}: a create that may have landed (kept until {})",
                f.lease_until.map_or_else(String::new, |t| from_now(t, now))
            )),
        }
    }
    match (s.duration_quantile(0.1), s.duration_quantile(0.5), s.duration_quantile(0.9)) {
        (Some(p10), Some(p50), Some(p90)) => line(format!(
            "durations learned: {} (p10 {:.1} s, median {:.1} s, p90 {:.1} s)",
            s.durations.len(),
            secs(p10),
            secs(p50),
            secs(p90)
        )),
        _ => line("durations learned: none yet".into()),
    }
    line(format!("results kept: {} (they answer --max-age-days with no request)", s.results));
    out
}

pub fn as_json(s: &Snapshot, now: SystemTime) -> Value {
    let window = s.window.as_ref().map(|w| {
        json!({
            "limit": w.limit,
            "remaining": w.remaining,
            "left": s.left(now),
            "resets_at": rfc3339(w.resets_at),
            "resets_in_s": w.resets_at.duration_since(now).map_or(0.0, secs),
            "window_s": secs(w.window),
            "informed": w.informed,
            "cooldown_until": w.cooldown_until.map(rfc3339),
        })
    });
    let processes: Vec<Value> = s
        .holders
        .iter()
        .map(|h| {
            json!({
                "owner": h.owner, "pid": h.pid, "outstanding": h.outstanding, "reserved": h.reserved,
                "expected_polls": h.expected, "queued_requests": h.queued,
                "lease_until": rfc3339(h.lease_until),
            })
        })
        .collect();
    let in_flight: Vec<Value> = s
        .in_flight
        .iter()
        .map(|f| {
            json!({
                "identity": f.identity, "scan_id": f.scan_id, "since": rfc3339(f.since),
                "owner": f.owner, "lease_until": f.lease_until.map(rfc3339),
            })
        })
        .collect();
    let q = |p| s.duration_quantile(p).map(secs);
    json!({
        "window": window,
        "processes": processes,
        "in_flight": in_flight,
        "durations": { "learned": s.durations.len(), "p10_s": q(0.1), "p50_s": q(0.5), "p90_s": q(0.9) },
        "results": s.results,
    })
}

//! The engine driving many scans at once on virtual time, against an in-memory API:
//! requests per scan for each poll mode, the rate limit never exceeded, and what a 429 does.
//! Hours of simulated traffic run in milliseconds; nothing here sleeps.

mod common;

use common::Collect;

use std::sync::Arc;
use std::time::Duration;

use common::virtual_api::{Logged, VirtualApi};
use exona::transport::Method;
use exona::Limits;
use exona::Outcome;
use exona::{CancelToken, Client, Goal, Mode, Policy, ScanRequest, WaitOptions};
use exona::{Clock, VirtualClock};

struct Run {
    log: Vec<Logged>,
    detections: Vec<Duration>,
    outcomes: Vec<Outcome>,
    clock: Arc<VirtualClock>,
}

/// Submits `scans` scans at t=0 and drives the engine until every one has ended.
fn run(scans: usize, mode: Mode, limit: u32, policy: Policy, api_setup: impl FnOnce(&VirtualApi)) -> Run {
    run_in_window(scans, mode, limit, Duration::from_secs(3600), policy, api_setup)
}

fn run_in_window(
    scans: usize,
    mode: Mode,
    limit: u32,
    window: Duration,
    policy: Policy,
    api_setup: impl FnOnce(&VirtualApi),
) -> Run {
    let clock = Arc::new(VirtualClock::new());
    let api = VirtualApi::new(clock.clone(), (30.0, 120.0), 10, limit, window);
    api_setup(&api);
    let policy = Policy { mode, ..policy };
    let client = Client::with_transport("http://virtual/api/v1".into(), api.clone(), clock.clone(), policy);
    let sink = Arc::new(Collect::default());
    let options = WaitOptions { deadline: None, ..WaitOptions::default() };
    for i in 0..scans {
        let request = ScanRequest::new(format!("Company {i}"), format!("https://c{i}.example"));
        client.submit(Goal::Create { request, create_only: false }, &options, sink.clone()).unwrap();
    }
    let idle = CancelToken::new();
    let mut steps = 0u64;
    while client.drive(&idle) {
        steps += 1;
        assert!(steps < 10_000_000, "the engine does not settle");
    }
    let outcomes = std::mem::take(&mut *sink.outcomes.lock().unwrap());
    Run { log: api.log(), detections: api.detections(), outcomes, clock }
}

fn polls_per_scan(r: &Run) -> f64 {
    let gets = r.log.iter().filter(|l| l.method == Method::Get).count();
    gets as f64 / r.outcomes.len() as f64
}

fn unlimited() -> Policy {
    Policy { limits: Limits { default_limit: 1_000_000, ..Limits::default() }, ..Policy::default() }
}

fn assert_all_completed(r: &Run, n: usize) {
    assert_eq!(r.outcomes.len(), n);
    let failed: Vec<_> = r.outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(failed.is_empty(), "{} failed, e.g. {:?}", failed.len(), failed.first());
}

#[test]
fn balanced_mode_needs_at_most_1_8_polls_per_scan() {
    let r = run(1_000, Mode::Balanced, 1_000_000, unlimited(), |_| {});
    assert_all_completed(&r, 1_000);
    let polls = polls_per_scan(&r);
    println!("balanced: {polls:.3} polls per scan");
    assert!(polls <= 1.8, "{polls}");
    assert_eq!(r.log.iter().filter(|l| l.method == Method::Post).count(), 1_000, "one POST per scan");
}

#[test]
fn frugal_mode_needs_at_most_1_2_polls_per_scan() {
    let r = run(1_000, Mode::Frugal, 1_000_000, unlimited(), |_| {});
    assert_all_completed(&r, 1_000);
    let polls = polls_per_scan(&r);
    println!("frugal: {polls:.3} polls per scan");
    assert!(polls <= 1.2, "{polls}");
}

#[test]
fn latency_mode_polls_more_and_notices_within_one_retry_after() {
    let latency = run(300, Mode::Latency, 1_000_000, unlimited(), |_| {});
    let balanced = run(300, Mode::Balanced, 1_000_000, unlimited(), |_| {});
    assert_all_completed(&latency, 300);
    assert!(polls_per_scan(&latency) > polls_per_scan(&balanced));
    let worst = latency.detections.iter().max().unwrap();
    assert!(*worst <= Duration::from_secs(10), "latency mode noticed a completion {worst:?} late");
    let mean =
        |r: &Run| r.detections.iter().map(Duration::as_secs_f64).sum::<f64>() / r.detections.len() as f64;
    assert!(mean(&latency) < mean(&balanced));
    println!(
        "latency: {:.2} polls/scan, mean detection {:.1} s; balanced: {:.2} polls/scan, {:.1} s",
        polls_per_scan(&latency),
        mean(&latency),
        polls_per_scan(&balanced),
        mean(&balanced)
    );
}

#[test]
fn fifty_concurrent_scans_never_exceed_the_limit_in_any_window() {
    let r = run(50, Mode::Balanced, 100, Policy::default(), |_| {});
    assert_all_completed(&r, 50);
    let refused = r.log.iter().filter(|l| l.status == 429).count();
    assert_eq!(refused, 0, "the governor must not meet a 429");
    // Fixed windows of the server, opened by the first request.
    let mut per_window = std::collections::BTreeMap::new();
    for l in &r.log {
        *per_window.entry(l.at.as_secs() / 3600).or_insert(0u32) += 1;
    }
    assert!(per_window.values().all(|&n| n <= 100), "{per_window:?}");
    // And no sliding hour holds more than 2x the limit (the fixed windows' worst case).
    let times: Vec<Duration> = r.log.iter().map(|l| l.at).collect();
    for (i, t) in times.iter().enumerate() {
        let in_hour = times[i..].iter().take_while(|u| **u < *t + Duration::from_secs(3600)).count();
        assert!(in_hour <= 200, "{in_hour} requests in the hour from {t:?}");
    }
    println!(
        "50 scans: {} requests in {:?} of virtual time, windows {per_window:?}",
        r.log.len(),
        r.clock.now()
    );
}

#[test]
fn after_a_429_queued_requests_leave_one_by_one() {
    let spacing = Duration::from_secs(1);
    let policy =
        Policy { limits: Limits { release_spacing: spacing, ..Limits::default() }, ..Policy::default() };
    // Another process has spent the window (10 minutes): the first POST meets a 429 and
    // all 20 scans queue behind the cooldown.
    let r = run_in_window(20, Mode::Balanced, 100, Duration::from_secs(600), policy, |api| {
        api.spend_window_elsewhere()
    });
    assert_all_completed(&r, 20);
    let first_429 = r.log.iter().position(|l| l.status == 429).expect("a 429 happened");
    assert_eq!(r.log.iter().filter(|l| l.status == 429).count(), 1, "one 429 cooled the whole key down");
    let after: Vec<Duration> = r.log[first_429 + 1..].iter().map(|l| l.at).collect();
    let released = &after[..20.min(after.len())];
    for pair in released.windows(2) {
        assert!(pair[1] >= pair[0] + spacing, "two queued requests went out together: {pair:?}");
    }
}

#[test]
fn a_deadline_bounds_every_scan_of_a_crowd() {
    // With a 60 s deadline, frugal scans (first poll near 111 s) time out with their ids.
    let clock = Arc::new(VirtualClock::new());
    let api = VirtualApi::new(clock.clone(), (30.0, 120.0), 10, 100, Duration::from_secs(3600));
    let client = Client::with_transport(
        "http://v/api/v1".into(),
        api.clone(),
        clock.clone(),
        Policy { mode: Mode::Frugal, ..Policy::default() },
    );
    let sink = Arc::new(Collect::default());
    let options = WaitOptions { deadline: Some(Duration::from_secs(60)), ..WaitOptions::default() };
    // 20 scans: each reserves 3 polls besides its POST, so all fit the window at once.
    for i in 0..20 {
        let request = ScanRequest::new("C", format!("https://d{i}.example"));
        client.submit(Goal::Create { request, create_only: false }, &options, sink.clone()).unwrap();
    }
    let idle = CancelToken::new();
    while client.drive(&idle) {}
    assert!(clock.now() <= Duration::from_secs(60));
    let outcomes = sink.outcomes.lock().unwrap();
    assert_eq!(outcomes.len(), 20);
    let timed_out = outcomes.iter().filter_map(|o| o.as_ref().err()).collect::<Vec<_>>();
    for e in &timed_out {
        assert_eq!(e.code, exona::Code::Timeout, "{}", e.message);
        assert!(e.scan_id.is_some(), "a timed-out scan keeps its id");
    }
    // Scans of 30-120 s polled frugally cannot mostly finish within 60 s: most time out
    // (most of them with this seed), and the ones that complete do so within the deadline.
    assert!(timed_out.len() >= 10, "only {} of 20 timed out", timed_out.len());
    assert!(timed_out.len() < 20, "none completed");
    assert!(
        api.log().iter().all(|l| l.at <= Duration::from_secs(60)),
        "a request went out past the deadline"
    );
}

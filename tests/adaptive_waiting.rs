//! The adaptive poll mode (the default) on virtual time, at the bounds issue 13 sets for it:
//! a plentiful window is spent on noticing completions soon, a tight one on completing more
//! scans, and the key never meets a 429. Hours of traffic run in milliseconds.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::virtual_api::VirtualApi;
use common::Collect;
use exona::{CancelToken, Client, Clock, Goal, Mode, Policy, ScanRequest, VirtualClock, WaitOptions};

struct Run {
    scans: usize,
    requests: usize,
    rate_limited: usize,
    failed: usize,
    detections: Vec<f64>,
    makespan: f64,
}

impl Run {
    /// What the API saw of `scans` scans ended with `outcomes`, on `clock`.
    fn of(scans: usize, api: &VirtualApi, outcomes: &[exona::Outcome], clock: &VirtualClock) -> Run {
        let log = api.log();
        Run {
            scans,
            requests: log.len(),
            rate_limited: log.iter().filter(|l| l.status == 429).count(),
            failed: outcomes.iter().filter(|o| o.is_err()).count(),
            detections: api.detections().iter().map(Duration::as_secs_f64).collect(),
            makespan: clock.now().as_secs_f64(),
        }
    }

    fn per_scan(&self) -> f64 {
        self.requests as f64 / self.scans as f64
    }
    fn mean_detection(&self) -> f64 {
        self.detections.iter().sum::<f64>() / self.detections.len() as f64
    }
    fn worst_detection(&self) -> f64 {
        self.detections.iter().copied().fold(0.0, f64::max)
    }
}

/// `scans` scans submitted at once, driven to their ends on virtual time.
fn run(scans: usize, api: Arc<VirtualApi>, clock: Arc<VirtualClock>, policy: Policy) -> Run {
    run_with(scans, api, clock, policy, None)
}

/// [`run`], each call's polls planned at `thrift` when it is given.
fn run_with(
    scans: usize,
    api: Arc<VirtualApi>,
    clock: Arc<VirtualClock>,
    policy: Policy,
    thrift: Option<f64>,
) -> Run {
    let client = Client::with_transport("http://virtual/api/v1".into(), api.clone(), clock.clone(), policy);
    let options = WaitOptions { deadline: Some(Duration::from_secs(1800)), thrift, ..WaitOptions::default() };
    let outcomes = scan_all(&client, &options, (0..scans).map(|i| format!("https://c{i}.example")));
    Run::of(scans, &api, &outcomes, &clock)
}

/// Submits a create of each website and drives the engine until every one has ended.
fn scan_all(
    client: &Client,
    options: &WaitOptions,
    sites: impl Iterator<Item = String>,
) -> Vec<exona::Outcome> {
    let sink = Arc::new(Collect::default());
    for (i, site) in sites.enumerate() {
        let request = ScanRequest::new(format!("Company {i}"), site);
        client.submit(Goal::Create { request, create_only: false }, options, sink.clone()).unwrap();
    }
    let idle = CancelToken::new();
    let mut steps = 0u64;
    while client.drive(&idle) {
        steps += 1;
        assert!(steps < 10_000_000, "the engine does not settle");
    }
    let outcomes: Vec<exona::Outcome> = sink.outcomes.lock().unwrap().drain(..).collect();
    outcomes
}

/// Scans of 3–12 s, the prior told so, 30 requests per 60 s, `Retry-After: 1`.
fn pressure(scans: usize, seed: u64, mode: Mode) -> Run {
    let clock = Arc::new(VirtualClock::new());
    let api = VirtualApi::seeded(clock.clone(), (3.0, 12.0), 1, 30, Duration::from_secs(60), seed);
    let policy = Policy {
        mode,
        expected_duration: (Duration::from_secs(3), Duration::from_secs(12)),
        ..Policy::default()
    };
    run(scans, api, clock, policy)
}

#[test]
fn adaptive_is_the_default_mode() {
    assert_eq!(Policy::default().mode, Mode::Adaptive);
}

/// 8 scans of 30–120 s, `Retry-After: 10`, the default prior, 100 requests per hour: the
/// budget is plentiful, so adaptive polls like latency mode.
#[test]
fn a_plentiful_window_is_spent_on_noticing_completions_soon() {
    for seed in [7, 8, 9] {
        let clock = Arc::new(VirtualClock::new());
        let api = VirtualApi::seeded(clock.clone(), (30.0, 120.0), 10, 100, Duration::from_secs(3600), seed);
        let r = run(8, api, clock, Policy::default());
        let (mean, worst) = (r.mean_detection(), r.worst_detection());
        println!(
            "seed {seed}: mean detection {mean:.1} s, worst {worst:.1} s, {:.2} requests per scan",
            r.per_scan()
        );
        assert_eq!((r.failed, r.rate_limited), (0, 0));
        assert!(mean <= 8.0, "mean detection {mean:.1} s");
        assert!(worst <= 12.0, "worst detection {worst:.1} s");
        assert!(r.per_scan() <= 7.5, "{:.2} requests per scan", r.per_scan());
    }
}

/// 20 scans of 3–12 s at 30 requests per 60 s (seeds 5, 6 and 8): all complete without a 429
/// within 96 s (the textbook client takes 240 s).
#[test]
fn under_pressure_every_scan_completes_within_96_s() {
    for seed in [5, 6, 8] {
        let r = pressure(20, seed, Mode::Adaptive);
        println!("seed {seed}: makespan {:.1} s, {:.2} requests per scan", r.makespan, r.per_scan());
        assert_eq!((r.failed, r.rate_limited), (0, 0), "seed {seed}");
        assert!(r.makespan <= 96.0, "seed {seed}: makespan {:.1} s", r.makespan);
    }
}

/// 30 scans of 3–12 s at 30 requests per 60 s: the budget binds, so adaptive polls frugally,
/// also in the last window, where the few scans left would leave most of it unspent. Forty
/// seeds, not only the benchmark's 5, 6 and 8: before a window opening on a bound run counted
/// the burst its reset let through as a stream, seed 39 cost 2.53 requests per scan (the
/// last window spent on latency polls) and the benchmark's seed 6 missed in two runs of four.
#[test]
fn when_the_budget_binds_scans_cost_at_most_2_3_requests() {
    let mut costs = Vec::new();
    for seed in 1..=40 {
        let r = pressure(30, seed, Mode::Adaptive);
        println!("seed {seed}: {:.2} requests per scan, makespan {:.1} s", r.per_scan(), r.makespan);
        assert_eq!((r.failed, r.rate_limited), (0, 0), "seed {seed}");
        assert!(r.per_scan() <= 2.3, "seed {seed}: {:.2} requests per scan", r.per_scan());
        assert!(r.makespan <= 150.0, "seed {seed}: makespan {:.1} s", r.makespan);
        costs.push(r.per_scan());
    }
    // Frugal's plan costs 2.1 (a poll at the 0.9 quantile, a second for one scan in ten).
    let mean = costs.iter().sum::<f64>() / costs.len() as f64;
    assert!(mean <= 2.2, "{mean:.3} requests per scan on average");
}

/// Adaptive sits between the fixed modes: with budget to spare it notices completions sooner
/// than balanced; when the budget binds it spends fewer requests per scan than balanced.
#[test]
fn adaptive_beats_balanced_at_both_ends() {
    let plentiful = |mode| {
        let clock = Arc::new(VirtualClock::new());
        let api = VirtualApi::seeded(clock.clone(), (30.0, 120.0), 10, 100, Duration::from_secs(3600), 3);
        run(8, api, clock, Policy { mode, ..Policy::default() })
    };
    let (a, b) = (plentiful(Mode::Adaptive), plentiful(Mode::Balanced));
    assert!(
        a.mean_detection() < b.mean_detection() / 2.0,
        "{} vs {}",
        a.mean_detection(),
        b.mean_detection()
    );
    let (a, b) = (pressure(30, 5, Mode::Adaptive), pressure(30, 5, Mode::Balanced));
    assert!(a.per_scan() < b.per_scan(), "{} vs {}", a.per_scan(), b.per_scan());
    let gets = |r: &Run| r.requests - r.scans;
    assert!(gets(&a) < gets(&b));
}

/// A fixed thrift (`WaitOptions::thrift`, the optional knob) is the adaptive schedule at one
/// point whatever the window: on a plentiful window, requests fall and detection delay grows
/// as it goes from 0 to 1, and at 1 a scan costs what frugal's does (adaptive would spend
/// latency's there); when the budget binds, thrift 0 spends more than adaptive would and still
/// meets no 429 (the budget admits every request).
#[test]
fn a_fixed_thrift_holds_whatever_the_window() {
    let plentiful = |thrift: Option<f64>, mode| {
        let clock = Arc::new(VirtualClock::new());
        let api = VirtualApi::seeded(clock.clone(), (30.0, 120.0), 10, 100, Duration::from_secs(3600), 3);
        run_with(8, api, clock, Policy { mode, ..Policy::default() }, thrift)
    };
    let curve: Vec<Run> = [0.0, 0.5, 1.0].into_iter().map(|t| plentiful(Some(t), Mode::Adaptive)).collect();
    for (t, r) in [0.0, 0.5, 1.0].iter().zip(&curve) {
        println!(
            "thrift {t}: {:.2} requests per scan, mean detection {:.1} s",
            r.per_scan(),
            r.mean_detection()
        );
        assert_eq!((r.failed, r.rate_limited), (0, 0), "thrift {t}");
    }
    for pair in curve.windows(2) {
        assert!(
            pair[0].per_scan() > pair[1].per_scan(),
            "{:.2} then {:.2}",
            pair[0].per_scan(),
            pair[1].per_scan()
        );
        assert!(pair[0].mean_detection() < pair[1].mean_detection());
    }
    let (adaptive, frugal) = (plentiful(None, Mode::Adaptive), plentiful(None, Mode::Frugal));
    assert!(
        curve[2].per_scan() <= frugal.per_scan() + 0.25,
        "{:.2} vs frugal's {:.2}",
        curve[2].per_scan(),
        frugal.per_scan()
    );
    assert!(curve[2].per_scan() < adaptive.per_scan() / 2.0);
    // The mode given beside a fixed thrift does not matter: the thrift wins.
    assert_eq!(plentiful(Some(1.0), Mode::Latency).requests, curve[2].requests);

    let tight = |thrift| {
        let clock = Arc::new(VirtualClock::new());
        let api = VirtualApi::seeded(clock.clone(), (3.0, 12.0), 1, 30, Duration::from_secs(60), 5);
        let policy = Policy {
            expected_duration: (Duration::from_secs(3), Duration::from_secs(12)),
            ..Policy::default()
        };
        run_with(30, api, clock, policy, thrift)
    };
    let (eager, adaptive) = (tight(Some(0.0)), tight(None));
    println!(
        "budget binds: thrift 0 {:.2} requests per scan, adaptive {:.2}",
        eager.per_scan(),
        adaptive.per_scan()
    );
    assert_eq!((eager.failed, eager.rate_limited), (0, 0));
    assert!(eager.per_scan() > adaptive.per_scan());
}

/// `scans` scans of 30–120 s at 100 requests per hour, `in_flight` at a time (a new one as one
/// ends), each with a deadline of 300 s from its creation.
fn stream(scans: usize, in_flight: usize, mode: Mode) -> Run {
    stream_with(scans, in_flight, mode, None)
}

/// [`stream`], each call's polls planned at `thrift` when it is given.
fn stream_with(scans: usize, in_flight: usize, mode: Mode, thrift: Option<f64>) -> Run {
    let clock = Arc::new(VirtualClock::new());
    let api = VirtualApi::seeded(clock.clone(), (30.0, 120.0), 10, 100, Duration::from_secs(3600), 11);
    let policy = Policy { mode, ..Policy::default() };
    let client = Client::with_transport("http://virtual/api/v1".into(), api.clone(), clock.clone(), policy);
    let sink = Arc::new(Collect::default());
    let options = WaitOptions { deadline_from_creation: true, thrift, ..WaitOptions::default() };
    let submit = |i: usize| {
        let request = ScanRequest::new(format!("Company {i}"), format!("https://s{i}.example"));
        client.submit(Goal::Create { request, create_only: false }, &options, sink.clone()).unwrap();
    };
    let mut submitted = in_flight.min(scans);
    (0..submitted).for_each(submit);
    let idle = CancelToken::new();
    let mut steps = 0u64;
    loop {
        let more = client.drive(&idle);
        steps += 1;
        assert!(steps < 10_000_000, "the engine does not settle");
        let target = (sink.outcomes.lock().unwrap().len() + in_flight).min(scans);
        if target > submitted {
            (submitted..target).for_each(submit);
            submitted = target;
        } else if !more {
            break;
        }
    }
    let outcomes = std::mem::take(&mut *sink.outcomes.lock().unwrap());
    Run::of(scans, &api, &outcomes, &clock)
}

/// A steady stream is paid for at a steady thrift: adaptive costs about what balanced does at
/// one scan in flight (before it counted arrivals it spent each window early on latency polls:
/// 6.4 requests per scan here), and once the budget binds it is frugal. No poll starves (a
/// poll the window has no room for waits for the reset: with no room kept for the polls
/// beyond a reservation, 1,000 scans at 20 in flight lost 4 adaptive and 3 balanced ones).
#[test]
fn a_stream_is_paid_for_at_a_steady_thrift_and_no_poll_starves() {
    let one = stream(300, 1, Mode::Adaptive);
    let balanced = stream(300, 1, Mode::Balanced);
    println!(
        "1 in flight: adaptive {:.2} requests per scan, {:.1} s; balanced {:.2}, {:.1} s",
        one.per_scan(),
        one.mean_detection(),
        balanced.per_scan(),
        balanced.mean_detection()
    );
    assert!(
        one.per_scan() <= balanced.per_scan() * 1.05,
        "{:.2} vs {:.2}",
        one.per_scan(),
        balanced.per_scan()
    );
    assert!(one.mean_detection() <= balanced.mean_detection() * 1.5);
    for mode in [Mode::Adaptive, Mode::Balanced] {
        let crowd = stream(1000, 20, mode);
        println!(
            "20 in flight, {mode:?}: {:.2} requests per scan, {} failed",
            crowd.per_scan(),
            crowd.failed
        );
        assert_eq!((crowd.failed, crowd.rate_limited), (0, 0), "{mode:?}");
        if mode == Mode::Adaptive {
            assert!(crowd.per_scan() <= 2.3, "{:.2}", crowd.per_scan());
        }
    }
}

/// A fixed thrift of 0 polls like latency mode whatever the window, so it reserves what latency
/// mode does: with adaptive's reservation its polls beyond it starved in a stream (83 of these
/// 300 scans, and 304 of `exona-bench curve`'s 1,000, ended `RateLimited` at their deadline).
#[test]
fn a_stream_at_a_fixed_thrift_of_0_loses_no_scan() {
    let r = stream_with(300, 10, Mode::Adaptive, Some(0.0));
    println!("thrift 0, 10 in flight: {:.2} requests per scan, {} failed", r.per_scan(), r.failed);
    assert_eq!((r.failed, r.rate_limited), (0, 0));
}

/// A batch's rows come in while its first creates are answered: the thrift weighed on the
/// first answer (one scan, a plentiful window: latency) must not plan the scans admitted next,
/// once a thousand more are waiting. Before, a weighed thrift held for 250 ms whatever came
/// in, and at a compressed scale (scans of 0.05–0.2 s, 100 requests per 10 s) the whole first
/// window was spent like latency mode: 35 scans done in it, 43 now.
#[test]
fn rows_added_after_the_first_answer_are_weighed_at_once() {
    let clock = Arc::new(VirtualClock::new());
    let api = VirtualApi::seeded(clock.clone(), (0.05, 0.2), 1, 100, Duration::from_secs(10), 21);
    let policy = Policy {
        expected_duration: (Duration::from_millis(50), Duration::from_millis(200)),
        ..Policy::default()
    };
    let client = Client::with_transport("http://virtual/api/v1".into(), api.clone(), clock.clone(), policy);
    let sink = Arc::new(Collect::default());
    let options = WaitOptions { deadline_from_creation: true, ..WaitOptions::default() };
    let submit = |i: usize| {
        let request = ScanRequest::new(format!("Company {i}"), format!("https://r{i}.example"));
        client.submit(Goal::Create { request, create_only: false }, &options, sink.clone()).unwrap();
    };
    let idle = CancelToken::new();
    submit(0);
    while api.log().is_empty() {
        client.drive(&idle);
    }
    (1..1000).for_each(submit);
    while clock.now() < Duration::from_secs(10) && client.drive(&idle) {}
    let done = sink.outcomes.lock().unwrap().iter().filter(|o| o.is_ok()).count();
    let log = api.log();
    println!("first window: {done} scans done on {} requests", log.len());
    assert!(done >= 40, "the first window did {done} scans");
}

/// Two portfolios of 20 (scans of 3–12 s, `Retry-After: 1`) one right after the other, on a
/// fresh key at 100 requests per 360 s (the real limit's shape compressed tenfold), by one
/// client: the makespan of the pair and what the API saw.
fn two_portfolios(seed: u64, mode: Mode) -> (Run, Run) {
    let clock = Arc::new(VirtualClock::new());
    let api = VirtualApi::seeded(clock.clone(), (3.0, 12.0), 1, 100, Duration::from_secs(360), seed);
    let policy = Policy {
        mode,
        expected_duration: (Duration::from_secs(3), Duration::from_secs(12)),
        ..Policy::default()
    };
    let client = Client::with_transport("http://virtual/api/v1".into(), api.clone(), clock.clone(), policy);
    let options = WaitOptions { deadline: Some(Duration::from_secs(1800)), ..WaitOptions::default() };
    let mut runs = Vec::new();
    for portfolio in 0..2 {
        let outcomes =
            scan_all(&client, &options, (0..20).map(|i| format!("https://p{portfolio}-{i}.example")));
        runs.push(Run::of(20, &api, &outcomes, &clock));
    }
    let second = runs.pop().unwrap();
    (runs.pop().unwrap(), second)
}

/// Issue 23: adaptive on a fresh key spent 94 of a window's 100 requests on the first
/// portfolio, and the next waited for the reset (the pair ended at 370.6 s on seed 5). Both now
/// complete in the first window with no 429, in no more requests than frugal's, and the pair
/// no later than 1.15 × frugal's time (seed 8 took 1.37 × while the last creates of the second
/// portfolio were paced one by one by the low-budget pacing; now the work in sight fitting the
/// window admits them at once).
#[test]
fn a_second_portfolio_right_after_the_first_finds_the_window_unspent() {
    for seed in [5, 6, 8] {
        let (frugal_first, frugal) = two_portfolios(seed, Mode::Frugal);
        let (first, second) = two_portfolios(seed, Mode::Adaptive);
        println!(
            "seed {seed}: adaptive first {:.1} s ({} requests), pair {:.1} s, {} requests; \
             frugal first {:.1} s ({} requests), pair {:.1} s, {} requests",
            first.makespan,
            first.requests,
            second.makespan,
            second.requests,
            frugal_first.makespan,
            frugal_first.requests,
            frugal.makespan,
            frugal.requests
        );
        assert_eq!((second.failed, second.rate_limited, first.failed), (0, 0, 0), "seed {seed}");
        assert!(second.makespan < 360.0, "seed {seed}: the pair ended at {:.1} s", second.makespan);
        assert!(second.requests <= frugal.requests, "seed {seed}: more requests than frugal's");
        let ratio = second.makespan / frugal.makespan;
        println!("seed {seed}: the pair took {ratio:.2} × frugal's time");
        assert!(ratio <= 1.15, "seed {seed}: the pair took {ratio:.2} × frugal's time");
    }
}

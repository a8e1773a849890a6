//! The adaptive poll mode's thrift: how much of latency-mode polling the key's budget can pay
//! for right now. A window's unspent requests are lost at its reset, so while the budget covers
//! polling as often as `Retry-After` allows, adaptive scans poll like that (thrift 0); as it
//! tightens they move continuously toward frugal (thrift 1). The thrift is the least at which
//! everything the window must still pay for fits: the scans under way, the creates waiting to
//! be admitted, and the scans expected to arrive before the reset at the rate they came lately
//! (a stream is paid for at a steady thrift, not with latency polls early in each window and
//! none late).

use std::time::Duration;

use super::governor::Outlook;
use super::schedule::{next_poll_age, DurationModel, Mode};

/// A share of the limit left for other processes on the key that this one cannot know of
/// (without a state store); with one, the ledger counts them all and nothing is held back.
const RESERVE_SHARE: f64 = 0.1;
/// Ages at which the latency polls a scan still needs are tabulated.
const TABLE_POINTS: usize = 16;
/// Points of the conditional distribution averaged for a scan's expected end.
const TAIL_POINTS: usize = 8;

/// How many polls latency mode still sends to a scan of a given age, on average: the expected
/// remaining duration over the poll gap, plus the poll that finds it done.
#[derive(Clone, Debug)]
pub struct LatencyPolls {
    /// (age in seconds, polls left), ages ascending.
    table: Vec<(f64, f64)>,
}

impl LatencyPolls {
    pub fn new(model: &DurationModel, prior: (Duration, Duration), gap: Duration) -> LatencyPolls {
        let first = model.quantile(0.0, prior).as_secs_f64();
        let last = model.quantile(1.0, prior).as_secs_f64();
        let gap = gap.as_secs_f64().max(0.001);
        let table = (0..TABLE_POINTS)
            .map(|i| {
                let age = first + (last - first) * i as f64 / (TABLE_POINTS - 1) as f64;
                let done = model.finished_by(Duration::from_secs_f64(age), prior);
                // E[duration | duration > age], from the conditional quantiles' midpoints.
                let mean_end = (0..TAIL_POINTS)
                    .map(|k| {
                        let u = (k as f64 + 0.5) / TAIL_POINTS as f64;
                        model.quantile(done + (1.0 - done) * u, prior).as_secs_f64()
                    })
                    .sum::<f64>()
                    / TAIL_POINTS as f64;
                (age, (mean_end - age).max(0.0) / gap + 1.0)
            })
            .collect();
        LatencyPolls { table }
    }

    /// Polls left for a scan `age` old (before the shortest duration: as at the shortest).
    pub fn left(&self, age: Duration) -> f64 {
        let age = age.as_secs_f64();
        let i = self.table.partition_point(|&(a, _)| a <= age);
        match i {
            0 => self.table.first().map_or(1.0, |&(_, n)| n),
            _ if i == self.table.len() => 1.0,
            _ => {
                let ((a0, n0), (a1, n1)) = (self.table[i - 1], self.table[i]);
                n0 + (n1 - n0) * (age - a0) / (a1 - a0).max(f64::EPSILON)
            }
        }
    }
}

/// What polling costs at each thrift: the polls a fresh scan needs, simulated on the duration
/// model at a few thrifts (interpolated between), and latency's polls left by age (scaled to
/// the thrift for a scan under way).
#[derive(Clone, Debug)]
pub struct PlanCosts {
    latency: LatencyPolls,
    /// Polls of a fresh scan at each of [`THRIFTS`].
    fresh: [f64; 4],
}

const THRIFTS: [f64; 4] = [0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0];

impl PlanCosts {
    pub fn new(model: &DurationModel, prior: (Duration, Duration), gap: Duration) -> PlanCosts {
        let fresh = THRIFTS.map(|t| fresh_polls(model, prior, gap, t));
        PlanCosts { latency: LatencyPolls::new(model, prior, gap), fresh }
    }

    /// Polls a fresh scan needs at thrift `t`.
    pub fn fresh(&self, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0);
        let i = THRIFTS.partition_point(|&x| x <= t).clamp(1, THRIFTS.len() - 1);
        let (t0, t1) = (THRIFTS[i - 1], THRIFTS[i]);
        self.fresh[i - 1] + (self.fresh[i] - self.fresh[i - 1]) * (t - t0) / (t1 - t0)
    }

    /// How polls beyond the first scale with the thrift, against latency's (1 at thrift 0).
    fn scale(&self, t: f64) -> f64 {
        let latency = self.fresh[0] - 1.0;
        if latency <= f64::EPSILON {
            return 1.0;
        }
        ((self.fresh(t) - 1.0) / latency).clamp(0.0, 1.0)
    }

    /// Polls a scan `age` old is expected to need at thrift `t`.
    pub fn polls_left(&self, t: f64, age: Duration) -> f64 {
        1.0 + self.scale(t) * self.latency_beyond_one(age)
    }

    /// Latency's polls beyond the first for a scan `age` old (see [`Demand::beyond_one`]).
    pub fn latency_beyond_one(&self, age: Duration) -> f64 {
        (self.latency.left(age) - 1.0).max(0.0)
    }
}

/// The polls a fresh scan needs at thrift `t`, on average over the model's durations (each
/// poll after the first at least `gap` after the last).
fn fresh_polls(model: &DurationModel, prior: (Duration, Duration), gap: Duration, t: f64) -> f64 {
    let total: usize = (0..TAIL_POINTS)
        .map(|k| {
            let lasts = model.quantile((k as f64 + 0.5) / TAIL_POINTS as f64, prior);
            let mut age = Duration::ZERO;
            let mut polls = 0;
            while polls < 64 {
                let next = next_poll_age(Mode::Adaptive, age, model, prior, gap, t);
                age = if polls == 0 { next } else { next.max(age + gap) };
                polls += 1;
                if age >= lasts {
                    break;
                }
            }
            polls
        })
        .sum();
    total as f64 / TAIL_POINTS as f64
}

/// What the thrift is weighed from: the requests still to come in this window.
#[derive(Clone, Copy, Debug, Default)]
pub struct Demand {
    /// Adaptive scans under way, and the polls beyond one each that latency mode would still
    /// send them (summed).
    pub running: u32,
    pub beyond_one: f64,
    /// Creates of this process waiting to be admitted.
    pub queued: u32,
    /// Scans expected to arrive before the reset, from the rate at which they came lately.
    pub arriving: f64,
    /// How far ahead the running scans' polls reach (the longest one may still take).
    pub horizon: Duration,
}

/// The thrift (0: latency, 1: frugal) the window can afford: the least for which what the
/// scans under way, waiting and arriving would spend before the reset fits the window's
/// budget (less a reserve, plus the share of the next windows the running scans reach into).
pub fn thrift(outlook: Outlook, demand: Demand, costs: &PlanCosts) -> f64 {
    let limit = outlook.limit as f64;
    let later = match demand.horizon.checked_sub(outlook.reset_in) {
        Some(beyond) if !outlook.window.is_zero() => {
            limit * beyond.as_secs_f64() / outlook.window.as_secs_f64()
        }
        _ => 0.0,
    };
    let reserve = if outlook.others_known { 0.0 } else { (limit * RESERVE_SHARE).ceil() };
    // Other processes' work in sight (with a ledger) is paid before latency polls here.
    let budget = outlook.available as f64 - reserve + later - f64::from(outlook.others_demand);
    let spend = |t: f64| {
        demand.running as f64
            + costs.scale(t) * demand.beyond_one
            + (demand.queued as f64 + demand.arriving) * (1.0 + costs.fresh(t))
    };
    // What latency polls may take is the window's surplus beyond frugal polling, less a
    // provision for as much work again (the next portfolio a user starts when this one ends)
    // while the window has time for it: a fresh key's first batch otherwise spent its hour on
    // latency polls and the next waited for the reset (issue 23).
    let target = (budget - provision(outlook, demand, costs)).max(spend(1.0));
    (0..=STEPS).map(|i| i as f64 / STEPS as f64).find(|&t| spend(t) <= target).unwrap_or(1.0)
}

/// The requests kept for a batch like the one under way (its scans created and admitted to
/// poll frugally) that may follow it within the window, less what the expected arrivals already
/// count for; nothing once the window would end before such a batch could finish.
fn provision(outlook: Outlook, demand: Demand, costs: &PlanCosts) -> f64 {
    let horizon = demand.horizon.as_secs_f64();
    let reset_in = outlook.reset_in.as_secs_f64();
    let weight = if horizon <= 0.0 || reset_in >= 2.0 * horizon {
        1.0
    } else {
        ((reset_in - horizon) / horizon).clamp(0.0, 1.0)
    };
    // A scan is admitted only with its frugal reservation free, more than frugal polling
    // spends: the next batch needs that much room to run at frugal's pace.
    let admitted = f64::from(super::policy::Policy::default().polls_to_reserve(Mode::Frugal));
    let per_scan = 1.0 + costs.fresh(1.0).max(admitted);
    let batch = (demand.running + demand.queued) as f64 * per_scan;
    (batch - demand.arriving * per_scan).max(0.0) * weight
}

/// The thrifts tried, from latency up.
const STEPS: u32 = 20;

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;
    const PRIOR: (Duration, Duration) = (Duration::from_secs(30), Duration::from_secs(120));

    fn outlook(available: u32, reset_in: u64) -> Outlook {
        Outlook {
            window_known: true,
            limit: 100,
            available,
            reserved: 0,
            reset_in: S(reset_in),
            window: S(3600),
            others_known: false,
            others_demand: 0,
        }
    }

    fn costs() -> PlanCosts {
        PlanCosts::new(&DurationModel::new(), PRIOR, S(10))
    }

    /// `n` fresh scans under way.
    fn running(n: u32) -> Demand {
        let beyond_one = n as f64 * costs().latency_beyond_one(S(0));
        Demand { running: n, beyond_one, horizon: S(120), ..Demand::default() }
    }

    #[test]
    fn latency_polls_fall_as_a_scan_ages() {
        let polls = LatencyPolls::new(&DurationModel::new(), PRIOR, S(10));
        // A fresh scan of 30..120 s polled every 10 s from 30 s: about 4.5 gaps, plus one.
        assert!((5.0..6.0).contains(&polls.left(S(0))), "{}", polls.left(S(0)));
        assert!(polls.left(S(60)) < polls.left(S(30)));
        assert_eq!(polls.left(S(500)), 1.0);
    }

    #[test]
    fn a_fresh_scan_needs_fewer_polls_the_thriftier() {
        let c = costs();
        let polls: Vec<f64> = [0.0, 0.25, 0.5, 0.75, 1.0].iter().map(|&t| c.fresh(t)).collect();
        assert!(polls.windows(2).all(|w| w[0] >= w[1]), "{polls:?}");
        assert!((5.0..6.5).contains(&polls[0]), "latency: {polls:?}");
        assert!((1.0..1.3).contains(&polls[4]), "frugal: {polls:?}");
    }

    #[test]
    fn a_plentiful_window_polls_like_latency() {
        // 8 fresh scans: 8 polls and ~36 more at latency's pace; 90 requests to spend.
        assert_eq!(thrift(outlook(100, 3000), running(8), &costs()), 0.0);
    }

    #[test]
    fn a_tightening_window_moves_toward_frugal_continuously() {
        // (With room kept for a batch like these 8 after them: 32 requests, created and admitted
        // at frugal's reservation.)
        let at = |available| thrift(outlook(available, 3000), running(8), &costs());
        let ts: Vec<f64> = [90, 75, 65, 55, 40].iter().map(|&a| at(a)).collect();
        assert_eq!(ts[0], 0.0);
        assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
        assert!(ts[2] > 0.0 && ts[2] < 1.0, "{ts:?}");
        assert_eq!(ts[4], 1.0);
    }

    #[test]
    fn waiting_creates_come_before_latency_polls() {
        let queued = Demand { queued: 60, ..running(4) };
        assert_eq!(thrift(outlook(90, 3000), running(4), &costs()), 0.0);
        assert_eq!(thrift(outlook(90, 3000), queued, &costs()), 1.0);
    }

    #[test]
    fn a_stream_of_scans_is_paid_for_before_latency_polls() {
        // Two scans under way, 40 more expected before the reset: at latency's 6.5 requests
        // each they would not fit; somewhere short of frugal they do.
        let stream = Demand { arriving: 40.0, ..running(2) };
        let t = thrift(outlook(100, 3000), stream, &costs());
        assert!(t > 0.0 && t < 1.0, "{t}");
    }

    /// Without a state store a tenth of the window is left for processes this one cannot
    /// know of; with one, every process is in the ledger and the window is spent (an outside
    /// check saw three processes sharing a store leave 3 or 4 of every 20 requests unspent).
    #[test]
    fn with_every_process_known_no_blind_reserve_is_kept() {
        let at = |available, others_known| {
            thrift(Outlook { others_known, ..outlook(available, 3000) }, running(8), &costs())
        };
        let tightest = (0..=100).find(|&a| at(a, true) == 0.0).expect("some window pays latency");
        assert!(at(tightest, false) > 0.0, "at {tightest} requests the blind reserve changes nothing");
        assert!((0..=100).all(|a| at(a, true) <= at(a, false)));
    }

    #[test]
    fn a_reset_within_reach_counts_the_next_window() {
        // Nothing left now, but the window resets in 5 s and the scans run 2 minutes more.
        assert_eq!(thrift(outlook(0, 5), running(1), &costs()), 1.0, "115 s of an hour is 3 requests");
        let short = Outlook { window: S(60), ..outlook(0, 5) };
        assert_eq!(thrift(short, running(4), &costs()), 0.0);
    }
}

#[cfg(test)]
mod provision_tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn costs() -> PlanCosts {
        PlanCosts::new(&DurationModel::new(), (S(3), S(12)), S(1))
    }

    /// Issue 23: 20 scans just created on a fresh key at 100 requests per 360 s, with a store
    /// (no blind reserve). Before, the window's surplus went on latency polls (thrift 0), and a
    /// second portfolio started after this one waited for the reset.
    #[test]
    fn a_fresh_windows_surplus_is_kept_for_the_next_batch_until_its_end_nears() {
        let c = costs();
        let demand = Demand {
            running: 20,
            beyond_one: 20.0 * c.latency_beyond_one(Duration::ZERO),
            horizon: S(12),
            ..Demand::default()
        };
        let at = |reset_in| {
            thrift(
                Outlook {
                    limit: 100,
                    available: 80,
                    reserved: 60,
                    reset_in: S(reset_in),
                    window: S(360),
                    others_known: true,
                    others_demand: 0,
                    window_known: true,
                },
                demand,
                &c,
            )
        };
        assert_eq!(at(340), 1.0, "room for another 20 is kept");
        // Near the end no other batch could finish in the window: the surplus is spent (as far
        // as the window pays for latency's polls of 20 fresh scans), and in between, in part.
        let (end, near, early) = (at(12), at(18), at(340));
        assert!(end < 0.5, "{end}");
        assert!(end < near && near < early, "{end} {near} {early}");
    }
}

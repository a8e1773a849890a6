//! The adaptive poll mode's thrift: how much of latency-mode polling the key's budget can pay
//! for right now. A window's unspent requests are lost at its reset, so while the spare budget
//! covers polling as often as `Retry-After` allows, adaptive scans poll like that (thrift 0);
//! as it tightens they move continuously toward frugal (thrift 1). New scans come first: the
//! creates waiting for admission are paid for before any poll beyond a scan's reservation.

use std::time::Duration;

use super::governor::Outlook;
use super::schedule::DurationModel;

/// A share of the limit left for other processes on the key and for the unforeseen (a fifth:
/// a window that ends with a few requests unspent costs little; one spent on latency polls
/// when new scans then arrive costs them a window).
const RESERVE_SHARE: f64 = 0.2;
/// Latency polling only once the spare budget covers its extra polls this many times over.
const LATENCY_MARGIN: f64 = 1.5;
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

/// What the thrift is weighed from.
#[derive(Clone, Copy, Debug)]
pub struct Demand {
    /// Creates of this process waiting to be admitted, and the polls each will reserve.
    pub queued: u32,
    pub reserve_per_create: u32,
    /// Latency-mode polls the adaptive scans (running, and waiting to be created) still need
    /// beyond the one each would need polled frugally.
    pub latency_extra: f64,
    /// How far ahead those polls reach (the longest a running scan may still take).
    pub horizon: Duration,
}

/// The thrift (0: latency, 1: frugal) the window can afford: the spare budget within the
/// horizon (this window's unreserved requests, less a reserve, plus the share of the next
/// windows the horizon reaches into), less what the waiting creates need, against the extra
/// polls latency mode would send (the running scans', and the waiting ones' once they run),
/// with a margin. Tuned on the virtual-time figures of tests/adaptive_waiting.rs.
pub fn thrift(outlook: Outlook, demand: Demand) -> f64 {
    if demand.latency_extra <= 0.0 {
        return 0.0;
    }
    let limit = outlook.limit as f64;
    let reserve = (limit * RESERVE_SHARE).ceil();
    let free = outlook.available as f64 - outlook.reserved as f64 - reserve;
    let later = match demand.horizon.checked_sub(outlook.reset_in) {
        Some(beyond) if !outlook.window.is_zero() => {
            limit * beyond.as_secs_f64() / outlook.window.as_secs_f64()
        }
        _ => 0.0,
    };
    let creates = demand.queued as f64 * (1.0 + demand.reserve_per_create as f64);
    let spare = free + later - creates;
    (1.0 - spare / (LATENCY_MARGIN * demand.latency_extra)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;
    const PRIOR: (Duration, Duration) = (Duration::from_secs(30), Duration::from_secs(120));

    fn outlook(available: u32, reserved: u32, reset_in: u64) -> Outlook {
        Outlook { limit: 100, available, reserved, reset_in: S(reset_in), window: S(3600) }
    }

    fn running(latency_extra: f64) -> Demand {
        Demand { queued: 0, reserve_per_create: 2, latency_extra, horizon: S(120) }
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
    fn a_plentiful_window_polls_like_latency() {
        // 8 scans, 4 extra polls each, 56 requests spare (past 16 promised and 20 kept back).
        assert_eq!(thrift(outlook(92, 16, 3000), running(8.0 * 4.0)), 0.0);
    }

    #[test]
    fn a_tightening_window_moves_toward_frugal_continuously() {
        // 10 polls promised, 20 kept back: the spare is what is left past 30.
        let at = |available| thrift(outlook(available, 10, 3000), running(20.0));
        let ts: Vec<f64> = [70, 50, 40, 30, 20].iter().map(|&a| at(a)).collect();
        assert_eq!(ts[0], 0.0);
        assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
        assert!(ts[2] > 0.0 && ts[2] < 1.0, "{ts:?}");
        assert_eq!(ts[4], 1.0);
    }

    #[test]
    fn waiting_creates_come_before_latency_polls() {
        let queued = Demand { queued: 30, ..running(20.0) };
        assert_eq!(thrift(outlook(90, 10, 3000), running(20.0)), 0.0);
        assert_eq!(thrift(outlook(90, 10, 3000), queued), 1.0);
    }

    #[test]
    fn a_reset_within_reach_counts_the_next_window() {
        // Nothing left now, but the window resets in 5 s and the scans run 2 minutes more.
        let t = thrift(outlook(0, 0, 5), Demand { horizon: S(120), ..running(2.0) });
        assert_eq!(t, 1.0, "a 3600 s window: 115 s of it is 3 requests, less the reserve");
        let short = Outlook { window: S(60), ..outlook(0, 0, 5) };
        assert_eq!(thrift(short, Demand { horizon: S(120), ..running(20.0) }), 0.0);
    }
}

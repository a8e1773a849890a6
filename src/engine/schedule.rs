//! When to poll: not before a scan can plausibly be done, then at quantiles of how long scans
//! take, learned from the scans this client has seen finish (`completed_at - created_at`) and
//! blended with a prior until there are enough of them.

use std::time::Duration;

/// How to trade requests against how soon completion is noticed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Poll from the shortest plausible duration on, as often as `Retry-After` allows.
    Latency,
    /// About 1.6 polls per scan; completion noticed within a fraction of the spread.
    #[default]
    Balanced,
    /// About 1.1 polls per scan; completion noticed late.
    Frugal,
}

impl Mode {
    /// The duration quantiles at which successive polls are sent.
    fn plan(self) -> &'static [f64] {
        match self {
            Mode::Latency => &[0.0],
            Mode::Balanced => &[0.6, 0.85, 0.97, 1.0],
            Mode::Frugal => &[0.9, 1.0],
        }
    }

    /// After the plan: the gap between polls, as a share of the duration spread (a floor of
    /// `Retry-After` applies on top).
    fn tail_share(self) -> f64 {
        match self {
            Mode::Latency => 0.0,
            Mode::Balanced => 0.25,
            Mode::Frugal => 0.5,
        }
    }
}

/// Scan durations: a uniform prior and the samples seen, in seconds.
///
/// Samples wait before they count: at any moment the scans seen to finish are the short ones
/// (the long ones of the same start are still running), and learning from them at once would
/// pull every quantile down and the polls early. A duration counts once its scan is older
/// than the longest plausible duration, when the rest of its cohort has finished too.
#[derive(Clone, Debug)]
pub struct DurationModel {
    prior: (Duration, Duration),
    samples: Vec<f64>,
    /// (monotonic time the sample may count, duration in seconds), oldest first.
    pending: std::collections::VecDeque<(Duration, f64)>,
    /// How many samples weigh as much as the prior: [`PRIOR_WEIGHT`], or less once the key's
    /// own record has been loaded.
    prior_weight: f64,
}

/// How many samples weigh as much as the prior.
const PRIOR_WEIGHT: f64 = 20.0;
/// The prior's weight once at least [`TRUSTED_RECORD`] durations of the key were loaded from
/// the state store: the prior is a guess made before anything was known, the record is what
/// this key's scans took (a new process should not wait 84 s for a 3 s scan).
const SEEDED_PRIOR_WEIGHT: f64 = 2.0;
const TRUSTED_RECORD: usize = 10;
/// Samples kept (the most recent): durations drift, and memory stays bounded.
const MAX_SAMPLES: usize = 512;

impl DurationModel {
    pub fn new(prior: (Duration, Duration)) -> DurationModel {
        DurationModel { prior, samples: Vec::new(), pending: Default::default(), prior_weight: PRIOR_WEIGHT }
    }

    /// A scan created at `created` (monotonic) took `duration`; it counts from `settle` on,
    /// once its cohort has had time to finish.
    pub fn observe(&mut self, created: Duration, duration: Duration) {
        let longest = self.longest();
        if self.pending.len() < MAX_SAMPLES {
            self.pending.push_back((created + longest.mul_f64(1.2), duration.as_secs_f64()));
        }
    }

    /// Durations learned earlier (by this process's predecessors, from the state store): they
    /// count at once, as their cohorts finished long ago.
    pub fn seed(&mut self, durations: &[Duration]) {
        if durations.len() >= TRUSTED_RECORD {
            self.prior_weight = SEEDED_PRIOR_WEIGHT;
        }
        for d in durations.iter().take(MAX_SAMPLES) {
            if self.samples.len() == MAX_SAMPLES {
                self.samples.remove(0);
            }
            self.samples.push(d.as_secs_f64());
        }
    }

    /// Counts the samples whose cohort has finished by `now`.
    pub fn settle(&mut self, now: Duration) {
        while self.pending.front().is_some_and(|(at, _)| *at <= now) {
            let (_, d) = self.pending.pop_front().expect("checked");
            if self.samples.len() == MAX_SAMPLES {
                self.samples.remove(0);
            }
            self.samples.push(d);
        }
    }

    /// The longest plausible duration: the prior's, or the longest counted sample.
    fn longest(&self) -> Duration {
        let seen = self.samples.iter().copied().fold(0.0, f64::max);
        self.prior.1.max(Duration::try_from_secs_f64(seen).unwrap_or(Duration::MAX))
    }

    /// Durations learned so far (the schedule uses the prior alone until there are some).
    pub fn samples(&self) -> usize {
        self.samples.len()
    }

    /// The `p` quantile (0..=1) of scan durations.
    pub fn quantile(&self, p: f64, prior: (Duration, Duration)) -> Duration {
        let p = p.clamp(0.0, 1.0);
        let (lo, hi) = (prior.0.as_secs_f64(), prior.1.as_secs_f64());
        let from_prior = lo + (hi - lo) * p;
        if self.samples.is_empty() {
            return secs(from_prior);
        }
        let mut sorted = self.samples.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = p * (sorted.len() - 1) as f64;
        let (i, frac) = (rank.floor() as usize, rank.fract());
        let empirical = sorted[i] + (sorted[(i + 1).min(sorted.len() - 1)] - sorted[i]) * frac;
        let w = sorted.len() as f64 / (sorted.len() as f64 + self.prior_weight);
        secs(from_prior * (1.0 - w) + empirical * w)
    }
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX)
}

/// The age at which a scan now `age` old should next be polled: the first quantile of the
/// mode's plan past `age`, then every tail gap (never less than `floor_gap`, the server's
/// `Retry-After` or the default poll interval).
pub fn next_poll_age(
    mode: Mode,
    age: Duration,
    model: &DurationModel,
    prior: (Duration, Duration),
    floor_gap: Duration,
) -> Duration {
    let plan = mode.plan();
    if let Some(at) = plan.iter().map(|&p| model.quantile(p, prior)).find(|&at| at > age) {
        return at;
    }
    let last = model.quantile(*plan.last().unwrap_or(&1.0), prior);
    let spread = model.quantile(1.0, prior).saturating_sub(model.quantile(0.0, prior));
    let gap = spread.mul_f64(mode.tail_share()).max(floor_gap).max(Duration::from_millis(1));
    // Whole nanoseconds: float rounding could land a poll on or before `age`.
    let steps = age.saturating_sub(last).as_nanos() / gap.as_nanos() + 1;
    let total = gap.as_nanos().saturating_mul(steps);
    let secs = u64::try_from(total / 1_000_000_000).unwrap_or(u64::MAX);
    last.saturating_add(Duration::new(secs, (total % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIOR: (Duration, Duration) = (Duration::from_secs(30), Duration::from_secs(120));

    #[test]
    fn the_prior_alone_gives_its_quantiles() {
        let m = DurationModel::new(PRIOR);
        assert_eq!(m.quantile(0.0, PRIOR), Duration::from_secs(30));
        assert_eq!(m.quantile(0.5, PRIOR), Duration::from_secs(75));
        assert_eq!(m.quantile(1.0, PRIOR), Duration::from_secs(120));
    }

    #[test]
    fn samples_pull_the_quantiles_towards_what_was_seen() {
        let mut m = DurationModel::new(PRIOR);
        for _ in 0..500 {
            m.observe(Duration::ZERO, Duration::from_secs(40));
        }
        m.settle(Duration::from_secs(100));
        assert_eq!(m.samples(), 0, "not before the cohort has had time to finish");
        m.settle(Duration::from_secs(144));
        let q = m.quantile(0.9, PRIOR).as_secs_f64();
        assert!((40.0..45.0).contains(&q), "{q}");
    }

    #[test]
    fn a_loaded_record_of_the_key_outweighs_the_prior() {
        let three_secs = vec![Duration::from_secs(3); 36];
        let mut few = DurationModel::new(PRIOR);
        few.seed(&three_secs[..5]);
        let mut record = DurationModel::new(PRIOR);
        record.seed(&three_secs);
        assert!(few.quantile(0.5, PRIOR) > Duration::from_secs(50), "five durations are not a record");
        let q = record.quantile(0.5, PRIOR).as_secs_f64();
        assert!((3.0..8.0).contains(&q), "36 loaded 3 s durations put the median at {q} s");
    }

    /// The ages at which a scan is polled, if every poll finds it still processing.
    fn ages(mode: Mode, n: usize, gap: u64) -> Vec<u64> {
        let m = DurationModel::new(PRIOR);
        let mut age = Duration::ZERO;
        (0..n)
            .map(|_| {
                age = next_poll_age(mode, age, &m, PRIOR, Duration::from_secs(gap));
                age.as_secs()
            })
            .collect()
    }

    #[test]
    fn each_mode_has_its_plan_then_a_tail_with_a_floor() {
        assert_eq!(ages(Mode::Frugal, 5, 10), vec![111, 120, 165, 210, 255]);
        assert_eq!(ages(Mode::Balanced, 6, 10), vec![84, 106, 117, 120, 142, 165]);
        assert_eq!(ages(Mode::Latency, 3, 10), vec![30, 40, 50]);
        assert_eq!(ages(Mode::Latency, 3, 25), vec![30, 55, 80]);
    }

    #[test]
    fn a_very_old_scan_is_polled_soon_without_overflow() {
        let m = DurationModel::new(PRIOR);
        let age = Duration::from_secs(86_400 * 400);
        let next = next_poll_age(Mode::Latency, age, &m, PRIOR, Duration::from_millis(1));
        assert!(next > age && next <= age + Duration::from_millis(1));
    }
}

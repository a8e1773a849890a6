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
    Balanced,
    /// About 1.1 polls per scan; completion noticed late.
    Frugal,
    /// Like latency while the window's spare budget covers it, moving continuously toward
    /// frugal as it tightens (the scheduler tells each plan how tight: its thrift).
    #[default]
    Adaptive,
}

impl Mode {
    /// Its name, as `EXONA_POLL_MODE` and the command's `--mode` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Latency => "latency",
            Mode::Balanced => "balanced",
            Mode::Frugal => "frugal",
            Mode::Adaptive => "adaptive",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    /// `adaptive`, `latency`, `balanced` or `frugal`, in any case.
    fn from_str(text: &str) -> Result<Mode, String> {
        let all = [Mode::Adaptive, Mode::Latency, Mode::Balanced, Mode::Frugal];
        all.into_iter()
            .find(|m| text.trim().eq_ignore_ascii_case(m.name()))
            .ok_or_else(|| format!("{text:?} is not a poll mode: use adaptive, latency, balanced or frugal"))
    }
}

impl Mode {
    /// The duration quantiles at which successive polls are sent.
    fn plan(self) -> &'static [f64] {
        match self {
            Mode::Latency => &[0.0],
            Mode::Balanced => &[0.6, 0.85, 0.97, 1.0],
            Mode::Frugal => &[0.9, 1.0],
            Mode::Adaptive => &[],
        }
    }

    /// After the plan: the gap between polls, as a share of the duration spread (a floor of
    /// `Retry-After` applies on top).
    fn tail_share(self) -> f64 {
        match self {
            Mode::Latency | Mode::Adaptive => 0.0,
            Mode::Balanced => 0.25,
            Mode::Frugal => 0.5,
        }
    }
}

/// The adaptive schedule's thrift (0: latency, 1: frugal): each poll goes where this share of
/// the scans still running at the scan's age will have finished (0.97 at the frugal end, a
/// little past frugal mode's first poll at 0.9: at thrift 1 the window binds, and a poll saved
/// is a scan sooner; 36 scans at 20 requests per 40 s took 1.25 polls each at 0.9, and five
/// windows instead of four. Not 1.0: one outlier duration learned would set every first poll
/// at it. 0.6 is close to balanced's plan).
const FRUGAL_SHARE: f64 = 0.97;

/// Scan durations: the durations seen, and the ages of the scans still
/// running, in seconds.
///
/// At any moment the scans seen to finish are the short ones (the long ones of the same start
/// are still running): learning from them alone would pull every quantile down and the polls
/// early. The Kaplan–Meier (product-limit) estimator counts a running scan as "at least this
/// old" (right-censored at its age), so a completion teaches at once and the quantiles it
/// cannot speak for yet stay with the prior.
#[derive(Clone, Debug)]
pub struct DurationModel {
    samples: std::collections::VecDeque<f64>,
    /// Each running scan's age when a poll last found it processing (censored observations),
    /// by the engine's task id.
    running: std::collections::HashMap<u64, f64>,
    /// How many samples weigh as much as the prior: [`PRIOR_WEIGHT`], or less once the key's
    /// own record has been loaded.
    prior_weight: f64,
    /// The estimator's curve and what goes with it, rebuilt after changes (see `changed`),
    /// and how many changes it has not seen.
    curve: std::cell::OnceCell<Estimate>,
    unseen_changes: usize,
}

/// The product-limit curve, (time, share finished by then), with the longest duration or age
/// seen, and the shortest and longest durations seen (how far the prior is off).
#[derive(Clone, Debug, Default)]
struct Estimate {
    curve: Vec<(f64, f64)>,
    oldest: f64,
    shortest_done: f64,
    longest_done: f64,
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
    pub fn new() -> DurationModel {
        DurationModel {
            samples: Default::default(),
            running: Default::default(),
            prior_weight: PRIOR_WEIGHT,
            curve: Default::default(),
            unseen_changes: 0,
        }
    }

    /// A scan took `duration` (`completed_at - created_at`): it counts at once.
    pub fn observe(&mut self, duration: Duration) {
        self.push(duration.as_secs_f64());
    }

    fn push(&mut self, d: f64) {
        if self.samples.len() == MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(d);
        self.changed();
    }

    /// The estimate is rebuilt after a change once changes reach a hundredth of what it is
    /// built from: with ten thousand scans under way, rebuilding (a sort) at every reply cost
    /// more than all the rest of the scheduler, and one scan in a hundred moves no quantile
    /// that matters.
    fn changed(&mut self) {
        self.unseen_changes += 1;
        if self.unseen_changes * 100 >= self.samples.len() + self.running.len() {
            self.unseen_changes = 0;
            self.curve = Default::default();
        }
    }

    /// Durations learned earlier (by this process's predecessors, from the state store).
    pub fn seed(&mut self, durations: &[Duration]) {
        if durations.len() >= TRUSTED_RECORD {
            self.prior_weight = SEEDED_PRIOR_WEIGHT;
        }
        for d in durations.iter().take(MAX_SAMPLES) {
            self.push(d.as_secs_f64());
        }
    }

    /// Scan `task` was still processing at age `seen`: it lasts at least that long.
    pub fn running(&mut self, task: u64, seen: Duration) {
        let seen = seen.as_secs_f64();
        if self.running.insert(task, seen) != Some(seen) {
            self.changed();
        }
    }

    /// Scan `task` is no longer waited for (its duration, if learned, came by `observe`).
    pub fn ended(&mut self, task: u64) {
        if self.running.remove(&task).is_some() {
            self.changed();
        }
    }

    /// Replaces the running scans by these ages (tests).
    #[cfg(test)]
    pub fn set_running(&mut self, ages: impl Iterator<Item = Duration>) {
        self.running.clear();
        for (i, age) in ages.enumerate() {
            self.running.insert(i as u64, age.as_secs_f64());
        }
        self.curve = Default::default();
    }

    /// Durations learned so far (the schedule uses the prior alone until there are some).
    pub fn samples(&self) -> usize {
        self.samples.len()
    }

    /// The product-limit estimate of the share of scans finished by each duration seen:
    /// `F(t) = 1 - Π (1 - d_i / n_i)` over the durations `t_i <= t`, where `n_i` scans (ended
    /// or running) had lasted at least `t_i`.
    fn curve(&self) -> &[(f64, f64)] {
        &self.estimate().curve
    }

    /// The curve, and what is asked of it at every quantile over maybe ten thousand scans.
    fn estimate(&self) -> &Estimate {
        self.curve.get_or_init(|| {
            // (time, finished?) with a finish before a running age at the same time.
            let mut all: Vec<(f64, bool)> = self.samples.iter().map(|&d| (d, true)).collect();
            all.extend(self.running.values().map(|&a| (a, false)));
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
            let mut at_risk = all.len() as f64;
            let mut surviving = 1.0;
            let mut curve: Vec<(f64, f64)> = Vec::new();
            let mut i = 0;
            while i < all.len() {
                let t = all[i].0;
                let (mut finished, mut leaving) = (0.0, 0.0);
                while i < all.len() && all[i].0 == t {
                    finished += all[i].1 as u8 as f64;
                    leaving += 1.0;
                    i += 1;
                }
                if finished > 0.0 {
                    surviving *= 1.0 - finished / at_risk;
                    curve.push((t, 1.0 - surviving));
                }
                at_risk -= leaving;
            }
            let oldest = all.last().map_or(0.0, |&(t, _)| t);
            let shortest_done = self.samples.iter().copied().fold(f64::INFINITY, f64::min);
            let longest_done = self.samples.iter().copied().fold(0.0, f64::max);
            Estimate { curve, oldest, shortest_done, longest_done }
        })
    }

    /// The prior as the durations seen leave it: unchanged while every one lies within it;
    /// else stretched as little as they need, keeping its shape (a scale family: the key's
    /// scans run faster or slower than the prior's guess), and weighing less. A test key whose
    /// scans take 3-12 s had its processes poll at ~117 s for scans done by 12 s while a
    /// 30-120 s prior outweighed the first completions; now the first one moves every poll.
    /// Returns (shortest, longest, the prior's weight in samples).
    fn yielded_prior(&self, prior: (Duration, Duration)) -> (f64, f64, f64) {
        let (lo, hi) = (prior.0.as_secs_f64(), prior.1.as_secs_f64());
        let e = self.estimate();
        if self.samples.is_empty() || (e.shortest_done >= lo && e.longest_done <= hi) || hi <= 0.0 {
            return (lo, hi, self.prior_weight);
        }
        let (shortest, longest) = (e.shortest_done.max(f64::MIN_POSITIVE), e.longest_done);
        // Scales that put every duration seen within the scaled prior: [longest/hi, shortest/lo].
        let (fewest, most) = (longest / hi, if lo > 0.0 { shortest / lo } else { f64::INFINITY });
        if fewest > most {
            // Spread wider than the prior's own range: what was seen is the range.
            return (shortest, longest, self.prior_weight.min(SEEDED_PRIOR_WEIGHT));
        }
        let c = 1.0_f64.clamp(fewest, most);
        // The further off, the less its shape is worth (a guess 10x off is mostly wrong).
        let off = c.min(1.0 / c);
        (lo * c, hi * c, (self.prior_weight * off * off).max(SEEDED_PRIOR_WEIGHT.min(self.prior_weight)))
    }

    /// The `p` quantile the durations seen can speak for: `None` above the share finished by
    /// the oldest scan seen (the running ones may all last longer).
    fn learned_quantile(&self, p: f64) -> Option<f64> {
        let curve = self.curve();
        let i = curve.partition_point(|&(_, f)| f < p - 1e-12);
        if i == curve.len() {
            return None;
        }
        if i == 0 {
            return Some(curve[0].0);
        }
        // Between two finishes, linearly: a smooth schedule from a step function.
        let ((t0, f0), (t1, f1)) = (curve[i - 1], curve[i]);
        Some(t0 + (t1 - t0) * ((p - f0) / (f1 - f0)).clamp(0.0, 1.0))
    }

    /// The `p` quantile (0..=1) of scan durations: the learned one blended with the prior's,
    /// more learned as more durations are seen. Where nothing learned speaks for `p` yet, the
    /// prior's, but never below the oldest scan seen (it has lasted that long).
    pub fn quantile(&self, p: f64, prior: (Duration, Duration)) -> Duration {
        let p = p.clamp(0.0, 1.0);
        let (lo, hi, prior_weight) = self.yielded_prior(prior);
        let from_prior = lo + (hi - lo) * p;
        let n = self.samples.len() as f64;
        if n == 0.0 {
            return secs(from_prior);
        }
        let learned = self.learned_quantile(p).unwrap_or_else(|| from_prior.max(self.estimate().oldest));
        let w = n / (n + prior_weight);
        secs(from_prior * (1.0 - w) + learned * w)
    }

    /// The share of scans finished by `age` (the inverse of [`DurationModel::quantile`]).
    pub fn finished_by(&self, age: Duration, prior: (Duration, Duration)) -> f64 {
        let (mut lo, mut hi) = (0.0, 1.0);
        if self.quantile(0.0, prior) >= age {
            return 0.0;
        }
        if self.quantile(1.0, prior) <= age {
            return 1.0;
        }
        for _ in 0..30 {
            let mid = (lo + hi) / 2.0;
            if self.quantile(mid, prior) < age {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX)
}

/// The age at which a scan now `age` old should next be polled: the first quantile of the
/// mode's plan past `age`, then every tail gap (never less than `floor_gap`, the server's
/// `Retry-After` or the default poll interval). An adaptive scan follows `thrift` instead.
pub fn next_poll_age(
    mode: Mode,
    age: Duration,
    model: &DurationModel,
    prior: (Duration, Duration),
    floor_gap: Duration,
    thrift: f64,
) -> Duration {
    if mode == Mode::Adaptive {
        return adaptive_poll_age(age, model, prior, floor_gap, thrift.clamp(0.0, 1.0));
    }
    let plan = mode.plan();
    if let Some(at) = plan.iter().map(|&p| model.quantile(p, prior)).find(|&at| at > age) {
        return at;
    }
    let last = model.quantile(*plan.last().unwrap_or(&1.0), prior);
    tail(age, last, model, prior, floor_gap, mode.tail_share())
}

/// The conditional quantile: once a scan has lasted `age`, the next poll waits for the share
/// `FRUGAL_SHARE * thrift` of the scans that last that long to finish. At thrift 0 that is
/// now (the caller holds it to the poll gap): latency. Past the longest plausible duration,
/// a tail whose gap grows with the thrift toward frugal's.
fn adaptive_poll_age(
    age: Duration,
    model: &DurationModel,
    prior: (Duration, Duration),
    floor_gap: Duration,
    thrift: f64,
) -> Duration {
    let longest = model.quantile(1.0, prior);
    if age < longest {
        let finished = model.finished_by(age, prior);
        let at = model.quantile(finished + FRUGAL_SHARE * thrift * (1.0 - finished), prior);
        return at.max(age + Duration::from_millis(1));
    }
    tail(age, longest, model, prior, floor_gap, 0.5 * thrift)
}

/// Past `last`: every `share` of the duration spread, at least `floor_gap`.
fn tail(
    age: Duration,
    last: Duration,
    model: &DurationModel,
    prior: (Duration, Duration),
    floor_gap: Duration,
    share: f64,
) -> Duration {
    let spread = model.quantile(1.0, prior).saturating_sub(model.quantile(0.0, prior));
    let gap = spread.mul_f64(share).max(floor_gap).max(Duration::from_millis(1));
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
        let m = DurationModel::new();
        assert_eq!(m.quantile(0.0, PRIOR), Duration::from_secs(30));
        assert_eq!(m.quantile(0.5, PRIOR), Duration::from_secs(75));
        assert_eq!(m.quantile(1.0, PRIOR), Duration::from_secs(120));
    }

    #[test]
    fn samples_pull_the_quantiles_towards_what_was_seen() {
        let mut m = DurationModel::new();
        for _ in 0..500 {
            m.observe(Duration::from_secs(40));
        }
        let q = m.quantile(0.9, PRIOR).as_secs_f64();
        assert!((40.0..45.0).contains(&q), "{q}");
    }

    /// A cohort of 100 scans lasting 30..120 s (evenly), seen at 75 s: the 51 done are the
    /// short ones. Counting only them put the median at ~52 s and the polls early; counting
    /// the 49 still running as "at least 75 s" keeps what is known right and leaves the rest
    /// to the prior.
    #[test]
    fn running_scans_keep_the_first_completions_from_pulling_polls_early() {
        let durations: Vec<f64> = (0..100).map(|i| 30.0 + 90.0 * i as f64 / 99.0).collect();
        let mut m = DurationModel::new();
        for &d in durations.iter().filter(|&&d| d <= 75.0) {
            m.observe(Duration::from_secs_f64(d));
        }
        let done_only = m.quantile(0.5, PRIOR).as_secs_f64();
        m.set_running(durations.iter().filter(|&&d| d > 75.0).map(|_| Duration::from_secs(75)));
        let censored = m.quantile(0.5, PRIOR).as_secs_f64();
        assert!(done_only < 60.0, "without the running scans: {done_only}");
        assert!((72.0..78.0).contains(&censored), "the true median is 75 s: {censored}");
        // What the completions do speak for is learned at once.
        let q30 = m.quantile(0.3, PRIOR).as_secs_f64();
        assert!((55.0..59.0).contains(&q30), "the true 0.3 quantile is 57 s: {q30}");
        // One early finish among eight running scans says little of the rest.
        let mut first = DurationModel::new();
        first.observe(Duration::from_secs(33));
        first.set_running(std::iter::repeat_n(Duration::from_secs(35), 7));
        assert!(first.quantile(0.6, PRIOR) >= Duration::from_secs(80), "{:?}", first.quantile(0.6, PRIOR));
    }

    #[test]
    fn finished_by_inverts_the_quantiles() {
        let m = DurationModel::new();
        assert_eq!(m.finished_by(Duration::from_secs(10), PRIOR), 0.0);
        assert!((m.finished_by(Duration::from_secs(75), PRIOR) - 0.5).abs() < 1e-6);
        assert_eq!(m.finished_by(Duration::from_secs(130), PRIOR), 1.0);
    }

    #[test]
    fn a_loaded_record_of_the_key_outweighs_the_prior() {
        let three_secs = vec![Duration::from_secs(3); 36];
        let mut few = DurationModel::new();
        few.seed(&three_secs[..5]);
        let mut record = DurationModel::new();
        record.seed(&three_secs);
        let q = record.quantile(0.5, PRIOR).as_secs_f64();
        assert!((3.0..3.5).contains(&q), "36 loaded 3 s durations put the median at {q} s");
        // Five are not a record, but they are far below the prior: it yields to them.
        let q = few.quantile(0.5, PRIOR).as_secs_f64();
        assert!((3.0..8.0).contains(&q), "five 3 s durations put the median at {q} s");
    }

    /// Issue 35: a test key's 3-12 s scans were first polled at ~117 s, the prior's 97 %
    /// quantile, while 20 samples' worth of prior outweighed the first completions. A
    /// duration the prior cannot explain now moves it at once; durations it explains leave
    /// it alone (a live key's 30-120 s scans keep their schedule).
    #[test]
    fn the_prior_yields_to_durations_it_cannot_explain() {
        let secs = |d: Duration| d.as_secs_f64();
        let mut first = DurationModel::new();
        first.observe(Duration::from_secs(7));
        first.set_running(std::iter::repeat_n(Duration::from_secs(7), 5));
        let q97 = secs(first.quantile(0.97, PRIOR));
        assert!((7.0..=28.0).contains(&q97), "after one 7 s scan, the 97 % quantile is {q97} s (was 117)");
        assert!(
            secs(first.quantile(0.0, PRIOR)) >= 7.0,
            "no scan is expected shorter than the shortest seen yet"
        );
        first.observe(Duration::from_secs(4));
        let q97 = secs(first.quantile(0.97, PRIOR));
        assert!(q97 <= 16.5, "after a 4 s scan too: {q97} s");
        // Durations within the prior: the prior's schedule, moved only by what they teach.
        let mut live = DurationModel::new();
        live.observe(Duration::from_secs(45));
        assert!(secs(live.quantile(0.0, PRIOR)) >= 29.0);
        assert!(secs(live.quantile(1.0, PRIOR)) >= 115.0);
        // Just outside it: stretched just as much.
        let mut near = DurationModel::new();
        near.observe(Duration::from_secs(28));
        let (lo, hi) = (secs(near.quantile(0.0, PRIOR)), secs(near.quantile(1.0, PRIOR)));
        assert!(
            (27.9..=30.0).contains(&lo) && hi >= 100.0,
            "a 28 s scan stretched the prior to {lo}..{hi} s"
        );
        // Longer than the prior allows: it stretches up.
        let mut slow = DurationModel::new();
        slow.observe(Duration::from_secs(600));
        assert!(secs(slow.quantile(0.0, PRIOR)) >= 100.0, "{:?}", slow.quantile(0.0, PRIOR));
    }

    /// The ages at which a scan is polled, if every poll finds it still processing.
    fn ages(mode: Mode, n: usize, gap: u64) -> Vec<u64> {
        let m = DurationModel::new();
        let mut age = Duration::ZERO;
        (0..n)
            .map(|_| {
                age = next_poll_age(mode, age, &m, PRIOR, Duration::from_secs(gap), 0.0);
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

    /// The ages at which an adaptive scan is polled at `thrift`, each poll held to the gap.
    fn adaptive_ages(thrift: f64, n: usize) -> Vec<u64> {
        let m = DurationModel::new();
        let gap = Duration::from_secs(10);
        let mut age = Duration::ZERO;
        (0..n)
            .map(|i| {
                let next = next_poll_age(Mode::Adaptive, age, &m, PRIOR, gap, thrift);
                age = if i == 0 { next } else { next.max(age + gap) };
                age.as_secs()
            })
            .collect()
    }

    #[test]
    fn adaptive_runs_from_latency_to_frugal_with_its_thrift() {
        assert_eq!(adaptive_ages(0.0, 4), ages(Mode::Latency, 4, 10));
        assert_eq!(adaptive_ages(1.0, 2), vec![117, 127], "97 % of the scans done, then the gap");
        // In between, fewer polls the thriftier: count those before the longest duration.
        let before_end = |t: f64| adaptive_ages(t, 20).iter().filter(|&&a| a < 120).count();
        let counts: Vec<usize> = [0.0, 0.25, 0.5, 0.75, 1.0].iter().map(|&t| before_end(t)).collect();
        assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
        assert!(counts[0] > counts[4], "{counts:?}");
    }

    #[test]
    fn a_very_old_scan_is_polled_soon_without_overflow() {
        let m = DurationModel::new();
        let age = Duration::from_secs(86_400 * 400);
        let next = next_poll_age(Mode::Latency, age, &m, PRIOR, Duration::from_millis(1), 0.0);
        assert!(next > age && next <= age + Duration::from_millis(1));
    }
}

//! When the polls of the scans under way are expected: a window pays only for the polls that
//! fall before its reset. Counting every poll to come against the current window left three
//! processes' windows 6-14 of 20 spent while creates waited, with 30-120 s scans whose polls
//! mostly fall in the windows after (issue 35).

/// Bucket ends, in seconds from now: finer near now, where a window's reset usually falls.
const EDGES: [f64; 12] =
    [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0, 1280.0, 2560.0, 5120.0, f64::INFINITY];

/// Expected polls by when they fall, in buckets of time from now.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PollForecast {
    polls: [f64; EDGES.len()],
}

impl PollForecast {
    /// `polls` expected evenly over `[from, to]` seconds from now (all at `from` if `to <= from`).
    pub fn add(&mut self, polls: f64, from: f64, to: f64) {
        if polls <= 0.0 {
            return;
        }
        let from = from.max(0.0);
        if to <= from {
            self.polls[bucket_of(from)] += polls;
            return;
        }
        let mut start = 0.0;
        for (i, end) in EDGES.iter().enumerate() {
            let overlap = to.min(*end) - from.max(start);
            if overlap > 0.0 {
                self.polls[i] += polls * overlap / (to - from);
            }
            start = *end;
        }
    }

    /// Polls expected within `horizon` seconds from now (evenly within a bucket).
    pub fn before(&self, horizon: f64) -> f64 {
        let mut start = 0.0;
        let mut sum = 0.0;
        for (i, end) in EDGES.iter().enumerate() {
            if horizon >= *end {
                sum += self.polls[i];
            } else {
                if end.is_finite() && horizon > start {
                    sum += self.polls[i] * (horizon - start) / (end - start);
                }
                break;
            }
            start = *end;
        }
        sum
    }

    pub fn total(&self) -> f64 {
        self.polls.iter().sum()
    }
}

fn bucket_of(at: f64) -> usize {
    EDGES.iter().position(|end| at < *end).unwrap_or(EDGES.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_are_counted_by_when_they_fall() {
        let mut f = PollForecast::default();
        f.add(4.0, 30.0, 120.0); // a 30-120 s scan's polls, evenly
        f.add(1.0, 2.0, 2.0); // a poll due in 2 s
        assert!((f.total() - 5.0).abs() < 1e-9);
        assert!((f.before(3.0) - 0.6).abs() < 1e-9, "{}", f.before(3.0));
        assert!((f.before(5.0) - 1.0).abs() < 1e-9);
        // Of the scan's four, those in its first 10 s (30-40 s from now): 4 x 10/90.
        assert!((f.before(40.0) - (1.0 + 4.0 * 10.0 / 90.0)).abs() < 1e-9, "{}", f.before(40.0));
        assert!((f.before(120.0) - 5.0).abs() < 1e-6 || f.before(160.0) >= 5.0 - 1e-9);
        assert!((f.before(10_000.0) - 5.0).abs() < 1e-9);
    }
}

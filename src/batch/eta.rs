//! When a batch should end. A long portfolio is bound by the key's budget, not by the scans'
//! durations: what is left costs so many requests, the window gives so many per reset.

use std::time::Duration;

use super::Status;
use crate::engine::governor::Outlook;

/// The time until the last row ends: the requests the rows left still need, spent from the
/// window's remainder and then, at each reset, a whole window at once (the budget lets a
/// window's requests go as soon as it opens), plus one scan's duration for the last rows to
/// finish. `planned` is a row's cost before any row has taught a better one. With nothing
/// changing but the clock, it only shrinks (a step at each reset, the time to the reset
/// between): it used to spread the rest over a fraction of the next window, which read "1h
/// 40m" for 20 rows that the next window, 55 min away, would take whole.
pub fn estimate(status: &Status, outlook: Outlook, median_scan: Duration, planned: u32) -> Option<Duration> {
    let left = status.queued as f64 + status.in_flight as f64;
    if left == 0.0 {
        return None;
    }
    let (needed, available) = need(status, outlook, planned);
    let wait_for_budget = if needed <= available {
        Duration::ZERO
    } else {
        // Windows after the next reset that the rest needs, beyond the first (0: it fits).
        let windows = ((needed - available) / outlook.limit.max(1) as f64).ceil() - 1.0;
        outlook.reset_in + outlook.window.mul_f64(windows.max(0.0))
    };
    Some(wait_for_budget + median_scan)
}

/// Whether rows not yet created need more than the window has left: they wait for its reset
/// (what the progress line then says, with the reset's time).
pub fn waits_for_window(status: &Status, outlook: Outlook, planned: u32) -> bool {
    let (needed, available) = need(status, outlook, planned);
    status.queued > 0 && needed > available
}

/// The requests the rows left still need, and what the window has left.
fn need(status: &Status, outlook: Outlook, planned: u32) -> (f64, f64) {
    // Rows under way have spent about half of their requests; ended rows all of theirs.
    let ended = (status.completed + status.failed) as f64;
    let progressed = ended + status.in_flight as f64 * 0.5;
    let per_row = if ended >= 1.0 && status.requests > 0 {
        status.requests as f64 / progressed
    } else {
        planned as f64
    };
    let needed = status.queued as f64 * per_row + status.in_flight as f64 * per_row * 0.5;
    (needed, outlook.available as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn outlook(available: u32, reset_in: u64) -> Outlook {
        Outlook {
            limit: 100,
            available,
            reserved: 0,
            reset_in: S(reset_in),
            window: S(3600),
            others_known: false,
            others_demand: 0,
        }
    }

    #[test]
    fn a_batch_that_fits_the_window_ends_with_its_scans() {
        let s = Status { queued: 10, requests: 0, ..Status::default() };
        assert_eq!(estimate(&s, outlook(100, 1000), S(60), 3), Some(S(60)));
    }

    #[test]
    fn a_long_portfolio_is_paced_by_the_windows() {
        // 500 rows at 2 requests each: 1,000 requests, 100 left in this window (ending in
        // 1,000 s), then 100 per hour: 9 more windows.
        let s = Status { queued: 480, in_flight: 0, completed: 20, requests: 40, ..Status::default() };
        let eta = estimate(&s, outlook(40, 1000), S(60), 3).unwrap();
        // 960 needed, 40 now, 920 / 100: the reset's window and 9 more whole windows.
        assert_eq!(eta, S(1000) + S(3600) * 9 + S(60));
    }

    /// The outside check: 20 rows planned at 4.7 requests each, 9 requests left, the window
    /// resetting in 55 min: the next window takes them all, so they end a scan after it. The
    /// estimate read "about 1h 40m" (a fraction of the next window added).
    #[test]
    fn rows_the_next_window_takes_whole_end_a_scan_after_its_reset() {
        let s = Status { queued: 20, ..Status::default() };
        let eta = estimate(&s, outlook(9, 55 * 60), S(60), 5).unwrap();
        assert_eq!(eta, S(55 * 60) + S(60));
    }

    /// With nothing changing but the clock, the estimate never grows.
    #[test]
    fn the_estimate_only_shrinks_while_nothing_changes() {
        let s = Status { queued: 300, in_flight: 10, completed: 40, requests: 120, ..Status::default() };
        let mut last = Duration::MAX;
        for reset_in in (0..=3600).rev().step_by(60) {
            let eta = estimate(&s, outlook(7, reset_in), S(60), 3).unwrap();
            assert!(eta <= last, "{eta:?} after {last:?} at reset_in {reset_in}");
            last = eta;
        }
    }

    #[test]
    fn nothing_left_has_no_estimate() {
        let s = Status { completed: 3, ..Status::default() };
        assert_eq!(estimate(&s, outlook(100, 10), S(60), 3), None);
    }
}

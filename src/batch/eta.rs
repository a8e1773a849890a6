//! When a batch should end. A long portfolio is bound by the key's budget, not by the scans'
//! durations: what is left costs so many requests, the window gives so many per reset.

use std::time::Duration;

use super::Status;
use crate::engine::governor::Outlook;

/// The time until the last row ends: the requests the rows left still need, spent from the
/// window's remainder and then one window after another, plus one scan's duration for the
/// last rows to finish. `planned` is a row's cost before any row has taught a better one.
pub fn estimate(status: &Status, outlook: Outlook, median_scan: Duration, planned: u32) -> Option<Duration> {
    let left = status.queued as f64 + status.in_flight as f64;
    if left == 0.0 {
        return None;
    }
    // Rows under way have spent about half of their requests; ended rows all of theirs.
    let ended = (status.completed + status.failed) as f64;
    let progressed = ended + status.in_flight as f64 * 0.5;
    let per_row = if ended >= 1.0 && status.requests > 0 {
        status.requests as f64 / progressed
    } else {
        planned as f64
    };
    let needed = status.queued as f64 * per_row + status.in_flight as f64 * per_row * 0.5;
    let available = outlook.available as f64;
    let wait_for_budget = if needed <= available {
        Duration::ZERO
    } else {
        let windows = (needed - available) / outlook.limit.max(1) as f64;
        // The last window need not be spent whole: its share of the window, not all of it.
        outlook.reset_in + outlook.window.mul_f64(windows.max(0.0))
    };
    Some(wait_for_budget + median_scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn outlook(available: u32, reset_in: u64) -> Outlook {
        Outlook { limit: 100, available, reserved: 0, reset_in: S(reset_in), window: S(3600) }
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
        // 960 needed, 40 now, 920 / 100 = 9.2 windows after the reset.
        assert_eq!(eta, S(1000) + S(3600).mul_f64(9.2) + S(60));
    }

    #[test]
    fn nothing_left_has_no_estimate() {
        let s = Status { completed: 3, ..Status::default() };
        assert_eq!(estimate(&s, outlook(100, 10), S(60), 3), None);
    }
}

//! When a batch should end. A long portfolio is bound by the key's budget, not by the scans'
//! durations: what is left costs so many requests, the window gives so many per reset.

use std::time::Duration;

use super::Status;
use crate::engine::governor::Outlook;

/// The end if this process's rows go last (the others' work on the key counted whole): the
/// tests' view of [`until_done`].
#[cfg(test)]
fn estimate(status: &Status, outlook: Outlook, median_scan: Duration, planned: f64) -> Option<Duration> {
    let (needed, others, available) = need(status, outlook, planned);
    until_done(status, outlook, median_scan, needed + others, available)
}

/// With other processes on the key, the window serves their rows and this one's in an order
/// no process knows (the first to start often finishes first, the last waits for the others'
/// work): the end if this process's rows go first, and if they go last. (Three processes × 12
/// rows ended at 52, 93 and 122 s; each counted the others' work whole or half and was told
/// 2-3x its time.) The same figure twice without others.
pub fn estimate_range(
    status: &Status,
    outlook: Outlook,
    median_scan: Duration,
    planned: f64,
) -> Option<(Duration, Duration)> {
    let (needed, others, available) = need(status, outlook, planned);
    let first = until_done(status, outlook, median_scan, needed, available)?;
    let last = until_done(status, outlook, median_scan, needed + others, available)?;
    Some((first, last))
}

/// The time until the last row ends when `needed` requests are left to spend: from the
/// window's remainder and then, at each reset, a whole window at once (the budget lets a
/// window's requests go as soon as it opens), plus one scan's duration for the last rows to
/// finish. With nothing changing but the clock, it only shrinks (a step at each reset, the time
/// to the reset between): it used to spread the rest over a fraction of the next window, which
/// read "1h 40m" for 20 rows that the next window, 55 min away, would take whole. `None` when
/// nothing is left, or when the rest spans windows whose length is not known.
fn until_done(
    status: &Status,
    outlook: Outlook,
    median_scan: Duration,
    needed: f64,
    available: f64,
) -> Option<Duration> {
    let left = status.queued as f64 + status.in_flight as f64;
    if left == 0.0 {
        return None;
    }
    let wait_for_budget = if needed <= available {
        Duration::ZERO
    } else if !outlook.window_known {
        return None;
    } else {
        // Windows after the next reset that the rest needs, beyond the first (0: it fits).
        let windows = ((needed - available) / outlook.limit.max(1) as f64).ceil() - 1.0;
        outlook.reset_in + outlook.window.mul_f64(windows.max(0.0))
    };
    Some(wait_for_budget + median_scan)
}

/// What a row is expected to cost beyond what the rows ended so far cost (see `need`).
const LEARNED_MARGIN: f64 = 1.15;

/// Whether rows not yet created need more than the window has left: they wait for its reset
/// (what the progress line then says, with the reset's time).
pub fn waits_for_window(status: &Status, outlook: Outlook, planned: f64) -> bool {
    let (needed, others, available) = need(status, outlook, planned);
    status.queued > 0 && needed + others > available
}

/// The requests the rows left still need, the other processes' work on the key, and what the
/// window has left.
fn need(status: &Status, outlook: Outlook, planned: f64) -> (f64, f64, f64) {
    // Rows under way have spent about half of their requests; ended rows all of theirs.
    let ended = (status.completed + status.failed) as f64;
    let progressed = ended + status.in_flight as f64 * 0.5;
    // The rows ended so far are the cheap ones (a scan polled once that ended early); the last
    // rows of a window-bound batch also meet the tail, whose polls spill into one more window.
    // A 40-row batch at 20 requests per 40 s said "about 33s to go" with 69 s left (22 requests
    // needed at 2 a row, 20 in the next window: the last scan was polled in the one after).
    let per_row = if ended >= 1.0 && status.requests > 0 {
        status.requests as f64 / progressed * LEARNED_MARGIN
    } else {
        planned
    };
    let needed = status.queued as f64 * per_row + status.in_flight as f64 * per_row * 0.5;
    let others = if outlook.others_known { outlook.others_demand as f64 } else { 0.0 };
    (needed, others, outlook.available as f64)
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
            window_known: true,
        }
    }

    #[test]
    fn a_batch_that_fits_the_window_ends_with_its_scans() {
        let s = Status { queued: 10, requests: 0, ..Status::default() };
        assert_eq!(estimate(&s, outlook(100, 1000), S(60), 3.0), Some(S(60)));
    }

    #[test]
    fn a_long_portfolio_is_paced_by_the_windows() {
        // 500 rows at 2 requests each: 1,000 requests, 100 left in this window (ending in
        // 1,000 s), then 100 per hour.
        let s = Status { queued: 480, in_flight: 0, completed: 20, requests: 40, ..Status::default() };
        let eta = estimate(&s, outlook(40, 1000), S(60), 3.0).unwrap();
        // 960 needed (1,104 with the tail's margin), 40 now, 1,064 / 100: the reset's window
        // and 10 more whole windows.
        assert_eq!(eta, S(1000) + S(3600) * 10 + S(60));
    }

    /// The outside check: 20 rows planned at 4.7 requests each, 9 requests left, the window
    /// resetting in 55 min: the next window takes them all, so they end a scan after it. The
    /// estimate read "about 1h 40m" (a fraction of the next window added).
    #[test]
    fn rows_the_next_window_takes_whole_end_a_scan_after_its_reset() {
        let s = Status { queued: 20, ..Status::default() };
        let eta = estimate(&s, outlook(9, 55 * 60), S(60), 5.0).unwrap();
        assert_eq!(eta, S(55 * 60) + S(60));
    }

    /// With nothing changing but the clock, the estimate never grows.
    #[test]
    fn the_estimate_only_shrinks_while_nothing_changes() {
        let s = Status { queued: 300, in_flight: 10, completed: 40, requests: 120, ..Status::default() };
        let mut last = Duration::MAX;
        for reset_in in (0..=3600).rev().step_by(60) {
            let eta = estimate(&s, outlook(7, reset_in), S(60), 3.0).unwrap();
            assert!(eta <= last, "{eta:?} after {last:?} at reset_in {reset_in}");
            last = eta;
        }
    }

    /// Issue 35: three processes on one key were each told the time their own rows would
    /// take at the whole window's pace; the window is the key's, and the others' work is
    /// paid from it too.
    #[test]
    fn the_other_processes_work_on_the_key_is_counted() {
        let s = Status { queued: 10, ..Status::default() };
        let alone = estimate(&s, outlook(20, 40), S(8), 2.0).unwrap();
        let shared =
            Outlook { limit: 20, others_known: true, others_demand: 40, window: S(40), ..outlook(20, 40) };
        let with_others = estimate(&s, shared, S(8), 2.0).unwrap();
        assert_eq!(alone, S(8), "20 requests fit the 20 left");
        assert_eq!(with_others, S(40) + S(40) + S(8), "60 requests: this window's 20, then two more windows");
    }

    /// The order the window serves the processes in is not known: the end if this process's
    /// rows go first, and if they go last.
    #[test]
    fn with_others_on_the_key_the_end_lies_between_first_and_last() {
        let s = Status { queued: 10, ..Status::default() };
        let shared =
            Outlook { limit: 20, others_known: true, others_demand: 40, window: S(40), ..outlook(20, 40) };
        assert_eq!(estimate_range(&s, shared, S(8), 2.0), Some((S(8), S(88))));
        let alone = Outlook { limit: 20, window: S(40), ..outlook(20, 40) };
        assert_eq!(estimate_range(&s, alone, S(8), 2.0), Some((S(8), S(8))));
    }

    /// A window whose length is not known (a test key's, before two resets): an estimate that
    /// spans windows is not made rather than made an hour long.
    #[test]
    fn an_estimate_across_windows_of_unknown_length_is_not_made() {
        let s = Status { queued: 30, ..Status::default() };
        let unknown = Outlook { window_known: false, ..outlook(20, 30) };
        assert_eq!(estimate(&s, unknown, S(8), 2.0), None);
        let fits = Status { queued: 5, ..Status::default() };
        assert_eq!(
            estimate(&fits, unknown, S(8), 2.0),
            Some(S(8)),
            "what fits this window needs no window length"
        );
    }

    #[test]
    fn nothing_left_has_no_estimate() {
        let s = Status { completed: 3, ..Status::default() };
        assert_eq!(estimate(&s, outlook(100, 10), S(60), 3.0), None);
    }
}

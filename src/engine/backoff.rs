//! Retry delays: exponential with "equal jitter" (half fixed, half random), so clients that
//! failed together do not retry together, yet none retries almost at once.

use std::time::Duration;

pub const BASE: Duration = Duration::from_secs(2);
pub const CAP: Duration = Duration::from_secs(60);

/// The delay before retry number `attempt` (0 for the first retry): `base * 2^attempt`,
/// capped at `cap`, of which the upper half is random.
pub fn equal_jitter(attempt: u32, base: Duration, cap: Duration, rng: &mut fastrand::Rng) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(16)).min(cap);
    let half = exp / 2;
    half + Duration::from_nanos(rng.u64(0..=half.as_nanos() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps_and_stays_in_the_upper_half() {
        let mut rng = fastrand::Rng::with_seed(7);
        for attempt in 0..40 {
            let exp = (BASE * 2u32.pow(attempt.min(10))).min(CAP);
            for _ in 0..50 {
                let d = equal_jitter(attempt, BASE, CAP, &mut rng);
                assert!(d >= exp / 2 && d <= exp, "attempt {attempt}: {d:?} vs {exp:?}");
            }
        }
    }
}

//! `Backoff`: a delay that doubles with each attempt, up to a cap. Restart delays, the
//! store breaker's open period and a device's cool-down all grow this way.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    /// Attempts since the last reset.
    attempts: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            attempts: 0,
        }
    }

    /// The delay of attempt `n` (from 1): `initial × 2^(n−1)`, capped at `max`.
    pub fn nth(&self, n: u32) -> Duration {
        let doublings = n.saturating_sub(1).min(30);
        self.initial.saturating_mul(1 << doublings).min(self.max)
    }

    /// Counts one more attempt and answers its delay.
    pub fn next_delay(&mut self) -> Duration {
        self.attempts = self.attempts.saturating_add(1);
        self.nth(self.attempts)
    }

    /// Back to the first delay.
    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

/// ±20 %, so that parts failing together do not retry in lockstep.
pub fn jitter(delay: Duration) -> Duration {
    let random = RandomState::new().build_hasher().finish();
    let factor = 0.8 + 0.4 * (random % 1_000) as f64 / 1_000.0;
    delay.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_starts_over_after_a_reset() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let delays: Vec<u128> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn a_huge_attempt_count_saturates_instead_of_overflowing() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(3600));
        assert_eq!(b.nth(u32::MAX), Duration::from_secs(3600));
        assert_eq!(b.nth(0), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..100 {
            let d = jitter(Duration::from_millis(1000)).as_millis();
            assert!((800..=1200).contains(&d), "{d}");
        }
    }
}

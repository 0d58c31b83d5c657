//! A device's own rhythm: a running estimate of the interval between its arrivals, as
//! TCP estimates a round trip (RFC 6298): an EWMA of the interval (gain 1/8) and an EWMA
//! of its absolute deviation (gain 1/4). Each sample is clamped to a quarter to four
//! times the current estimate once it is trusted, so that one outage (or one burst) moves
//! the estimate by a bounded step rather than resetting it; a real change of rhythm is
//! still followed within a few samples.
//!
//! It is sampled once per turn of a connection per device (the messages a connection read
//! together arrive together), so a device sending bursts is measured by its bursts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The estimate. Microseconds; 24 bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rhythm {
    /// The smoothed interval.
    pub interval: i64,
    /// The smoothed absolute deviation of the interval.
    pub spread: i64,
    /// Intervals sampled (saturating).
    pub samples: u32,
}

/// What the presence rules derive from a rhythm.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub late_factor: f64,
    pub late_floor: Duration,
    pub offline_factor: f64,
    pub offline_floor: Duration,
    pub min_samples: u32,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Rhythm {
    /// One interval between two arrivals, in microseconds (negative ones, from a clock
    /// step, are ignored).
    pub fn sample(&mut self, interval: i64) {
        if interval < 0 {
            return;
        }
        if self.samples == 0 {
            self.interval = interval;
            self.spread = interval / 2;
        } else {
            let interval = if self.samples >= 4 {
                interval.clamp(self.interval / 4, self.interval.saturating_mul(4))
            } else {
                interval
            };
            let error = interval - self.interval;
            self.interval += error / 8;
            self.spread += (error.abs() - self.spread) / 4;
        }
        self.samples = self.samples.saturating_add(1);
    }

    /// Whether enough intervals were seen to judge the device by them.
    pub fn known(&self, bounds: &Bounds) -> bool {
        self.samples >= bounds.min_samples
    }

    /// How long after its last arrival the device is late: `None` while its rhythm is
    /// not known.
    pub fn late_after(&self, bounds: &Bounds) -> Option<i64> {
        if !self.known(bounds) {
            return None;
        }
        let expected = (self.interval as f64 * bounds.late_factor) as i64 + 4 * self.spread;
        Some(expected.max(micros(bounds.late_floor)))
    }

    /// How long after its last arrival a device without a live connection is offline.
    pub fn offline_after(&self, bounds: &Bounds) -> i64 {
        let floor = micros(bounds.offline_floor);
        match self.known(bounds) {
            true => ((self.interval as f64 * bounds.offline_factor) as i64).max(floor),
            false => floor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000;

    fn bounds() -> Bounds {
        Bounds {
            late_factor: 3.0,
            late_floor: Duration::from_millis(500),
            offline_factor: 10.0,
            offline_floor: Duration::from_secs(60),
            min_samples: 5,
        }
    }

    fn steady(every: i64, n: usize) -> Rhythm {
        let mut rhythm = Rhythm::default();
        for _ in 0..n {
            rhythm.sample(every);
        }
        rhythm
    }

    #[test]
    fn a_device_is_never_late_before_its_rhythm_is_known() {
        let rhythm = steady(200 * MS, 4);
        assert_eq!(rhythm.late_after(&bounds()), None);
        assert_eq!(
            rhythm.offline_after(&bounds()),
            60_000 * MS,
            "the floor alone"
        );
    }

    #[test]
    fn a_fast_device_is_late_within_about_a_second() {
        let late = steady(200 * MS, 20).late_after(&bounds()).unwrap();
        assert!((500 * MS..=1_000 * MS).contains(&late), "{late}");
    }

    #[test]
    fn a_slow_device_is_not_late_after_a_minute() {
        let late = steady(600_000 * MS, 20).late_after(&bounds()).unwrap();
        assert!(late > 60_000 * MS * 10, "{late}");
    }

    #[test]
    fn jitter_widens_the_margin() {
        let mut jittery = Rhythm::default();
        for n in 0..40 {
            jittery.sample(if n % 2 == 0 { 100 * MS } else { 300 * MS });
        }
        let steady = steady(200 * MS, 40);
        assert!(jittery.late_after(&bounds()) > steady.late_after(&bounds()));
    }

    #[test]
    fn one_outage_moves_the_estimate_by_a_bounded_step() {
        let mut rhythm = steady(1_000 * MS, 20);
        rhythm.sample(3_600_000 * MS);
        assert!(rhythm.interval < 2_000 * MS, "{}", rhythm.interval);
    }

    #[test]
    fn a_change_of_rhythm_is_followed() {
        let mut rhythm = steady(1_000 * MS, 20);
        for _ in 0..60 {
            rhythm.sample(10_000 * MS);
        }
        assert!(rhythm.interval > 9_000 * MS, "{}", rhythm.interval);
    }

    #[test]
    fn negative_intervals_are_ignored() {
        let mut rhythm = steady(1_000 * MS, 5);
        rhythm.sample(-5);
        assert_eq!(rhythm, steady(1_000 * MS, 5));
    }
}

//! The usual level of each hour of the day, and how far a value lies from it: many series
//! follow a daily rhythm (traffic, load, temperature), and a value usual for the day may
//! be unusual for its hour. The residual (value minus its hour's level) has a range of its
//! own, and a new record of the residual is reported like a new record of the value.

use super::range::Range;

/// Bins of the day, by the reading's timestamp (UTC).
const HOURS: usize = 24;
const HOUR_MICROS: i64 = 3_600_000_000;
/// Weight of the newest value in its hour's level, once the hour has that many values.
const GAIN: f64 = 0.05;
/// Values an hour must have shown before its residuals count (and are learnt): the range
/// of residuals never shrinks, so residuals from a level still resting on a few values
/// would widen it for good and dull the hour signal.
const MIN_VALUES: u32 = 11;
/// Residuals the range must have learnt before a record of it counts: its first records
/// (a range of one or two residuals) mean nothing, like the detector's own warm-up. This
/// matters when the hours fill slowly (hourly readings reach `MIN_VALUES` after the
/// detector's warm-up).
const RESIDUAL_WARM_UP: u32 = 50;

/// Counts from which `1 / count` is at most `GAIN` (1/20 is `GAIN` exactly).
const GAIN_FROM: u32 = 20;

/// `max(1 / count, GAIN)`, without the division once it is `GAIN`.
fn gain(count: u32) -> f64 {
    if count >= GAIN_FROM {
        GAIN
    } else {
        (1.0 / f64::from(count)).max(GAIN)
    }
}

#[derive(Debug, Clone)]
pub(super) struct Daily {
    level: [f64; HOURS],
    count: [u32; HOURS],
    residual: Range,
    /// Residuals learnt so far, counted up to `RESIDUAL_WARM_UP`.
    learnt: u32,
}

impl Daily {
    pub fn new() -> Self {
        Self {
            level: [0.0; HOURS],
            count: [0; HOURS],
            residual: Range::new(),
            learnt: 0,
        }
    }

    /// How far the residual of `value` (finite, at most `LIMIT` in magnitude) lies outside
    /// the range of past residuals, in widths of that range (0 inside, while its hour is
    /// still learning, or while the range has learnt fewer than `RESIDUAL_WARM_UP`
    /// residuals); then learns it. Any timestamp is accepted, in any order.
    pub fn observe(&mut self, at_micros: i64, value: f64) -> f64 {
        // rem_euclid is in 0..24 for every i64, negative ones included.
        let hour = (at_micros.rem_euclid(HOURS as i64 * HOUR_MICROS) / HOUR_MICROS) as usize;
        let count = self.count[hour];
        let level = &mut self.level[hour];
        let mut excess = 0.0;
        if count >= MIN_VALUES {
            let residual = value - *level;
            if self.learnt >= RESIDUAL_WARM_UP {
                excess = self.residual.excess(residual);
            } else {
                self.learnt += 1;
            }
            self.residual.learn(residual);
        }
        let count = count.saturating_add(1);
        self.count[hour] = count;
        *level += gain(count) * (value - *level);
        excess
    }
}

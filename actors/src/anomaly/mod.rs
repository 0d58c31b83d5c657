//! Streaming anomaly detection: one `Detector` per series (a device's sensor type and one
//! numeric field of its `data`), fed every value in arrival order, answering a score in
//! [0, 1] from the values up to that one only.
//!
//! The detector looks for values the series has never shown before, in four ways, each
//! measured in "spans" (the width of the range of values seen so far, so that the same
//! parameters fit every series whatever its unit or magnitude):
//!
//! * a new record: the value lies outside the lowest..highest range seen so far;
//! * a new record of the smoothed value (an exponential average over about ten values),
//!   which catches level shifts and bursts that stay inside the raw range;
//! * a new record of the value's distance from the usual level of its hour of the day
//!   (UTC, from the reading's timestamp; [`daily`]): a value ordinary for the day may be
//!   extraordinary for its hour, as traffic at night at the daytime level. The distance is
//!   measured in widths of the range such distances have shown, so a series without a
//!   daily rhythm (or whose timestamps are not real times) only sees records of a
//!   detrended value. An hour's distances count once its level rests on 11 values, and
//!   records of them once that range has learnt 50 distances;
//! * a new shape: the last eight values, seen as one point, are far from every prototype
//!   kept in a small adaptive-resonance memory ([`art`]), judged against how far windows
//!   usually are from the memory for this series, and counted only when more surprising
//!   than any shape of the last few thousand values ([`surprise`]), so that a noisy series
//!   whose shapes are always a little new stops reporting them.
//!
//! The four are fused into a score by taking the strongest ([`fuse`]); a new shape alone
//! scores at most 0.4, a record from the hour's level at most 0.7, and a record of the
//! smoothed value half as much as a raw record of the same size. After an alarm (a score
//! of 0.1 or more) the detector rests for 100 values, reporting only something at least
//! twice as strong, so one event gives one short spike rather than a plateau. The first
//! 150 values only teach.
//!
//! Scores are ranks, not probabilities: 0 is "nothing new", and a score rises with how far
//! outside what has been seen the value or shape is (a new record of 1 % of the range
//! scores about 0.1, 10 % about 0.5). Choose a score floor by running the detector over
//! labelled history and sweeping the floor: on the Numenta Anomaly Benchmark (v1.1, all
//! 58 series) the best floor is 0.13 for all three profiles (standard score 71.2, low
//! false positives 60.8, low false negatives 76.5); raise it to trade missed events for
//! fewer false alarms.
//!
//! Cost: about 0.1 µs of CPU per value (NAB example, x86-64 without AVX), most of it the
//! search of the nearest of the 32 prototypes, which is branch-free and vectorised; and
//! 2,704 bytes per series (`size_of::<Detector>()` plus one fixed heap block).

mod art;
mod daily;
mod fuse;
mod range;
mod surprise;
#[cfg(test)]
mod tests;

use art::{Memory, DIM};
use daily::Daily;
use range::{Range, LIMIT};
use surprise::Surprise;

/// Values learnt before any score other than 0 is given.
const WARM_UP: u64 = 150;
/// Weight of the newest value in the smoothed value.
const SMOOTHING: f64 = 0.1;

/// The state kept for one series.
#[derive(Debug, Clone)]
pub struct Detector {
    seen: u64,
    /// Range of the raw values.
    range: Range,
    /// Exponentially smoothed value, and the range it has shown.
    smooth: f64,
    smooth_range: Range,
    /// The last `DIM` values, oldest first.
    window: [f64; DIM],
    memory: Memory,
    /// Usual level of each hour of the day.
    daily: Daily,
    surprise: Surprise,
    rest: fuse::Rest,
}

impl Default for Detector {
    fn default() -> Self {
        Self::new()
    }
}

impl Detector {
    pub fn new() -> Self {
        Self {
            seen: 0,
            range: Range::new(),
            smooth: 0.0,
            smooth_range: Range::new(),
            window: [0.0; DIM],
            memory: Memory::new(),
            daily: Daily::new(),
            surprise: Surprise::new(),
            rest: fuse::Rest::new(),
        }
    }

    /// Scores `value`, observed at `at_micros` (microseconds since the epoch), then learns it.
    ///
    /// NaN is ignored (score 0, nothing learnt); infinities and magnitudes beyond 1e300 are
    /// clamped to ±1e300. Values are taken in arrival order; the timestamp only chooses the
    /// hour of the day whose usual level the value is compared with, so timestamps out of
    /// order, repeated or far off do no harm beyond a poorer comparison.
    pub fn score(&mut self, at_micros: i64, value: f64) -> f64 {
        if value.is_nan() {
            return 0.0;
        }
        let value = value.clamp(-LIMIT, LIMIT);
        self.seen = self.seen.saturating_add(1);

        let record = self.range.excess(value);
        self.range.learn(value);

        if self.seen == 1 {
            self.smooth = value;
        }
        self.smooth += SMOOTHING * (value - self.smooth);
        let smooth_record = self.smooth_range.excess(self.smooth);
        self.smooth_range.learn(self.smooth);

        self.window.copy_within(1.., 0);
        self.window[DIM - 1] = value;
        let shape = if self.seen >= DIM as u64 {
            let distance = self.memory.present(&self.window, self.range.span());
            self.surprise.observe(distance)
        } else {
            0.0
        };

        let daily = self.daily.observe(at_micros, value);

        if self.seen <= WARM_UP {
            return 0.0;
        }
        let raw = fuse::fuse(record, smooth_record, daily, shape);
        self.rest.filter(self.seen, raw)
    }

    /// Bytes this series holds beyond `size_of::<Detector>()`.
    pub fn heap_bytes(&self) -> usize {
        self.memory.heap_bytes()
    }
}

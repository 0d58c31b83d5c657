//! Turning the three measures into one score, and resting after an alarm.

/// Excess (in spans) at which a new record scores 0.5.
const RECORD_HALF: f64 = 0.1;
/// The same for the smoothed value, whose records are weaker evidence (bursts of noise).
const SMOOTH_RECORD_HALF: f64 = 0.2;
/// The same for a record of the residual from the hour's usual level, and the highest
/// score it alone can reach.
const DAILY_HALF: f64 = 0.3;
const DAILY_WEIGHT: f64 = 0.7;
/// Surprise (in mean absolute deviations) below which a new shape scores nothing, and the
/// scale over which its score approaches its ceiling.
const SHAPE_FROM: f64 = 4.0;
const SHAPE_SCALE: f64 = 6.0;
/// Highest score a new shape alone can reach: shapes are weaker evidence than records.
const SHAPE_WEIGHT: f64 = 0.4;

/// A score at least this high is an alarm, after which the detector rests.
const ALARM: f64 = 0.1;
/// Values after an alarm during which only a clearly stronger score is reported.
const REST: u64 = 100;

/// The score in [0, 1] from the excess of the value, of the smoothed value and of the
/// residual from the hour's level over their ranges (in spans) and the surprise of the shape.
pub(super) fn fuse(record: f64, smooth_record: f64, daily: f64, shape: f64) -> f64 {
    // `excess / (excess + half)`, without the division for the usual zero (same zero).
    let from_records = |excess: f64, half: f64| {
        if excess == 0.0 {
            excess
        } else {
            excess / (excess + half)
        }
    };
    let from_shape = if shape > SHAPE_FROM {
        SHAPE_WEIGHT * (1.0 - (-(shape - SHAPE_FROM) / SHAPE_SCALE).exp())
    } else {
        0.0
    };
    let score = from_records(record, RECORD_HALF)
        .max(from_records(smooth_record, SMOOTH_RECORD_HALF))
        .max(DAILY_WEIGHT * from_records(daily, DAILY_HALF))
        .max(from_shape);
    if score.is_finite() {
        score.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Quiet after an alarm: one event, one spike.
#[derive(Debug, Clone)]
pub(super) struct Rest {
    /// When the last alarm was, and its score.
    last: Option<(u64, f64)>,
}

impl Rest {
    pub fn new() -> Self {
        Self { last: None }
    }

    /// The score to report for `score` at step `now`.
    pub fn filter(&mut self, now: u64, score: f64) -> f64 {
        if let Some((at, level)) = self.last {
            if now.saturating_sub(at) <= REST && score <= (2.0 * level).min(0.9) {
                return 0.0;
            }
        }
        if score >= ALARM {
            self.last = Some((now, score));
        }
        score
    }
}

//! Streaming anomaly detection: one `Detector` per series (a device's sensor type and one
//! numeric field of its `data`), fed every value in arrival order, answering a score in
//! [0, 1] from the values up to that one only.

/// The state kept for one series.
#[derive(Debug, Clone)]
pub struct Detector {
    seen: u64,
    mean: f64,
    variance: f64,
}

/// Values seen before a score other than 0 is given.
const WARM_UP: u64 = 32;
/// Weight of the newest value in the running mean and variance.
const GAIN: f64 = 1.0 / 64.0;

impl Default for Detector {
    fn default() -> Self {
        Self::new()
    }
}

impl Detector {
    pub fn new() -> Self {
        Self { seen: 0, mean: 0.0, variance: 0.0 }
    }

    /// Scores `value`, observed at `at_micros` (microseconds since the epoch), then learns it.
    pub fn score(&mut self, _at_micros: i64, value: f64) -> f64 {
        if !value.is_finite() {
            return 0.0;
        }
        self.seen += 1;
        if self.seen == 1 {
            self.mean = value;
            return 0.0;
        }
        let deviation = value - self.mean;
        let z = deviation.abs() / self.variance.sqrt().max(f64::EPSILON);
        self.mean += GAIN * deviation;
        self.variance = (1.0 - GAIN) * (self.variance + GAIN * deviation * deviation);
        if self.seen <= WARM_UP {
            return 0.0;
        }
        // 0 within three deviations, rising to 1 at six.
        ((z - 3.0) / 3.0).clamp(0.0, 1.0)
    }

    /// Bytes this series holds beyond `size_of::<Detector>()`.
    pub fn heap_bytes(&self) -> usize {
        0
    }
}

//! How unusual a distance is for this series: a running mean and mean absolute deviation
//! of past distances, and a z-like ratio against them. Only a ratio above every recent one
//! counts (the highest past ratio fades by `FADE` per value), so a series whose shapes are
//! always a little new (noise) stops reporting them, while a calm one still can.

/// Weight of the newest distance once the warm-up is over.
const GAIN: f64 = 1.0 / 256.0;
/// Distances are capped here so one absurd value cannot blow the statistics up.
const CAP: f64 = 4.0;
/// Per-value fading of the highest past ratio (a half-life of about 1,400 values).
const FADE: f64 = 0.9995;

#[derive(Debug, Clone)]
pub(super) struct Surprise {
    count: u32,
    mean: f64,
    spread: f64,
    /// Highest recent ratio, fading.
    peak: f64,
}

impl Surprise {
    pub fn new() -> Self {
        Self {
            count: 0,
            mean: 0.0,
            spread: 0.0,
            peak: 0.0,
        }
    }

    /// Deviations of `distance` above the usual, in mean absolute deviations, if more than
    /// any recent one, else 0; then learns it (plain averages for the first 256 distances,
    /// an exponential average after).
    pub fn observe(&mut self, distance: f64) -> f64 {
        let distance = if distance.is_finite() {
            distance.min(CAP)
        } else {
            CAP
        };
        let z = (distance - self.mean) / (self.spread + 1e-3);
        self.count = self.count.saturating_add(1);
        // max(1 / count, GAIN), without the division once it is GAIN (1/256) exactly.
        let gain = if self.count >= 256 {
            GAIN
        } else {
            (1.0 / f64::from(self.count)).max(GAIN)
        };
        self.mean += gain * (distance - self.mean);
        self.spread += gain * ((distance - self.mean).abs() - self.spread);
        if self.count == 1 {
            return 0.0;
        }
        let bar = self.peak;
        self.peak = (self.peak * FADE).max(z);
        if z > bar {
            z
        } else {
            0.0
        }
    }
}

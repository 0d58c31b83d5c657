//! The value range a series has shown so far: the frame in which distances are measured.

/// Finite inputs are clamped to this magnitude so that differences never overflow.
pub(super) const LIMIT: f64 = 1e300;

/// Lowest and highest value seen so far.
#[derive(Debug, Clone)]
pub(super) struct Range {
    pub lo: f64,
    pub hi: f64,
}

impl Range {
    pub fn new() -> Self {
        Self {
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lo > self.hi
    }

    /// The width used to scale distances: never zero, never infinite.
    pub fn span(&self) -> f64 {
        if self.is_empty() {
            return 1.0;
        }
        let width = self.hi - self.lo;
        let magnitude = self.hi.abs().max(self.lo.abs());
        width.max(magnitude * 1e-9).max(1e-12)
    }

    /// How far `value` lies outside the range, in spans (0 inside).
    pub fn excess(&self, value: f64) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        let outside = (value - self.hi).max(self.lo - value).max(0.0);
        outside / self.span()
    }

    pub fn learn(&mut self, value: f64) {
        self.lo = self.lo.min(value);
        self.hi = self.hi.max(value);
    }
}

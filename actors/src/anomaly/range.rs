//! The value range a series has shown so far: the frame in which distances are measured.

/// Finite inputs are clamped to this magnitude so that differences never overflow.
pub(super) const LIMIT: f64 = 1e300;

/// Lowest and highest value seen so far.
#[derive(Debug, Clone)]
pub(super) struct Range {
    lo: f64,
    hi: f64,
    /// `width()` of `lo..hi`, kept up to date by `learn` (the range changes rarely).
    span: f64,
}

impl Range {
    pub fn new() -> Self {
        Self {
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
            span: 1.0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lo > self.hi
    }

    /// The width used to scale distances: never zero, never infinite.
    pub fn span(&self) -> f64 {
        self.span
    }

    fn width(&self) -> f64 {
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
        if outside == 0.0 {
            // Inside, the usual case: `outside / span` without the division (same zero).
            return outside;
        }
        outside / self.span
    }

    /// Learns `value` (not NaN).
    pub fn learn(&mut self, value: f64) {
        let lo = self.lo.min(value);
        let hi = self.hi.max(value);
        if lo.to_bits() != self.lo.to_bits() || hi.to_bits() != self.hi.to_bits() {
            self.lo = lo;
            self.hi = hi;
            self.span = self.width();
        }
    }
}

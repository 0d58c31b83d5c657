//! A bounded memory of the shapes a series has shown: the last `DIM` values seen as one
//! point, kept as up to `SLOTS` prototypes (adaptive resonance in the simplest form). A
//! window far from every prototype is novel: it becomes a prototype of its own, replacing
//! the one least recently matched when the memory is full.

pub(super) const DIM: usize = 8;
pub(super) const SLOTS: usize = 32;
/// How far a matched prototype moves toward the window.
const LEARN: f64 = 0.1;
/// Distance (max norm, in spans) within which a window matches a prototype.
const VIGILANCE: f64 = 0.2;

#[derive(Debug, Clone)]
pub(super) struct Memory {
    /// `SLOTS * DIM` coordinates, raw units.
    points: Vec<f64>,
    last_used: Vec<u32>,
    used: usize,
    clock: u32,
}

impl Memory {
    pub fn new() -> Self {
        Self {
            points: vec![0.0; SLOTS * DIM],
            last_used: vec![0; SLOTS],
            used: 0,
            clock: 0,
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.points.capacity() * std::mem::size_of::<f64>()
            + self.last_used.capacity() * std::mem::size_of::<u32>()
    }

    /// Distance (max norm, divided by `span`) from `window` to its nearest prototype, then
    /// learns the window: the nearest prototype moves toward it when within `vigilance`,
    /// otherwise the window becomes a prototype. Returns infinity for the very first window.
    pub fn present(&mut self, window: &[f64; DIM], span: f64) -> f64 {
        self.clock = self.clock.wrapping_add(1);
        let mut best = f64::INFINITY;
        let mut best_slot = 0;
        for slot in 0..self.used {
            let p = &self.points[slot * DIM..(slot + 1) * DIM];
            let mut d = 0.0f64;
            for k in 0..DIM {
                d = d.max((p[k] - window[k]).abs());
                if d >= best {
                    break;
                }
            }
            if d < best {
                best = d;
                best_slot = slot;
            }
        }
        let distance = best / span;
        if distance <= VIGILANCE {
            let p = &mut self.points[best_slot * DIM..(best_slot + 1) * DIM];
            for k in 0..DIM {
                p[k] += LEARN * (window[k] - p[k]);
            }
            self.last_used[best_slot] = self.clock;
        } else {
            let slot = if self.used < SLOTS {
                self.used += 1;
                self.used - 1
            } else {
                let mut oldest = 0;
                for s in 1..SLOTS {
                    if self.clock.wrapping_sub(self.last_used[s])
                        > self.clock.wrapping_sub(self.last_used[oldest])
                    {
                        oldest = s;
                    }
                }
                oldest
            };
            self.points[slot * DIM..(slot + 1) * DIM].copy_from_slice(window);
            self.last_used[slot] = self.clock;
        }
        distance
    }
}

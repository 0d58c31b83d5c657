//! A bounded memory of the shapes a series has shown: the last `DIM` values seen as one
//! point, kept as up to `SLOTS` prototypes (adaptive resonance in the simplest form). A
//! window far from every prototype is novel: it becomes a prototype of its own, replacing
//! the one least recently matched when the memory is full.
//!
//! The prototypes are stored coordinate by coordinate (`DIM` rows of `SLOTS` values), and
//! the slots not yet used hold infinity, so that the distances to all of them are computed
//! at once, without branches, a few slots per instruction: this search is most of the
//! detector's cost.

pub(super) const DIM: usize = 8;
pub(super) const SLOTS: usize = 32;
/// How far a matched prototype moves toward the window.
const LEARN: f64 = 0.1;
/// Distance (max norm, in spans) within which a window matches a prototype.
const VIGILANCE: f64 = 0.2;
/// Slots searched together: one group of independent running maxima.
const LANES: usize = 8;

/// The prototypes, on the heap so that a `Detector` stays small to move.
#[derive(Debug, Clone)]
struct Prototypes {
    /// `coords[k][slot]`: coordinate `k` (raw units) of each prototype; infinity in unused
    /// slots, whose distance is then infinite, never below that of a used one.
    coords: [[f64; SLOTS]; DIM],
    last_used: [u32; SLOTS],
}

#[derive(Debug, Clone)]
pub(super) struct Memory {
    prototypes: Box<Prototypes>,
    used: usize,
    clock: u32,
}

/// The larger of two distances; they are never NaN (finite windows and prototypes, or an
/// infinite unused slot minus a finite window), so this is `f64::max` without its NaN test.
#[inline(always)]
fn larger(a: f64, b: f64) -> f64 {
    if a > b {
        a
    } else {
        b
    }
}

impl Memory {
    pub fn new() -> Self {
        Self {
            prototypes: Box::new(Prototypes {
                coords: [[f64::INFINITY; SLOTS]; DIM],
                last_used: [0; SLOTS],
            }),
            used: 0,
            clock: 0,
        }
    }

    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Prototypes>()
    }

    /// Distance (max norm, divided by `span`) from `window` (finite values) to its nearest
    /// prototype, then learns the window: the nearest prototype moves toward it when within
    /// `vigilance`, otherwise the window becomes a prototype. Returns infinity for the very
    /// first window.
    pub fn present(&mut self, window: &[f64; DIM], span: f64) -> f64 {
        self.clock = self.clock.wrapping_add(1);
        let p = &mut *self.prototypes;
        let (best, best_slot) = nearest(&p.coords, window, self.used.div_ceil(LANES));
        let distance = best / span;
        if distance <= VIGILANCE {
            for (k, &w) in window.iter().enumerate() {
                let c = &mut p.coords[k][best_slot];
                *c += LEARN * (w - *c);
            }
            p.last_used[best_slot] = self.clock;
        } else {
            let slot = if self.used < SLOTS {
                self.used += 1;
                self.used - 1
            } else {
                let mut oldest = 0;
                for s in 1..SLOTS {
                    if self.clock.wrapping_sub(p.last_used[s])
                        > self.clock.wrapping_sub(p.last_used[oldest])
                    {
                        oldest = s;
                    }
                }
                oldest
            };
            for (k, &w) in window.iter().enumerate() {
                p.coords[k][slot] = w;
            }
            p.last_used[slot] = self.clock;
        }
        distance
    }
}

/// The smallest max-norm distance from `window` to a prototype, and the first slot at that
/// distance (slot 0 and infinity when no slot is used), searching the first `groups` groups
/// of `LANES` slots (the later ones are unused).
#[inline(always)]
fn nearest(coords: &[[f64; SLOTS]; DIM], window: &[f64; DIM], groups: usize) -> (f64, usize) {
    // Per lane: the smallest distance so far and its group, the first one on ties.
    let mut best = [f64::INFINITY; LANES];
    let mut best_group = [0usize; LANES];
    for group in 0..groups.min(SLOTS / LANES) {
        let mut d = [0.0f64; LANES];
        for k in 0..DIM {
            let w = window[k];
            let row: &[f64; LANES] = coords[k][group * LANES..][..LANES]
                .try_into()
                .expect("LANES values");
            for j in 0..LANES {
                d[j] = larger(d[j], (row[j] - w).abs());
            }
        }
        for j in 0..LANES {
            if d[j] < best[j] {
                best[j] = d[j];
                best_group[j] = group;
            }
        }
    }
    // Across lanes: the smallest, and on ties the lowest slot.
    let mut min = best[0];
    let mut slot = best_group[0] * LANES;
    for j in 1..LANES {
        let s = best_group[j] * LANES + j;
        if best[j] < min || (best[j] == min && s < slot) {
            min = best[j];
            slot = s;
        }
    }
    (min, slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The search as first written: slot by slot, the first strictly nearest.
    fn reference(points: &[[f64; DIM]], window: &[f64; DIM]) -> (f64, usize) {
        let mut best = f64::INFINITY;
        let mut best_slot = 0;
        for (slot, p) in points.iter().enumerate() {
            let d = (0..DIM).fold(0.0f64, |d, k| d.max((p[k] - window[k]).abs()));
            if d < best {
                best = d;
                best_slot = slot;
            }
        }
        (best, best_slot)
    }

    #[test]
    fn nearest_is_the_first_strictly_nearest() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Few distinct values, so that equal distances (ties) are common.
            (state % 7) as f64 - 3.0
        };
        for used in 0..=SLOTS {
            for _ in 0..50 {
                let points: Vec<[f64; DIM]> =
                    (0..used).map(|_| std::array::from_fn(|_| next())).collect();
                let mut coords = [[f64::INFINITY; SLOTS]; DIM];
                for (slot, p) in points.iter().enumerate() {
                    for (row, &c) in coords.iter_mut().zip(p) {
                        row[slot] = c;
                    }
                }
                let window = std::array::from_fn(|_| next());
                let (distance, slot) = nearest(&coords, &window, used.div_ceil(LANES));
                let (want_distance, want_slot) = reference(&points, &window);
                assert_eq!(distance.to_bits(), want_distance.to_bits());
                assert_eq!(slot, want_slot, "{used} slots used");
            }
        }
    }
}

//! What a detection at each row of a series is worth, before a profile weighs it (NAB's
//! "scaled sigmoid"). Inside an anomaly window a detection is rewarded more the earlier it
//! comes: the reward falls from 1 at the window's first row towards 0 at its end. Outside, a
//! detection is a false positive: shortly after a window it costs little (the anomaly may still
//! be unfolding), further away up to 1; before the first window it always costs 1.

use crate::corpus::{probationary_length, Window};

/// The scaled sigmoid of NAB at `position`, a row's place relative to a window's end in
/// window widths: -1 at the window's first row (≈ 0.987), 0 just past its end, 1 one width
/// beyond (≈ -0.987); -1 exactly beyond 3 widths.
pub fn scaled_sigmoid(position: f64) -> f64 {
    if position > 3.0 {
        -1.0
    } else {
        // 2 · sigmoid(-5 · position) - 1, written as NAB computes it.
        2.0 * (1.0 / (1.0 + (5.0 * position).exp())) - 1.0
    }
}

/// The largest reward, at a window's first row: in-window rewards are divided by it so that
/// the earliest detection is worth exactly a profile's true-positive weight.
pub fn earliest_reward() -> f64 {
    scaled_sigmoid(-1.0)
}

/// Where a scored row stands, before a profile weighs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Place {
    /// In the window numbered `window` (numbered across the corpus, so that every window is
    /// counted once), where a detection earns `sigmoid` (in (0, 0.987]).
    InWindow { window: usize, sigmoid: f64 },
    /// Outside every window, where a detection costs `sigmoid` (in [-1, 0)).
    Outside { sigmoid: f64 },
}

/// The place of each row of a series of `rows` rows with these `windows` (in order, not
/// overlapping), numbered from `first_window`; `None` for the rows of the probationary period,
/// which are never scored (a window inside it counts neither as found nor as missed).
pub fn places(rows: usize, windows: &[Window], first_window: usize) -> Vec<Option<Place>> {
    let probationary = probationary_length(rows);
    let mut upcoming = windows.iter().enumerate().peekable();
    let mut current: Option<(usize, &Window)> = None;
    let mut previous: Option<&Window> = None;
    let mut places = Vec::with_capacity(rows);
    for row in 0..rows {
        if let Some(&(number, window)) = upcoming.peek() {
            if window.first == row {
                current = Some((number, window));
                upcoming.next();
            }
        }
        let place = match (current, previous) {
            (Some((number, window)), _) => {
                let width = (window.last - window.first + 1) as f64;
                let position = -((window.last - row + 1) as f64) / width;
                Place::InWindow {
                    window: first_window + number,
                    sigmoid: scaled_sigmoid(position),
                }
            }
            (None, None) => Place::Outside { sigmoid: -1.0 },
            (None, Some(window)) => {
                // NAB measures the distance past a window in (width - 1) rows, its first to its
                // last; a one-row window gives an infinite position, so the full cost (NAB
                // itself would divide by zero).
                let span = (window.last - window.first) as f64;
                Place::Outside {
                    sigmoid: scaled_sigmoid((row - window.last) as f64 / span),
                }
            }
        };
        places.push((row >= probationary).then_some(place));
        if let Some((_, window)) = current.filter(|(_, window)| window.last == row) {
            previous = Some(window);
            current = None;
        }
    }
    places
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn scaled_sigmoid_matches_nab_s_values() {
        // 2 / (1 + e^(5x)) - 1, computed by hand.
        assert!(close(scaled_sigmoid(-1.0), 0.986_614_298_151_430_5));
        assert!(close(scaled_sigmoid(-0.5), 0.848_283_639_957_513_1));
        assert_eq!(scaled_sigmoid(0.0), 0.0);
        assert!(close(scaled_sigmoid(1.0), -0.986_614_298_151_430_3));
        assert!(close(scaled_sigmoid(3.0), -0.999_999_388_195_546_1));
        assert_eq!(scaled_sigmoid(3.000_001), -1.0);
    }

    fn window(first: usize, last: usize) -> Window {
        Window {
            first,
            last,
            start_micros: 0,
            end_micros: 0,
        }
    }

    fn sigmoids(places: &[Option<Place>]) -> Vec<Option<f64>> {
        places
            .iter()
            .map(|place| {
                place.map(|place| match place {
                    Place::InWindow { sigmoid, .. } | Place::Outside { sigmoid } => sigmoid,
                })
            })
            .collect()
    }

    #[test]
    fn rows_before_in_and_after_a_window() {
        // 10 rows: the first (15 % of 10, floored) is probationary; the window is rows 4..=6.
        let places = places(10, &[window(4, 6)], 7);
        let expected = [
            None,
            Some(-1.0), // before any window: the full cost, however close the window
            Some(-1.0),
            Some(-1.0),
            Some(0.986_614_298_151_430_5),  // position -3/3
            Some(0.931_109_608_667_577_4),  // -2/3
            Some(0.682_261_790_238_169_8),  // -1/3
            Some(-0.848_283_639_957_512_9), // 1 row past, over width - 1 = 2 rows: 0.5
            Some(-0.986_614_298_151_430_3), // 2/2
            Some(-0.998_894_442_726_152_8), // 3/2
        ];
        for (row, (got, want)) in sigmoids(&places).iter().zip(expected).enumerate() {
            match (got, want) {
                (Some(got), Some(want)) => assert!(close(*got, want), "row {row}: {got} != {want}"),
                _ => assert_eq!(*got, want, "row {row}"),
            }
        }
        assert!(matches!(places[5], Some(Place::InWindow { window: 7, .. })));
    }

    #[test]
    fn false_positives_are_measured_from_the_window_before_not_the_next() {
        // Windows 1..=2 and 6..=7 in 20 rows (probationary: 3 rows). Row 5 is just before the
        // second window but 3 rows past the first, whose last row is 1 row after its first.
        let places = places(20, &[window(1, 2), window(6, 7)], 0);
        let sigmoids = sigmoids(&places);
        assert_eq!(&sigmoids[..3], &[None, None, None]);
        assert!(close(sigmoids[3].unwrap(), -0.986_614_298_151_430_3)); // 1 / 1
        assert!(close(sigmoids[5].unwrap(), -0.999_999_388_195_546_1)); // 3 / 1
        assert!(matches!(places[6], Some(Place::InWindow { window: 1, .. })));
        assert!(close(sigmoids[8].unwrap(), -0.986_614_298_151_430_3)); // 1 / 1 past the second
        assert!(close(sigmoids[9].unwrap(), -0.999_909_204_262_595_1)); // 2 / 1
        assert_eq!(sigmoids[11], Some(-1.0)); // 4 / 1: beyond 3 widths
    }

    #[test]
    fn a_window_in_the_probationary_period_is_not_scored_even_in_part() {
        // 20 rows: rows 0..=2 are probationary; the window 1..=4 keeps its width (4) for the
        // rows after the period: row 3 is at -(4 - 3 + 1) / 4.
        let places = places(20, &[window(1, 4)], 0);
        assert_eq!(&places[..3], &[None, None, None]);
        assert_eq!(
            places[3],
            Some(Place::InWindow {
                window: 0,
                sigmoid: scaled_sigmoid(-0.5)
            })
        );
    }

    #[test]
    fn a_one_row_window_costs_fully_after_it() {
        let places = places(10, &[window(3, 3)], 0);
        assert!(matches!(places[3], Some(Place::InWindow { .. })));
        assert_eq!(places[4], Some(Place::Outside { sigmoid: -1.0 }));
    }
}

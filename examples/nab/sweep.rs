//! The threshold sweep: a detector's anomaly scores become detections at a threshold (every
//! row scoring at least it), and NAB picks, per profile, the threshold that maximises the score
//! of the whole corpus. Rows are sorted by anomaly score once; lowering the threshold from
//! above 1 to each distinct score in turn adds that score's rows as detections, and the corpus
//! score is updated row by row: O(n log n) for the sort, O(n) per profile.

use crate::profiles::Profile;
use crate::scoring::{earliest_reward, Place};

/// A corpus's scorable rows (probationary ones left out), by anomaly score, highest first.
pub struct Sweep {
    rows: Vec<Row>,
    /// Windows with at least one scorable row: each is missed until a detection finds it.
    windows: usize,
    /// Window numbers go up to this (excluded).
    window_numbers: usize,
}

#[derive(Clone, Copy)]
struct Row {
    anomaly_score: f64,
    place: Place,
}

/// The corpus's score with every row scoring at least `threshold` as a detection, and the
/// rows and windows counted as NAB counts them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThresholdScore {
    pub threshold: f64,
    pub score: f64,
    /// Detected rows inside windows (the later detections of a window included).
    pub true_positives: usize,
    /// Detected rows outside windows.
    pub false_positives: usize,
    pub true_negatives: usize,
    pub false_negatives: usize,
    /// Windows with at least one detection.
    pub windows_found: usize,
    /// Windows with at least one scorable row.
    pub windows: usize,
}

/// Above every anomaly score (they are in [0, 1]): the threshold that detects nothing.
pub const ABOVE_ALL: f64 = 1.1;

impl Sweep {
    /// `rows`: each row's anomaly score and place (`None`: probationary).
    pub fn new(rows: impl IntoIterator<Item = (f64, Option<Place>)>) -> Self {
        let mut rows: Vec<Row> = rows
            .into_iter()
            .filter_map(|(anomaly_score, place)| {
                Some(Row {
                    anomaly_score,
                    place: place?,
                })
            })
            .collect();
        // Stable, so equal scores keep corpus order (which changes nothing but float rounding).
        rows.sort_by(|a, b| b.anomaly_score.total_cmp(&a.anomaly_score));
        let window_numbers = rows
            .iter()
            .filter_map(|row| window_of(row.place))
            .max()
            .map_or(0, |n| n + 1);
        let mut present = vec![false; window_numbers];
        rows.iter()
            .filter_map(|row| window_of(row.place))
            .for_each(|n| present[n] = true);
        let windows = present.iter().filter(|&&p| p).count();
        Self {
            rows,
            windows,
            window_numbers,
        }
    }

    /// Every threshold's score under `profile`, from [`ABOVE_ALL`] down to the lowest anomaly
    /// score: NAB's sweep (the tests' view of it).
    #[cfg(test)]
    pub fn curve(&self, profile: &Profile) -> Vec<ThresholdScore> {
        let mut curve = Vec::new();
        self.walk(profile, |score| curve.push(score));
        curve
    }

    /// The threshold with the highest score under `profile`; of equal scores, the highest
    /// threshold (NAB sorts the curve by score with a stable sort and takes the first).
    pub fn best(&self, profile: &Profile) -> ThresholdScore {
        let mut best: Option<ThresholdScore> = None;
        self.walk(profile, |score| {
            if best.is_none_or(|best| score.score > best.score) {
                best = Some(score);
            }
        });
        best.expect("the sweep starts with the threshold above every score")
    }

    fn walk(&self, profile: &Profile, mut visit: impl FnMut(ThresholdScore)) {
        let mut tally = Tally::new(self, profile);
        visit(tally.at(ABOVE_ALL));
        let mut rows = self.rows.iter().peekable();
        while let Some(first) = rows.next() {
            let threshold = first.anomaly_score;
            tally.detect(first.place);
            while let Some(row) = rows.next_if(|row| row.anomaly_score == threshold) {
                tally.detect(row.place);
            }
            visit(tally.at(threshold));
        }
    }
}

fn window_of(place: Place) -> Option<usize> {
    match place {
        Place::InWindow { window, .. } => Some(window),
        Place::Outside { .. } => None,
    }
}

/// The score and counts as the threshold falls.
struct Tally<'a> {
    profile: &'a Profile,
    earliest_reward: f64,
    /// Per window, the best weighted reward of its detections so far; only the earliest
    /// detection of a window counts, and it has the highest reward.
    found: Vec<Option<f64>>,
    score: f64,
    counts: ThresholdScore,
}

impl<'a> Tally<'a> {
    fn new(sweep: &Sweep, profile: &'a Profile) -> Self {
        let outside = sweep
            .rows
            .iter()
            .filter(|row| window_of(row.place).is_none())
            .count();
        Self {
            profile,
            earliest_reward: earliest_reward(),
            found: vec![None; sweep.window_numbers],
            // Nothing detected yet: every window is missed.
            score: -profile.fn_weight * sweep.windows as f64,
            counts: ThresholdScore {
                threshold: ABOVE_ALL,
                score: 0.0,
                true_positives: 0,
                false_positives: 0,
                true_negatives: outside,
                false_negatives: sweep.rows.len() - outside,
                windows_found: 0,
                windows: sweep.windows,
            },
        }
    }

    fn detect(&mut self, place: Place) {
        let counts = &mut self.counts;
        match place {
            Place::Outside { sigmoid } => {
                counts.false_positives += 1;
                counts.true_negatives -= 1;
                self.score += sigmoid * self.profile.fp_weight;
            }
            Place::InWindow { window, sigmoid } => {
                counts.true_positives += 1;
                counts.false_negatives -= 1;
                let reward = sigmoid * self.profile.tp_weight / self.earliest_reward;
                match self.found[window] {
                    None => {
                        counts.windows_found += 1;
                        self.score += reward + self.profile.fn_weight;
                        self.found[window] = Some(reward);
                    }
                    Some(best) if reward > best => {
                        self.score += reward - best;
                        self.found[window] = Some(reward);
                    }
                    Some(_) => {}
                }
            }
        }
    }

    fn at(&self, threshold: f64) -> ThresholdScore {
        ThresholdScore {
            threshold,
            score: self.score,
            ..self.counts
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Window;
    use crate::profiles::standard;
    use crate::scoring::{places, scaled_sigmoid};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn window(first: usize, last: usize) -> Window {
        Window {
            first,
            last,
            start_micros: 0,
            end_micros: 0,
        }
    }

    /// The series of scoring.rs's test: 10 rows, row 0 probationary, a window at rows 4..=6.
    fn sweep(anomaly_scores: [f64; 10]) -> Sweep {
        Sweep::new(
            anomaly_scores
                .into_iter()
                .zip(places(10, &[window(4, 6)], 0)),
        )
    }

    #[test]
    fn the_curve_by_hand() {
        let curve = sweep([0.9, 0.2, 0.1, 0.1, 0.3, 0.8, 0.8, 0.5, 0.0, 0.0]).curve(&standard());
        let max = scaled_sigmoid(-1.0);
        let rows_5_and_6 = scaled_sigmoid(-2.0 / 3.0) / max; // only row 5, the earlier, counts
        let row_7 = 0.11 * scaled_sigmoid(0.5);
        let rows_8_and_9 = 0.11 * (scaled_sigmoid(1.0) + scaled_sigmoid(1.5));
        let expected = [
            (1.1, -1.0),
            (0.8, rows_5_and_6),
            (0.5, rows_5_and_6 + row_7),
            (0.3, 1.0 + row_7), // row 4, the window's first: exactly the TP weight
            (0.2, 1.0 + row_7 - 0.11),
            (0.1, 1.0 + row_7 - 0.33),
            (0.0, 1.0 + row_7 - 0.33 + rows_8_and_9),
        ];
        assert_eq!(curve.len(), expected.len());
        for (got, (threshold, score)) in curve.iter().zip(expected) {
            assert_eq!(got.threshold, threshold);
            assert!(
                close(got.score, score),
                "at {threshold}: {} != {score}",
                got.score
            );
        }
        // The probationary row 0 (0.9) is nowhere: 9 rows counted.
        let last = curve.last().unwrap();
        assert_eq!(
            (
                last.true_positives,
                last.false_positives,
                last.windows_found
            ),
            (3, 6, 1)
        );
        assert_eq!(curve[0].true_negatives + curve[0].false_negatives, 9);
        assert_eq!(curve[2].false_positives, 1);
    }

    #[test]
    fn the_best_threshold_maximises_the_score() {
        // At 0.8 rows 5 and 6 find the window (0.944); at 0.3 row 4 finds it earlier (1.0);
        // lower thresholds add false positives.
        let best = sweep([0.9, 0.2, 0.1, 0.1, 0.3, 0.8, 0.8, 0.2, 0.0, 0.0]).best(&standard());
        assert_eq!(best.threshold, 0.3);
        assert!(close(best.score, 1.0));
        assert_eq!((best.true_positives, best.false_positives), (3, 0));
    }

    #[test]
    fn of_equal_scores_the_highest_threshold_is_picked() {
        // Row 6 (0.7) adds nothing after row 5 (0.8): thresholds 0.8 and 0.7 score the same.
        let best = sweep([0.0, 0.0, 0.0, 0.0, 0.0, 0.8, 0.7, 0.0, 0.0, 0.0]).best(&standard());
        assert_eq!(best.threshold, 0.8);
        assert!(close(
            best.score,
            scaled_sigmoid(-2.0 / 3.0) / scaled_sigmoid(-1.0)
        ));
    }

    #[test]
    fn nothing_detected_scores_minus_the_missed_windows() {
        let sweep = sweep([0.0; 10]);
        let profile = Profile {
            fn_weight: 2.0,
            fp_weight: 1.0,
            ..standard()
        };
        assert_eq!(sweep.curve(&profile)[0].score, -2.0);
        // Detecting every row finds the window (+1) but costs 6 false positives (< -5.8).
        assert_eq!(sweep.best(&profile).threshold, ABOVE_ALL);
        assert_eq!(sweep.best(&profile).score, -2.0);
    }

    #[test]
    fn windows_count_across_series_and_a_probationary_one_not_at_all() {
        // Series A: 20 rows, its window 0..=1 inside the probationary period (3 rows).
        // Series B: the 10 rows above, its window numbered 1.
        let a = places(20, &[window(0, 1)], 0);
        let b = places(10, &[window(4, 6)], 1);
        let mut scores = vec![0.0; 30];
        scores[20 + 4] = 1.0; // B's window at its first row
        scores[0] = 1.0; // A's window, but probationary: neither found nor missed
        let sweep = Sweep::new(scores.into_iter().zip(a.into_iter().chain(b)));
        let curve = sweep.curve(&standard());
        assert_eq!(curve[0].score, -1.0);
        assert_eq!(
            (curve[1].threshold, curve[1].score, curve[1].windows),
            (1.0, 1.0, 1)
        );
    }
}

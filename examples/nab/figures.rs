//! A detector's figures on the corpus: its anomaly scores swept per profile, the best
//! threshold's score normalised between the null detector's and a perfect one's.

use crate::corpus::Corpus;
use crate::normalise::{normalised, null_scores, perfect_score};
use crate::profiles::Profile;
use crate::scoring::{places, Place};
use crate::sweep::{Sweep, ThresholdScore};

/// The places of every row of a corpus, worked out once for all detectors and profiles.
pub struct Scorer {
    places: Vec<Vec<Option<Place>>>,
    windows: usize,
}

/// One profile's figures for one detector.
#[derive(Debug, Clone)]
pub struct Figures {
    pub profile: String,
    /// The best threshold over the corpus and its (raw) score.
    pub best: ThresholdScore,
    /// The null detector's best score on the same files.
    pub null: f64,
    pub perfect: f64,
    /// NAB's figure: 0 for the null detector, 100 for a perfect one.
    pub normalised: f64,
}

impl Scorer {
    pub fn new(corpus: &Corpus) -> Self {
        let mut first_window = 0;
        let places = corpus
            .series
            .iter()
            .map(|series| {
                let places = places(series.readings.len(), &series.windows, first_window);
                first_window += series.windows.len();
                places
            })
            .collect();
        Self {
            places,
            windows: corpus.windows(),
        }
    }

    /// Each profile's best threshold and score for `scores` (per series, per row, as in the
    /// corpus). The sort is shared by the profiles.
    pub fn best(&self, scores: &[Vec<f64>], profiles: &[Profile]) -> Vec<ThresholdScore> {
        assert_eq!(
            scores.len(),
            self.places.len(),
            "one list of scores per series"
        );
        let rows = scores
            .iter()
            .zip(&self.places)
            .flat_map(|(scores, places)| {
                assert_eq!(scores.len(), places.len(), "one score per row");
                scores.iter().copied().zip(places.iter().copied())
            });
        let sweep = Sweep::new(rows);
        profiles.iter().map(|profile| sweep.best(profile)).collect()
    }

    /// The null detector's best score per profile: the baseline of [`Scorer::figures`].
    pub fn null_baseline(&self, corpus: &Corpus, profiles: &[Profile]) -> Vec<f64> {
        self.best(&null_scores(corpus), profiles)
            .iter()
            .map(|best| best.score)
            .collect()
    }

    /// A detector's figures per profile, against `null` (the null detector's best score per
    /// profile).
    pub fn figures(&self, scores: &[Vec<f64>], null: &[f64], profiles: &[Profile]) -> Vec<Figures> {
        let best = self.best(scores, profiles);
        profiles
            .iter()
            .zip(best)
            .zip(null)
            .map(|((profile, best), &null)| {
                let perfect = perfect_score(self.windows, profile);
                Figures {
                    profile: profile.name.clone(),
                    best,
                    null,
                    perfect,
                    normalised: normalised(best.score, null, perfect),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{Reading, Series, Window};
    use crate::profiles::standard;
    use crate::scoring::scaled_sigmoid;

    fn series(name: &str, windows: Vec<Window>) -> Series {
        Series {
            name: name.into(),
            readings: vec![
                Reading {
                    at_micros: 0,
                    value: 0.0
                };
                10
            ],
            rows: vec![String::new(); 10],
            windows,
        }
    }

    #[test]
    fn normalised_against_the_null_detector_on_the_same_files() {
        // A: 10 rows, a window at rows 4..=6; B: 10 rows, no window. Row 0 of each is
        // probationary. The detector finds the window at row 5, and nothing else.
        let window = Window {
            first: 4,
            last: 6,
            start_micros: 0,
            end_micros: 0,
        };
        let corpus = Corpus {
            root: "nab".into(),
            series: vec![series("a/a.csv", vec![window]), series("b/b.csv", vec![])],
        };
        let mut scores = vec![vec![0.0; 10], vec![0.0; 10]];
        scores[0][5] = 1.0;
        let profiles = [standard()];
        let scorer = Scorer::new(&corpus);
        let null = scorer.null_baseline(&corpus, &profiles);
        let figures = &scorer.figures(&scores, &null, &profiles)[0];

        // The null detector detects every row or none: all finds the window at its first row
        // (+1) with 12 false positives far from it (-0.11 each) and A's rows 7, 8, 9 after it;
        // none misses it (-1), which is worse.
        let s = scaled_sigmoid;
        let null_all = 1.0 - 0.11 * 12.0 + 0.11 * (s(0.5) + s(1.0) + s(1.5));
        assert!((null[0] - null_all).abs() < 1e-12, "{}", null[0]);
        let raw = s(-2.0 / 3.0) / s(-1.0);
        assert_eq!(figures.best.threshold, 1.0);
        assert!((figures.best.score - raw).abs() < 1e-12);
        assert_eq!(figures.perfect, 1.0);
        let expected = 100.0 * (raw - null_all) / (1.0 - null_all);
        assert!(
            (figures.normalised - expected).abs() < 1e-9,
            "{} != {expected}",
            figures.normalised
        );
    }
}

//! NAB's normalisation: 0 for the null detector, 100 for a perfect one. The null detector
//! gives every row the same anomaly score, so its best threshold either detects nothing (every
//! window missed) or everything; a perfect detector finds every window at its first row.

use crate::corpus::Corpus;
use crate::profiles::Profile;

/// The null detector's anomaly score, for every row (NAB's `NullDetector`).
const NULL_ANOMALY_SCORE: f64 = 0.5;

/// The null detector's anomaly scores for every series of `corpus`.
pub fn null_scores(corpus: &Corpus) -> Vec<Vec<f64>> {
    corpus
        .series
        .iter()
        .map(|series| vec![NULL_ANOMALY_SCORE; series.readings.len()])
        .collect()
}

/// The score of finding every one of `windows` windows at its first row. NAB counts every
/// window of the labels, those inside a probationary period too (which no detector can find).
pub fn perfect_score(windows: usize, profile: &Profile) -> f64 {
    windows as f64 * profile.tp_weight
}

/// `raw` on NAB's scale: 100 × (raw − null) / (perfect − null).
pub fn normalised(raw: f64, null: f64, perfect: f64) -> f64 {
    100.0 * (raw - null) / (perfect - null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::standard;

    #[test]
    fn null_is_0_and_perfect_is_100() {
        assert_eq!(normalised(-116.0, -116.0, 116.0), 0.0);
        assert_eq!(normalised(116.0, -116.0, 116.0), 100.0);
        assert_eq!(normalised(0.0, -116.0, 116.0), 50.0);
    }

    #[test]
    fn nab_s_published_windowed_gaussian_from_its_raw_scores() {
        // results/windowedGaussian/*_scores.csv "Totals" and the null's, with 116 windows:
        // standard (tp 1), reward_low_FN_rate (fn 2: null -232).
        assert!(
            (normalised(-24.013_105_489_1, -116.0, perfect_score(116, &standard()))
                - 39.649_523_496)
                .abs()
                < 1e-9
        );
        assert!((normalised(-67.013_105_489_1, -232.0, 116.0) - 47.410_027_158).abs() < 1e-9);
    }
}

//! The check that this scorer is NAB's: the published detections of three detectors
//! (`results/<detector>/`) scored here must give the figures NAB published for them
//! (`results/final_results.json`), within [`TOLERANCE`].

use crate::corpus::Corpus;
use crate::error::{Error, Result};
use crate::figures::{Figures, Scorer};
use crate::profiles::Profile;
use crate::published::{read_final_results, read_scores};

/// The detectors whose detections NAB's checkout holds; `null` is the baseline of the others.
pub const DETECTORS: [&str; 3] = ["windowedGaussian", "contextOSE", "null"];
const NULL: &str = "null";
/// Largest difference accepted between a figure here and NAB's.
pub const TOLERANCE: f64 = 0.5;

/// One detector and profile: the figure here beside NAB's.
pub struct Comparison {
    pub detector: &'static str,
    pub figures: Figures,
    pub published: f64,
}

impl Comparison {
    pub fn difference(&self) -> f64 {
        self.figures.normalised - self.published
    }

    pub fn within_tolerance(&self) -> bool {
        self.difference().abs() <= TOLERANCE
    }
}

pub struct Calibration {
    pub comparisons: Vec<Comparison>,
    /// Per profile: the published null detections' best raw score, the baseline used ...
    pub null_published: Vec<f64>,
    /// ... and that of a constant 0.5 (NAB's null detector), the baseline of other runs.
    pub null_constant: Vec<f64>,
}

impl Calibration {
    pub fn passed(&self) -> bool {
        self.comparisons.iter().all(Comparison::within_tolerance)
    }
}

/// Scores the published detections of [`DETECTORS`] on `corpus` (NAB's whole corpus, for the
/// figures to be comparable).
pub fn calibrate(corpus: &Corpus, profiles: &[Profile]) -> Result<Calibration> {
    let results = corpus.root.join("results");
    let published = read_final_results(&results)?;
    let scorer = Scorer::new(corpus);
    let null_scores = read_scores(&results, NULL, corpus)?;
    let null_published: Vec<f64> = scorer
        .best(&null_scores, profiles)
        .iter()
        .map(|best| best.score)
        .collect();
    let null_constant = scorer.null_baseline(corpus, profiles);
    let mut comparisons = Vec::new();
    for detector in DETECTORS {
        let scores = if detector == NULL {
            null_scores.clone()
        } else {
            read_scores(&results, detector, corpus)?
        };
        for figures in scorer.figures(&scores, &null_published, profiles) {
            let published = published
                .get(detector)
                .and_then(|profiles| profiles.get(&figures.profile))
                .ok_or_else(|| {
                    let message = format!(
                        "no figure for {detector} on the {} profile",
                        figures.profile
                    );
                    Error::file(results.join("final_results.json"), message)
                })?;
            comparisons.push(Comparison {
                detector,
                figures,
                published: *published,
            });
        }
    }
    Ok(Calibration {
        comparisons,
        null_published,
        null_constant,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Instant;

    use super::*;
    use crate::profiles::{read_profiles, PROFILE_ORDER};

    /// NAB's checkout: `ELIOT_NAB_CORPUS`, else `../shared/nab` beside the repository.
    fn corpus_root() -> Option<PathBuf> {
        if let Some(root) = std::env::var_os("ELIOT_NAB_CORPUS") {
            return Some(root.into()); // asked for: a missing corpus fails the test
        }
        let beside = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/nab");
        if beside.join("data").is_dir() {
            Some(beside)
        } else {
            eprintln!(
                "skipped the NAB calibration: no corpus at {} and ELIOT_NAB_CORPUS not set",
                beside.display()
            );
            None
        }
    }

    #[test]
    fn published_detections_score_as_nab_published_them() {
        let Some(root) = corpus_root() else { return };
        let start = Instant::now();
        let corpus = Corpus::load(&root, None).unwrap();
        let profiles = read_profiles(&root).unwrap();
        let calibration = calibrate(&corpus, &profiles).unwrap();
        let published: Vec<_> = calibration
            .comparisons
            .iter()
            .filter(|c| PROFILE_ORDER.contains(&c.figures.profile.as_str()))
            .collect();
        assert_eq!(published.len(), 9);
        for comparison in published {
            eprintln!(
                "{} {}: {:.6}, NAB {:.6}, difference {:+.1e}",
                comparison.detector,
                comparison.figures.profile,
                comparison.figures.normalised,
                comparison.published,
                comparison.difference()
            );
            assert!(
                comparison.within_tolerance(),
                "{} on {}: {} here, {} published",
                comparison.detector,
                comparison.figures.profile,
                comparison.figures.normalised,
                comparison.published
            );
        }
        // The baseline of Eliot's runs (a constant score) is the published null detector's.
        assert_eq!(calibration.null_constant, calibration.null_published);
        eprintln!(
            "the NAB calibration took {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }
}

//! The command line.

use std::path::PathBuf;

use clap::Parser;

/// Scores anomaly detectors on the Numenta Anomaly Benchmark (NAB v1.1): Eliot's detector, or
/// with --calibrate the detections NAB published, to check this scorer against NAB's figures.
#[derive(Parser)]
pub struct Options {
    /// NAB's checkout: data/, labels/combined_windows.json, config/profiles.json, results/.
    #[arg(long)]
    pub corpus: PathBuf,
    /// Score the published detections of windowedGaussian, contextOSE and null instead, and
    /// compare with results/final_results.json; exits 1 if any figure is off by more than 0.5.
    #[arg(long)]
    pub calibrate: bool,
    /// Only the data files whose path under data/ contains this (normalised on those alone).
    #[arg(long, conflicts_with = "calibrate")]
    pub only: Option<String>,
    /// Where the detections go, as NAB's results/ (default: target/nab in the repository).
    #[arg(long, conflicts_with = "calibrate")]
    pub out: Option<PathBuf>,
}

impl Options {
    pub fn out(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target")
                .join("nab")
        })
    }
}

//! Eliot's detector (`eliot_actors::AnomalyDetector`) over the corpus: one detector per
//! series, fed its readings in order, with the CPU time of its calls and its memory.

use std::time::Duration;

use eliot_actors::AnomalyDetector;

use crate::corpus::Corpus;
use crate::cpu_clock::Stopwatch;
use crate::error::{Error, Result};

/// The detector's name in NAB's results layout.
pub const DETECTOR: &str = "eliot";

pub struct EliotRun {
    /// Anomaly scores per series, per row.
    pub scores: Vec<Vec<f64>>,
    /// Time spent in the detector's calls, all series together.
    pub detector_time: Duration,
    /// Whether `detector_time` is CPU time (else wall time: no CPU clock here).
    pub cpu_time: bool,
    /// `size_of::<AnomalyDetector>() + heap_bytes()` per series, after its last reading.
    pub bytes_per_series: Vec<usize>,
}

pub fn run(corpus: &Corpus) -> Result<EliotRun> {
    let stopwatch = Stopwatch::new();
    let mut detector_time = Duration::ZERO;
    let mut scores = Vec::with_capacity(corpus.series.len());
    let mut bytes_per_series = Vec::with_capacity(corpus.series.len());
    for series in &corpus.series {
        let mut detector = AnomalyDetector::new();
        let mut series_scores = Vec::with_capacity(series.readings.len());
        let start = stopwatch.now();
        for reading in &series.readings {
            series_scores.push(detector.score(reading.at_micros, reading.value));
        }
        detector_time += stopwatch.now() - start;
        if let Some(row) = series_scores
            .iter()
            .position(|score| !(0.0..=1.0).contains(score))
        {
            let path = corpus.root.join("data").join(&series.name);
            let message = format!(
                "the detector scored this row {}, not in [0, 1]",
                series_scores[row]
            );
            return Err(Error::line(path, row + 2, message)); // after the header, from 1
        }
        scores.push(series_scores);
        bytes_per_series.push(size_of::<AnomalyDetector>() + detector.heap_bytes());
    }
    Ok(EliotRun {
        scores,
        detector_time,
        cpu_time: stopwatch.measures_cpu(),
        bytes_per_series,
    })
}

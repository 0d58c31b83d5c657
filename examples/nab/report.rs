//! What the example prints: a detector's figures per profile, its cost, and the calibration
//! table.

use crate::calibration::{Calibration, DETECTORS, TOLERANCE};
use crate::corpus::Corpus;
use crate::eliot_run::EliotRun;
use crate::figures::Figures;
use crate::sweep::ABOVE_ALL;

/// What was scored: the files, and whether they are NAB's whole corpus.
pub fn print_corpus(detector: &str, corpus: &Corpus, only: Option<&str>) {
    println!(
        "NAB v1.1: {detector} on {} files ({} readings, {} windows) of {}",
        corpus.series.len(),
        corpus.readings(),
        corpus.windows(),
        corpus.root.display()
    );
    if let Some(only) = only {
        println!(
            "only the files whose path contains `{only}`: the null baseline and the perfect score \
             are those files' too, so the figures are not comparable with NAB's published ones"
        );
    }
}

pub fn print_figures(figures: &[Figures]) {
    println!(
        "\n{:<20} {:>7} {:>10} {:>10} {:>9} {:>8} {:>14} {:>16}",
        "profile",
        "score",
        "threshold",
        "raw score",
        "null",
        "perfect",
        "windows found",
        "false positives"
    );
    for f in figures {
        println!(
            "{:<20} {:>7.2} {:>10} {:>10.3} {:>9.3} {:>8.1} {:>14} {:>16}",
            f.profile,
            f.normalised,
            threshold(f.best.threshold),
            f.best.score,
            f.null,
            f.perfect,
            format!("{} / {}", f.best.windows_found, f.best.windows),
            f.best.false_positives,
        );
    }
    println!(
        "(score: 100 × (raw − null) / (perfect − null); threshold: the one maximising the raw \
         score over these files; false positives: detected rows outside windows)"
    );
}

fn threshold(threshold: f64) -> String {
    if threshold == ABOVE_ALL {
        "none".to_owned() // no threshold detects anything and scores better
    } else {
        format!("{threshold:.6}")
    }
}

pub fn print_cost(run: &EliotRun, readings: usize) {
    let clock = if run.cpu_time {
        "CPU"
    } else {
        "wall-clock (no thread CPU clock here)"
    };
    println!(
        "\ndetector: {:.3} µs of {clock} time per reading ({readings} readings, measured around \
         the detector's calls only)",
        run.detector_time.as_secs_f64() * 1e6 / readings.max(1) as f64
    );
    let bytes = &run.bytes_per_series;
    let mean = bytes.iter().sum::<usize>() as f64 / bytes.len().max(1) as f64;
    println!(
        "memory per series (size_of::<AnomalyDetector>() + heap_bytes()): {mean:.0} B on average, \
         {} B at most, {} B at least",
        bytes.iter().max().copied().unwrap_or_default(),
        bytes.iter().min().copied().unwrap_or_default()
    );
}

pub fn print_calibration(calibration: &Calibration, corpus: &Corpus) {
    println!(
        "NAB v1.1 calibration: the published detections of {} scored here, on {} files ({} windows) of {}",
        DETECTORS.join(", "),
        corpus.series.len(),
        corpus.windows(),
        corpus.root.display()
    );
    println!(
        "\n{:<18} {:<20} {:>10} {:>10} {:>11} {:>10}",
        "detector", "profile", "here", "published", "difference", "threshold"
    );
    for c in &calibration.comparisons {
        println!(
            "{:<18} {:<20} {:>10.4} {:>10.4} {:>+11.4} {:>10}{}",
            c.detector,
            c.figures.profile,
            c.figures.normalised,
            c.published,
            c.difference(),
            threshold(c.figures.best.threshold),
            if c.within_tolerance() { "" } else { "  OFF" }
        );
    }
    let null = |scores: &[f64]| {
        scores
            .iter()
            .map(|s| format!("{s:.3}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    println!(
        "\nnull baseline (raw, per profile): {} from the published null detections, {} from a \
         constant 0.5 (the baseline of Eliot's runs)",
        null(&calibration.null_published),
        null(&calibration.null_constant)
    );
    let off = calibration
        .comparisons
        .iter()
        .filter(|c| !c.within_tolerance())
        .count();
    if off == 0 {
        println!(
            "all {} figures within ±{TOLERANCE} of NAB's",
            calibration.comparisons.len()
        );
    } else {
        println!(
            "{off} of {} figures off by more than {TOLERANCE}",
            calibration.comparisons.len()
        );
    }
}

//! Eliot's anomaly detector on the Numenta Anomaly Benchmark (NAB v1.1), scored by a scorer of
//! its own written after NAB's (`nab/sweeper.py`, `nab/optimizer.py`, `nab/runner.py`) and
//! checked against NAB's published figures.
//!
//! # Usage
//!
//! ```text
//! cargo run --release --example nab -- --corpus /work/shared/nab               # Eliot's detector
//! cargo run --release --example nab -- --corpus /work/shared/nab --only realTweets
//! cargo run --release --example nab -- --corpus /work/shared/nab --calibrate   # check the scorer
//! cargo test --example nab                                                    # its tests
//! ```
//!
//! Without `--calibrate`: runs `eliot_actors::AnomalyDetector` over every series (one detector
//! per series, in file order), writes the detections as NAB's results files under
//! `target/nab/eliot/` (`--out` to change `target/nab`), scores them on NAB's three profiles
//! and prints the figures with the thresholds picked, the detector's CPU time per reading and
//! its memory per series. With `--calibrate`: scores the detections NAB published for
//! windowedGaussian, contextOSE and null, prints them beside `results/final_results.json`,
//! and exits 1 if any is off by more than 0.5. Errors (a missing corpus, a malformed file)
//! exit 2, naming the file and line.
//!
//! # Scoring, in brief
//!
//! Each series has anomaly windows; its first 15 % (750 rows at most) is probationary and not
//! scored. At a threshold, every row whose anomaly score reaches it is a detection. A window's
//! earliest detection earns up to the profile's TP weight (less the later it comes: a scaled
//! sigmoid of the position relative to the window's end); a window never detected costs the FN
//! weight; a detection outside windows costs up to the FP weight (less just after a window).
//! The threshold is the one maximising the corpus's total per profile; the figure is
//! 100 × (score − null) / (perfect − null), the null detector scoring every row 0.5.
//! README.md beside this file has the details, and NAB's quirks kept on purpose.

mod calibration;
mod corpus;
mod cpu_clock;
mod csv;
mod detections;
mod eliot_run;
mod error;
mod figures;
mod normalise;
mod options;
mod profiles;
mod published;
mod report;
mod scoring;
mod sweep;
mod timestamp;

use std::process::ExitCode;

use clap::Parser;

use crate::corpus::Corpus;
use crate::error::Result;
use crate::figures::Scorer;
use crate::options::Options;
use crate::profiles::read_profiles;

fn main() -> ExitCode {
    let options = Options::parse();
    let outcome = if options.calibrate {
        calibrate(&options)
    } else {
        score_eliot(&options)
    };
    outcome.unwrap_or_else(|error| {
        eprintln!("nab: {error}");
        ExitCode::from(2)
    })
}

fn score_eliot(options: &Options) -> Result<ExitCode> {
    let corpus = Corpus::load(&options.corpus, options.only.as_deref())?;
    let profiles = read_profiles(&options.corpus)?;
    let run = eliot_run::run(&corpus)?;
    let out = options.out();
    detections::write_detections(&out, eliot_run::DETECTOR, &corpus, &run.scores)?;

    let scorer = Scorer::new(&corpus);
    let null = scorer.null_baseline(&corpus, &profiles);
    let figures = scorer.figures(&run.scores, &null, &profiles);
    report::print_corpus(eliot_run::DETECTOR, &corpus, options.only.as_deref());
    println!(
        "detections written under {}",
        out.join(eliot_run::DETECTOR).display()
    );
    report::print_figures(&figures);
    report::print_cost(&run, corpus.readings());
    Ok(ExitCode::SUCCESS)
}

fn calibrate(options: &Options) -> Result<ExitCode> {
    let corpus = Corpus::load(&options.corpus, None)?;
    let profiles = read_profiles(&options.corpus)?;
    let calibration = calibration::calibrate(&corpus, &profiles)?;
    report::print_calibration(&calibration, &corpus);
    Ok(if calibration.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

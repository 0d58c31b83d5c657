//! NAB's results layout: a detector's anomaly scores for `data/<category>/<file>.csv` go to
//! `<dir>/<detector>/<category>/<detector>_<file>.csv`, with the columns
//! `timestamp,value,anomaly_score,label`, which NAB's own scorer reads.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::corpus::{Corpus, Series};
use crate::error::{Error, Result};

/// Where NAB keeps `detector`'s results for the series `name` (`category/file.csv`).
pub fn results_path(dir: &Path, detector: &str, name: &str) -> PathBuf {
    let (category, file) = name.rsplit_once('/').unwrap_or(("", name));
    dir.join(detector)
        .join(category)
        .join(format!("{detector}_{file}"))
}

/// Writes `detector`'s `scores` (per series, per row) for every series of `corpus` under `dir`.
pub fn write_detections(
    dir: &Path,
    detector: &str,
    corpus: &Corpus,
    scores: &[Vec<f64>],
) -> Result<()> {
    for (series, scores) in corpus.series.iter().zip(scores) {
        let path = results_path(dir, detector, &series.name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&path, results_csv(series, scores)).map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

fn results_csv(series: &Series, scores: &[f64]) -> String {
    let mut csv = String::from("timestamp,value,anomaly_score,label\n");
    for (index, (row, score)) in series.rows.iter().zip(scores).enumerate() {
        // The data row as read, so NAB finds its timestamps unchanged.
        writeln!(csv, "{row},{score},{}", series.label(index)).expect("writing to a String");
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{Reading, Window};

    #[test]
    fn writes_nab_s_layout_and_columns() {
        let dir = tempfile::tempdir().unwrap();
        let series = Series {
            name: "realTraffic/speed_7578.csv".into(),
            readings: vec![
                Reading {
                    at_micros: 0,
                    value: 1.0,
                },
                Reading {
                    at_micros: 60_000_000,
                    value: 2.5,
                },
            ],
            rows: vec![
                "1970-01-01 00:00:00,1".into(),
                "1970-01-01 00:01:00,2.5".into(),
            ],
            windows: vec![Window {
                first: 1,
                last: 1,
                start_micros: 60_000_000,
                end_micros: 60_000_000,
            }],
        };
        let corpus = Corpus {
            root: dir.path().into(),
            series: vec![series],
        };
        write_detections(dir.path(), "eliot", &corpus, &[vec![0.0, 0.75]]).unwrap();
        let written =
            std::fs::read_to_string(dir.path().join("eliot/realTraffic/eliot_speed_7578.csv"))
                .unwrap();
        assert_eq!(
            written,
            "timestamp,value,anomaly_score,label\n1970-01-01 00:00:00,1,0,0\n1970-01-01 00:01:00,2.5,0.75,1\n"
        );
    }
}

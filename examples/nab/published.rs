//! What NAB publishes under `results/`: each detector's anomaly scores (the `anomaly_score`
//! column of its results files; the other columns are ignored) and the normalised figures of
//! `final_results.json`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::corpus::{Corpus, Series};
use crate::csv::Csv;
use crate::detections::results_path;
use crate::error::{read_json, Result};
use crate::timestamp::parse_micros;

/// Detector → profile → NAB's normalised figure.
pub type FinalResults = BTreeMap<String, BTreeMap<String, f64>>;

pub fn read_final_results(results: &Path) -> Result<FinalResults> {
    read_json(&results.join("final_results.json"))
}

/// `detector`'s anomaly scores (per series, per row) for every series of `corpus`, from its
/// results files under `results`.
pub fn read_scores(results: &Path, detector: &str, corpus: &Corpus) -> Result<Vec<Vec<f64>>> {
    corpus
        .series
        .iter()
        .map(|series| read_series(&results_path(results, detector, &series.name), series))
        .collect()
}

fn read_series(path: &Path, series: &Series) -> Result<Vec<f64>> {
    let csv = Csv::read(path)?;
    let (timestamp, anomaly_score) = (csv.column("timestamp")?, csv.column("anomaly_score")?);
    let mut scores = Vec::with_capacity(series.readings.len());
    for record in csv.records() {
        let index = scores.len();
        if index == series.readings.len() {
            return Err(record.error(format!("more rows than the {} of {}", index, series.name)));
        }
        // The same row of the data file: the same text, or at least the same time.
        let at = record.field(timestamp)?;
        if at != series.timestamp_text(index)
            && parse_micros(at) != Ok(series.readings[index].at_micros)
        {
            let expected = series.timestamp_text(index);
            return Err(record.error(format!(
                "timestamp {at}, where {} has {expected}",
                series.name
            )));
        }
        let score = record.number(anomaly_score, "anomaly_score")?;
        if !(0.0..=1.0).contains(&score) {
            return Err(record.error(format!("anomaly_score {score} is not in [0, 1]")));
        }
        scores.push(score);
    }
    if scores.len() != series.readings.len() {
        let message = format!(
            "{} rows, where {} has {}",
            scores.len(),
            series.name,
            series.readings.len()
        );
        return Err(crate::error::Error::file(csv.path(), message));
    }
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Reading;
    use crate::detections::write_detections;

    fn corpus(root: &Path) -> Corpus {
        let rows = [
            "2014-01-01 00:00:00,1",
            "2014-01-01 00:05:00,2",
            "2014-01-01 00:10:00,3",
        ];
        let series = Series {
            name: "realTraffic/speed.csv".into(),
            readings: (0..3)
                .map(|i| Reading {
                    at_micros: i * 300_000_000 + 1_388_534_400_000_000,
                    value: 1.0,
                })
                .collect(),
            rows: rows.iter().map(|row| row.to_string()).collect(),
            windows: vec![],
        };
        Corpus {
            root: root.into(),
            series: vec![series],
        }
    }

    #[test]
    fn reads_back_what_detections_writes() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = corpus(dir.path());
        let scores = vec![vec![0.0, 0.123_456_789_012_345_67, 1.0]];
        write_detections(dir.path(), "mine", &corpus, &scores).unwrap();
        assert_eq!(read_scores(dir.path(), "mine", &corpus).unwrap(), scores);
    }

    #[test]
    fn says_which_line_does_not_match_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = corpus(dir.path());
        let path = dir.path().join("other/realTraffic/other_speed.csv");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let header = "timestamp,value,anomaly_score,label\n";
        let cases = [
            // Another text for the same time is the same row.
            ("2014-01-01 00:00:00.000000,1,0.5,0\n2014-01-01 00:05:00,2,0.5,0\n2014-01-01 00:10:00,3,0.5,0\n", None),
            ("2014-01-01 00:00:00,1,0.5,0\n2014-01-01 00:06:00,2,0.5,0\n", Some("line 3: timestamp 2014-01-01 00:06:00")),
            ("2014-01-01 00:00:00,1,1.5,0\n", Some("line 2: anomaly_score 1.5 is not in [0, 1]")),
            ("2014-01-01 00:00:00,1,0.5,0\n", Some("1 rows, where realTraffic/speed.csv has 3")),
        ];
        for (rows, error) in cases {
            std::fs::write(&path, format!("{header}{rows}")).unwrap();
            let read = read_scores(dir.path(), "other", &corpus);
            match error {
                None => assert_eq!(read.unwrap(), vec![vec![0.5; 3]]),
                Some(error) => {
                    let got = read.unwrap_err().to_string();
                    assert!(
                        got.contains("other_speed.csv") && got.contains(error),
                        "{got}"
                    );
                }
            }
        }
    }
}

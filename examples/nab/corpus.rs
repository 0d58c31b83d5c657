//! NAB's corpus: the series under `data/` (`timestamp,value` CSV files, one directory per
//! category), the anomaly windows of each from `labels/combined_windows.json`, and the
//! probationary period at the start of every series.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::csv::Csv;
use crate::error::{read_json, Error, Result};
use crate::timestamp::parse_micros;

/// Fraction of each series that is the detectors' to learn from, never scored.
const PROBATIONARY_FRACTION: f64 = 0.15;
/// The probationary period ends after this many rows at most (NAB: 15 % of 5,000).
const PROBATIONARY_CAP: usize = 750;

/// The series of the corpus (or those `--only` picked), in path order.
pub struct Corpus {
    pub root: PathBuf,
    pub series: Vec<Series>,
}

/// One data file.
pub struct Series {
    /// Path under `data/` with `/` separators (`realKnownCause/nyc_taxi.csv`): NAB's name for it.
    pub name: String,
    pub readings: Vec<Reading>,
    /// Each row's `timestamp,value` as written in the data file: detections repeat them.
    pub rows: Vec<String>,
    pub windows: Vec<Window>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub at_micros: i64,
    pub value: f64,
}

/// An anomaly window: rows `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub first: usize,
    pub last: usize,
    pub start_micros: i64,
    pub end_micros: i64,
}

/// Rows at the start of a series of `rows` rows that are not scored.
pub fn probationary_length(rows: usize) -> usize {
    ((PROBATIONARY_FRACTION * rows as f64).floor() as usize).min(PROBATIONARY_CAP)
}

impl Corpus {
    /// Reads the corpus at `root` (NAB's checkout); with `only`, just the files whose path
    /// under `data/` contains it.
    pub fn load(root: &Path, only: Option<&str>) -> Result<Self> {
        let data = root.join("data");
        if !data.is_dir() {
            return Err(Error::file(root, "no NAB corpus here (no data/ directory)"));
        }
        let labels_path = root.join("labels").join("combined_windows.json");
        let labels: BTreeMap<String, Vec<[String; 2]>> = read_json(&labels_path)?;
        let mut names = Vec::new();
        csv_files(&data, "", &mut names)?;
        names.retain(|name| only.is_none_or(|only| name.contains(only)));
        if names.is_empty() {
            let message = match only {
                Some(only) => format!("no data file's path contains `{only}`"),
                None => "no CSV files".to_owned(),
            };
            return Err(Error::file(data, message));
        }
        let series = names
            .into_iter()
            .map(|name| {
                let limits = labels.get(&name).ok_or_else(|| {
                    Error::file(&labels_path, format!("no windows for the data file {name}"))
                })?;
                Series::read(&data, name, limits, &labels_path)
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            root: root.to_owned(),
            series,
        })
    }

    pub fn readings(&self) -> usize {
        self.series.iter().map(|series| series.readings.len()).sum()
    }

    pub fn windows(&self) -> usize {
        self.series.iter().map(|series| series.windows.len()).sum()
    }
}

/// The CSV files under `dir`, as paths relative to the top directory, sorted.
fn csv_files(dir: &Path, prefix: &str, names: &mut Vec<String>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut entries: Vec<_> = entries
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(dir, e))?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with('.') {
            continue;
        }
        let name = format!("{prefix}{file_name}");
        let path = entry.path();
        if path.is_dir() {
            csv_files(&path, &format!("{name}/"), names)?;
        } else if file_name.ends_with(".csv") {
            names.push(name);
        }
    }
    Ok(())
}

impl Series {
    fn read(data: &Path, name: String, limits: &[[String; 2]], labels: &Path) -> Result<Self> {
        let csv = Csv::read(&data.join(&name))?;
        let (timestamp, value) = (csv.column("timestamp")?, csv.column("value")?);
        let mut readings = Vec::new();
        let mut rows = Vec::new();
        for record in csv.records() {
            let at = record.field(timestamp)?;
            readings.push(Reading {
                at_micros: parse_micros(at).map_err(|e| record.error(e))?,
                value: record.number(value, "value")?,
            });
            rows.push(format!("{at},{}", record.field(value)?));
        }
        let windows = resolve_windows(&readings, limits)
            .map_err(|e| Error::file(labels, format!("{name}: {e}")))?;
        Ok(Self {
            name,
            readings,
            rows,
            windows,
        })
    }

    /// The timestamp of row `index` as it was written.
    pub fn timestamp_text(&self, index: usize) -> &str {
        self.rows[index].split(',').next().unwrap_or_default()
    }

    /// NAB's `label` column: 1 for a row whose time is within a window, ends included.
    pub fn label(&self, index: usize) -> u8 {
        let at = self.readings[index].at_micros;
        u8::from(
            self.windows
                .iter()
                .any(|w| (w.start_micros..=w.end_micros).contains(&at)),
        )
    }
}

/// Rows of each window's limits. NAB enters a window at the first row holding its start time
/// and measures it from the first row holding its end time, one window after the other; so
/// both times must be rows of the series, and the windows in order without overlap.
fn resolve_windows(
    readings: &[Reading],
    limits: &[[String; 2]],
) -> std::result::Result<Vec<Window>, String> {
    let mut first_row: HashMap<i64, usize> = HashMap::with_capacity(readings.len());
    for (index, reading) in readings.iter().enumerate() {
        first_row.entry(reading.at_micros).or_insert(index);
    }
    let mut windows: Vec<Window> = Vec::with_capacity(limits.len());
    for [start, end] in limits {
        let start_micros = parse_micros(start)?;
        let end_micros = parse_micros(end)?;
        let row = |at: i64, text: &str| {
            first_row
                .get(&at)
                .copied()
                .ok_or_else(|| format!("the window limit {text} is no row's timestamp"))
        };
        let window = Window {
            first: row(start_micros, start)?,
            last: row(end_micros, end)?,
            start_micros,
            end_micros,
        };
        if window.last < window.first {
            return Err(format!("the window {start} – {end} ends before it starts"));
        }
        if windows
            .last()
            .is_some_and(|before| window.first <= before.last)
        {
            return Err(format!(
                "the window {start} – {end} overlaps or precedes the one before"
            ));
        }
        windows.push(window);
    }
    Ok(windows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probationary_period_is_15_percent_floored_and_at_most_750_rows() {
        assert_eq!(probationary_length(4032), 604); // 604.8
        assert_eq!(probationary_length(1000), 150);
        assert_eq!(probationary_length(10), 1); // 1.5
        assert_eq!(probationary_length(6), 0); // 0.9
        assert_eq!(probationary_length(5000), 750);
        assert_eq!(probationary_length(22_695), 750);
    }

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn small_corpus(dir: &Path, second_window_end: &str) {
        let rows: String = (0..6)
            .map(|minute| format!("2014-01-01 00:0{minute}:00,{minute}\n"))
            .collect();
        write(dir, "data/b/two.csv", &format!("timestamp,value\n{rows}"));
        write(
            dir,
            "data/a/one.csv",
            "timestamp,value\n2014-01-01 00:00:00,1\n",
        );
        write(
            dir,
            "labels/combined_windows.json",
            &format!(
                r#"{{"a/one.csv": [], "b/two.csv": [
                    ["2014-01-01 00:01:00.000000", "2014-01-01 00:02:00.000000"],
                    ["2014-01-01 00:04:00.000000", "{second_window_end}"]]}}"#
            ),
        );
    }

    #[test]
    fn reads_series_in_path_order_with_their_windows_as_rows() {
        let dir = tempfile::tempdir().unwrap();
        small_corpus(dir.path(), "2014-01-01 00:05:00.000000");
        let corpus = Corpus::load(dir.path(), None).unwrap();
        let names: Vec<_> = corpus.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a/one.csv", "b/two.csv"]);
        let two = &corpus.series[1];
        assert_eq!(two.readings.len(), 6);
        assert_eq!((two.windows[0].first, two.windows[0].last), (1, 2));
        assert_eq!((two.windows[1].first, two.windows[1].last), (4, 5));
        assert_eq!(
            (0..6).map(|i| two.label(i)).collect::<Vec<_>>(),
            [0, 1, 1, 0, 1, 1]
        );
        assert_eq!(two.timestamp_text(3), "2014-01-01 00:03:00");
        assert_eq!(corpus.windows(), 2);
        let only = Corpus::load(dir.path(), Some("two")).unwrap();
        assert_eq!(only.series.len(), 1);
        assert!(Corpus::load(dir.path(), Some("three")).is_err());
    }

    #[test]
    fn says_which_file_and_line_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        small_corpus(dir.path(), "2014-01-01 00:09:00.000000");
        let error = Corpus::load(dir.path(), None).err().unwrap().to_string();
        assert!(
            error.contains("combined_windows.json: b/two.csv: the window limit 2014-01-01 00:09"),
            "{error}"
        );

        write(
            dir.path(),
            "data/a/one.csv",
            "timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01,2\n",
        );
        let error = Corpus::load(dir.path(), None).err().unwrap().to_string();
        assert!(
            error.contains("one.csv: line 3: `2014-01-01` is not a timestamp"),
            "{error}"
        );

        let missing = Corpus::load(&dir.path().join("nowhere"), None)
            .err()
            .unwrap()
            .to_string();
        assert!(missing.contains("no NAB corpus here"), "{missing}");
    }
}

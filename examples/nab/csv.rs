//! The CSV NAB writes and reads: a header line, then one record per line, fields separated by
//! commas and never quoted. Enough for its corpus and results, with errors that say where.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A whole CSV file, read into memory.
pub struct Csv {
    path: PathBuf,
    text: String,
}

/// One record, borrowed from its file.
pub struct Record<'a> {
    path: &'a Path,
    /// Line number in the file, from 1 (the header's).
    line: usize,
    fields: Vec<&'a str>,
}

impl Csv {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Ok(Self {
            path: path.to_owned(),
            text,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Index of the header's column `name`.
    pub fn column(&self, name: &str) -> Result<usize> {
        let header = lines(&self.text).next().map_or("", |(_, line)| line);
        header
            .split(',')
            .position(|field| field == name)
            .ok_or_else(|| {
                Error::line(
                    &self.path,
                    1,
                    format!("no column `{name}` in the header `{header}`"),
                )
            })
    }

    /// The records after the header; blank lines are skipped.
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> {
        lines(&self.text)
            .skip(1)
            .filter(|(_, text)| !text.is_empty())
            .map(|(line, text)| Record {
                path: &self.path,
                line,
                fields: text.split(',').collect(),
            })
    }
}

/// Numbered lines (from 1), without `\n` or `\r\n`.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim_end_matches('\r')))
}

impl<'a> Record<'a> {
    pub fn field(&self, column: usize) -> Result<&'a str> {
        self.fields.get(column).copied().ok_or_else(|| {
            self.error(format!(
                "{} fields, expected at least {}",
                self.fields.len(),
                column + 1
            ))
        })
    }

    /// The field at `column` as a finite number; `what` names it in the error.
    pub fn number(&self, column: usize, what: &str) -> Result<f64> {
        let field = self.field(column)?;
        match field.trim().parse::<f64>() {
            Ok(number) if number.is_finite() => Ok(number),
            _ => Err(self.error(format!("{what} `{field}` is not a finite number"))),
        }
    }

    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::line(self.path, self.line, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_columns_and_numbers_and_says_where_a_field_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(
            &path,
            "timestamp,value\r\n2014-01-01 00:00:00,1.5\r\n\r\nx,oops\n",
        )
        .unwrap();
        let csv = Csv::read(&path).unwrap();
        assert_eq!(csv.column("value").unwrap(), 1);
        assert!(csv
            .column("anomaly_score")
            .unwrap_err()
            .to_string()
            .contains("line 1"));
        let records: Vec<_> = csv.records().collect();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].field(0).unwrap(), "2014-01-01 00:00:00");
        assert!(records[0]
            .field(2)
            .unwrap_err()
            .to_string()
            .contains("line 2: 2 fields"));
        assert_eq!(records[0].number(1, "value").unwrap(), 1.5);
        let error = records[1].number(1, "value").unwrap_err().to_string();
        assert!(error.contains("a.csv: line 4: value `oops`"), "{error}");
    }
}

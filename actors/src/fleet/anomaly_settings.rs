//! The `[anomaly]` section: whether each series of numeric readings is scored for
//! anomalies (by the fleet's shards, where the device's state lives), which fields, which
//! scores are kept, and the bounds on the detectors' memory.

use serde::{Deserialize, Serialize};

use crate::ingest::is_sensor_type;
use crate::settings::Problems;

/// The `[anomaly]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalySettings {
    /// False: no detector runs. Detectors run in the fleet: with `fleet.enabled = false`
    /// none does either.
    pub enabled: bool,
    /// The series scored, as `sensor_type.field` (`field` a path into `data`, dots between
    /// nested keys; `*` as the sensor type: any). Empty: every numeric field of every
    /// reading, nested objects included (down to `MAX_DEPTH`), arrays not, but `seq` (a
    /// counter: its gaps are a quality signal of their own).
    pub fields: Vec<String>,
    /// Scores at or above this (0 to 1) are kept: stored with their reading's key, counted
    /// in `eliot_anomalies_total`. The rest only move the device's live figure.
    pub floor: f64,
    /// Series one device may have scored; a field past it is not scored (counted).
    pub max_series_per_device: usize,
    /// Series scored at most, every device together; past it new series are not scored
    /// (counted, logged once). Each takes a detector's few KiB.
    pub max_series: usize,
    /// Kept scores a shard may hold before they are written; past it the oldest go
    /// (counted, like status events).
    pub max_pending: usize,
    /// After a restart, a device's newest readings from before it read back (at its first
    /// reading) for its detectors to learn: 0, none (they start cold).
    pub history: usize,
}

/// The most readings `history` may read back per device.
pub const MAX_HISTORY: usize = 10_000;

/// Nested objects a field may be in: `a.b.c.d` at most.
pub const MAX_DEPTH: usize = 4;
/// A field's path, bytes at most: a longer one is not scored (a key is the device's to
/// choose, and every series keeps its name).
pub const MAX_FIELD_PATH: usize = 64;

/// One entry of `fields`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRule {
    /// `None`: any sensor type.
    pub sensor_type: Option<String>,
    pub path: String,
}

impl FieldRule {
    pub fn parse(text: &str) -> Result<FieldRule, String> {
        let (sensor_type, path) = text.split_once('.').ok_or_else(|| {
            format!("`{text}`: expected sensor_type.field, e.g. temperature.value")
        })?;
        let sensor_type = match sensor_type {
            "*" => None,
            s if is_sensor_type(s) => Some(s.to_owned()),
            s => {
                return Err(format!(
                    "`{text}`: `{s}` is no sensor type (a-z 0-9 _, or *)"
                ))
            }
        };
        let depth = path.split('.').count();
        if path.is_empty() || path.split('.').any(str::is_empty) {
            return Err(format!("`{text}`: the field path has an empty key"));
        }
        if depth > MAX_DEPTH || path.len() > MAX_FIELD_PATH {
            return Err(format!(
                "`{text}`: the field path may have {MAX_DEPTH} keys and {MAX_FIELD_PATH} bytes at most"
            ));
        }
        Ok(FieldRule {
            sensor_type,
            path: path.to_owned(),
        })
    }

    pub fn matches(&self, sensor_type: &str, path: &str) -> bool {
        self.sensor_type.as_deref().is_none_or(|s| s == sensor_type) && self.path == path
    }
}

impl AnomalySettings {
    pub fn validate(&self, problems: &mut Problems) {
        for (i, field) in self.fields.iter().enumerate() {
            if let Err(e) = FieldRule::parse(field) {
                problems.add(&format!("fields[{i}]"), e);
            }
        }
        problems.check(
            (0.0..=1.0).contains(&self.floor),
            "floor",
            "expected 0 to 1",
        );
        problems.at_least("max_series_per_device", self.max_series_per_device, 1);
        problems.at_least("max_series", self.max_series, 1);
        problems.at_least("max_pending", self.max_pending, 1);
        problems.check(
            self.history <= MAX_HISTORY,
            "history",
            &format!("expected at most {MAX_HISTORY}"),
        );
    }

    /// `fields`, parsed (the ones that do not parse were refused by `validate`).
    pub fn rules(&self) -> Vec<FieldRule> {
        self.fields
            .iter()
            .filter_map(|f| FieldRule::parse(f).ok())
            .collect()
    }
}

#[cfg(test)]
impl AnomalySettings {
    pub fn for_tests() -> AnomalySettings {
        AnomalySettings {
            enabled: true,
            fields: Vec::new(),
            floor: 0.5,
            max_series_per_device: 4,
            max_series: 100,
            max_pending: 100,
            history: 512,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_rule_names_a_sensor_type_or_any_and_a_path() {
        let rule = FieldRule::parse("temperature.value").unwrap();
        assert!(rule.matches("temperature", "value"));
        assert!(!rule.matches("humidity", "value"));
        assert!(!rule.matches("temperature", "value.x"));
        let any = FieldRule::parse("*.gps.lat").unwrap();
        assert!(any.matches("location", "gps.lat"));
        assert!(!any.matches("location", "gps"));
        for bad in ["value", "Temp.value", "t.", "t.a..b", "t.a.b.c.d.e", "*"] {
            assert!(FieldRule::parse(bad).is_err(), "{bad} must be refused");
        }
        let long = format!("t.{}", "k".repeat(MAX_FIELD_PATH + 1));
        assert!(FieldRule::parse(&long).is_err());
    }

    #[test]
    fn validate_names_each_bad_key() {
        let settings = AnomalySettings {
            fields: vec!["temperature.value".into(), "nodot".into()],
            floor: 1.5,
            max_series: 0,
            ..AnomalySettings::for_tests()
        };
        let mut problems = Problems::new();
        problems.section("anomaly", |p| settings.validate(p));
        let keys: Vec<String> = problems.into_vec().into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            ["anomaly.fields[1]", "anomaly.floor", "anomaly.max_series"]
        );
    }
}

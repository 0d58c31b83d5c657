//! Anomaly detection where a device's state lives: its shard scores every numeric field of
//! each reading it hears, one `Detector` per series (the device, the sensor type, the
//! field), after the commit, off the ack's path (the pipeline only waits for room in the
//! shard's mailbox). A score at or above `anomaly.floor` is kept: handed to the store
//! writer with the fleet's rows, counted and logged.
//!
//! Bounds: a device has `anomaly.max_series_per_device` series at most, every device
//! together `anomaly.max_series` (shared by the shards); a field past either is not scored,
//! and counted. A field's path is `MAX_FIELD_PATH` bytes and `MAX_DEPTH` keys at most.
//!
//! After a restart (Eliot's, or the shard's) a device heard before has its detectors
//! rebuilt from its recent history: at its first reading, its newest stored readings from
//! before the restart (`anomaly.history`) are read back off the shard's thread and learnt
//! (their scores are not kept again); the readings that arrive meanwhile wait, at most
//! `MAX_WAITING` of them and `MAX_WAITING_BYTES` of data, and are scored once it is done.
//! Should more arrive, or the read fail, the detectors go on without the history (cold:
//! they learn during their warm-up).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde::Serialize;

use super::anomaly_settings::{AnomalySettings, FieldRule, MAX_DEPTH, MAX_FIELD_PATH};
use super::numeric_fields::numeric_fields;
use super::quality::SEQ_FIELD;
use crate::anomaly::Detector;
use crate::message::format_micros;

/// What every shard's detection shares: the settings, and the series every shard scores.
#[derive(Debug)]
pub struct Detection {
    pub floor: f64,
    rules: Vec<FieldRule>,
    max_per_device: usize,
    max_series: usize,
    /// Readings of a device read back after a restart (0: none).
    pub history: usize,
    /// Series scored now, every shard together.
    series: AtomicUsize,
    /// Whether reaching `max_series` was logged.
    pub full_logged: AtomicBool,
}

impl Detection {
    pub fn new(settings: &AnomalySettings) -> Detection {
        Detection {
            floor: settings.floor,
            rules: settings.rules(),
            max_per_device: settings.max_series_per_device,
            max_series: settings.max_series,
            history: settings.history,
            series: AtomicUsize::new(0),
            full_logged: AtomicBool::new(false),
        }
    }

    pub fn max_series(&self) -> usize {
        self.max_series
    }

    pub fn series(&self) -> usize {
        self.series.load(Ordering::Relaxed)
    }

    /// Whether the field is scored: named by a rule, or any but `seq` without rules (a
    /// counter by definition, its gaps are a quality signal of their own).
    fn wanted(&self, sensor_type: &str, path: &str) -> bool {
        if self.rules.is_empty() {
            return path != SEQ_FIELD;
        }
        self.rules.iter().any(|r| r.matches(sensor_type, path))
    }

    /// Takes room for one more series, if every device together has some.
    fn take_room(&self) -> bool {
        self.series
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max_series).then_some(n + 1)
            })
            .is_ok()
    }
}

/// One series of a device and its detector.
struct Series {
    sensor_type: Box<str>,
    field: Box<str>,
    detector: Detector,
    /// Its latest score.
    score: f32,
}

/// A device's series, and its figure: the scores kept since Eliot started, the last one.
#[derive(Default)]
pub struct DeviceAnomalies {
    series: Vec<Series>,
    kept: u64,
    last_kept: Option<Found>,
    /// While its history is read back: the readings that came meanwhile, in order.
    waiting: Option<Vec<Waiting>>,
    /// The waiting readings' data, bytes.
    waiting_bytes: usize,
}

/// Readings a device's detectors may hold while their history is read back, and their
/// data's bytes (a device sending big readings must not make the wait hold megabytes).
pub const MAX_WAITING: usize = 1024;
pub const MAX_WAITING_BYTES: usize = 256 * 1024;

/// A reading that waits for its device's history.
struct Waiting {
    sensor_type: Box<str>,
    ts: i64,
    received_at: i64,
    data: Box<str>,
}

/// A reading of a device's history, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Past {
    pub sensor_type: String,
    pub ts: i64,
    pub data: String,
}

/// A score that reached the floor.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub sensor_type: String,
    pub field: String,
    /// The reading's time, microseconds.
    pub ts: i64,
    pub score: f64,
    /// When the reading was received, microseconds.
    pub received_at: i64,
}

/// What scoring one reading found.
#[derive(Debug, Default, PartialEq)]
pub struct Scored {
    pub found: Vec<Found>,
    /// Fields not scored: the device's or the fleet's bound on series was reached.
    pub untracked: u64,
    /// Whether this reading reached `anomaly.max_series` for the first time (to log once).
    pub fleet_full: bool,
    /// The device's detectors were just made, and wait for its history to be read back.
    pub wants_history: bool,
}

impl DeviceAnomalies {
    /// Detectors waiting for their history: readings are held until `learnt`.
    pub fn waiting_for_history() -> DeviceAnomalies {
        DeviceAnomalies {
            waiting: Some(Vec::new()),
            ..DeviceAnomalies::default()
        }
    }

    /// Scores each numeric field of one reading (`data`, the JSON object as text; `ts` and
    /// `received_at` its times) with its series' detector, starting the series it lacks
    /// while there is room; while the history is read back, holds it instead.
    pub fn reading(
        &mut self,
        detection: &Detection,
        sensor_type: &str,
        (ts, received_at): (i64, i64),
        data: &str,
        scored: &mut Scored,
    ) {
        if let Some(waiting) = self.waiting.as_mut() {
            let bytes = self.waiting_bytes + data.len();
            if waiting.len() < MAX_WAITING && bytes <= MAX_WAITING_BYTES {
                self.waiting_bytes = bytes;
                waiting.push(Waiting {
                    sensor_type: sensor_type.into(),
                    ts,
                    received_at,
                    data: data.into(),
                });
                return;
            }
            // Too long a wait: on without the history.
            self.learnt(detection, Vec::new(), scored);
        }
        self.score(
            detection,
            sensor_type,
            (ts, received_at),
            data,
            scored,
            true,
        );
    }

    /// The history came (oldest first; empty if it could not be read): the detectors learn
    /// it, keeping no score, then score the readings that waited.
    pub fn learnt(&mut self, detection: &Detection, history: Vec<Past>, scored: &mut Scored) {
        let Some(waiting) = self.waiting.take() else {
            return;
        };
        self.waiting_bytes = 0;
        let mut ignored = Scored::default();
        for past in history {
            let times = (past.ts, 0);
            self.score(
                detection,
                &past.sensor_type,
                times,
                &past.data,
                &mut ignored,
                false,
            );
        }
        scored.untracked += ignored.untracked;
        scored.fleet_full |= ignored.fleet_full;
        for w in waiting {
            let times = (w.ts, w.received_at);
            self.score(detection, &w.sensor_type, times, &w.data, scored, true);
        }
    }

    /// Scores one reading; `keep`: the scores at the floor are kept (not for history).
    fn score(
        &mut self,
        detection: &Detection,
        sensor_type: &str,
        (ts, received_at): (i64, i64),
        data: &str,
        scored: &mut Scored,
        keep: bool,
    ) {
        let mut each = |path: &str, value: f64| {
            if !detection.wanted(sensor_type, path) {
                return;
            }
            let at = self
                .series
                .iter()
                .position(|s| *s.field == *path && *s.sensor_type == *sensor_type);
            let series = match at {
                Some(i) => &mut self.series[i],
                None => {
                    if self.series.len() >= detection.max_per_device {
                        scored.untracked += 1;
                        return;
                    }
                    if !detection.take_room() {
                        scored.untracked += 1;
                        scored.fleet_full |= !detection.full_logged.swap(true, Ordering::Relaxed);
                        return;
                    }
                    self.series.push(Series {
                        sensor_type: sensor_type.into(),
                        field: path.into(),
                        detector: Detector::new(),
                        score: 0.0,
                    });
                    self.series.last_mut().expect("just pushed")
                }
            };
            let score = series.detector.score(ts, value).clamp(0.0, 1.0);
            series.score = score as f32;
            if keep && score >= detection.floor && score > 0.0 {
                let found = Found {
                    sensor_type: sensor_type.to_owned(),
                    field: path.to_owned(),
                    ts,
                    score,
                    received_at,
                };
                self.kept += 1;
                self.last_kept = Some(found.clone());
                scored.found.push(found);
            }
        };
        numeric_fields(data, MAX_DEPTH, MAX_FIELD_PATH, &mut each);
    }

    /// Each series' latest score: (sensor type, field, score).
    pub fn scores(&self) -> impl Iterator<Item = (&str, &str, f64)> + '_ {
        self.series
            .iter()
            .map(|s| (&*s.sensor_type, &*s.field, f64::from(s.score)))
    }

    /// Gives its series' room back (the device is forgotten, or its shard restarts).
    pub fn release(&self, detection: &Detection) {
        detection
            .series
            .fetch_sub(self.series.len(), Ordering::Relaxed);
    }

    /// Bytes it holds, all in.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.series.capacity() * std::mem::size_of::<Series>()
            + self
                .series
                .iter()
                .map(|s| s.sensor_type.len() + s.field.len() + s.detector.heap_bytes())
                .sum::<usize>()
    }

    /// The figure handed out with the device's state.
    pub fn view(&self) -> AnomalyState {
        AnomalyState {
            score: self
                .series
                .iter()
                .map(|s| f64::from(s.score))
                .fold(0.0, f64::max),
            kept: self.kept,
            last_kept: self.last_kept.as_ref().map(|f| KeptState {
                ts: format_micros(f.ts),
                sensor_type: f.sensor_type.clone(),
                field: f.field.clone(),
                score: f.score,
            }),
            series: self
                .series
                .iter()
                .map(|s| SeriesState {
                    sensor_type: s.sensor_type.to_string(),
                    field: s.field.to_string(),
                    score: f64::from(s.score),
                })
                .collect(),
        }
    }
}

/// A device's anomaly figure, as the fleet hands it out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyState {
    /// The highest of its series' latest scores, 0 to 1.
    pub score: f64,
    /// Scores kept (at or above `anomaly.floor`) since Eliot started.
    pub kept: u64,
    /// The last score kept.
    pub last_kept: Option<KeptState>,
    /// Each series scored, with its latest score.
    pub series: Vec<SeriesState>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeptState {
    /// The reading's time.
    pub ts: String,
    pub sensor_type: String,
    pub field: String,
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesState {
    pub sensor_type: String,
    pub field: String,
    pub score: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detection(settings: AnomalySettings) -> Detection {
        Detection::new(&settings)
    }

    /// A series that is steady (a slow wave with a little noise), then jumps far away.
    fn feed(device: &mut DeviceAnomalies, detection: &Detection, field: &str) -> Scored {
        let mut scored = Scored::default();
        for i in 0..400_i64 {
            let wave = 20.0 + (i as f64 / 10.0).sin() + 0.01 * ((i * 7919) % 13) as f64;
            let value = if i == 399 { 500.0 } else { wave };
            let data = format!("{{\"{field}\":{value},\"unit\":\"C\"}}");
            device.reading(
                detection,
                "temperature",
                (i * 1_000_000, 0),
                &data,
                &mut scored,
            );
        }
        scored
    }

    #[test]
    fn a_jump_far_from_a_steady_series_is_kept_and_the_steady_part_is_not() {
        let detection = detection(AnomalySettings::for_tests());
        let mut device = DeviceAnomalies::default();
        let scored = feed(&mut device, &detection, "value");
        let kept: Vec<i64> = scored.found.iter().map(|f| f.ts / 1_000_000).collect();
        assert_eq!(kept.last(), Some(&399), "the jump is kept: {kept:?}");
        assert!(
            kept.len() <= 3,
            "a steady wave keeps (almost) nothing: {kept:?}"
        );
        let view = device.view();
        assert_eq!(view.series.len(), 1, "`unit` is no number");
        assert_eq!(view.series[0].field, "value");
        assert!(view.score >= detection.floor);
        assert_eq!(view.kept, kept.len() as u64);
        assert_eq!(view.last_kept.unwrap().field, "value");
        assert_eq!(detection.series(), 1);
    }

    fn wave(n: i64) -> String {
        format!("{{\"value\":{}}}", 20.0 + (n as f64 / 10.0).sin())
    }

    #[test]
    fn after_a_restart_the_history_is_learnt_before_what_waited_is_scored() {
        let detection = detection(AnomalySettings::for_tests());
        let history: Vec<Past> = (0..300)
            .map(|n| Past {
                sensor_type: "temperature".into(),
                ts: n,
                data: wave(n),
            })
            .collect();
        let jump = r#"{"value":90}"#;
        let arrive = |device: &mut DeviceAnomalies, scored: &mut Scored| {
            device.reading(&detection, "temperature", (300, 0), &wave(300), scored);
            device.reading(&detection, "temperature", (301, 0), jump, scored);
        };

        let mut rebuilt = DeviceAnomalies::waiting_for_history();
        let mut scored = Scored::default();
        arrive(&mut rebuilt, &mut scored);
        assert!(
            rebuilt.view().series.is_empty(),
            "held until the history came"
        );
        rebuilt.learnt(&detection, history.clone(), &mut scored);
        let kept: Vec<i64> = scored.found.iter().map(|f| f.ts).collect();
        assert_eq!(kept, [301], "the history's own scores are not kept again");

        // Cold, the detectors are still learning: the same jump goes unseen.
        let mut cold = DeviceAnomalies::default();
        let mut scored = Scored::default();
        arrive(&mut cold, &mut scored);
        assert!(scored.found.is_empty());

        // Too many waiting: on without the history, nothing held back or lost.
        let mut flooded = DeviceAnomalies::waiting_for_history();
        let mut scored = Scored::default();
        for n in 0..=MAX_WAITING as i64 {
            flooded.reading(&detection, "temperature", (n, 0), &wave(n), &mut scored);
        }
        assert_eq!(flooded.view().series.len(), 1, "scored cold");
        flooded.learnt(&detection, history, &mut scored);
        assert!(flooded.waiting.is_none());

        // So do a few big readings: the wait is bounded in bytes too.
        let mut heavy = DeviceAnomalies::waiting_for_history();
        let big = format!(r#"{{"value":1,"note":"{}"}}"#, "x".repeat(100 * 1024));
        for n in 0..3 {
            heavy.reading(&detection, "temperature", (n, 0), &big, &mut scored);
        }
        assert!(heavy.waiting.is_none(), "past 256 KiB waiting, on cold");
        assert_eq!(heavy.view().series.len(), 1);
    }

    #[test]
    fn nested_fields_are_series_of_their_own_and_rules_choose_among_them() {
        let all = detection(AnomalySettings::for_tests());
        let mut device = DeviceAnomalies::default();
        let mut scored = Scored::default();
        let data = r#"{"gps":{"lat":1.5,"lon":2,"fix":"3d"},"speed":3,"tags":[1,2]}"#;
        device.reading(&all, "location", (0, 0), data, &mut scored);
        let mut fields: Vec<String> = device.view().series.into_iter().map(|s| s.field).collect();
        fields.sort();
        assert_eq!(fields, ["gps.lat", "gps.lon", "speed"]);

        let chosen = detection(AnomalySettings {
            fields: vec!["location.gps.lat".into(), "*.speed".into()],
            ..AnomalySettings::for_tests()
        });
        let mut device = DeviceAnomalies::default();
        device.reading(&chosen, "location", (0, 0), data, &mut scored);
        let wheel = r#"{"speed":1,"gps":{"lat":1}}"#;
        device.reading(&chosen, "wheel", (0, 0), wheel, &mut scored);
        let mut fields: Vec<String> = device
            .view()
            .series
            .into_iter()
            .map(|s| format!("{}.{}", s.sensor_type, s.field))
            .collect();
        fields.sort();
        assert_eq!(
            fields,
            ["location.gps.lat", "location.speed", "wheel.speed"]
        );
    }

    #[test]
    fn a_device_and_the_fleet_are_bounded_in_series() {
        let detection = detection(AnomalySettings {
            max_series_per_device: 2,
            max_series: 3,
            ..AnomalySettings::for_tests()
        });
        let many = r#"{"a":1,"b":2,"c":3,"d":4}"#;
        let mut first = DeviceAnomalies::default();
        let mut scored = Scored::default();
        first.reading(&detection, "t", (0, 0), many, &mut scored);
        assert_eq!((first.view().series.len(), scored.untracked), (2, 2));
        let mut second = DeviceAnomalies::default();
        let mut scored = Scored::default();
        second.reading(&detection, "t", (0, 0), many, &mut scored);
        assert_eq!(
            second.view().series.len(),
            1,
            "the fleet's third and last series"
        );
        assert_eq!(scored.untracked, 3);
        assert!(scored.fleet_full, "told once, to log");
        let mut scored = Scored::default();
        second.reading(&detection, "t", (1, 0), many, &mut scored);
        assert!(!scored.fleet_full);
        assert_eq!(detection.series(), 3);
        first.release(&detection);
        assert_eq!(
            detection.series(),
            1,
            "a forgotten device gives its room back"
        );
    }

    #[test]
    fn hostile_keys_and_depths_are_not_scored() {
        let detection = detection(AnomalySettings::for_tests());
        let long_key = "k".repeat(MAX_FIELD_PATH + 1);
        let data = format!(r#"{{"{long_key}":1,"a":{{"b":{{"c":{{"d":1,"e":{{"f":2}}}}}}}}}}"#);
        let mut device = DeviceAnomalies::default();
        let mut scored = Scored::default();
        device.reading(&detection, "t", (0, 0), &data, &mut scored);
        let fields: Vec<String> = device.view().series.into_iter().map(|s| s.field).collect();
        assert_eq!(fields, ["a.b.c.d"], "too long, and too deep, are left out");
        for bad in ["not json", "[1,2]", "{\"x\":1e999}"] {
            device.reading(&detection, "t", (0, 0), bad, &mut scored);
        }
        assert!(device.bytes() < 8 * 1024, "{} bytes", device.bytes());
    }
}

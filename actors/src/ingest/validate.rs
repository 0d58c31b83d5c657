//! Parsing and validation of one MQTT payload into readings, with a reason for every refusal.
//!
//! The rules are those docs/readings.md lists; keep the two in step.

use std::fmt::Write;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::rules::{HumanDuration, Rejection, Rules};
use super::strict_json;
use crate::message::{format_utc, is_device_id, parse_timestamp, Reading};

/// Parses and validates one message published on `topic`.
///
/// `now` is the receive time: it stamps `received_at` and bounds the future skew.
pub fn validate(
    rules: &Rules,
    topic: &str,
    payload: &[u8],
    now: OffsetDateTime,
) -> Result<Vec<Reading>, Rejection> {
    let topic_device = rules
        .topic
        .device_id(topic)
        .ok_or_else(|| Rejection::Topic {
            topic: topic.into(),
            pattern: rules.topic.to_string(),
        })?;
    let value: Value = strict_json::parse(payload).map_err(Rejection::Json)?;
    let received_at = format_utc(now);
    let check = |v: Value| reading(rules, topic_device, v, now, &received_at);
    match value {
        Value::Object(_) => Ok(vec![check(value)?]),
        Value::Array(items) if items.is_empty() => Err(Rejection::EmptyBatch),
        Value::Array(items) if items.len() > rules.max_batch => Err(Rejection::BatchTooLarge {
            count: items.len(),
            max: rules.max_batch,
        }),
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                check(item).map_err(|e| Rejection::InBatch {
                    index,
                    source: Box::new(e),
                })
            })
            .collect(),
        other => Err(Rejection::Shape(kind(&other))),
    }
}

fn reading(
    rules: &Rules,
    topic_device: &str,
    value: Value,
    now: OffsetDateTime,
    received_at: &str,
) -> Result<Reading, Rejection> {
    let Value::Object(mut fields) = value else {
        return Err(Rejection::Shape(kind(&value)));
    };
    if let Some(unknown) = fields.keys().find(|k| {
        !matches!(
            k.as_str(),
            "device_id" | "timestamp" | "sensor_type" | "data"
        )
    }) {
        return Err(Rejection::UnknownField(unknown.as_str().into()));
    }
    let device_id = take_string(&mut fields, "device_id")?;
    if !is_device_id(&device_id) {
        return Err(Rejection::DeviceId(device_id.into()));
    }
    if device_id != topic_device {
        return Err(Rejection::DeviceMismatch {
            payload: device_id.into(),
            topic: topic_device.into(),
        });
    }
    let timestamp = take_string(&mut fields, "timestamp")?;
    let ts = parse_timestamp(&timestamp).map_err(|error| Rejection::Timestamp {
        value: timestamp.as_str().into(),
        error,
    })?;
    let ahead = ts - now;
    if ahead > rules.max_future_skew {
        return Err(Rejection::FutureTimestamp {
            value: timestamp.into(),
            ahead: HumanDuration(ahead.unsigned_abs()),
            max: HumanDuration(rules.max_future_skew),
        });
    }
    let sensor_type = take_string(&mut fields, "sensor_type")?;
    if !is_sensor_type(&sensor_type) {
        return Err(Rejection::SensorType(sensor_type.into()));
    }
    let data = match fields.remove("data") {
        None => return Err(Rejection::Missing("data")),
        Some(Value::Object(data)) => data,
        Some(other) => return Err(type_error("data", "an object", &other)),
    };
    if data.is_empty() {
        return Err(Rejection::EmptyData);
    }
    let mut fields_seen = 0;
    check_object(rules, &mut String::from("data"), &data, 1, &mut fields_seen)?;
    check_known_sensor(&sensor_type, &data)?;
    Ok(Reading {
        device_id,
        sensor_type,
        ts: format_utc(ts),
        // Straight into bytes: `to_string` would go through `Display`'s formatter.
        data: serde_json::to_string(&data).expect("a JSON object serialises"),
        received_at: received_at.to_owned(),
    })
}

fn take_string(fields: &mut Map<String, Value>, name: &'static str) -> Result<String, Rejection> {
    match fields.remove(name) {
        None => Err(Rejection::Missing(name)),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(type_error(name, "a string", &other)),
    }
}

/// `path` names `object` (`data.a.b`); fields' names are appended to it in turn and taken
/// off again, so that only a refusal makes a string of its own.
fn check_object(
    rules: &Rules,
    path: &mut String,
    object: &Map<String, Value>,
    depth: usize,
    fields_seen: &mut usize,
) -> Result<(), Rejection> {
    if depth > rules.max_depth {
        return Err(Rejection::TooDeep {
            field: path.as_str().into(),
            max: rules.max_depth,
        });
    }
    let parent = path.len();
    for (key, value) in object {
        count_field(rules, fields_seen)?;
        path.push('.');
        path.push_str(key);
        check_len(rules, path, key)?;
        check_value(rules, path, value, depth, fields_seen)?;
        path.truncate(parent);
    }
    Ok(())
}

/// Counts one more field (an object's key or an array's element) against the limit.
fn count_field(rules: &Rules, fields_seen: &mut usize) -> Result<(), Rejection> {
    *fields_seen += 1;
    if *fields_seen > rules.max_fields {
        return Err(Rejection::TooManyFields {
            max: rules.max_fields,
        });
    }
    Ok(())
}

fn check_value(
    rules: &Rules,
    path: &mut String,
    value: &Value,
    depth: usize,
    fields_seen: &mut usize,
) -> Result<(), Rejection> {
    match value {
        Value::Object(inner) => check_object(rules, path, inner, depth + 1, fields_seen),
        Value::Array(items) => {
            if depth + 1 > rules.max_depth {
                return Err(Rejection::TooDeep {
                    field: path.as_str().into(),
                    max: rules.max_depth,
                });
            }
            let parent = path.len();
            for (i, item) in items.iter().enumerate() {
                // An element is a field too: a million-element array is not one field.
                count_field(rules, fields_seen)?;
                write!(path, "[{i}]").expect("writing to a String");
                check_value(rules, path, item, depth + 1, fields_seen)?;
                path.truncate(parent);
            }
            Ok(())
        }
        Value::String(s) => check_len(rules, path, s),
        Value::Number(n) if !n.as_f64().is_some_and(f64::is_finite) => Err(Rejection::NotFinite {
            field: path.as_str().into(),
        }),
        Value::Number(_) | Value::Bool(_) | Value::Null => Ok(()),
    }
}

fn check_len(rules: &Rules, field: &str, s: &str) -> Result<(), Rejection> {
    if s.len() > rules.max_string_len {
        return Err(Rejection::StringTooLong {
            field: field.into(),
            len: s.len(),
            max: rules.max_string_len,
        });
    }
    Ok(())
}

/// A numeric field a well-known sensor type must (or may) carry, with its range.
struct NumericField {
    name: &'static str,
    required: bool,
    min: f64,
    max: f64,
}

const fn field(name: &'static str, required: bool, min: f64, max: f64) -> NumericField {
    NumericField {
        name,
        required,
        min,
        max,
    }
}

/// The shapes of the sensor types the original Eliot knew. Other types get the generic
/// rules only. Listed in docs/readings.md; keep in step.
fn known_sensor_fields(sensor_type: &str) -> &'static [NumericField] {
    const GPS: &[NumericField] = &[
        field("latitude", true, -90.0, 90.0),
        field("longitude", true, -180.0, 180.0),
        field("accuracy", false, 0.0, f64::MAX),
    ];
    const TEMPERATURE: &[NumericField] = &[field("celsius", true, -273.15, f64::MAX)];
    const BATTERY: &[NumericField] = &[
        field("percent", true, 0.0, 100.0),
        field("voltage", false, 0.0, f64::MAX),
    ];
    match sensor_type {
        "gps" => GPS,
        "temperature" => TEMPERATURE,
        "battery" => BATTERY,
        _ => &[],
    }
}

fn check_known_sensor(sensor_type: &str, data: &Map<String, Value>) -> Result<(), Rejection> {
    for spec in known_sensor_fields(sensor_type) {
        let path = || format!("data.{}", spec.name);
        let value = match data.get(spec.name) {
            None if spec.required => {
                return Err(Rejection::Type {
                    field: path().into(),
                    expected: "a number",
                    found: "nothing",
                })
            }
            None => continue,
            Some(v) => v,
        };
        let Some(n) = value.as_f64() else {
            return Err(type_error(&path(), "a number", value));
        };
        if !(spec.min..=spec.max).contains(&n) {
            return Err(Rejection::OutOfRange {
                field: path().into(),
                value: n,
                min: spec.min,
                max: spec.max,
            });
        }
    }
    Ok(())
}

fn type_error(field: &str, expected: &'static str, found: &Value) -> Rejection {
    Rejection::Type {
        field: field.into(),
        expected,
        found: kind(found),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `[a-z0-9_]{1,32}`
pub fn is_sensor_type(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;

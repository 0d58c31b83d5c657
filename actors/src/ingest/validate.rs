//! Parsing and validation of one MQTT payload into readings, with a reason for every refusal.
//!
//! The rules are the README's "Validation rules"; keep the two in step.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::reading::Reading;
use super::rules::{HumanDuration, Rejection, Rules};
use super::strict_json;
use super::timefmt::format_utc;

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
    check_object(rules, "data", &data, 1, &mut fields_seen)?;
    check_known_sensor(&sensor_type, &data)?;
    Ok(Reading {
        device_id,
        sensor_type,
        ts: format_utc(ts),
        data: Value::Object(data).to_string(),
        received_at: received_at.to_owned(),
    })
}

/// RFC 3339 as the README states it: `T` (or `t`) between date and time, at most 9
/// fractional digits, no leap second, an offset; and a UTC year from 1970 to 9999. The
/// conversion to UTC is checked: past year 9999 it would overflow.
fn parse_timestamp(text: &str) -> Result<OffsetDateTime, String> {
    let bytes = text.as_bytes();
    if bytes.len() > 10 && !matches!(bytes[10], b'T' | b't') {
        return Err("date and time must be separated by `T`".into());
    }
    if bytes.get(17..19) == Some(b"60") {
        return Err("leap seconds (:60) are not accepted".into());
    }
    if bytes.get(19) == Some(&b'.') {
        let digits = bytes[20..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits > 9 {
            return Err(format!(
                "{digits} fractional digits, more than the 9 allowed"
            ));
        }
    }
    let ts = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| e.to_string())?;
    ts.checked_to_offset(time::UtcOffset::UTC)
        .filter(|utc| (1970..=9999).contains(&utc.year()))
        .ok_or_else(|| "the year in UTC must be between 1970 and 9999".to_owned())
}

fn take_string(fields: &mut Map<String, Value>, name: &'static str) -> Result<String, Rejection> {
    match fields.remove(name) {
        None => Err(Rejection::Missing(name)),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(type_error(name, "a string", &other)),
    }
}

fn check_object(
    rules: &Rules,
    path: &str,
    object: &Map<String, Value>,
    depth: usize,
    fields_seen: &mut usize,
) -> Result<(), Rejection> {
    if depth > rules.max_depth {
        return Err(Rejection::TooDeep {
            field: path.into(),
            max: rules.max_depth,
        });
    }
    for (key, value) in object {
        count_field(rules, fields_seen)?;
        let field = format!("{path}.{key}");
        check_len(rules, &field, key)?;
        check_value(rules, &field, value, depth, fields_seen)?;
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
    path: &str,
    value: &Value,
    depth: usize,
    fields_seen: &mut usize,
) -> Result<(), Rejection> {
    match value {
        Value::Object(inner) => check_object(rules, path, inner, depth + 1, fields_seen),
        Value::Array(items) => {
            if depth + 1 > rules.max_depth {
                return Err(Rejection::TooDeep {
                    field: path.into(),
                    max: rules.max_depth,
                });
            }
            items.iter().enumerate().try_for_each(|(i, item)| {
                // An element is a field too: a million-element array is not one field.
                count_field(rules, fields_seen)?;
                check_value(rules, &format!("{path}[{i}]"), item, depth + 1, fields_seen)
            })
        }
        Value::String(s) => check_len(rules, path, s),
        Value::Number(n) if !n.as_f64().is_some_and(f64::is_finite) => {
            Err(Rejection::NotFinite { field: path.into() })
        }
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
/// rules only. Listed in the README; keep in step.
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
        let path = format!("data.{}", spec.name);
        let value = match data.get(spec.name) {
            None if spec.required => {
                return Err(Rejection::Type {
                    field: path.into(),
                    expected: "a number",
                    found: "nothing",
                })
            }
            None => continue,
            Some(v) => v,
        };
        let Some(n) = value.as_f64() else {
            return Err(type_error(&path, "a number", value));
        };
        if !(spec.min..=spec.max).contains(&n) {
            return Err(Rejection::OutOfRange {
                field: path.into(),
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

/// `[A-Za-z0-9_.:-]{1,64}`
pub fn is_device_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// `[a-z0-9_]{1,32}`
fn is_sensor_type(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::super::topic::TopicPattern;
    use super::*;
    use std::time::Duration;
    use time::macros::datetime;

    const TOPIC: &str = "devices/robot_001/telemetry";
    const NOW: OffsetDateTime = datetime!(2025-06-05 15:00 UTC);

    fn rules() -> Rules {
        Rules {
            topic: TopicPattern::parse("devices/{device_id}/telemetry").unwrap(),
            max_future_skew: Duration::from_secs(300),
            max_depth: 8,
            max_fields: 256,
            max_string_len: 1024,
            max_batch: 1000,
        }
    }

    fn check(payload: &str) -> Result<Vec<Reading>, String> {
        validate(&rules(), TOPIC, payload.as_bytes(), NOW).map_err(|e| e.to_string())
    }

    fn reading_with(field: &str, value: &str) -> String {
        let mut v: Value = serde_json::from_str(ORIGINAL).unwrap();
        v[field] = serde_json::from_str(value).unwrap();
        v.to_string()
    }

    const ORIGINAL: &str = r#"{"device_id":"robot_001","timestamp":"2025-06-05T14:30:00Z","sensor_type":"gps","data":{"latitude":37.7749,"longitude":-122.4194,"accuracy":3.2}}"#;

    #[test]
    fn the_original_example_is_accepted_with_its_fields() {
        let readings = check(ORIGINAL).unwrap();
        assert_eq!(
            readings,
            vec![Reading {
                device_id: "robot_001".into(),
                sensor_type: "gps".into(),
                ts: "2025-06-05T14:30:00.000000Z".into(),
                data: r#"{"accuracy":3.2,"latitude":37.7749,"longitude":-122.4194}"#.into(),
                received_at: "2025-06-05T15:00:00.000000Z".into(),
            }]
        );
    }

    #[test]
    fn an_offset_timestamp_is_normalised_to_utc() {
        let r = check(&reading_with(
            "timestamp",
            r#""2025-06-05T16:30:00.5+02:00""#,
        ))
        .unwrap();
        assert_eq!(r[0].ts, "2025-06-05T14:30:00.500000Z");
    }

    #[test]
    fn each_rule_gives_a_specific_reason() {
        let cases = [
            (r#"{"device_id": "#.to_owned(), "not valid JSON"),
            ("42".to_owned(), "found a number"),
            ("[]".to_owned(), "empty array"),
            (
                reading_with("device_id", r#""robot_002""#),
                "does not match the topic",
            ),
            (
                reading_with("device_id", r#""bad id!""#),
                "device_id `bad id!` is invalid",
            ),
            (
                reading_with("timestamp", r#""2025-06-05T16:00:00Z""#),
                "1h in the future",
            ),
            (
                reading_with("timestamp", r#""2025-06-05 14:30""#),
                "not RFC 3339",
            ),
            (
                reading_with("timestamp", r#""0000-01-01T00:30:00+01:00""#),
                "between 1970 and 9999",
            ),
            // Past year 9999 once in UTC: the conversion used to panic the processor.
            (
                reading_with("timestamp", r#""9999-12-31T23:30:00-01:00""#),
                "between 1970 and 9999",
            ),
            (
                reading_with("timestamp", r#""2025-06-05X14:30:00Z""#),
                "separated by `T`",
            ),
            (
                reading_with("timestamp", r#""2016-12-31T23:59:60Z""#),
                "leap seconds",
            ),
            (
                reading_with("timestamp", r#""2025-06-05T14:30:00.1234567891Z""#),
                "10 fractional digits, more than the 9 allowed",
            ),
            (
                reading_with("timestamp", "1717600000"),
                "timestamp: expected a string, found a number",
            ),
            (
                reading_with("sensor_type", r#""GPS""#),
                "sensor_type `GPS` is invalid",
            ),
            (reading_with("data", "{}"), "data is empty"),
            (
                reading_with("data", "[1]"),
                "data: expected an object, found an array",
            ),
            (reading_with("extra", "1"), "unknown field `extra`"),
            (
                reading_with("data", r#"{"latitude":"37.7","longitude":1}"#),
                "data.latitude: expected a number, found a string",
            ),
            (
                reading_with("data", r#"{"latitude":91,"longitude":1}"#),
                "data.latitude: 91 is outside the range -90 to 90",
            ),
            (
                reading_with(
                    "data",
                    r#"{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":1}}}}}}}}}"#,
                ),
                "data.a.b.c.d.e.f.g.h nests deeper than the limit of 8",
            ),
            (
                reading_with("data", &format!(r#"{{"s":"{}"}}"#, "x".repeat(1025))),
                "data.s: string of 1025 bytes",
            ),
        ];
        for (payload, expected) in cases {
            let reason = check(&payload).expect_err(&payload);
            assert!(
                reason.contains(expected),
                "{payload}\n  gave: {reason}\n  want: {expected}"
            );
        }
    }

    #[test]
    fn huge_numbers_are_refused_as_not_finite_json() {
        let reason =
            check(&reading_with("data", r#"{"x":1}"#).replace(":1}", ":1e999}")).unwrap_err();
        assert!(reason.contains("not valid JSON"), "{reason}");
    }

    #[test]
    fn a_batch_is_all_or_nothing_and_names_the_bad_element() {
        let good = ORIGINAL.to_owned();
        let second = good.replace("14:30:00Z", "14:31:00Z");
        assert_eq!(check(&format!("[{good},{second}]")).unwrap().len(), 2);
        let bad = reading_with("data", r#"{"latitude":"north","longitude":1}"#);
        let reason = check(&format!("[{good},{bad}]")).unwrap_err();
        assert_eq!(
            reason,
            "batch element [1] (counting from 0): data.latitude: expected a number, found a string"
        );
    }

    #[test]
    fn too_many_fields_are_refused() {
        let fields: Vec<String> = (0..257).map(|i| format!(r#""f{i}":{i}"#)).collect();
        let reason =
            check(&reading_with("data", &format!("{{{}}}", fields.join(",")))).unwrap_err();
        assert!(reason.contains("more than 256 fields"), "{reason}");
        // Array elements count too: one field holding 300 numbers is over the limit.
        let numbers: Vec<String> = (0..300).map(|i| i.to_string()).collect();
        let array = format!(r#"{{"samples":[{}]}}"#, numbers.join(","));
        let reason = check(&reading_with("data", &array)).unwrap_err();
        assert!(reason.contains("more than 256 fields"), "{reason}");
        let fits: Vec<String> = (0..253).map(|i| i.to_string()).collect();
        let array = format!(
            r#"{{"latitude":1,"longitude":2,"samples":[{}]}}"#,
            fits.join(",")
        );
        assert!(check(&reading_with("data", &array)).is_ok());
    }

    #[test]
    fn a_topic_outside_the_pattern_is_refused() {
        let reason = validate(&rules(), "sensors/x", ORIGINAL.as_bytes(), NOW).unwrap_err();
        assert!(reason
            .to_string()
            .contains("does not match the telemetry pattern"));
    }
}

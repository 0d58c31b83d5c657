//! The validation rules, case by case.

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
fn nine_fractional_digits_are_accepted_when_the_last_three_are_zeros() {
    let r = check(&reading_with(
        "timestamp",
        r#""2025-06-05T14:30:00.123456000Z""#,
    ))
    .unwrap();
    assert_eq!(r[0].ts, "2025-06-05T14:30:00.123456Z");
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
        // Kept to the microsecond, these two would be one reading: refused, not merged.
        (
            reading_with("timestamp", r#""2025-06-05T14:30:00.0000001Z""#),
            "more precise than a microsecond",
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
        // The path names the field refused, not the ones checked before it.
        (
            reading_with(
                "data",
                &format!(r#"{{"a":{{"b":[1,2]}},"c":[0,"{}"]}}"#, "x".repeat(1025)),
            ),
            "data.c[1]: string of 1025 bytes",
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
    let reason = check(&reading_with("data", r#"{"x":1}"#).replace(":1}", ":1e999}")).unwrap_err();
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
    let reason = check(&reading_with("data", &format!("{{{}}}", fields.join(",")))).unwrap_err();
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

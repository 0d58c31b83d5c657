//! Fuzzing on the stable toolchain: proptest generates inputs (mutations of the corpus in
//! `tests/corpus/`: whole 3.1.1 and 5 sessions as rumqttc encodes them, and payloads;
//! and JSON built from the shapes that matter) for as long as
//! `ELIOT_FUZZ_SECONDS` allows (3 s per target by default; CI runs that), and any panic
//! fails the test, printing the input and saving it under `$TMPDIR/eliot-fuzz-crashes/`. Save a
//! crash into the corpus once it is fixed, so that it is tried every run.
//!
//! ```text
//! ELIOT_FUZZ_SECONDS=600 cargo test --release -p eliot-actors --test fuzz -- --nocapture
//! ```

mod fuzz_support;

use std::path::Path;
use std::time::Duration;

use bytes::BytesMut;
use eliot_actors::{validate, CodecError, IngestSettings, MqttCodec, Rules};
use fuzz_support::{fuzz, mutated, read_corpus};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    read_corpus(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/corpus")
            .join(target),
    )
}

/// Decodes `bytes` as one connection's stream, as far as the codec goes.
fn decode_all(bytes: &[u8]) {
    let mut codec = MqttCodec::new(4096);
    let mut buf = BytesMut::from(bytes);
    loop {
        match codec.decode(&mut buf) {
            Ok(Some(_)) => continue,
            Ok(None) | Err(CodecError::Io(_)) => return,
            Err(_) => return,
        }
    }
}

#[test]
fn the_codec_never_panics_on_mutated_sessions_of_both_versions() {
    let executions = fuzz("codec", mutated(corpus("codec")), |bytes| decode_all(bytes));
    assert!(executions > 0);
}

#[test]
fn the_codec_never_panics_on_random_bytes() {
    let executions = fuzz(
        "codec-random",
        prop::collection::vec(any::<u8>(), 0..512),
        |bytes| decode_all(bytes),
    );
    assert!(executions > 0);
}

fn rules() -> Rules {
    let settings = IngestSettings {
        topic: "devices/{device_id}/telemetry".into(),
        max_future_skew: Duration::from_secs(300),
        max_depth: 8,
        max_fields: 256,
        max_string_len: 1024,
        max_batch: 1000,
    };
    Rules::try_from(&settings).unwrap()
}

/// JSON shaped like readings, with the values that have broken parsers before: edge
/// timestamps, huge and odd numbers, deep nesting, long strings.
fn json_readings() -> impl Strategy<Value = String> {
    let timestamp = prop_oneof![
        Just("9999-12-31T23:59:59-23:59".to_owned()),
        Just("0000-01-01T00:00:00+23:59".to_owned()),
        Just("2025-06-05T14:30:00.999999999Z".to_owned()),
        Just("2025-02-29T00:00:00Z".to_owned()),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:[0-9]{2})",
    ];
    let leaf = prop_oneof![
        any::<f64>().prop_map(|n| format!("{n:e}")),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_owned()),
        Just("-0".to_owned()),
        Just("1e400".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        "[a-z_]{0,12}".prop_map(|s| format!("{s:?}")),
    ];
    let value = leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-z]{1,3}", inner), 0..6).prop_map(|fields| {
                let fields: Vec<String> =
                    fields.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    });
    let sensor = prop_oneof![Just("gps"), Just("temperature"), Just("battery"), Just("x")];
    (timestamp, sensor, value).prop_map(|(ts, sensor, data)| {
        format!(r#"{{"device_id":"robot_001","timestamp":"{ts}","sensor_type":"{sensor}","data":{data}}}"#)
    })
}

#[test]
fn validation_never_panics_on_generated_readings() {
    let rules = rules();
    let now = time::OffsetDateTime::now_utc();
    let executions = fuzz("validate", json_readings(), |payload| {
        let _ = validate(
            &rules,
            "devices/robot_001/telemetry",
            payload.as_bytes(),
            now,
        );
    });
    assert!(executions > 0);
}

#[test]
fn validation_never_panics_on_mutated_payloads() {
    let rules = rules();
    let now = time::OffsetDateTime::now_utc();
    let executions = fuzz("validate-mutated", mutated(corpus("validate")), |payload| {
        let _ = validate(&rules, "devices/robot_001/telemetry", payload, now);
    });
    assert!(executions > 0);
}

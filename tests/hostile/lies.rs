//! Inputs that would make Eliot store something other than what was sent, and its files.

use super::*;

/// A payload that names its device twice (`"device_id":"robot_001", ..., "device_id":
/// "robot_002"`) would be read one way by Eliot (serde_json keeps the last) and another by
/// whoever reads the payload: it is a dead letter naming the duplicated key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_json_key_is_refused() {
    let eliot = Eliot::start();
    let twice = r#"{"device_id":"robot_001","timestamp":"2025-06-05T14:30:00Z","sensor_type":"gps","data":{"latitude":1,"longitude":2},"device_id":"robot_002"}"#;
    let mut device = Device::connect(eliot.addr, "robot_002");
    let sent = device
        .publish_all("robot_002", vec![twice.to_owned()], QoS::AtLeastOnce)
        .await;
    assert_eq!(sent, 1);
    let dead = eliot.dead_letters();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].reason.contains("duplicate key `device_id`"),
        "{}",
        dead[0].reason
    );
    assert_eq!(eliot.count("readings"), 0);
}

/// Timestamps are RFC 3339 as documented, and array elements count as fields: each of
/// these is a dead letter whose reason says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_that_bend_the_rules_are_refused_with_the_rule() {
    let eliot = Eliot::start();
    let with = |timestamp: &str, data: &str| {
        format!(
            r#"{{"device_id":"robot_018","timestamp":"{timestamp}","sensor_type":"x","data":{data}}}"#
        )
    };
    let numbers: Vec<String> = (0..300).map(|n| n.to_string()).collect();
    let cases = [
        (
            with("2025-06-05X14:30:00Z", r#"{"a":1}"#),
            "separated by `T`",
        ),
        (
            with("2025-06-05T14:30:00.1234567891Z", r#"{"a":1}"#),
            "fractional digits",
        ),
        (with("2016-12-31T23:59:60Z", r#"{"a":1}"#), "leap seconds"),
        (
            with(
                "2025-06-05T14:30:00Z",
                &format!(r#"{{"a":[{}]}}"#, numbers.join(",")),
            ),
            "more than 256 fields",
        ),
        (
            with("2025-06-05T14:30:00Z", r#"{"a":18446744073709551616}"#),
            "64 bits",
        ),
    ];
    let mut device = Device::connect(eliot.addr, "robot_018");
    let payloads = cases.iter().map(|(payload, _)| payload.clone()).collect();
    assert_eq!(
        device
            .publish_all("robot_018", payloads, QoS::AtLeastOnce)
            .await,
        cases.len()
    );
    let dead = eliot.dead_letters();
    assert_eq!(dead.len(), cases.len());
    for ((_, why), dead) in cases.iter().zip(&dead) {
        assert!(dead.reason.contains(why), "{why}: {}", dead.reason);
    }
}

/// The data directory Eliot creates is 0700 and the database files 0600, whatever the
/// umask (a directory that existed before keeps its mode: tests/cli.rs). The binary, with
/// the loosest umask there is.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let mut launch = common::process::Launch::new(&data, common::process::free_addr());
    launch.before = Some("umask 000".into());
    let eliot = launch.start();
    let mut device = Device::connect(eliot.addr, "robot_019");
    let stored = device
        .publish_all("robot_019", vec![reading("robot_019", 1)], QoS::AtLeastOnce)
        .await;
    assert_eq!(stored, 1);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    for file in ["eliot.db", "eliot.db-wal", "eliot.db-shm"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
}

//! The API v1's readings over real HTTP, against a running Eliot fed by real MQTT
//! clients: what `/api/v1/devices/{id}/readings/latest` and `/api/v1/devices/{id}/readings`
//! answer, across the memtable and the chunks, and how they refuse what they cannot
//! answer, with the error body. (No token is configured: Eliot listens on loopback.)

mod common;

use common::*;
use rumqttc::QoS;
use serde_json::Value;

fn ts(n: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(READING_EPOCH + n as i64).unwrap();
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.format(&format).unwrap()
}

fn gps(device: &str, n: u64) -> String {
    format!(
        r#"{{"device_id":"{device}","timestamp":"{}","sensor_type":"gps","data":{{"latitude":{n}.5,"longitude":2.0}}}}"#,
        ts(n)
    )
}

fn timestamps(page: &Value) -> Vec<String> {
    page["readings"]
        .as_array()
        .expect("a JSON array of readings")
        .iter()
        .map(|r| r["timestamp"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_s_readings_are_served_from_memory_and_chunks_alike() {
    // Small generations, filled exactly: three of 40 readings each are sealed and merged
    // into a chunk, one at a time; the 39 readings after them stay in memory. So each
    // query below reads both, and the newest gps reading (7) is in the chunk while a later
    // arrival with an older timestamp (3) is in memory.
    let eliot = Eliot::start_with(|c| {
        c.store.generation_rows = 40;
        c.store.merge_slice = 15;
    });
    let mut device = Device::connect(eliot.addr, "robot_001");
    let mut merged: Vec<String> = (0..119).map(|n| reading("robot_001", n)).collect();
    merged.push(gps("robot_001", 7));
    for generation in merged.chunks(40) {
        assert_eq!(
            device
                .publish_all("robot_001", generation.to_vec(), QoS::AtLeastOnce)
                .await,
            40
        );
        let sealed_and_merged = eventually_async(std::time::Duration::from_secs(10), || async {
            eliot.health().await.store.holds.unmerged_readings == 0
        })
        .await;
        assert!(sealed_and_merged, "{:?}", eliot.health().await.store.holds);
    }
    let mut in_memory: Vec<String> = (119..150).map(|n| reading("robot_001", n)).collect();
    in_memory.push(gps("robot_001", 3));
    assert_eq!(
        device
            .publish_all("robot_001", in_memory, QoS::AtLeastOnce)
            .await,
        32
    );
    let mut other = Device::connect(eliot.addr, "robot_002");
    let theirs = (0..7).map(|n| reading("robot_002", n + 1000)).collect();
    assert_eq!(
        other
            .publish_all("robot_002", theirs, QoS::AtLeastOnce)
            .await,
        7
    );
    let shape = eliot.health().await.store.holds;
    assert_eq!(
        (shape.chunked_readings, shape.unmerged_readings),
        (120, 39),
        "{shape:?}"
    );

    let base = "/api/v1/devices/robot_001/readings";
    let (status, latest) = json(eliot.http_addr, &format!("{base}/latest")).await;
    assert_eq!(status, 200, "{latest}");
    let latest = &latest["readings"];
    let sensors: Vec<(&str, &str)> = latest
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["sensor_type"].as_str().unwrap(),
                r["timestamp"].as_str().unwrap(),
            )
        })
        .collect();
    let (newest_gps, newest_temperature) = (ts(7), ts(149));
    assert_eq!(
        sensors,
        [
            ("gps", newest_gps.as_str()),
            ("temperature", newest_temperature.as_str())
        ]
    );
    assert_eq!(
        latest[0]["data"]["latitude"], 7.5,
        "data is the stored JSON object"
    );
    assert_eq!(latest[0]["device_id"], "robot_001");

    let (_, gps_only) = json(eliot.http_addr, &format!("{base}/latest?sensor_type=gps")).await;
    assert_eq!(gps_only["readings"].as_array().unwrap().len(), 1);

    let (status, last) = json(eliot.http_addr, &format!("{base}?limit=10")).await;
    assert_eq!(status, 200);
    let expected: Vec<String> = (140..150).rev().map(ts).collect();
    assert_eq!(timestamps(&last), expected, "newest first");
    assert!(last["next_cursor"].is_string(), "more follow: {last}");

    let (status, all) = json(eliot.http_addr, &format!("{base}?limit=10000")).await;
    assert_eq!(status, 200);
    assert_eq!(timestamps(&all).len(), 152, "each reading once");
    assert_eq!(all["next_cursor"], Value::Null);

    let path = format!("{base}?from={}&to={}&order=asc", ts(20), ts(30));
    let (status, range) = json(eliot.http_addr, &path).await;
    assert_eq!(status, 200);
    assert_eq!(
        timestamps(&range),
        (20..30).map(ts).collect::<Vec<_>>(),
        "from ≤ t < to, oldest first"
    );
    let (_, first_three) = json(eliot.http_addr, &format!("{path}&limit=3")).await;
    assert_eq!(
        timestamps(&first_three),
        (20..23).map(ts).collect::<Vec<_>>()
    );

    let (status, nobody) = json(eliot.http_addr, "/api/v1/devices/robot_404/readings/latest").await;
    assert_eq!(
        (status, nobody),
        (200, serde_json::json!({ "readings": [] }))
    );
}

/// Each refusal is a 400 with the error body, its code and a message saying why; another
/// method is a 405 with `Allow`; the old paths say where the readings moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_read_api_cannot_answer_is_refused_with_a_reason() {
    let eliot = Eliot::start();
    let base = "/api/v1/devices/robot_001/readings";
    for (path, code, reason) in [
        (
            "/api/v1/devices/bad%20id/readings/latest".to_owned(),
            "invalid_path",
            "device id",
        ),
        (
            format!("{base}?limit=0"),
            "invalid_query",
            "limit must be from 1 to 10000",
        ),
        (
            format!("{base}?limit=10001"),
            "invalid_query",
            "limit must be from 1 to 10000",
        ),
        (
            format!("{base}?limit=x"),
            "invalid_query",
            "bad query string",
        ),
        (format!("{base}?last=5"), "invalid_query", "unknown field"),
        (
            format!("{base}?order=sideways"),
            "invalid_query",
            "bad query string",
        ),
        (
            format!("{base}?sensor_type=GPS"),
            "invalid_query",
            "sensor_type",
        ),
        (format!("{base}?from=yesterday"), "invalid_query", "from:"),
        (
            format!("{base}?to=2025-06-05%2014:30:00Z"),
            "invalid_query",
            "to:",
        ),
        (
            format!("{base}?cursor=garbage"),
            "invalid_cursor",
            "not a cursor",
        ),
    ] {
        let (status, body) = json(eliot.http_addr, &path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{path}: {message}");
    }
    let (status, body) = request("POST", eliot.http_addr, &format!("{base}/latest")).await;
    assert_eq!(status, 405, "{body}");
    assert!(body.contains("method_not_allowed"), "{body}");
    let (status, body) = json(eliot.http_addr, "/devices/robot_001/latest").await;
    assert_eq!(status, 404);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("/api/v1/devices/{id}/readings"));
}

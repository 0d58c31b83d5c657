//! Anomaly detection, against the `eliot` binary, with a real MQTT device, an HTTP client
//! and the `sqlite3` shell:
//!
//! - a device's steady readings, then one far from them: the score is kept with the
//!   reading's key, in the database (read by another process), in
//!   `GET /api/v1/devices/{id}/anomalies` (paged by `after`, no repeat; `from`/`to`
//!   bound it), in the device's live figure, and in `eliot_anomalies_total`;
//! - a hostile device whose every message names new numeric fields cannot grow the
//!   detectors past `anomaly.max_series_per_device`: the rest are counted, not scored,
//!   and another device is still scored;
//! - after kill -9, a device's detectors learn its stored history before they score its
//!   first reading: a jump sent first thing after the restart is kept (and, started cold
//!   with `history = 0`, it is not: the history is what sees it).

use std::net::SocketAddr;
use std::time::Duration;

use libtest_mimic::Trial;
use rumqttc::QoS;
use serde_json::Value;

use crate::api_mutations::count;
use crate::common::process::{own_loopback_addr, Launch};
use crate::common::{eventually_async, metric, Device, READING_EPOCH};
use crate::support::{api_get, api_tokens, trial, READ_TOKEN};

pub fn tests() -> Vec<Trial> {
    vec![
        trial(
            "anomalies::a_jump_is_kept_with_its_readings_key_and_served",
            a_jump_is_kept,
        ),
        trial(
            "anomalies::a_device_naming_ever_new_fields_cannot_grow_the_detectors",
            bounded_series,
        ),
        trial(
            "anomalies::after_kill_9_the_detectors_learn_the_history_and_see_a_jump_at_once",
            rebuilt_from_history,
        ),
        trial(
            "anomalies::after_kill_9_without_history_the_detectors_start_cold",
            cold_without_history,
        ),
    ]
}

/// State and scores written every 100 ms; four series per device.
const CONFIG: &str = r#"
[fleet]
flush_interval = "100ms"
state_interval = "100ms"

[anomaly]
floor = 0.5
max_series_per_device = 4
"#;

/// A reading of `device`'s `sensor`, `n` seconds after the epoch the tests use, with
/// `data` as given.
fn payload(device: &str, sensor: &str, n: u64, data: &str) -> String {
    let ts = time::OffsetDateTime::from_unix_timestamp(READING_EPOCH + n as i64).unwrap();
    let ts = ts
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    format!(
        r#"{{"device_id":"{device}","timestamp":"{ts}","sensor_type":"{sensor}","data":{data}}}"#
    )
}

/// The reading's time as Eliot writes it.
fn written(n: u64) -> String {
    eliot_actors::format_micros((READING_EPOCH + n as i64) * 1_000_000)
}

/// A slow wave around 21 °C, then (at `JUMP`) 95 °C.
const JUMP: u64 = 399;

fn celsius(n: u64) -> f64 {
    if n == JUMP {
        95.0
    } else {
        21.0 + (n as f64 / 10.0).sin()
    }
}

/// `anom-1`'s temperature reading `n` (`celsius(n)`).
fn temperature(n: u64) -> String {
    let data = format!(r#"{{"celsius":{:.3}}}"#, celsius(n));
    payload("anom-1", "temperature", n, &data)
}

/// Eliot on `dir` with `config`, and the API's tokens.
fn start(dir: &std::path::Path, config: &str) -> crate::common::process::EliotProcess {
    Launch::new(dir, own_loopback_addr())
        .config(config)
        .env("ELIOT_API_TOKENS", &api_tokens())
        .start()
}

async fn anomalies(http: SocketAddr, query: &str) -> Value {
    let path = format!("/api/v1/devices/anom-1/anomalies{query}");
    let answer = api_get(http, &path, READ_TOKEN).await;
    assert_eq!(answer.status, 200, "{path}: {answer:?}");
    answer.body
}

async fn a_jump_is_kept() {
    let data = tempfile::tempdir().unwrap();
    let eliot = start(data.path(), CONFIG);
    let http = eliot.http;
    let mut dev = Device::connect(eliot.addr, "anom-1");
    let payloads = (0..=JUMP).map(temperature).collect();
    let sent = JUMP as usize + 1;
    assert_eq!(
        dev.publish_all("anom-1", payloads, QoS::AtLeastOnce).await,
        sent
    );

    let kept = eventually_async(Duration::from_secs(20), || async {
        anomalies(http, "").await["anomalies"]
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s["ts"] == written(JUMP).as_str()))
    })
    .await;
    assert!(kept, "the jump's score is stored and served");
    let all = anomalies(http, "?limit=1000").await["anomalies"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        all.len() <= 3,
        "a steady wave keeps (almost) nothing: {all:?}"
    );
    let jump = all
        .iter()
        .find(|s| s["ts"] == written(JUMP).as_str())
        .unwrap();
    assert_eq!(jump["sensor_type"], "temperature");
    assert_eq!(jump["field"], "celsius");
    assert!(jump["score"].as_f64().unwrap() >= 0.5, "{jump}");

    // Paged one at a time: each once, in order.
    let (mut paged, mut after) = (Vec::new(), None::<i64>);
    loop {
        let query = match after {
            Some(a) => format!("?limit=1&after={a}"),
            None => "?limit=1".to_owned(),
        };
        let page = anomalies(http, &query).await;
        paged.extend(page["anomalies"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_i64() {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, all);
    let before_jump = anomalies(http, &format!("?to={}", written(JUMP))).await;
    assert!(
        before_jump["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["ts"] != written(JUMP).as_str()),
        "`to` is exclusive: {before_jump}"
    );

    // The database, read by another process: the row with its reading's key.
    let db = eliot.db_path();
    let sql = format!(
        "SELECT count(*) FROM anomalies WHERE device_id = 'anom-1' AND sensor_type = 'temperature' \
         AND field = 'celsius' AND ts = '{}' AND score >= 0.5",
        written(JUMP)
    );
    assert_eq!(count(&db, &sql), 1);
    // Its key finds its reading, as docs/schema.md's join does, received when it was.
    let joined = "SELECT count(*) FROM anomalies a JOIN readings r \
                  USING (device_id, sensor_type, ts) WHERE a.received_at = r.received_at";
    assert_eq!(count(&db, joined), all.len() as i64);
    let stored = count(
        &db,
        "SELECT count(*) FROM readings WHERE device_id = 'anom-1'",
    );
    assert_eq!(stored, sent as i64, "every reading stored, scored or not");

    let device = api_get(http, "/api/v1/devices/anom-1", READ_TOKEN)
        .await
        .body;
    let figure = &device["anomaly"];
    assert_eq!(figure["kept"].as_u64(), Some(all.len() as u64), "{device}");
    assert_eq!(figure["series"][0]["field"], "celsius", "{device}");
    assert_eq!(
        figure["last_kept"]["ts"],
        written(JUMP).as_str(),
        "{device}"
    );
    let counted = metric(http, "eliot_anomalies_total").await;
    assert_eq!(counted, Some(all.len() as f64));
    assert_eq!(metric(http, "eliot_anomaly_series").await, Some(1.0));
    eliot.terminate();
}

async fn bounded_series() {
    let data = tempfile::tempdir().unwrap();
    let eliot = start(data.path(), CONFIG);
    let http = eliot.http;
    let mut hostile = Device::connect(eliot.addr, "anom-greedy");
    // Each message names ten fields never seen before, one of them nested deep, one with a
    // key far too long to keep.
    let long_key = "k".repeat(200);
    let payloads = (0..50)
        .map(|n| {
            let fields: Vec<String> = (0..8).map(|f| format!(r#""f{n}_{f}":{f}"#)).collect();
            let data = format!(
                r#"{{{},"{long_key}":1,"a":{{"b":{{"c":{{"d":{{"e":1}}}}}}}}}}"#,
                fields.join(",")
            );
            payload("anom-greedy", "vibration", n, &data)
        })
        .collect();
    assert_eq!(
        hostile
            .publish_all("anom-greedy", payloads, QoS::AtLeastOnce)
            .await,
        50
    );
    let mut calm = Device::connect(eliot.addr, "anom-calm");
    let calm_payloads = (0..5)
        .map(|n| payload("anom-calm", "temperature", n, r#"{"celsius":20.5}"#))
        .collect();
    assert_eq!(
        calm.publish_all("anom-calm", calm_payloads, QoS::AtLeastOnce)
            .await,
        5
    );

    let counted = eventually_async(Duration::from_secs(20), || async {
        metric(http, "eliot_anomaly_series").await == Some(5.0)
    })
    .await;
    assert!(
        counted,
        "4 series for the greedy device, 1 for the calm one: {:?}",
        metric(http, "eliot_anomaly_series").await
    );
    let untracked = metric(http, "eliot_anomaly_series_untracked_total")
        .await
        .unwrap();
    // Per message 8 named fields; the deep and the long one are never candidates.
    assert_eq!(
        untracked,
        (50.0 * 8.0) - 4.0,
        "every field past the bound is counted"
    );
    let greedy = api_get(http, "/api/v1/devices/anom-greedy", READ_TOKEN)
        .await
        .body;
    assert_eq!(greedy["anomaly"]["series"].as_array().unwrap().len(), 4);
    assert_eq!(greedy["counts"]["readings"], 50, "every reading stored");
    let calm_state = api_get(http, "/api/v1/devices/anom-calm", READ_TOKEN)
        .await
        .body;
    assert_eq!(calm_state["anomaly"]["series"][0]["field"], "celsius");
    eliot.terminate();
}

/// A steady series, Eliot killed (SIGKILL) and started again, then the jump as the first
/// reading after the restart: with the detectors rebuilt from the device's history the jump
/// is kept; started cold (`history = 0`) they are still learning and it is not.
async fn rebuilt_after_kill(history: u32) -> i64 {
    let data = tempfile::tempdir().unwrap();
    let config = format!("{CONFIG}history = {history}\n");
    let eliot = start(data.path(), &config);
    let db = eliot.db_path();
    let mut dev = Device::connect(eliot.addr, "anom-1");
    let steady = (0..JUMP).map(temperature).collect();
    assert_eq!(
        dev.publish_all("anom-1", steady, QoS::AtLeastOnce).await,
        JUMP as usize
    );
    // Its state row is written (it was heard before the kill).
    let row =
        "SELECT count(*) FROM device_state WHERE device_id = 'anom-1' AND last_seen IS NOT NULL";
    let heard = eventually_async(Duration::from_secs(20), || async { count(&db, row) == 1 }).await;
    assert!(heard, "its state row is written");
    drop(dev);
    let eliot = eliot.kill9().start();
    let http = eliot.http;
    let mut dev = Device::connect(eliot.addr, "anom-1");
    let jump = temperature(JUMP);
    assert_eq!(
        dev.publish_all("anom-1", vec![jump], QoS::AtLeastOnce)
            .await,
        1
    );
    // Scored once the history came back (or at once, cold): the figure shows the series.
    let scored = eventually_async(Duration::from_secs(20), || async {
        let device = api_get(http, "/api/v1/devices/anom-1", READ_TOKEN)
            .await
            .body;
        device["anomaly"]["series"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    })
    .await;
    assert!(scored, "the reading after the restart is scored");
    eliot.terminate();
    let kept = format!(
        "SELECT count(*) FROM anomalies WHERE device_id = 'anom-1' AND ts = '{}'",
        written(JUMP)
    );
    count(&db, &kept)
}

async fn rebuilt_from_history() {
    assert_eq!(rebuilt_after_kill(512).await, 1, "the jump is kept at once");
}

async fn cold_without_history() {
    assert_eq!(
        rebuilt_after_kill(0).await,
        0,
        "cold detectors are still learning"
    );
}

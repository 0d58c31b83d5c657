//! The fleet through the API v1, against the `eliot` binary, with real MQTT devices and
//! an HTTP client:
//!
//! - a device that connects, publishes and disconnects is shown online (connected since,
//!   last seen, peer, protocol, counts), then offline with its times and reason; its
//!   status events come oldest first, a page at a time;
//! - the listing's filters (status, id prefix, sensor type, quarantined) and both sorts;
//!   a quarantined device is released, one not quarantined is 409, one unknown 404;
//! - paging by id while new devices keep appearing: no gap, no repeat among those that
//!   existed when the paging started;
//! - with `fleet.enabled = false` the fleet's routes answer 503 `fleet_disabled`, while
//!   provisioning and deletion still work.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libtest_mimic::Trial;
use rumqttc::QoS;
use serde_json::Value;

use crate::common::process::{own_loopback_addr, Launch};
use crate::common::{eventually_async, reading, Device};
use crate::support::{api, api_get, api_tokens, trial, ApiAnswer, ADMIN_TOKEN, READ_TOKEN};

pub fn tests() -> Vec<Trial> {
    vec![
        trial(
            "api_devices::a_device_is_online_then_offline_with_its_times_and_events",
            online_then_offline,
        ),
        trial(
            "api_devices::the_list_filters_and_sorts_and_a_quarantine_is_released",
            filters_sorts_release,
        ),
        trial(
            "api_devices::paging_by_id_while_devices_appear_has_no_gap_or_repeat",
            paging_under_arrivals,
        ),
        trial(
            "api_devices::with_the_fleet_off_its_routes_answer_503",
            fleet_off,
        ),
    ]
}

/// State written every 100 ms; quarantine by rejection rate on (the suite's test.toml
/// turns it off), for an hour: only a release ends it here.
const FLEET: &str = r#"
[fleet]
flush_interval = "100ms"
state_interval = "100ms"
quarantine_rejection_rate = 0.5
quarantine_min_messages = 10
quarantine_duration = "1h"
"#;

fn launch(dir: &Path) -> Launch {
    Launch::new(dir, own_loopback_addr())
        .config(FLEET)
        .env("ELIOT_API_TOKENS", &api_tokens())
}

/// Now, as Eliot writes times (RFC 3339, microseconds, UTC): such strings sort as times.
fn now() -> String {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros();
    eliot_actors::format_micros(micros as i64)
}

async fn device(http: SocketAddr, id: &str) -> ApiAnswer {
    api_get(http, &format!("/api/v1/devices/{id}"), READ_TOKEN).await
}

/// Polls `GET /devices/{id}` until `holds`, for up to 20 s; the last answer.
async fn device_until(http: SocketAddr, id: &str, holds: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        let answer = device(http, id).await;
        if answer.status == 200 && holds(&answer.body) {
            return answer.body;
        }
        last = answer.body;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id} never got there: {last}");
}

/// The ids of a listing's pages, walked to the end.
async fn walk(http: SocketAddr, query: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/devices?{query}&cursor={c}"),
            None => format!("/api/v1/devices?{query}"),
        };
        let answer = api_get(http, &path, READ_TOKEN).await;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        for d in answer.body["devices"].as_array().unwrap() {
            ids.push(d["device_id"].as_str().unwrap().to_owned());
        }
        match answer.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

async fn online_then_offline() {
    let data = tempfile::tempdir().unwrap();
    let eliot = launch(data.path()).start();
    let http = eliot.http;
    let before = now();
    let mut dev = Device::connect(eliot.addr, "api-dev");
    let payloads = (0..3).map(|n| reading("api-dev", n)).collect();
    assert_eq!(
        dev.publish_all("api-dev", payloads, QoS::AtLeastOnce).await,
        3
    );
    let online = device_until(http, "api-dev", |d| d["counts"]["readings"] == 3).await;
    assert_eq!(online["device_id"], "api-dev");
    assert_eq!(online["status"], "online", "{online}");
    assert_eq!(online["protocol"], "mqtt-3.1.1", "{online}");
    assert!(
        online["peer"].as_str().unwrap().starts_with("127."),
        "{online}"
    );
    assert_eq!(online["counts"]["messages"], 3);
    assert_eq!(online["last_readings"][0]["sensor_type"], "temperature");
    let connected = online["connected_since"].as_str().unwrap().to_owned();
    let seen = online["last_seen"].as_str().unwrap().to_owned();
    assert!(before <= connected && connected <= seen, "{online}");
    assert!(seen <= now());

    dev.disconnect().await;
    let offline = device_until(http, "api-dev", |d| d["status"] == "offline").await;
    assert!(offline["connected_since"].is_null(), "{offline}");
    assert_eq!(offline["last_seen"], seen.as_str(), "nothing heard since");
    let since = offline["since"].as_str().unwrap();
    assert!(
        seen.as_str() <= since && since <= now().as_str(),
        "{offline}"
    );
    assert!(
        offline["reason"].as_str().unwrap().contains("disconnect"),
        "{offline}"
    );

    // Its events, committed within a flush: online then offline, one per page.
    let committed = eventually_async(Duration::from_secs(20), || async {
        let answer = api_get(http, "/api/v1/devices/api-dev/events", READ_TOKEN).await;
        answer.body["events"]
            .as_array()
            .is_some_and(|e| e.len() == 2)
    })
    .await;
    assert!(committed, "both status events are stored");
    let (mut events, mut after) = (Vec::new(), None::<i64>);
    loop {
        let path = match after {
            Some(a) => format!("/api/v1/devices/api-dev/events?limit=1&after={a}"),
            None => "/api/v1/devices/api-dev/events?limit=1".to_owned(),
        };
        let answer = api_get(http, &path, READ_TOKEN).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let page = answer.body["events"].as_array().unwrap().clone();
        assert!(page.len() <= 1);
        events.extend(page);
        match answer.body["next_cursor"].as_i64() {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let statuses: Vec<&str> = events
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["online", "offline"], "{events:?}");
    assert!(events[0]["id"].as_i64() < events[1]["id"].as_i64());
    assert_eq!(events[1]["at"], since);
    assert_eq!(events[0]["device_id"], "api-dev");

    let unknown = device(http, "never-heard").await;
    assert_eq!((unknown.status, unknown.code()), (404, "not_found"));
    eliot.terminate();
}

async fn filters_sorts_release() {
    let data = tempfile::tempdir().unwrap();
    let eliot = launch(data.path()).start();
    let http = eliot.http;
    // flt-b: provisioned, never heard.
    let created = admin(http, "POST", "/api/v1/devices", r#"{"device_id":"flt-b"}"#).await;
    assert_eq!(created.0, 201, "{created:?}");
    // flt-a2: heard, then gone (offline).
    let mut a2 = Device::connect(eliot.addr, "flt-a2");
    assert_eq!(
        a2.publish_all("flt-a2", vec![reading("flt-a2", 0)], QoS::AtLeastOnce)
            .await,
        1
    );
    a2.disconnect().await;
    device_until(http, "flt-a2", |d| d["status"] == "offline").await;
    // flt-q: two readings, then malformed JSON past the rejection rate: quarantined.
    let mut q = Device::connect(eliot.addr, "flt-q");
    let mut malformed: Vec<String> = (0..2).map(|n| reading("flt-q", n)).collect();
    malformed.extend((0..20).map(|i| format!("{{not json {i}")));
    assert_eq!(
        q.publish_all("flt-q", malformed, QoS::AtLeastOnce).await,
        22
    );
    device_until(http, "flt-q", |d| d["status"] == "quarantined").await;
    // flt-a1: online, a gps reading, seen last.
    let mut a1 = Device::connect(eliot.addr, "flt-a1");
    let gps = r#"{"device_id":"flt-a1","timestamp":"2025-06-05T14:30:00Z","sensor_type":"gps","data":{"latitude":1.5,"longitude":2.5}}"#;
    assert_eq!(
        a1.publish_all("flt-a1", vec![gps.to_owned()], QoS::AtLeastOnce)
            .await,
        1
    );
    device_until(http, "flt-a1", |d| d["counts"]["readings"] == 1).await;

    for (query, expected) in [
        ("limit=2", vec!["flt-a1", "flt-a2", "flt-b", "flt-q"]),
        ("status=online", vec!["flt-a1"]),
        ("status=offline", vec!["flt-a2", "flt-b"]),
        ("status=quarantined", vec!["flt-q"]),
        ("id_prefix=flt-a", vec!["flt-a1", "flt-a2"]),
        ("sensor_type=gps", vec!["flt-a1"]),
        ("sensor_type=temperature", vec!["flt-a2", "flt-q"]),
        ("quarantined=true", vec!["flt-q"]),
        (
            "quarantined=false&limit=1",
            vec!["flt-a1", "flt-a2", "flt-b"],
        ),
        ("sort=id&id_prefix=flt-b", vec!["flt-b"]),
        // Most recently seen first, never seen last.
        (
            "sort=last_seen&limit=3",
            vec!["flt-a1", "flt-q", "flt-a2", "flt-b"],
        ),
    ] {
        assert_eq!(walk(http, query).await, expected, "{query}");
    }
    let bad = api_get(http, "/api/v1/devices?status=asleep", READ_TOKEN).await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_query"));
    let first = api_get(http, "/api/v1/devices?limit=1", READ_TOKEN).await;
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let other = api_get(
        http,
        &format!("/api/v1/devices?limit=1&sort=last_seen&cursor={cursor}"),
        READ_TOKEN,
    )
    .await;
    assert_eq!((other.status, other.code()), (400, "invalid_cursor"));

    let released = admin(http, "POST", "/api/v1/devices/flt-q/release", "").await;
    assert_eq!(released.0, 200, "{released:?}");
    assert_eq!(released.1["released"], true);
    assert_eq!(released.1["device_id"], "flt-q");
    let now_free = device(http, "flt-q").await.body;
    assert_ne!(now_free["status"], "quarantined", "{now_free}");
    assert!(now_free["quarantine"].is_null());
    let again = admin(http, "POST", "/api/v1/devices/flt-q/release", "").await;
    assert_eq!(
        (again.0, again.1["error"]["code"].as_str()),
        (409, Some("not_quarantined"))
    );
    let unknown = admin(http, "POST", "/api/v1/devices/nobody/release", "").await;
    assert_eq!(unknown.0, 404, "{unknown:?}");
    let by_reader = api(
        http,
        "POST",
        "/api/v1/devices/flt-q/release",
        Some(format!("Bearer {READ_TOKEN}")),
    )
    .await;
    assert_eq!(by_reader.status, 403);
    eliot.terminate();
}

/// `method path` as admin with a JSON body (none when empty): status and body.
async fn admin(http: SocketAddr, method: &'static str, path: &str, body: &str) -> (u16, Value) {
    let (url, body) = (format!("http://{http}{path}"), body.to_owned());
    tokio::task::spawn_blocking(move || {
        let request = ureq::request(method, &url)
            .timeout(Duration::from_secs(20))
            .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"));
        let answer = match body.is_empty() {
            true => request.call(),
            false => request
                .set("Content-Type", "application/json")
                .send_string(&body),
        };
        let response = match answer {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {url}: {e}"),
        };
        let status = response.status();
        let text = response.into_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or_default())
    })
    .await
    .unwrap()
}

/// One reading from a new device, and gone.
async fn appear(addr: SocketAddr, id: &str) {
    let mut dev = Device::connect(addr, id);
    assert_eq!(
        dev.publish_all(id, vec![reading(id, 0)], QoS::AtLeastOnce)
            .await,
        1
    );
    dev.disconnect().await;
}

async fn paging_under_arrivals() {
    let data = tempfile::tempdir().unwrap();
    let eliot = launch(data.path()).start();
    let http = eliot.http;
    for n in 0..40 {
        appear(eliot.addr, &format!("pg-{n:03}")).await;
    }
    let ready = eventually_async(Duration::from_secs(20), || async {
        walk(http, "limit=1000").await.len() == 40
    })
    .await;
    assert!(ready, "the fleet knows the 40 devices");
    let existing: BTreeSet<String> = walk(http, "limit=1000").await.into_iter().collect();

    // New devices, with ids before, between and after those paged, all along.
    let addr = eliot.addr;
    let arrivals = tokio::spawn(async move {
        for n in 0..30 {
            appear(addr, &format!("pg-{:03}x", n * 2)).await;
            appear(addr, &format!("pg-{n:03}-late")).await;
        }
    });
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/devices?limit=3&cursor={c}"),
            None => "/api/v1/devices?limit=3".to_owned(),
        };
        let answer = api_get(http, &path, READ_TOKEN).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        for d in answer.body["devices"].as_array().unwrap() {
            walked.push(d["device_id"].as_str().unwrap().to_owned());
        }
        match answer.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        // Give the arrivals time to land among the pages.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let arrived_meanwhile = !arrivals.is_finished();
    arrivals.await.unwrap();
    let mut sorted = walked.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(walked, sorted, "in id order, no repeat");
    let seen: BTreeSet<String> = walked.iter().cloned().collect();
    let missing: Vec<_> = existing.difference(&seen).collect();
    assert!(missing.is_empty(), "no gap: {missing:?}");
    assert!(
        arrived_meanwhile || walked.len() > existing.len(),
        "devices arrived while the pages were read"
    );
    eliot.terminate();
}

async fn fleet_off() {
    let data = tempfile::tempdir().unwrap();
    let eliot = Launch::new(data.path(), own_loopback_addr())
        .config("[fleet]\nenabled = false\n")
        .env("ELIOT_API_TOKENS", &api_tokens())
        .start();
    let http = eliot.http;
    appear(eliot.addr, "off-1").await;
    for path in [
        "/api/v1/devices",
        "/api/v1/devices/off-1",
        "/api/v1/devices/off-1/events",
        "/api/v1/devices/off-1/anomalies",
    ] {
        let answer = api_get(http, path, READ_TOKEN).await;
        assert_eq!(
            (answer.status, answer.code()),
            (503, "fleet_disabled"),
            "{path}"
        );
    }
    let release = admin(http, "POST", "/api/v1/devices/off-1/release", "").await;
    assert_eq!(release.0, 503, "{release:?}");
    assert_eq!(release.1["error"]["code"], "fleet_disabled");
    // Provisioning, rotation and deletion do without the fleet.
    let created = admin(http, "POST", "/api/v1/devices", r#"{"device_id":"off-2"}"#).await;
    assert_eq!(created.0, 201, "{created:?}");
    assert!(created.1["secret"].as_str().is_some_and(|s| !s.is_empty()));
    let rotated = admin(http, "POST", "/api/v1/devices/off-2/rotate", "").await;
    assert_eq!(rotated.0, 200, "{rotated:?}");
    assert_ne!(rotated.1["secret"], created.1["secret"]);
    let removed = admin(http, "DELETE", "/api/v1/devices/off-2?purge=true", "").await;
    assert_eq!(removed.0, 200, "{removed:?}");
    assert_eq!(removed.1["readings_purged"], 0);
    let gone = admin(http, "DELETE", "/api/v1/devices/off-2", "").await;
    assert_eq!(gone.0, 404, "{gone:?}");
    eliot.terminate();
}

//! The fleet as a user meets it: each device's live state and status events, read from
//! Eliot's database by another process (the `sqlite3` shell, or the helper) once the
//! fleet's persistence has written them. Devices are real MQTT clients.
//!
//! - a device that connects, publishes and disconnects is online, then offline, with its
//!   times; one whose socket just drops is offline too, with the reason, and its will stored;
//! - a device reporting every 200 ms that stops is late within about a second or two, while
//!   one reporting every 1.5 s is not late by then (and is later, on its own rhythm);
//! - after SIGTERM and after kill -9, state and events are intact, and a device whose
//!   connection died with Eliot is offline;
//! - a device sending malformed JSON is quarantined: its valid messages become dead letters
//!   `quarantined`, another device is unaffected, and the quarantine ends after its time.

use std::path::Path;
use std::time::{Duration, Instant};

use libtest_mimic::Trial;
use rumqttc::{AsyncClient, LastWill, MqttOptions, QoS};

use crate::common::outside::{default_reader, Reader};
use crate::common::process::{own_loopback_addr, Launch};
use crate::common::{eventually, options, reading, topic, Device};
use crate::support::trial;

pub fn tests() -> Vec<Trial> {
    vec![
        trial(
            "fleet::a_device_is_online_while_connected_then_offline_with_its_times",
            online_then_offline,
        ),
        trial(
            "fleet::a_dropped_socket_makes_the_device_offline_and_its_will_is_stored",
            dropped_socket,
        ),
        trial(
            "fleet::a_fast_device_that_stops_is_late_soon_and_a_slow_one_is_not",
            late_by_rhythm,
        ),
        trial(
            "fleet::state_and_events_survive_sigterm_and_kill_9_and_presence_is_right",
            restarts,
        ),
        trial(
            "fleet::a_device_sending_malformed_json_is_quarantined_then_released",
            quarantine,
        ),
    ]
}

/// The fleet's settings for these tests: state written every 100 ms, rhythm known after
/// three intervals, quarantine after ten messages, for three seconds.
const FLEET: &str = r#"
[fleet]
flush_interval = "100ms"
state_interval = "100ms"
min_samples = 3
quarantine_rejection_rate = 0.5
quarantine_min_messages = 10
quarantine_duration = "3s"
"#;

fn launch(dir: &Path) -> Launch {
    Launch::new(dir, own_loopback_addr()).config(FLEET)
}

/// One device's row of `device_state`, as text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StateRow {
    pub status: String,
    pub reason: String,
    pub connected_since: String,
    pub last_seen: String,
    pub protocol: String,
    pub counts: serde_json::Value,
}

pub(crate) fn state(reader: &Reader, db: &Path, device: &str) -> Option<StateRow> {
    let sql = format!(
        "SELECT status, reason, coalesce(connected_since, ''), coalesce(last_seen, ''), \
         coalesce(protocol, ''), counts FROM device_state WHERE device_id = '{device}'"
    );
    let rows = reader.query(db, &sql);
    let row = rows.first()?;
    Some(StateRow {
        status: row[0].clone(),
        reason: row[1].clone(),
        connected_since: row[2].clone(),
        last_seen: row[3].clone(),
        protocol: row[4].clone(),
        counts: serde_json::from_str(&row[5]).unwrap_or_default(),
    })
}

/// The device's status events, oldest first: (status, reason).
fn events(reader: &Reader, db: &Path, device: &str) -> Vec<(String, String)> {
    let sql = format!(
        "SELECT status, reason FROM device_events WHERE device_id = '{device}' ORDER BY id"
    );
    reader
        .query(db, &sql)
        .into_iter()
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect()
}

/// Waits (up to 20 s) until the device's stored state satisfies `want`; returns it.
async fn wait_for(
    reader: &Reader,
    db: &Path,
    device: &str,
    what: &str,
    want: impl Fn(&StateRow) -> bool,
) -> StateRow {
    let mut last = None;
    let found = eventually(Duration::from_secs(20), || {
        last = state(reader, db, device);
        last.as_ref().is_some_and(&want)
    })
    .await;
    assert!(found, "{device}: {what}; last stored state: {last:?}");
    last.unwrap()
}

pub(crate) fn messages(row: &StateRow) -> u64 {
    row.counts["messages"].as_u64().unwrap_or(0)
}

async fn publish(device: &mut Device, id: &str, from: u64, n: u64) {
    let payloads = (from..from + n).map(|i| reading(id, i)).collect();
    assert_eq!(
        device.publish_all(id, payloads, QoS::AtLeastOnce).await,
        n as usize
    );
}

async fn online_then_offline() {
    let data = tempfile::tempdir().unwrap();
    let eliot = launch(data.path()).start();
    let (reader, db) = (default_reader(), eliot.db_path());
    let mut device = Device::connect(eliot.addr, "fleet-d1");
    publish(&mut device, "fleet-d1", 0, 3).await;
    let online = wait_for(&reader, &db, "fleet-d1", "online, 3 messages", |s| {
        s.status == "online" && messages(s) == 3
    })
    .await;
    assert!(!online.connected_since.is_empty(), "{online:?}");
    assert!(online.last_seen >= online.connected_since, "{online:?}");
    assert_eq!(online.protocol, "mqtt-3.1.1");
    assert_eq!(online.counts["readings"], 3);

    device.disconnect().await;
    let offline = wait_for(&reader, &db, "fleet-d1", "offline", |s| {
        s.status == "offline"
    })
    .await;
    assert!(offline.connected_since.is_empty(), "{offline:?}");
    assert_eq!(offline.last_seen, online.last_seen, "no message since");
    assert!(
        offline.reason.contains("DISCONNECT"),
        "the reason says how it ended: {offline:?}"
    );
    let events = events(&reader, &db, "fleet-d1");
    let statuses: Vec<&str> = events.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(statuses, ["online", "offline"], "{events:?}");
    eliot.terminate();
}

async fn dropped_socket() {
    let data = tempfile::tempdir().unwrap();
    let eliot = launch(data.path()).start();
    let (reader, db) = (default_reader(), eliot.db_path());
    let mut opts: MqttOptions = options(eliot.addr, "fleet-will");
    let will = reading("fleet-will", 99);
    opts.set_last_will(LastWill::new(
        topic("fleet-will"),
        will,
        QoS::AtLeastOnce,
        false,
    ));
    let (client, mut eventloop) = AsyncClient::new(opts, 16);
    let poll = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    for i in 0..3 {
        let payload = reading("fleet-will", i);
        client
            .publish(topic("fleet-will"), QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
    wait_for(&reader, &db, "fleet-will", "online", |s| {
        s.status == "online" && messages(s) == 3
    })
    .await;
    // The socket goes with the event loop: no DISCONNECT.
    poll.abort();
    let _ = poll.await;
    drop(client);
    let offline = wait_for(&reader, &db, "fleet-will", "offline", |s| {
        s.status == "offline"
    })
    .await;
    assert!(
        offline.reason.starts_with("offline: disconnected: "),
        "{offline:?}"
    );
    assert!(!offline.reason.contains("DISCONNECT"), "{offline:?}");
    let wills = "SELECT count(*) FROM readings WHERE device_id = 'fleet-will'";
    assert!(
        eventually(Duration::from_secs(10), || reader.number(&db, wills) == 4).await,
        "the will is stored beside the three readings"
    );
    let after = wait_for(&reader, &db, "fleet-will", "the will counted", |s| {
        messages(s) == 4
    })
    .await;
    assert_eq!(after.status, "offline", "a will is no sign of life");
    eliot.terminate();
}

async fn late_by_rhythm() {
    let data = tempfile::tempdir().unwrap();
    let eliot = launch(data.path()).start();
    let (reader, db) = (default_reader(), eliot.db_path());
    let mut fast = Device::connect(eliot.addr, "fleet-fast");
    let mut slow = Device::connect(eliot.addr, "fleet-slow");
    for i in 0..5 {
        publish(&mut slow, "fleet-slow", i, 1).await;
        for j in 0..7 {
            publish(&mut fast, "fleet-fast", i * 10 + j, 1).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let stopped = Instant::now();
    let late = wait_for(&reader, &db, "fleet-fast", "late", |s| s.status == "late").await;
    let took = stopped.elapsed();
    println!(
        "the 200 ms device was late {took:?} after it stopped: {}",
        late.reason
    );
    assert!(
        took < Duration::from_secs(5),
        "late within its rhythm, not {took:?}"
    );
    let slow_now = state(&reader, &db, "fleet-slow").unwrap();
    assert_eq!(
        slow_now.status, "online",
        "the 1.5 s device is not late when the fast one is: {slow_now:?}"
    );
    let slow_late = wait_for(&reader, &db, "fleet-slow", "late on its own rhythm", |s| {
        s.status == "late"
    })
    .await;
    assert!(slow_late.reason.contains("usually every"), "{slow_late:?}");
    // Late is not offline: the connections are up.
    publish(&mut fast, "fleet-fast", 100, 1).await;
    wait_for(&reader, &db, "fleet-fast", "online again", |s| {
        s.status == "online"
    })
    .await;
    eliot.terminate();
}

async fn restarts() {
    let data = tempfile::tempdir().unwrap();
    let launch = launch(data.path());
    let eliot = launch.start();
    let (reader, db) = (default_reader(), eliot.db_path());
    let mut gone = Device::connect(eliot.addr, "fleet-gone");
    publish(&mut gone, "fleet-gone", 0, 4).await;
    gone.disconnect().await;
    let mut kept = Device::connect(eliot.addr, "fleet-kept");
    publish(&mut kept, "fleet-kept", 0, 5).await;
    wait_for(&reader, &db, "fleet-gone", "offline", |s| {
        s.status == "offline"
    })
    .await;
    wait_for(&reader, &db, "fleet-kept", "online", |s| {
        s.status == "online" && messages(s) == 5
    })
    .await;

    // kill -9 while fleet-kept's connection is up: it dies with Eliot.
    let eliot = eliot.kill9().start();
    let after_kill = wait_for(
        &reader,
        &db,
        "fleet-kept",
        "offline after the restart",
        |s| s.status == "offline",
    )
    .await;
    assert!(
        after_kill.reason.contains("eliot restarted"),
        "{after_kill:?}"
    );
    assert_eq!(messages(&after_kill), 5, "its counts are intact");
    let gone_state = state(&reader, &db, "fleet-gone").unwrap();
    assert_eq!(
        (gone_state.status.as_str(), messages(&gone_state)),
        ("offline", 4)
    );
    let kept_events = events(&reader, &db, "fleet-kept");
    assert_eq!(
        kept_events
            .iter()
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>(),
        ["online", "offline"],
        "{kept_events:?}"
    );

    // A device online at SIGTERM: its connection is drained and it is offline, stored.
    let mut again = Device::connect(eliot.addr, "fleet-kept");
    publish(&mut again, "fleet-kept", 10, 2).await;
    wait_for(&reader, &db, "fleet-kept", "online again", |s| {
        s.status == "online" && messages(s) == 7
    })
    .await;
    let (status, _) = eliot.terminate();
    assert!(status.success(), "{status}");
    let after_term = state(&reader, &db, "fleet-kept").unwrap();
    assert_eq!(after_term.status, "offline", "{after_term:?}");
    assert!(
        after_term.reason.contains("shutting down"),
        "{after_term:?}"
    );
    let eliot = launch.start();
    let restarted = wait_for(&reader, &db, "fleet-kept", "still offline", |s| {
        s.status == "offline"
    })
    .await;
    assert_eq!(messages(&restarted), 7);
    assert_eq!(
        events(&reader, &db, "fleet-kept").len(),
        4,
        "no event lost or added"
    );
    eliot.terminate();
}

async fn quarantine() {
    let data = tempfile::tempdir().unwrap();
    let eliot = launch(data.path()).start();
    let (reader, db) = (default_reader(), eliot.db_path());
    let mut bad = Device::connect(eliot.addr, "fleet-bad");
    let mut good = Device::connect(eliot.addr, "fleet-good");
    publish(&mut bad, "fleet-bad", 0, 2).await;
    let malformed = (0..20).map(|i| format!("{{not json {i}")).collect();
    assert_eq!(
        bad.publish_all("fleet-bad", malformed, QoS::AtLeastOnce)
            .await,
        20
    );
    let quarantined = wait_for(&reader, &db, "fleet-bad", "quarantined", |s| {
        s.status == "quarantined"
    })
    .await;
    assert!(
        quarantined.reason.contains("rejection rate"),
        "{quarantined:?}"
    );

    publish(&mut bad, "fleet-bad", 10, 3).await;
    publish(&mut good, "fleet-good", 0, 3).await;
    let held = "SELECT count(*) FROM dead_letters \
        WHERE device_id = 'fleet-bad' AND reason LIKE 'quarantined:%'";
    assert!(
        eventually(Duration::from_secs(10), || reader.number(&db, held) == 3).await,
        "its valid messages are dead letters `quarantined`"
    );
    let stored = |device: &str| {
        reader.number(
            &db,
            &format!("SELECT count(*) FROM readings WHERE device_id = '{device}'"),
        )
    };
    assert_eq!(stored("fleet-bad"), 2, "nothing of it stored since");
    assert!(
        eventually(Duration::from_secs(10), || stored("fleet-good") == 3).await,
        "another device is unaffected"
    );
    let attributed = "SELECT count(*) FROM dead_letters WHERE device_id = 'fleet-bad'";
    assert_eq!(
        reader.number(&db, attributed),
        23,
        "malformed ones attributed by topic"
    );

    let released = wait_for(&reader, &db, "fleet-bad", "released after 3 s", |s| {
        s.status != "quarantined"
    })
    .await;
    assert!(
        released.reason.contains("quarantine expired"),
        "{released:?}"
    );
    publish(&mut bad, "fleet-bad", 20, 1).await;
    assert!(
        eventually(Duration::from_secs(10), || stored("fleet-bad") == 3).await,
        "stored again once released"
    );
    eliot.terminate();
}

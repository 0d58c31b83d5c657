//! The fleet's counts are exact: when a shard's mailbox (`fleet.mailbox`) is full, the
//! acks wait for room instead of the update being dropped, so every device's persisted
//! `messages` and `readings` are what it sent, to the message, however fast it sends.
//!
//! Many devices, spread over several connections, publish at QoS 1 as fast as the acks
//! allow, against a fleet whose shards hold one update each: their mailboxes are full most
//! of the time. Another process reads each device's counts once the fleet has written them.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use libtest_mimic::Trial;
use rumqttc::{Event, Packet, QoS};

use crate::common::outside::{default_reader, Reader};
use crate::common::process::{own_loopback_addr, Launch};
use crate::common::{eventually, reading, topic, Device};
use crate::support::trial;

pub fn tests() -> Vec<Trial> {
    vec![trial(
        "fleet::counts_are_exact_when_the_shard_mailboxes_are_full",
        exact_counts,
    )]
}

const CONNECTIONS: usize = 6;
const DEVICES_PER_CONNECTION: usize = 5;
const MESSAGES_PER_DEVICE: u64 = 60;

/// Shards holding one update each: with six connections acked in the same commits, the
/// mailboxes are full at once.
const TINY_MAILBOX: &str = r#"
[fleet]
shards = 2
mailbox = 1
flush_interval = "100ms"
state_interval = "100ms"
"#;

/// Publishes `MESSAGES_PER_DEVICE` readings for each of `devices`, interleaved, on one
/// connection, as fast as its in-flight window allows; returns the PUBACKs received.
async fn publish_interleaved(mut connection: Device, devices: Vec<String>) -> usize {
    let client = connection.client.clone();
    let for_publishing = devices.clone();
    tokio::spawn(async move {
        for n in 0..MESSAGES_PER_DEVICE {
            for device in &for_publishing {
                let payload = reading(device, n);
                client
                    .publish(topic(device), QoS::AtLeastOnce, false, payload)
                    .await
                    .unwrap();
            }
        }
    });
    let expected = devices.len() * MESSAGES_PER_DEVICE as usize;
    let mut acked = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while acked < expected {
        let event = tokio::time::timeout_at(deadline, connection.events.recv())
            .await
            .expect("every message acked within 120 s")
            .expect("the event loop runs");
        if let Event::Incoming(Packet::PubAck(_)) = event.expect("no connection error") {
            acked += 1;
        }
    }
    connection.disconnect().await;
    acked
}

/// Every device's persisted (messages, readings), from `device_state.counts`.
fn persisted_counts(reader: &Reader, db: &Path) -> HashMap<String, (u64, u64)> {
    let sql = "SELECT device_id, json_extract(counts, '$.messages'), \
               json_extract(counts, '$.readings') FROM device_state";
    reader
        .query(db, sql)
        .into_iter()
        .map(|row| {
            let number = |s: &String| s.parse::<u64>().unwrap_or(0);
            (row[0].clone(), (number(&row[1]), number(&row[2])))
        })
        .collect()
}

async fn exact_counts() {
    let data = tempfile::tempdir().unwrap();
    let eliot = Launch::new(data.path(), own_loopback_addr())
        .config(TINY_MAILBOX)
        .start();
    let (reader, db) = (default_reader(), eliot.db_path());
    let devices: Vec<Vec<String>> = (0..CONNECTIONS)
        .map(|c| {
            (0..DEVICES_PER_CONNECTION)
                .map(|d| format!("exact-{c}-{d}"))
                .collect()
        })
        .collect();
    let publishing = devices.iter().enumerate().map(|(c, ids)| {
        let connection = Device::connect(eliot.addr, &format!("exact-conn-{c}"));
        tokio::spawn(publish_interleaved(connection, ids.clone()))
    });
    let publishing: Vec<_> = publishing.collect();
    for (c, publisher) in publishing.into_iter().enumerate() {
        let acked = publisher.await.expect("the publisher ran");
        assert_eq!(
            acked,
            DEVICES_PER_CONNECTION * MESSAGES_PER_DEVICE as usize,
            "connection {c}: every message acked"
        );
    }

    let want = (MESSAGES_PER_DEVICE, MESSAGES_PER_DEVICE);
    let all: Vec<&String> = devices.iter().flatten().collect();
    let stored = |device: &str| {
        let sql = format!("SELECT count(*) FROM readings WHERE device_id = '{device}'");
        reader.number(&db, &sql)
    };
    assert!(
        all.iter().all(|d| stored(d) == MESSAGES_PER_DEVICE as i64),
        "every acked reading is stored"
    );
    let mut last = HashMap::new();
    let exact = eventually(Duration::from_secs(20), || {
        last = persisted_counts(&reader, &db);
        all.iter().all(|d| last.get(*d) == Some(&want))
    })
    .await;
    let wrong: Vec<_> = all
        .iter()
        .filter(|d| last.get(**d) != Some(&want))
        .map(|d| (d.as_str(), last.get(*d)))
        .collect();
    assert!(
        exact,
        "each device's (messages, readings) is {want:?}, as sent; these are not: {wrong:?}"
    );
    // Nothing counted twice either: still exact after further flushes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = persisted_counts(&reader, &db);
    assert!(
        all.iter().all(|d| again.get(*d) == Some(&want)),
        "{again:?}"
    );
    eliot.terminate();
}

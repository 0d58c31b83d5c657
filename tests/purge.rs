//! Purging a device's readings in a running Eliot, through the `Purger` its HTTP API
//! calls (`DELETE /devices/{id}?purge=true`): readings published by real MQTT clients,
//! across the log, memory and chunks, checked with the sqlite3 shell.

mod common;

use std::path::Path;

use common::*;
use rumqttc::QoS;

fn count(db: &Path, sql: &str) -> i64 {
    outside::default_reader().number(db, sql)
}

/// Enough readings to seal and merge generations (2,000 readings each in the test
/// configuration): the purged device's are gone from every tier, another device's and
/// the purged device's dead letters stay, and what it sends afterwards is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_deletes_the_devices_readings_and_keeps_everyone_elses() {
    let eliot = Eliot::start();
    let db = eliot.db_path();
    let mut purged = Device::connect(eliot.addr, "robot_p");
    let mut kept = Device::connect(eliot.addr, "robot_k");
    let many: Vec<String> = (0..5_000).map(|n| reading("robot_p", n)).collect();
    assert_eq!(
        purged.publish_all("robot_p", many, QoS::AtLeastOnce).await,
        5_000
    );
    let few: Vec<String> = (0..50).map(|n| reading("robot_k", n)).collect();
    assert_eq!(kept.publish_all("robot_k", few, QoS::AtLeastOnce).await, 50);
    let refused = vec!["not json".to_owned()];
    assert_eq!(
        purged
            .publish_all("robot_p", refused, QoS::AtLeastOnce)
            .await,
        1
    );
    assert!(
        count(&db, "SELECT count(*) FROM chunks WHERE rows > 0") > 0,
        "some are merged"
    );

    let deleted = eliot.purger.purge("robot_p".into()).await.unwrap();
    assert_eq!(deleted, 5_000);
    let of = |device| format!("SELECT count(*) FROM readings WHERE device_id = '{device}'");
    assert_eq!(count(&db, &of("robot_p")), 0);
    assert_eq!(count(&db, &of("robot_k")), 50);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM dead_letters WHERE client_id = 'robot_p'"
        ),
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM series WHERE device_id = 'robot_p'"
        ),
        0
    );
    // Afterwards, the same readings are new again.
    let again: Vec<String> = (0..3).map(|n| reading("robot_p", n)).collect();
    assert_eq!(
        purged.publish_all("robot_p", again, QoS::AtLeastOnce).await,
        3
    );
    assert_eq!(count(&db, &of("robot_p")), 3);
    assert_eq!(eliot.purger.purge("robot_p".into()).await.unwrap(), 3);
    purged.disconnect().await;
    kept.disconnect().await;
    eliot.stop().await;
}

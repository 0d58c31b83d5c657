//! Presence from the upstream status topic (`fleet.status_topic`), against a real
//! Mosquitto: a device publishes readings through the broker, then its connection drops
//! and the broker publishes its will `offline` on `devices/{id}/status`: the device is
//! offline in Eliot at once (not after its offline bound, minutes), with the reason. A
//! flood of statuses naming devices nobody knows adds none.

use std::time::{Duration, Instant};

use libtest_mimic::Trial;
use rumqttc::{AsyncClient, LastWill, QoS};

use crate::common::mosquitto::{require_mosquitto, BrokerConfig, Mosquitto};
use crate::common::outside::default_reader;
use crate::common::process::{own_loopback_addr, Launch};
use crate::common::{eventually, options, reading, topic, Device};
use crate::fleet::{messages, state};
use crate::support::trial;

pub fn tests() -> Vec<Trial> {
    vec![trial(
        "fleet::an_upstream_devices_will_on_its_status_topic_makes_it_offline_at_once",
        will_makes_offline,
    )]
}

fn status_topic(device: &str) -> String {
    format!("devices/{device}/status")
}

async fn will_makes_offline() {
    let Some(bin) = require_mosquitto("fleet::status_topic") else {
        return;
    };
    let broker = Mosquitto::start(&bin, BrokerConfig::default());
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[upstream]
enabled = true
host = "127.0.0.1"
port = {port}
tls = false
protocol = "v5"
client_id = "eliot-status"
topics = ["devices/+/telemetry"]

[fleet]
flush_interval = "100ms"
state_interval = "100ms"
status_topic = "devices/{{device_id}}/status"
"#,
        port = broker.port()
    );
    let eliot = Launch::new(data.path(), own_loopback_addr())
        .config(&config)
        .start();
    let (reader, db) = (default_reader(), eliot.db_path());
    assert!(
        broker.wait_for_log("Sending SUBACK to eliot-status-0", Duration::from_secs(20)),
        "Eliot subscribed:\n{}",
        broker.log()
    );

    let id = "st-robot";
    let mut opts = options(broker.addr(), id);
    opts.set_last_will(LastWill::new(
        status_topic(id),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    let (client, mut eventloop) = AsyncClient::new(opts, 16);
    let poll = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    client
        .publish(status_topic(id), QoS::AtLeastOnce, true, "online")
        .await
        .unwrap();
    for n in 0..3 {
        client
            .publish(topic(id), QoS::AtLeastOnce, false, reading(id, n))
            .await
            .unwrap();
    }
    let heard = |want: &str, count: u64| {
        let row = state(&reader, &db, id);
        row.is_some_and(|s| s.status == want && messages(&s) == count)
    };
    assert!(
        eventually(Duration::from_secs(20), || heard("online", 3)).await,
        "online with its 3 readings: {:?}",
        state(&reader, &db, id)
    );

    // Statuses naming devices nobody knows, from another client: ignored.
    let mut flood = Device::connect(broker.addr(), "st-flooder");
    for i in 0..50 {
        flood
            .client
            .publish(
                status_topic(&format!("ghost-{i}")),
                QoS::AtLeastOnce,
                true,
                "online",
            )
            .await
            .unwrap();
    }
    flood
        .expect_event(Duration::from_secs(10), |_| true)
        .await
        .unwrap();

    // The socket goes with the event loop, no DISCONNECT: the broker publishes the will.
    poll.abort();
    let _ = poll.await;
    drop(client);
    let dropped = Instant::now();
    let offline = eventually(Duration::from_secs(20), || {
        state(&reader, &db, id).is_some_and(|s| s.status == "offline")
    })
    .await;
    let took = dropped.elapsed();
    let row = state(&reader, &db, id).unwrap();
    assert!(offline, "offline by its will: {row:?}");
    println!(
        "offline {took:?} after its connection dropped: {}",
        row.reason
    );
    assert!(
        took < Duration::from_secs(5),
        "at once, not after the offline bound: {took:?}"
    );
    assert!(row.reason.contains("status topic: offline"), "{row:?}");
    assert_eq!(messages(&row), 3, "a status is not a message of the device");

    let ghosts = reader.number(
        &db,
        "SELECT count(*) FROM device_state WHERE device_id LIKE 'ghost-%'",
    );
    assert_eq!(ghosts, 0, "statuses of unknown devices add none");
    eliot.terminate();
}

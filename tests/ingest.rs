//! End-to-end ingestion: real MQTT clients publish to an in-process Eliot over TCP, and
//! the test reads the SQLite database afterwards.

mod common;

use std::time::{Duration, Instant};

use common::scripted::{connect4, connect5, Raw, Raw5, V4};
use common::*;
use rumqttc::mqttbytes::{v4, QoS as QoS4};
use rumqttc::v5::mqttbytes::{v5, QoS as QoS5};
use rumqttc::{Event, Packet, QoS};

/// The original Eliot example, published at QoS 1, is acked and stored with exactly its
/// fields: device, sensor type, timestamp (normalised to UTC), and the data object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_example_is_stored_with_exactly_its_fields() {
    let eliot = Eliot::start();
    let mut device = Device::connect(eliot.addr, "robot_001");
    let acked = device
        .publish_all(
            "robot_001",
            vec![ORIGINAL_EXAMPLE.to_owned()],
            QoS::AtLeastOnce,
        )
        .await;
    assert_eq!(acked, 1);

    let (device_id, sensor_type, ts, data): (String, String, String, String) = eliot
        .db()
        .query_row(
            "SELECT device_id, sensor_type, ts, data FROM readings",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(device_id, "robot_001");
    assert_eq!(sensor_type, "gps");
    assert_eq!(ts, "2025-06-05T14:30:00.000000Z");
    let data: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(
        data,
        serde_json::json!({"latitude": 37.7749, "longitude": -122.4194, "accuracy": 3.2})
    );
    assert_eq!(eliot.count("readings"), 1);
    assert_eq!(eliot.count("dead_letters"), 0);
}

/// 50 devices publish 200 QoS 1 messages each, all at once: every PUBACK arrives and
/// exactly 10,000 rows are stored (MQTT 3.1.1 and 5 clients mixed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_devices_store_exactly_ten_thousand_rows() {
    let eliot = Eliot::start();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for d in 0..50 {
        let addr = eliot.addr;
        tasks.push(tokio::spawn(async move {
            let name = format!("device_{d:02}");
            let payloads = (0..200).map(|n| reading(&name, n)).collect();
            if d % 2 == 0 {
                let mut device = Device::connect(addr, &name);
                let acked = device.publish_all(&name, payloads, QoS::AtLeastOnce).await;
                device.disconnect().await;
                acked
            } else {
                publish_all_v5(addr, &name, payloads).await
            }
        }));
    }
    let mut acked = 0;
    for task in tasks {
        acked += task.await.unwrap();
    }
    let took = started.elapsed();
    assert_eq!(acked, 10_000, "every PUBACK received");
    assert_eq!(eliot.count("readings"), 10_000);
    assert_eq!(eliot.count("dead_letters"), 0);
    println!(
        "50 devices x 200 QoS 1 messages: 10000 rows, all acked, in {:.2} s ({:.0} msg/s)",
        took.as_secs_f64(),
        10_000.0 / took.as_secs_f64()
    );
}

/// Publishes with an MQTT 5 client and counts PUBACKs.
async fn publish_all_v5(addr: std::net::SocketAddr, device: &str, payloads: Vec<String>) -> usize {
    use rumqttc::v5::mqttbytes::v5::Packet as P5;
    use rumqttc::v5::{mqttbytes::QoS as Q5, AsyncClient, Event as E5, MqttOptions};
    let mut options = MqttOptions::new(device, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(options, 256);
    let expected = payloads.len();
    let topic = topic(device);
    tokio::spawn(async move {
        for payload in payloads {
            client
                .publish(&topic, Q5::AtLeastOnce, false, payload)
                .await
                .unwrap();
        }
    });
    let mut acked = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acked < expected {
        let event = tokio::time::timeout_at(deadline, eventloop.poll())
            .await
            .expect("acks within 60 s")
            .expect("no connection error");
        if let E5::Incoming(P5::PubAck(ack)) = event {
            assert_eq!(
                ack.reason,
                rumqttc::v5::mqttbytes::v5::PubAckReason::Success
            );
            acked += 1;
        }
    }
    acked
}

/// Publishing the same reading twice (a redelivery) gives one row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_reading_published_twice_gives_one_row() {
    let eliot = Eliot::start();
    let mut device = Device::connect(eliot.addr, "robot_001");
    let twice = vec![ORIGINAL_EXAMPLE.to_owned(), ORIGINAL_EXAMPLE.to_owned()];
    assert_eq!(
        device
            .publish_all("robot_001", twice, QoS::AtLeastOnce)
            .await,
        2
    );
    // The same reading with its timestamp written with another offset is the same reading.
    let shifted = ORIGINAL_EXAMPLE.replace("2025-06-05T14:30:00Z", "2025-06-05T16:30:00+02:00");
    assert_eq!(
        device
            .publish_all("robot_001", vec![shifted], QoS::AtLeastOnce)
            .await,
        1
    );
    assert_eq!(eliot.count("readings"), 1);
}

/// QoS 0 readings are stored too (no ack to wait for: the test waits for the rows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos0_readings_are_stored() {
    let eliot = Eliot::start();
    let mut device = Device::connect(eliot.addr, "sensor_q0");
    let payloads = (0..100).map(|n| reading("sensor_q0", n)).collect();
    device
        .publish_all("sensor_q0", payloads, QoS::AtMostOnce)
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while eliot.count("readings") < 100 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(eliot.count("readings"), 100);
}

/// Each kind of bad message becomes a dead letter with a specific reason, is still
/// PUBACKed (it is stored, as a dead letter), and a healthy device publishing at the same
/// time loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_become_dead_letters_with_specific_reasons() {
    let eliot = Eliot::start();
    let addr = eliot.addr;
    let healthy = tokio::spawn(async move {
        let mut device = Device::connect(addr, "healthy");
        let payloads = (0..500).map(|n| reading("healthy", n)).collect();
        device
            .publish_all("healthy", payloads, QoS::AtLeastOnce)
            .await
    });

    let future = ORIGINAL_EXAMPLE.replace(
        "2025-06-05T14:30:00Z",
        &(time::OffsetDateTime::now_utc() + time::Duration::hours(1))
            .replace_nanosecond(0)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap(),
    );
    let deep = ORIGINAL_EXAMPLE.replace(
        r#"{ "latitude": 37.7749, "longitude": -122.4194, "accuracy": 3.2 }"#,
        r#"{"latitude":1,"longitude":2,"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":1}}}}}}}}}"#,
    );
    let empty_data = ORIGINAL_EXAMPLE.replace(
        r#"{ "latitude": 37.7749, "longitude": -122.4194, "accuracy": 3.2 }"#,
        "{}",
    );
    let string_in_batch = format!(
        "[{},{}]",
        ORIGINAL_EXAMPLE,
        ORIGINAL_EXAMPLE
            .replace("14:30:00Z", "14:31:00Z")
            .replace("37.7749", r#""37.7749""#)
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "devices/robot_001/telemetry",
            "{not json".into(),
            "payload is not valid JSON",
        ),
        (
            "devices/robot_002/telemetry",
            ORIGINAL_EXAMPLE.into(),
            "device_id `robot_001` does not match the topic's device id `robot_002`",
        ),
        (
            "devices/robot_001/telemetry",
            future,
            "in the future, more than the allowed skew of 5m",
        ),
        (
            "devices/robot_001/telemetry",
            deep,
            "nests deeper than the limit of 8 levels",
        ),
        ("devices/robot_001/telemetry", empty_data, "data is empty"),
        (
            "devices/robot_001/telemetry",
            string_in_batch,
            "batch element [1] (counting from 0): data.latitude: expected a number, found a string",
        ),
        (
            "robots/robot_001",
            ORIGINAL_EXAMPLE.into(),
            "does not match the telemetry pattern",
        ),
    ];

    let mut bad = Device::connect(eliot.addr, "robot_001");
    for (topic, payload, _) in &cases {
        bad.client
            .publish(*topic, QoS::AtLeastOnce, false, payload.clone())
            .await
            .unwrap();
    }
    let mut acked = 0;
    while acked < cases.len() {
        if let Ok(Event::Incoming(Packet::PubAck(_))) = bad
            .expect_event(Duration::from_secs(10), |e| {
                matches!(e, Ok(Event::Incoming(Packet::PubAck(_))))
            })
            .await
        {
            acked += 1;
        }
    }

    assert_eq!(healthy.await.unwrap(), 500);
    let dead = eliot.dead_letters();
    assert_eq!(dead.len(), cases.len(), "{dead:#?}");
    // Processors work in parallel, so rows are matched by content, not by order.
    for (topic, payload, reason) in &cases {
        let row = dead
            .iter()
            .find(|row| &row.topic == topic && row.payload == payload.as_bytes())
            .unwrap_or_else(|| panic!("no dead letter kept {payload:?} whole on {topic}"));
        assert_eq!(row.client_id, "robot_001");
        assert!(
            row.reason.contains(reason),
            "reason {:?} lacks {reason:?}",
            row.reason
        );
    }
    assert_eq!(
        eliot.count("readings"),
        500,
        "only the healthy device's readings"
    );
}

/// A packet over the size limit is refused as the spec allows (3.1.1: the connection is
/// closed; 5.0: DISCONNECT with reason 0x95 Packet too large first), nothing is stored
/// for it, and the server keeps serving other devices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_packet_is_refused_and_others_keep_being_served() {
    let eliot = Eliot::start_with(|c| c.mqtt.max_packet_size = 64 * 1024);
    let huge = format!(r#"{{"pad":"{}"}}"#, "x".repeat(100 * 1024));

    let mut v4 = Device::connect(eliot.addr, "big_v4");
    v4.client
        .publish(topic("big_v4"), QoS::AtLeastOnce, false, huge.clone())
        .await
        .unwrap();
    let closed = v4
        .expect_event(Duration::from_secs(10), |e| e.is_err())
        .await;
    assert!(closed.is_err(), "the 3.1.1 connection is closed");

    // A compliant v5 client never sends what the CONNACK's Maximum Packet Size forbids,
    // so this device is scripted by hand to send it anyway.
    let (mut raw, ack) = Raw5::handshake(eliot.addr, connect5("big_v5"), None).await;
    let announced = ack.properties.and_then(|p| p.max_packet_size);
    assert_eq!(announced, Some(64 * 1024));
    raw.publish(&topic("big_v5"), QoS5::AtLeastOnce, 1, &huge)
        .await;
    let reasons: Vec<_> = raw
        .until_closed()
        .await
        .into_iter()
        .filter_map(|packet| match packet {
            v5::Packet::Disconnect(d) => Some(d.reason_code),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, [v5::DisconnectReasonCode::PacketTooLarge]);

    let mut other = Device::connect(eliot.addr, "robot_001");
    let acked = other
        .publish_all(
            "robot_001",
            vec![ORIGINAL_EXAMPLE.to_owned()],
            QoS::AtLeastOnce,
        )
        .await;
    assert_eq!(acked, 1);
    assert_eq!(eliot.count("readings"), 1);
    assert_eq!(eliot.count("dead_letters"), 0);
}

/// The device endpoint serves any byte stream, not only TCP: a device on an in-memory pipe
/// handed to Eliot gets its CONNACK, and its QoS 1 reading is stored and PUBACKed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_over_an_in_memory_stream_is_served_like_one_over_tcp() {
    let eliot = Eliot::start();
    let (device_end, eliot_end) = tokio::io::duplex(64 * 1024);
    let peer = "192.0.2.7:4242".parse().unwrap();
    eliot.adopt(eliot_actors::Transport::stream(eliot_end, peer));
    let mut device = Raw::<V4, _>::over(device_end);
    device.send(&v4::Packet::Connect(connect4("piped"))).await;
    match device.expect().await {
        v4::Packet::ConnAck(ack) => assert_eq!(ack.code, v4::ConnectReturnCode::Success),
        other => panic!("expected a CONNACK, got {other:?}"),
    }
    device
        .publish(&topic("piped"), QoS4::AtLeastOnce, 9, &reading("piped", 1))
        .await;
    assert_eq!(
        device.expect().await,
        v4::Packet::PubAck(v4::PubAck::new(9))
    );
    assert_eq!(eliot.count("readings"), 1);
}

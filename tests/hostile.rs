//! What a hostile client sends, and what Eliot does about it: the input is refused or
//! kept as a dead letter with a short reason, and nothing else is disturbed. Each test
//! states the attack it plays.

mod common;

use common::scripted::{connect4, connect5, Raw4, Raw5};
use common::*;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;
use rumqttc::QoS;

/// A reading whose timestamp is past year 9999 once converted to UTC used to panic a
/// processor, and eleven of them, each from its own connection, exceeded the restart
/// intensity and stopped Eliot. Now each is a dead letter with a reason, no processor
/// restarts, and Eliot goes on storing other readings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eleven_readings_past_year_9999_do_not_stop_eliot() {
    let eliot = Eliot::start();
    let late = r#"{"device_id":"robot_666","timestamp":"9999-12-31T23:30:00-01:00","sensor_type":"temperature","data":{"celsius":1.5}}"#;
    for n in 0..11 {
        let mut device = Device::connect(eliot.addr, &format!("attacker_{n}"));
        let sent = device
            .publish_all("robot_666", vec![late.to_owned()], QoS::AtLeastOnce)
            .await;
        assert_eq!(sent, 1, "acked, as a dead letter");
        device.disconnect().await;
    }
    let dead = eliot.dead_letters();
    assert_eq!(dead.len(), 11);
    assert!(
        dead[0].reason.contains("between 1970 and 9999"),
        "{}",
        dead[0].reason
    );
    let health = eliot.health().await;
    assert_eq!(health.status, eliot_actors::Status::Healthy, "{health:?}");
    assert!(
        health.children.iter().all(|c| c.restarts == 0),
        "{health:?}"
    );

    let mut fine = Device::connect(eliot.addr, "robot_001");
    let stored = fine
        .publish_all("robot_001", vec![reading("robot_001", 1)], QoS::AtLeastOnce)
        .await;
    assert_eq!(stored, 1);
    assert_eq!(eliot.count("readings"), 1);
}

/// A client id longer than `mqtt.max_client_id_len` (256 bytes) is refused at CONNECT:
/// MQTT 5 CONNACK 0x85 (Client Identifier not valid), 3.1.1 CONNACK 0x02 (identifier
/// rejected). An id of exactly 256 bytes is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_over_the_limit_is_refused_at_connect() {
    let eliot = Eliot::start();
    let long = "x".repeat(257);
    let (_, v5_ack) = Raw5::handshake(eliot.addr, connect5(&long), None).await;
    assert_eq!(v5_ack.code, v5::ConnectReturnCode::ClientIdentifierNotValid);
    let (_, v4_ack) = Raw4::handshake(eliot.addr, connect4(&long)).await;
    assert_eq!(v4_ack.code, v4::ConnectReturnCode::BadClientId);
    let (_, fits) = Raw5::handshake(eliot.addr, connect5(&long[..256]), None).await;
    assert_eq!(fits.code, v5::ConnectReturnCode::Success);
}

/// A 200 KiB device id in a payload makes a dead letter whose reason quotes at most
/// about 200 bytes of it, marked as cut; the payload itself is kept whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_device_id_makes_a_short_reason() {
    let eliot = Eliot::start();
    let huge = "d".repeat(200 * 1024);
    let payload = format!(
        r#"{{"device_id":"{huge}","timestamp":"2025-06-05T14:30:00Z","sensor_type":"gps","data":{{"latitude":1.0}}}}"#
    );
    let mut device = Device::connect(eliot.addr, "robot_007");
    let sent = device
        .publish_all("robot_007", vec![payload.clone()], QoS::AtLeastOnce)
        .await;
    assert_eq!(sent, 1);
    let dead = eliot.dead_letters();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].reason.len() < 500, "{} bytes", dead[0].reason.len());
    assert!(
        dead[0]
            .reason
            .contains(&format!("[cut: {} bytes in all]", huge.len())),
        "{}",
        dead[0].reason
    );
    assert_eq!(
        dead[0].payload,
        payload.as_bytes(),
        "the payload is kept whole"
    );
}

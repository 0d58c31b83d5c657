//! Per-device circuit breakers, over real sockets.

mod common;

use std::time::Duration;

use common::scripted::*;
use common::*;
use eliot_actors::DeviceBreakerSettings;
use rumqttc::mqttbytes::{v4, QoS as Q4};
use rumqttc::v5::mqttbytes::{v5, QoS as Q5};
use rumqttc::QoS;

fn start() -> Eliot {
    Eliot::start_with(|c| {
        c.breakers.device = DeviceBreakerSettings {
            max_rejections: 5,
            window: Duration::from_secs(60),
            cooldown: Duration::from_secs(1),
            cooldown_max: Duration::from_secs(10),
            max_tracked: 1_000,
        }
    })
}

/// Publishes `n` rejected messages at QoS 1 and reads the server's answers until it closes.
async fn misbehave(raw: &mut Raw5, n: u16) -> Vec<v5::Packet> {
    for pkid in 1..=n {
        raw.publish(&topic("robot_002"), Q5::AtLeastOnce, pkid, "not json")
            .await;
    }
    raw.until_closed().await
}

/// A device that keeps sending rejected messages trips its own breaker: each message is
/// still dead-lettered and acked, then the connection is closed (v5: DISCONNECT 0x97
/// Quota exceeded) and the device is refused at CONNECT (CONNACK 0x97, saying why) for a
/// cool-down, which doubles when it trips again. Another device publishing meanwhile
/// is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_sending_rejected_messages_is_refused_for_a_growing_cooldown() {
    let eliot = start();
    let mut healthy = Device::connect(eliot.addr, "robot_001");

    let mut bad = Raw5::connect(eliot.addr, "robot_002").await;
    let answers = misbehave(&mut bad, 5).await;
    let acks = answers
        .iter()
        .filter(|p| matches!(p, v5::Packet::PubAck(_)))
        .count();
    assert_eq!(
        acks, 5,
        "each rejected message is stored as a dead letter, so acked"
    );
    assert!(
        matches!(answers.last(), Some(v5::Packet::Disconnect(d)) if d.reason_code == v5::DisconnectReasonCode::QuotaExceeded),
        "{answers:?}"
    );
    assert_eq!(eliot.count("dead_letters"), 5);

    let (_, refused) = Raw5::handshake(eliot.addr, connect5("robot_002"), None).await;
    assert_eq!(refused.code, v5::ConnectReturnCode::QuotaExceeded);
    let reason = refused
        .properties
        .and_then(|p| p.reason_string)
        .unwrap_or_default();
    assert!(reason.contains("more than 5 rejected messages"), "{reason}");
    // 3.1.1 has no reason code for it: Server unavailable.
    let (_, refused_v4) = Raw4::handshake(eliot.addr, connect4("robot_002")).await;
    assert_eq!(refused_v4.code, v4::ConnectReturnCode::ServiceUnavailable);

    let payloads = (0..20).map(|n| reading("robot_001", n)).collect();
    assert_eq!(
        healthy
            .publish_all("robot_001", payloads, QoS::AtLeastOnce)
            .await,
        20
    );

    // After the 1 s cool-down the device may connect again; tripping again doubles it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut again = Raw5::connect(eliot.addr, "robot_002").await;
    misbehave(&mut again, 5).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, still) = Raw5::handshake(eliot.addr, connect5("robot_002"), None).await;
    assert_eq!(
        still.code,
        v5::ConnectReturnCode::QuotaExceeded,
        "2 s the second time"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    Raw5::connect(eliot.addr, "robot_002").await;
}

/// Readings that are accepted never count: a device sending only good messages is never
/// refused, however many it sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_readings_never_trip_the_breaker() {
    let eliot = start();
    let mut raw = Raw4::connect(eliot.addr, "robot_003").await;
    for n in 0..20u16 {
        raw.publish(
            &topic("robot_003"),
            Q4::AtLeastOnce,
            n + 1,
            &reading("robot_003", n.into()),
        )
        .await;
    }
    for _ in 0..20 {
        assert!(matches!(raw.expect().await, v4::Packet::PubAck(_)));
    }
    assert_eq!(eliot.count("readings"), 20);
}

/// A 3.1.1 client with an empty client id gets a new id from Eliot at every CONNECT: its
/// breaker is keyed by its address instead, so reconnecting does not shed the cool-down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_client_without_an_id_cannot_reconnect_out_of_its_cooldown() {
    let eliot = start();
    let mut connect = connect4("");
    connect.clean_session = true;
    let (mut bad, ack) = Raw4::handshake(eliot.addr, connect.clone()).await;
    assert_eq!(ack.code, v4::ConnectReturnCode::Success);
    for pkid in 1..=5 {
        bad.publish(&topic("robot_003"), Q4::AtLeastOnce, pkid, "not json")
            .await;
    }
    bad.until_closed().await;
    let (_, again) = Raw4::handshake(eliot.addr, connect).await;
    assert_eq!(
        again.code,
        v4::ConnectReturnCode::ServiceUnavailable,
        "still cooling down under a new id"
    );
}

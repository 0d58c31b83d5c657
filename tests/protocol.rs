//! The MQTT session as devices see it on the wire: handshakes, keep-alive, wills,
//! acks and their order, refused subscriptions, session takeover, and broken packets.
//! Mostly scripted devices (`common::scripted`), which send exactly the bytes a test
//! chooses and see exactly what the server answers and when it closes.

mod common;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::scripted::{connect4, connect5, Next, Raw4, Raw5, PATIENCE};
use common::*;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::{v5, QoS as Q5};
use rumqttc::{Event, Packet, QoS};

/// Polls `check` every 20 ms until it holds (true) or `within` has passed (false).
async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `check` every 20 ms for all of `during`: false as soon as it fails once.
async fn throughout(during: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + during;
    while Instant::now() < deadline {
        if !check() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

/// The `data` column of every stored reading of `device`.
fn stored_data(eliot: &Eliot, device: &str) -> Vec<serde_json::Value> {
    let db = eliot.db();
    let mut stmt = db
        .prepare("SELECT data FROM readings WHERE device_id = ?1 ORDER BY ts")
        .unwrap();
    stmt.query_map([device], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|data| serde_json::from_str(&data.unwrap()).unwrap())
        .collect()
}

fn will4(device: &str, n: u64) -> v4::LastWill {
    v4::LastWill::new(topic(device), reading(device, n), QoS::AtLeastOnce, false)
}

fn will5(device: &str, n: u64) -> v5::LastWill {
    v5::LastWill::new(
        topic(device),
        reading(device, n),
        Q5::AtLeastOnce,
        false,
        None,
    )
}

fn disconnect_reason(packet: &v5::Packet) -> Option<v5::DisconnectReasonCode> {
    match packet {
        v5::Packet::Disconnect(d) => Some(d.reason_code),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------
// The handshake
// ---------------------------------------------------------------------------------

/// An MQTT 3.1 CONNECT (protocol name "MQIsdp", level 3) is answered with CONNACK return
/// code 0x01 (unacceptable protocol version), then the server closes the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_3_1_gets_connack_unacceptable_protocol_version_then_the_close() {
    let eliot = Eliot::start();
    let mut old = Raw4::open(eliot.addr).await;
    // CONNECT, "MQIsdp" level 3, clean session, keep-alive 60 s, client id "old".
    old.send_bytes(&[
        0x10, 17, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 0x02, 0, 60, 0, 3, b'o', b'l', b'd',
    ])
    .await;
    let answered = old.until_closed().await;
    assert_eq!(
        answered,
        vec![v4::Packet::ConnAck(v4::ConnAck::new(
            v4::ConnectReturnCode::RefusedProtocolVersion,
            false
        ))]
    );
}

/// A connection whose first packet is not a CONNECT (here a PINGREQ) is closed without
/// any answer: no CONNACK, no PINGRESP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_packet_other_than_connect_closes_the_socket_without_a_connack() {
    let eliot = Eliot::start();
    let mut raw = Raw4::open(eliot.addr).await;
    raw.send(&v4::Packet::PingReq).await;
    assert_eq!(raw.until_closed().await, vec![]);
}

/// A socket that never sends its CONNECT is closed once `mqtt.connect_timeout` passes,
/// not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_sends_connect_is_closed_after_the_connect_timeout() {
    let eliot = Eliot::start_with(|c| c.mqtt.connect_timeout = Duration::from_millis(500));
    let opened = Instant::now();
    let mut mute = Raw4::open(eliot.addr).await;
    assert_eq!(mute.until_closed().await, vec![]);
    let took = opened.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "closed after {took:?}, the timeout being 500 ms"
    );
}

/// An MQTT 3.1.1 CONNECT with an empty client id and clean session 0 is refused with
/// CONNACK return code 0x02 (identifier rejected), then closed (3.1.1 §3.1.3.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_client_id_without_clean_session_gets_identifier_rejected() {
    let eliot = Eliot::start();
    let mut connect = connect4("");
    connect.clean_session = false;
    let (mut raw, ack) = Raw4::handshake(eliot.addr, connect).await;
    assert_eq!(
        ack,
        v4::ConnAck::new(v4::ConnectReturnCode::BadClientId, false)
    );
    assert_eq!(raw.until_closed().await, vec![]);
}

/// An MQTT 3.1.1 CONNECT with an empty client id and clean session 1 is accepted, and the
/// device can publish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_client_id_with_clean_session_is_accepted() {
    let eliot = Eliot::start();
    let (mut raw, ack) = Raw4::handshake(eliot.addr, connect4("")).await;
    assert_eq!(ack, v4::ConnAck::new(v4::ConnectReturnCode::Success, false));
    raw.publish(
        &topic("anonymous"),
        QoS::AtLeastOnce,
        1,
        &reading("anonymous", 1),
    )
    .await;
    assert_eq!(raw.expect().await, v4::Packet::PubAck(v4::PubAck::new(1)));
    assert_eq!(eliot.count("readings"), 1);
}

/// An MQTT 5 CONNECT with an empty client id is accepted with an Assigned Client
/// Identifier in the CONNACK, and that is the id the server then records for the device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v5_empty_client_id_gets_an_assigned_client_identifier() {
    let eliot = Eliot::start();
    let (mut raw, ack) = Raw5::handshake(eliot.addr, connect5(""), None).await;
    assert_eq!(ack.code, v5::ConnectReturnCode::Success);
    let assigned = ack
        .properties
        .and_then(|p| p.assigned_client_identifier)
        .expect("an Assigned Client Identifier property");
    assert!(!assigned.is_empty());

    // A message on a non-telemetry topic becomes a dead letter, which names the client.
    raw.publish("not/telemetry", Q5::AtLeastOnce, 1, "{}").await;
    assert!(matches!(raw.expect().await, v5::Packet::PubAck(a) if a.pkid == 1));
    let dead = eliot.dead_letters();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].client_id, assigned);
}

/// The MQTT 5 CONNACK announces Receive Maximum = `mqtt.max_in_flight` and Maximum
/// Packet Size = `mqtt.max_packet_size`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v5_connack_announces_receive_maximum_and_maximum_packet_size() {
    let eliot = Eliot::start_with(|c| {
        c.mqtt.max_in_flight = 17;
        c.mqtt.max_packet_size = 50_000;
    });
    let (_raw, ack) = Raw5::handshake(eliot.addr, connect5("limits"), None).await;
    assert_eq!(ack.code, v5::ConnectReturnCode::Success);
    let properties = ack.properties.expect("CONNACK properties");
    assert_eq!(properties.receive_max, Some(17));
    assert_eq!(properties.max_packet_size, Some(50_000));
}

/// Session Present is honest. 3.1.1: clean session 0 keeps the session, so the second
/// connection finds it; clean session 1 discards it. 5.0: clean start 0 finds a session
/// only if the previous connection asked for a Session Expiry Interval and it has not run
/// out; without one (the default, 0) nothing is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_present_says_whether_a_kept_session_was_found() {
    let eliot = Eliot::start();
    let v4_connect = |clean_session| {
        let mut connect = connect4("resumer_v4");
        connect.clean_session = clean_session;
        connect
    };
    for (clean_session, present) in [(false, false), (false, true), (true, false), (false, false)] {
        let (mut raw, ack) = Raw4::handshake(eliot.addr, v4_connect(clean_session)).await;
        assert_eq!(
            ack,
            v4::ConnAck::new(v4::ConnectReturnCode::Success, present)
        );
        raw.send(&v4::Packet::Disconnect).await;
        assert_eq!(raw.until_closed().await, vec![]);
    }

    let v5_connect = |expiry: Option<u32>| {
        let mut connect = connect5("resumer_v5");
        connect.clean_start = false;
        if let Some(expiry) = expiry {
            let mut properties = v5::ConnectProperties::new();
            properties.session_expiry_interval = Some(expiry);
            connect.properties = Some(properties);
        }
        connect
    };
    for (expiry, present) in [
        (None, false),
        (Some(60), false),
        (Some(60), true),
        (None, true),
        (None, false),
    ] {
        let (mut raw, ack) = Raw5::handshake(eliot.addr, v5_connect(expiry), None).await;
        assert_eq!(ack.code, v5::ConnectReturnCode::Success);
        assert_eq!(ack.session_present, present, "expiry {expiry:?}");
        raw.send_bytes(&[0xE0, 0x00]).await;
        assert!(raw.until_closed().await.is_empty());
    }
}

/// A second CONNECT on a connection is a protocol violation (3.1.1 [MQTT-3.1.0-2]): the
/// connection is closed (5.0: DISCONNECT 0x82 Protocol Error first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connect_on_one_connection_closes_it() {
    let eliot = Eliot::start();
    let mut v4_device = Raw4::connect(eliot.addr, "twice_v4").await;
    v4_device
        .send(&v4::Packet::Connect(connect4("twice_v4")))
        .await;
    assert_eq!(v4_device.until_closed().await, vec![]);

    let mut v5_device = Raw5::connect(eliot.addr, "twice_v5").await;
    v5_device
        .send(&v5::Packet::Connect(connect5("twice_v5"), None, None))
        .await;
    let before_close = v5_device.until_closed().await;
    assert_eq!(before_close.len(), 1, "{before_close:?}");
    assert_eq!(
        disconnect_reason(&before_close[0]),
        Some(v5::DisconnectReasonCode::ProtocolError)
    );
}

// ---------------------------------------------------------------------------------
// Keep-alive
// ---------------------------------------------------------------------------------

/// PINGREQ is answered with PINGRESP, in both protocol versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pingreq_gets_pingresp() {
    let eliot = Eliot::start();
    let mut v4_device = Raw4::connect(eliot.addr, "pinger_v4").await;
    let mut v5_device = Raw5::connect(eliot.addr, "pinger_v5").await;
    for _ in 0..3 {
        v4_device.send(&v4::Packet::PingReq).await;
        assert_eq!(v4_device.expect().await, v4::Packet::PingResp);
        v5_device.send(&v5::Packet::PingReq(v5::PingReq)).await;
        assert_eq!(v5_device.expect().await, v5::Packet::PingResp(v5::PingResp));
    }
}

/// A 3.1.1 device with a keep-alive of 1 s that then sends nothing is closed after one
/// and a half keep-alives (not before 1.4 s, and well before 4 s), with no packet (3.1.1
/// has no server DISCONNECT); the close counts as abnormal, so its will is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_device_is_closed_after_one_and_a_half_keep_alives() {
    let eliot = Eliot::start();
    let mut connect = connect4("sleepy");
    connect.keep_alive = 1;
    connect.last_will = Some(will4("sleepy", 1));
    // Timed from before the CONNECT: the server cannot start its clock any earlier.
    let sent = Instant::now();
    let (mut raw, ack) = Raw4::handshake(eliot.addr, connect).await;
    assert_eq!(ack.code, v4::ConnectReturnCode::Success);

    assert_eq!(raw.until_closed().await, vec![]);
    let took = sent.elapsed();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(4),
        "closed {took:?} after the CONNECT; the limit is 1.5 s"
    );
    drop(raw);
    assert!(eventually(PATIENCE, || eliot.count("readings") == 1).await);
    assert_eq!(
        stored_data(&eliot, "sleepy"),
        vec![serde_json::json!({"celsius": 1.5})]
    );
}

/// A silent MQTT 5 device with a keep-alive of 1 s gets a DISCONNECT with reason 0x8D
/// (Keep Alive timeout) after one and a half keep-alives, then the close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_v5_device_gets_disconnect_keep_alive_timeout() {
    let eliot = Eliot::start();
    let mut connect = connect5("sleepy_v5");
    connect.keep_alive = 1;
    let sent = Instant::now();
    let (mut raw, ack) = Raw5::handshake(eliot.addr, connect, None).await;
    assert_eq!(ack.code, v5::ConnectReturnCode::Success);

    let first = raw.expect().await;
    let took = sent.elapsed();
    assert_eq!(
        disconnect_reason(&first),
        Some(v5::DisconnectReasonCode::KeepAliveTimeout),
        "{first:?}"
    );
    assert!(
        took >= Duration::from_millis(1400),
        "DISCONNECT {took:?} after the CONNECT; the limit is 1.5 s"
    );
    assert!(raw.until_closed().await.is_empty());
    let took = sent.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "closed {took:?} after the CONNECT"
    );
}

/// A device with a keep-alive of 1 s that sends a PINGREQ every 400 ms stays connected
/// well past one and a half keep-alives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinging_keeps_a_connection_alive() {
    let eliot = Eliot::start();
    let mut connect = connect4("awake");
    connect.keep_alive = 1;
    let (mut raw, _) = Raw4::handshake(eliot.addr, connect).await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2800) {
        tokio::time::sleep(Duration::from_millis(400)).await;
        raw.send(&v4::Packet::PingReq).await;
        assert_eq!(raw.expect().await, v4::Packet::PingResp);
    }
}

// ---------------------------------------------------------------------------------
// Wills
// ---------------------------------------------------------------------------------

/// A device whose socket drops without a DISCONNECT has its will published: a will on
/// its telemetry topic carrying a valid reading is stored as that reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_has_its_will_stored() {
    let eliot = Eliot::start();
    let mut connect = connect4("mortal");
    connect.last_will = Some(will4("mortal", 7));
    let (raw, ack) = Raw4::handshake(eliot.addr, connect).await;
    assert_eq!(ack.code, v4::ConnectReturnCode::Success);
    assert_eq!(eliot.count("readings"), 0, "no will while connected");

    drop(raw);
    assert!(eventually(PATIENCE, || eliot.count("readings") == 1).await);
    assert_eq!(
        stored_data(&eliot, "mortal"),
        vec![serde_json::json!({"celsius": 7.5})]
    );
    assert_eq!(eliot.count("dead_letters"), 0);
}

/// A device that says DISCONNECT before closing has its will discarded: nothing is
/// stored, neither as a reading nor as a dead letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_disconnect_discards_the_will() {
    let eliot = Eliot::start();
    let mut connect = connect4("polite");
    connect.last_will = Some(will4("polite", 7));
    let (mut raw, _) = Raw4::handshake(eliot.addr, connect).await;
    raw.send(&v4::Packet::Disconnect).await;
    assert_eq!(raw.until_closed().await, vec![]);
    drop(raw);

    assert!(
        throughout(Duration::from_secs(1), || eliot.count("readings") == 0).await,
        "the will was stored"
    );
    assert_eq!(eliot.count("dead_letters"), 0);
}

/// An MQTT 5 DISCONNECT with reason 0x04 (Disconnect with Will Message) asks for the
/// will: it is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v5_disconnect_with_will_message_has_the_will_stored() {
    let eliot = Eliot::start();
    let (mut raw, _) =
        Raw5::handshake(eliot.addr, connect5("dramatic"), Some(will5("dramatic", 3))).await;
    // DISCONNECT, reason 0x04, property length 0.
    raw.send_bytes(&[0xE0, 0x02, 0x04, 0x00]).await;
    assert!(raw.until_closed().await.is_empty());
    drop(raw);
    assert!(eventually(PATIENCE, || eliot.count("readings") == 1).await);
    assert_eq!(
        stored_data(&eliot, "dramatic"),
        vec![serde_json::json!({"celsius": 3.5})]
    );
}

/// A will on a topic outside the telemetry pattern (`devices/<id>/status`, payload
/// `offline`) is kept as a dead letter whose reason names the telemetry pattern.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_will_on_a_non_telemetry_topic_becomes_a_dead_letter() {
    let eliot = Eliot::start();
    let mut connect = connect4("lamp");
    connect.last_will = Some(v4::LastWill::new(
        "devices/lamp/status",
        "offline",
        QoS::AtLeastOnce,
        false,
    ));
    let (raw, _) = Raw4::handshake(eliot.addr, connect).await;
    drop(raw);

    assert!(eventually(PATIENCE, || eliot.count("dead_letters") == 1).await);
    let dead = eliot.dead_letters();
    assert_eq!(dead[0].topic, "devices/lamp/status");
    assert_eq!(dead[0].client_id, "lamp");
    assert_eq!(dead[0].payload, b"offline");
    assert!(
        dead[0]
            .reason
            .contains("does not match the telemetry pattern `devices/{device_id}/telemetry`"),
        "{}",
        dead[0].reason
    );
    assert_eq!(eliot.count("readings"), 0);
}

// ---------------------------------------------------------------------------------
// Subscriptions (Eliot is not a broker)
// ---------------------------------------------------------------------------------

/// A 3.1.1 SUBSCRIBE is answered with a SUBACK carrying failure (0x80) for each of its
/// filters, UNSUBSCRIBE with an UNSUBACK, and the connection stays usable: QoS 1
/// publishes before and after are PUBACKed and stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_is_refused_per_filter_and_the_connection_stays_usable() {
    let eliot = Eliot::start();
    let mut raw = Raw4::connect(eliot.addr, "curious").await;
    let mut subscribe = v4::Subscribe::new_many([
        v4::SubscribeFilter::new("devices/+/telemetry".into(), QoS::AtLeastOnce),
        v4::SubscribeFilter::new("#".into(), QoS::AtMostOnce),
        v4::SubscribeFilter::new("commands/curious".into(), QoS::ExactlyOnce),
    ]);
    subscribe.pkid = 10;
    raw.send(&v4::Packet::Subscribe(subscribe)).await;
    assert_eq!(
        raw.expect().await,
        v4::Packet::SubAck(v4::SubAck::new(
            10,
            vec![v4::SubscribeReasonCode::Failure; 3]
        ))
    );

    raw.publish(
        &topic("curious"),
        QoS::AtLeastOnce,
        11,
        &reading("curious", 1),
    )
    .await;
    assert_eq!(raw.expect().await, v4::Packet::PubAck(v4::PubAck::new(11)));

    let mut unsubscribe = v4::Unsubscribe::new("devices/+/telemetry");
    unsubscribe.topics.push("#".into());
    unsubscribe.pkid = 12;
    raw.send(&v4::Packet::Unsubscribe(unsubscribe)).await;
    assert_eq!(
        raw.expect().await,
        v4::Packet::UnsubAck(v4::UnsubAck::new(12))
    );

    raw.publish(
        &topic("curious"),
        QoS::AtLeastOnce,
        13,
        &reading("curious", 2),
    )
    .await;
    assert_eq!(raw.expect().await, v4::Packet::PubAck(v4::PubAck::new(13)));
    assert_eq!(eliot.count("readings"), 2);
}

/// An MQTT 5 SUBSCRIBE is answered with a SUBACK whose reason codes are all failures
/// (>= 0x80; Eliot uses 0x83 Implementation specific error), one per filter; UNSUBSCRIBE
/// gets an UNSUBACK with one reason per filter; QoS 1 publishes still get PUBACKs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v5_subscribe_gets_failure_reason_codes_and_the_connection_stays_usable() {
    let eliot = Eliot::start();
    let mut raw = Raw5::connect(eliot.addr, "curious_v5").await;
    let mut subscribe = v5::Subscribe::new_many(
        [
            v5::Filter::new("devices/+/telemetry", Q5::AtLeastOnce),
            v5::Filter::new("alerts/#", Q5::AtMostOnce),
        ],
        None,
    );
    subscribe.pkid = 20;
    raw.send(&v5::Packet::Subscribe(subscribe)).await;
    match raw.expect().await {
        v5::Packet::SubAck(ack) => {
            assert_eq!(ack.pkid, 20);
            assert_eq!(
                ack.return_codes,
                vec![v5::SubscribeReasonCode::ImplementationSpecific; 2]
            );
        }
        other => panic!("expected a SUBACK, got {other:?}"),
    }

    raw.publish(
        &topic("curious_v5"),
        Q5::AtLeastOnce,
        21,
        &reading("curious_v5", 1),
    )
    .await;
    match raw.expect().await {
        v5::Packet::PubAck(ack) => {
            assert_eq!((ack.pkid, ack.reason), (21, v5::PubAckReason::Success))
        }
        other => panic!("expected a PUBACK, got {other:?}"),
    }

    let mut unsubscribe = v5::Unsubscribe::new("devices/+/telemetry", None);
    unsubscribe.filters.push("alerts/#".into());
    unsubscribe.pkid = 22;
    raw.send(&v5::Packet::Unsubscribe(unsubscribe)).await;
    match raw.expect().await {
        v5::Packet::UnsubAck(ack) => {
            assert_eq!(ack.pkid, 22);
            assert_eq!(ack.reasons.len(), 2, "{ack:?}");
        }
        other => panic!("expected an UNSUBACK, got {other:?}"),
    }
    assert_eq!(eliot.count("readings"), 1);
}

// ---------------------------------------------------------------------------------
// Acks
// ---------------------------------------------------------------------------------

/// A QoS 2 PUBLISH gets its PUBREC only once the reading is stored (the row is there
/// when the PUBREC arrives), and the PUBREL that follows gets a PUBCOMP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos2_publish_is_stored_before_pubrec_and_pubrel_gets_pubcomp() {
    let eliot = Eliot::start();
    let mut raw = Raw4::connect(eliot.addr, "exact").await;
    raw.publish(&topic("exact"), QoS::ExactlyOnce, 7, &reading("exact", 1))
        .await;
    assert_eq!(raw.expect().await, v4::Packet::PubRec(v4::PubRec::new(7)));
    assert_eq!(eliot.count("readings"), 1, "stored before the PUBREC");
    raw.send(&v4::Packet::PubRel(v4::PubRel::new(7))).await;
    assert_eq!(raw.expect().await, v4::Packet::PubComp(v4::PubComp::new(7)));
}

/// A real client (rumqttc) publishing 20 readings at QoS 2 sees every exchange complete
/// (20 PUBCOMPs), and the 20 readings are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_publishing_at_qos2_sees_its_publishes_complete() {
    let eliot = Eliot::start();
    let mut device = Device::connect(eliot.addr, "exact_client");
    let client = device.client.clone();
    tokio::spawn(async move {
        for n in 0..20 {
            client
                .publish(
                    topic("exact_client"),
                    QoS::ExactlyOnce,
                    false,
                    reading("exact_client", n),
                )
                .await
                .unwrap();
        }
    });
    for _ in 0..20 {
        device
            .expect_event(PATIENCE, |e| {
                assert!(e.is_ok(), "connection error: {e:?}");
                matches!(e, Ok(Event::Incoming(Packet::PubComp(_))))
            })
            .await
            .unwrap();
    }
    assert_eq!(eliot.count("readings"), 20);
}

/// 200 QoS 1 PUBLISHes sent back to back on one connection (packet ids 1..=200, more
/// than the in-flight window) are PUBACKed exactly in the order they were sent, although
/// they are processed concurrently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubacks_leave_in_the_order_of_the_publishes() {
    let eliot = Eliot::start();
    let mut raw = Raw4::connect(eliot.addr, "orderly").await;
    let mut burst = BytesMut::new();
    for pkid in 1..=200u16 {
        let mut publish = v4::Publish::new(
            topic("orderly"),
            QoS::AtLeastOnce,
            reading("orderly", pkid.into()),
        );
        publish.pkid = pkid;
        publish.write(&mut burst).unwrap();
    }
    raw.send_bytes(&burst).await;

    let mut acked = Vec::new();
    for _ in 1..=200 {
        match raw.expect().await {
            v4::Packet::PubAck(ack) => acked.push(ack.pkid),
            other => panic!("expected a PUBACK, got {other:?} after {acked:?}"),
        }
    }
    assert_eq!(acked, (1..=200).collect::<Vec<u16>>());
    assert_eq!(eliot.count("readings"), 200);
}

// ---------------------------------------------------------------------------------
// Session takeover
// ---------------------------------------------------------------------------------

/// A second MQTT 5 connection with a connected client id takes the session over: the
/// first gets DISCONNECT 0x8E (Session taken over) and is closed, its will is published,
/// and the second is served. The server still knows the second as the owner of the id,
/// so a third connection takes it over in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_v5_connection_with_the_same_client_id_takes_the_session_over() {
    let eliot = Eliot::start();
    let (mut first, _) =
        Raw5::handshake(eliot.addr, connect5("twin"), Some(will5("twin", 1))).await;
    let mut second = Raw5::connect(eliot.addr, "twin").await;

    let before_close = first.until_closed().await;
    assert_eq!(before_close.len(), 1, "{before_close:?}");
    assert_eq!(
        disconnect_reason(&before_close[0]),
        Some(v5::DisconnectReasonCode::SessionTakenOver)
    );
    drop(first);
    // The will is published as the first connection's actor stops (and unregisters).
    assert!(eventually(PATIENCE, || eliot.count("readings") == 1).await);

    second
        .publish(&topic("twin"), Q5::AtLeastOnce, 1, &reading("twin", 2))
        .await;
    assert!(matches!(second.expect().await, v5::Packet::PubAck(a) if a.pkid == 1));

    let mut third = Raw5::connect(eliot.addr, "twin").await;
    let before_close = second.until_closed().await;
    assert_eq!(before_close.len(), 1, "{before_close:?}");
    assert_eq!(
        disconnect_reason(&before_close[0]),
        Some(v5::DisconnectReasonCode::SessionTakenOver)
    );
    third
        .publish(&topic("twin"), Q5::AtLeastOnce, 1, &reading("twin", 3))
        .await;
    assert!(matches!(third.expect().await, v5::Packet::PubAck(a) if a.pkid == 1));
    assert_eq!(eliot.count("readings"), 3);
}

/// A second 3.1.1 connection with a connected client id closes the first one (3.1.1 has
/// no server DISCONNECT: just the close), and the second keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connection_with_the_same_client_id_closes_the_first() {
    let eliot = Eliot::start();
    let mut first = Raw4::connect(eliot.addr, "twin_v4").await;
    let mut second = Raw4::connect(eliot.addr, "twin_v4").await;
    assert_eq!(first.until_closed().await, vec![]);
    second
        .publish(
            &topic("twin_v4"),
            QoS::AtLeastOnce,
            1,
            &reading("twin_v4", 1),
        )
        .await;
    assert_eq!(
        second.expect().await,
        v4::Packet::PubAck(v4::PubAck::new(1))
    );
    second.send(&v4::Packet::PingReq).await;
    assert_eq!(second.expect().await, v4::Packet::PingResp);
}

// ---------------------------------------------------------------------------------
// Malformed packets
// ---------------------------------------------------------------------------------

/// Malformed packets close only their own connection: a PUBLISH with QoS bits 11 and a
/// QoS 1 PUBLISH with packet id 0 (3.1.1: just closed; the first device's will is
/// published, the close being abnormal), and an MQTT 5 PUBLISH with QoS bits 11
/// (DISCONNECT 0x81 Malformed Packet first). A device connected all along loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_packet_closes_only_its_own_connection() {
    let eliot = Eliot::start();
    let mut healthy = Device::connect(eliot.addr, "healthy");
    healthy
        .expect_event(PATIENCE, |e| {
            matches!(e, Ok(Event::Incoming(Packet::ConnAck(_))))
        })
        .await
        .unwrap();

    // A PUBLISH with both QoS bits set (QoS 3 does not exist).
    let mut connect = connect4("qos3");
    connect.last_will = Some(will4("qos3", 1));
    let (mut qos3, _) = Raw4::handshake(eliot.addr, connect).await;
    let mut bytes = BytesMut::new();
    let mut publish = v4::Publish::new(topic("qos3"), QoS::AtLeastOnce, reading("qos3", 2));
    publish.pkid = 1;
    publish.write(&mut bytes).unwrap();
    bytes[0] |= 0b0110;
    qos3.send_bytes(&bytes).await;
    assert_eq!(qos3.until_closed().await, vec![]);

    // A QoS 1 PUBLISH with packet id 0 (3.1.1 §2.3.1: it must be non-zero).
    let mut pkid0 = Raw4::connect(eliot.addr, "pkid0").await;
    let mut bytes = BytesMut::new();
    let payload = reading("pkid0", 1);
    let mut publish = v4::Publish::new(topic("pkid0"), QoS::AtLeastOnce, payload.clone());
    publish.pkid = 0x0101;
    publish.write(&mut bytes).unwrap();
    // The packet id comes right before the payload.
    let at = bytes.len() - payload.len() - 2;
    assert_eq!(&bytes[at..at + 2], &[1, 1]);
    bytes[at..at + 2].copy_from_slice(&[0, 0]);
    pkid0.send_bytes(&bytes).await;
    assert_eq!(pkid0.until_closed().await, vec![]);

    // The same QoS 3 PUBLISH from an MQTT 5 device.
    let mut qos3_v5 = Raw5::connect(eliot.addr, "qos3_v5").await;
    let mut bytes = BytesMut::new();
    let mut publish = v5::Publish::new(
        topic("qos3_v5"),
        Q5::AtLeastOnce,
        reading("qos3_v5", 1),
        None,
    );
    publish.pkid = 1;
    v5::Packet::Publish(publish)
        .write(&mut bytes, None)
        .unwrap();
    bytes[0] |= 0b0110;
    qos3_v5.send_bytes(&bytes).await;
    let before_close = qos3_v5.until_closed().await;
    assert_eq!(before_close.len(), 1, "{before_close:?}");
    assert_eq!(
        disconnect_reason(&before_close[0]),
        Some(v5::DisconnectReasonCode::MalformedPacket)
    );

    let payloads = (0..10).map(|n| reading("healthy", n)).collect();
    let acked = healthy
        .publish_all("healthy", payloads, QoS::AtLeastOnce)
        .await;
    assert_eq!(acked, 10);
    assert!(eventually(PATIENCE, || eliot.count("readings") == 11).await);
    assert_eq!(stored_data(&eliot, "healthy").len(), 10);
    assert_eq!(
        stored_data(&eliot, "qos3"),
        vec![serde_json::json!({"celsius": 1.5})]
    );
    assert_eq!(eliot.count("dead_letters"), 0);
}

// ---------------------------------------------------------------------------------
// Codec edge cases found by this suite (fixed)
// ---------------------------------------------------------------------------------

/// An MQTT 5 DISCONNECT may carry its reason code without a property length (remaining
/// length 1: MQTT 5 §3.14.2.2.1). `E0 01 00` is a normal disconnection: the server must
/// discard the will [MQTT-3.14.4-3], so nothing is stored when the device then closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v5_disconnect_with_only_a_reason_code_discards_the_will() {
    let eliot = Eliot::start();
    let (mut raw, _) =
        Raw5::handshake(eliot.addr, connect5("terse"), Some(will5("terse", 1))).await;
    // DISCONNECT, reason 0x00, no property length; then the device closes, as it must.
    raw.send_bytes(&[0xE0, 0x01, 0x00]).await;
    drop(raw);
    assert!(
        throughout(Duration::from_secs(1), || eliot.count("readings") == 0).await,
        "the will was stored after a normal disconnection"
    );
}

/// An MQTT 5 QoS 1 PUBLISH that ends where its property length should be is malformed:
/// the server must answer DISCONNECT 0x81 and close, not leave the device waiting
/// forever for a PUBACK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v5_publish_without_its_property_length_is_refused_as_malformed() {
    let eliot = Eliot::start();
    let mut raw = Raw5::connect(eliot.addr, "truncated").await;
    let topic = topic("truncated");
    let mut bytes = vec![0x32, (2 + topic.len() + 2) as u8, 0, topic.len() as u8];
    bytes.extend_from_slice(topic.as_bytes());
    bytes.extend_from_slice(&[0, 1]); // packet id 1; no property length, no payload.
    raw.send_bytes(&bytes).await;
    match raw.next_within(Duration::from_secs(3)).await {
        Next::Packet(packet) => assert_eq!(
            disconnect_reason(&packet),
            Some(v5::DisconnectReasonCode::MalformedPacket),
            "{packet:?}"
        ),
        other => panic!("expected DISCONNECT 0x81, got {other:?}"),
    }
}

/// The Maximum Packet Size an MQTT 5 CONNACK announces counts the whole packet, fixed
/// header included (MQTT 5 §3.2.2.3.6, §2.1.4). A packet of exactly that size is
/// accepted; one 3 bytes larger must be refused with DISCONNECT 0x95.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v5_packet_just_over_the_announced_maximum_packet_size_is_refused() {
    let eliot = Eliot::start_with(|c| c.mqtt.max_packet_size = 1000);
    let publish_of_size = |device: &str, total: usize| {
        let mut publish = v5::Publish::new(topic(device), Q5::AtLeastOnce, Vec::new(), None);
        publish.pkid = 1;
        let mut payload = reading(device, 1);
        // Fixed header 3 bytes (remaining length >= 128), topic 2 + len, packet id 2,
        // property length 1; JSON allows the trailing spaces.
        let overhead = 3 + 2 + topic(device).len() + 2 + 1;
        payload.push_str(&" ".repeat(total - overhead - payload.len()));
        publish.payload = payload.into_bytes().into();
        let mut bytes = BytesMut::new();
        v5::Packet::Publish(publish)
            .write(&mut bytes, None)
            .unwrap();
        assert_eq!(bytes.len(), total);
        bytes
    };

    let mut fits = Raw5::connect(eliot.addr, "fits").await;
    fits.send_bytes(&publish_of_size("fits", 1000)).await;
    assert!(matches!(fits.expect().await, v5::Packet::PubAck(a) if a.pkid == 1));

    let (mut over, ack) = Raw5::handshake(eliot.addr, connect5("over"), None).await;
    assert_eq!(ack.properties.unwrap().max_packet_size, Some(1000));
    over.send_bytes(&publish_of_size("over", 1003)).await;
    let answer = over.expect().await;
    assert_eq!(
        disconnect_reason(&answer),
        Some(v5::DisconnectReasonCode::PacketTooLarge),
        "{answer:?}"
    );
}

/// The fixed-header flags of a 3.1.1 SUBSCRIBE must be 0010; the server must treat any
/// other value as malformed and close the connection [MQTT-3.8.1-1].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_with_wrong_reserved_flags_closes_the_connection() {
    let eliot = Eliot::start();
    let mut raw = Raw4::connect(eliot.addr, "sloppy").await;
    let mut subscribe = v4::Subscribe::new("devices/+/telemetry", QoS::AtLeastOnce);
    subscribe.pkid = 1;
    let mut bytes = BytesMut::new();
    subscribe.write(&mut bytes).unwrap();
    assert_eq!(bytes[0], 0x82);
    bytes[0] = 0x80;
    raw.send_bytes(&bytes).await;
    let next = raw.next_within(Duration::from_secs(3)).await;
    assert!(
        matches!(next, Next::Closed),
        "expected the close, got {next:?}"
    );
}

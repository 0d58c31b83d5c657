//! The handshake: CONNECT, CONNACK, client ids, Session Present.

use super::*;

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

/// A socket that never sends a byte is closed once `mqtt.first_byte_timeout` passes; one
/// that starts its CONNECT and stops, once `mqtt.connect_timeout` passes; neither before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_sends_connect_is_closed_after_the_connect_timeout() {
    let eliot = Eliot::start_with(|c| {
        c.mqtt.first_byte_timeout = Duration::from_millis(500);
        c.mqtt.connect_timeout = Duration::from_millis(1500);
    });
    let opened = Instant::now();
    let mut mute = Raw4::open(eliot.addr).await;
    assert_eq!(mute.until_closed().await, vec![]);
    let took = opened.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(1400),
        "a mute socket closed after {took:?}, the first-byte timeout being 500 ms"
    );
    let opened = Instant::now();
    let mut stalled = Raw4::open(eliot.addr).await;
    stalled.send_bytes(&[0x10]).await;
    assert_eq!(stalled.until_closed().await, vec![]);
    let took = opened.elapsed();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(4),
        "a stalled CONNECT closed after {took:?}, the connect timeout being 1.5 s"
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

//! MQTT as the specifications say it, whatever a client sends.

use super::*;

/// The reason code of the v5 DISCONNECT among `packets`, if there is one.
fn disconnect_reason(packets: Vec<v5::Packet>) -> Option<v5::DisconnectReasonCode> {
    packets.into_iter().find_map(|p| match p {
        v5::Packet::Disconnect(d) => Some(d.reason_code),
        _ => None,
    })
}

/// The topic of a PUBLISH is checked as MQTT says, before the payload: an empty topic or
/// one with a wildcard closes the connection (v5: DISCONNECT 0x90 Topic Name invalid), a
/// v5 topic alias too (0x94, this server allows none). Nothing is stored, not even as a
/// dead letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_topic_the_protocol_forbids_closes_the_connection() {
    let eliot = Eliot::start();
    let payload = reading("robot_001", 1);

    let mut v4_device = Raw4::connect(eliot.addr, "wild_v4").await;
    v4_device
        .publish("devices/+/telemetry", m4::QoS::AtLeastOnce, 1, &payload)
        .await;
    assert!(
        v4_device.until_closed().await.is_empty(),
        "closed, no PUBACK"
    );

    for topic in ["", "devices/#"] {
        let mut device = Raw5::connect(eliot.addr, "wild_v5").await;
        device
            .publish(topic, m5::QoS::AtLeastOnce, 1, &payload)
            .await;
        let reason = disconnect_reason(device.until_closed().await);
        assert_eq!(
            reason,
            Some(v5::DisconnectReasonCode::TopicNameInvalid),
            "{topic:?}"
        );
    }
    let mut aliased = Raw5::connect(eliot.addr, "alias_v5").await;
    let mut publish = v5::Publish::new(topic("robot_001"), m5::QoS::AtLeastOnce, payload, None);
    publish.pkid = 1;
    publish.properties = Some(v5::PublishProperties {
        topic_alias: Some(1),
        ..Default::default()
    });
    aliased.send(&v5::Packet::Publish(publish)).await;
    let reason = disconnect_reason(aliased.until_closed().await);
    assert_eq!(reason, Some(v5::DisconnectReasonCode::TopicAliasInvalid));

    assert_eq!(eliot.count("readings"), 0);
    assert_eq!(eliot.count("dead_letters"), 0);
}

/// What else the specs forbid in a client's PUBLISH closes the connection, unacked and
/// unstored: U+0000 in the topic (3.1.1 must close [MQTT-1.5.3-2]; v5, a malformed packet,
/// DISCONNECT 0x81), and in v5 a Subscription Identifier [MQTT-3.3.4-6] or a Response Topic
/// with a wildcard [MQTT-3.3.2-14] (DISCONNECT 0x82 Protocol error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_with_a_null_in_its_topic_or_server_only_properties_closes_the_connection() {
    let eliot = Eliot::start();
    let payload = reading("robot_001", 1);
    let null_topic = "devices/robot_001\0/telemetry";

    let mut v4_device = Raw4::connect(eliot.addr, "null_v4").await;
    v4_device
        .publish(null_topic, m4::QoS::AtLeastOnce, 1, &payload)
        .await;
    assert!(
        v4_device.until_closed().await.is_empty(),
        "closed, no PUBACK"
    );

    let mut v5_device = Raw5::connect(eliot.addr, "null_v5").await;
    v5_device
        .publish(null_topic, m5::QoS::AtLeastOnce, 1, &payload)
        .await;
    let reason = disconnect_reason(v5_device.until_closed().await);
    assert_eq!(reason, Some(v5::DisconnectReasonCode::MalformedPacket));

    let forbidden = [
        v5::PublishProperties {
            subscription_identifiers: vec![7],
            ..Default::default()
        },
        v5::PublishProperties {
            response_topic: Some("replies/#".into()),
            ..Default::default()
        },
    ];
    for properties in forbidden {
        let mut device = Raw5::connect(eliot.addr, "props_v5").await;
        let mut publish = v5::Publish::new(
            topic("robot_001"),
            m5::QoS::AtLeastOnce,
            payload.clone(),
            None,
        );
        publish.pkid = 1;
        publish.properties = Some(properties.clone());
        device.send(&v5::Packet::Publish(publish)).await;
        let reason = disconnect_reason(device.until_closed().await);
        assert_eq!(
            reason,
            Some(v5::DisconnectReasonCode::ProtocolError),
            "{properties:?}"
        );
    }

    assert_eq!(eliot.count("readings"), 0);
    assert_eq!(eliot.count("dead_letters"), 0);
}

/// CONNECT flags the spec forbids get no CONNACK, only the close: the reserved flag set
/// [MQTT-3.1.2-3], and in 3.1.1 a password without a user name [MQTT-3.1.2-22]; so do a v5
/// property given twice, and a Receive Maximum or Maximum Packet Size of 0. A v5 CONNECT naming an authentication
/// method, which Eliot does not support, gets CONNACK 0x8C (Bad authentication method).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_flags_the_spec_forbids_are_refused() {
    let eliot = Eliot::start();
    // CONNECT, "MQTT" level 4, flags, keep-alive 60, client id "a" (and a password "pw").
    let reserved: &[u8] = &[
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x03, 0, 60, 0, 1, b'a',
    ];
    let password_only: &[u8] = &[
        0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x42, 0, 60, 0, 1, b'a', 0, 2, b'p', b'w',
    ];
    // v5, with the Session Expiry Interval given twice [§3.1.2.11].
    let repeated: &[u8] = &[
        0x10, 24, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 10, 0x11, 0, 0, 0, 60, 0x11, 0, 0,
        0, 61, 0, 1, b'a',
    ];
    for bytes in [reserved, password_only, repeated] {
        let mut raw = Raw4::open(eliot.addr).await;
        raw.send_bytes(bytes).await;
        assert!(
            raw.until_closed().await.is_empty(),
            "no CONNACK for {bytes:02x?}"
        );
    }
    let mut connect = connect5("scram_v5");
    let mut properties = v5::ConnectProperties::new();
    properties.authentication_method = Some("SCRAM-SHA-256".into());
    connect.properties = Some(properties);
    let (_, ack) = Raw5::handshake(eliot.addr, connect, None).await;
    assert_eq!(ack.code, v5::ConnectReturnCode::BadAuthenticationMethod);
    // Receive Maximum 0 or Maximum Packet Size 0: protocol errors, closed without a CONNACK.
    for zero in ["receive_maximum", "max_packet_size"] {
        let mut connect = connect5("zero_v5");
        let mut properties = v5::ConnectProperties::new();
        match zero {
            "receive_maximum" => properties.receive_maximum = Some(0),
            _ => properties.max_packet_size = Some(0),
        }
        connect.properties = Some(properties);
        let mut raw = Raw5::open(eliot.addr).await;
        raw.send(&v5::Packet::Connect(connect, None, None)).await;
        assert!(raw.until_closed().await.is_empty(), "{zero} 0: no CONNACK");
    }
}

/// Client ids Eliot assigns (v5, empty id) are unique across restarts: after a kill -9,
/// the next assigned id is not one that may name another device's kept session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assigned_client_ids_are_unique_across_restarts() {
    use common::process::{free_addr, EliotProcess};
    let data = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut assigned = Vec::new();
    for _ in 0..2 {
        let eliot = EliotProcess::start(data.path(), addr, &[]);
        let (_, ack) = Raw5::handshake(addr, connect5(""), None).await;
        let id = ack
            .properties
            .and_then(|p| p.assigned_client_identifier)
            .expect("an assigned client id");
        assigned.push(id);
        eliot.kill9();
    }
    assert!(assigned[0].starts_with("eliot-"), "{assigned:?}");
    assert_ne!(assigned[0], assigned[1]);
}

/// A v5 DISCONNECT's Session Expiry Interval is honoured: 0 ends a kept session at once
/// (the next CONNECT finds none); setting one on a session the CONNECT did not keep is a
/// protocol error [MQTT-3.14.2-2], answered with DISCONNECT 0x82.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v5_disconnect_session_expiry_is_honoured() {
    let eliot = Eliot::start();
    let kept = || {
        let mut connect = connect5("expiring");
        connect.clean_start = false;
        let mut properties = v5::ConnectProperties::new();
        properties.session_expiry_interval = Some(3600);
        connect.properties = Some(properties);
        connect
    };
    let (mut raw, _) = Raw5::handshake(eliot.addr, kept(), None).await;
    // DISCONNECT, reason 0x00, properties: Session Expiry Interval 0.
    raw.send_bytes(&[0xE0, 0x07, 0x00, 0x05, 0x11, 0, 0, 0, 0])
        .await;
    raw.until_closed().await;
    assert!(eventually(Duration::from_secs(5), || eliot.count("sessions") == 0).await);
    let (_, again) = Raw5::handshake(eliot.addr, kept(), None).await;
    assert!(
        !again.session_present,
        "the session ended with the DISCONNECT"
    );

    let (mut unkept, _) = Raw5::handshake(eliot.addr, connect5("unkept"), None).await;
    raw_disconnect_with_expiry(&mut unkept, 30).await;
    let reason = unkept
        .until_closed()
        .await
        .into_iter()
        .find_map(|p| match p {
            v5::Packet::Disconnect(d) => Some(d.reason_code),
            _ => None,
        });
    assert_eq!(reason, Some(v5::DisconnectReasonCode::ProtocolError));
}

async fn raw_disconnect_with_expiry(raw: &mut Raw5, seconds: u8) {
    raw.send_bytes(&[0xE0, 0x07, 0x00, 0x05, 0x11, 0, 0, 0, seconds])
        .await;
}

/// What a v5 client asks of the packets it receives is kept: with Request Problem
/// Information 0 its SUBACK carries no reason string, and a DISCONNECT larger than its
/// Maximum Packet Size is not sent (the connection just closes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v5_clients_limits_on_what_it_receives_are_kept() {
    let eliot = Eliot::start();
    let mut connect = connect5("terse_v5");
    let mut properties = v5::ConnectProperties::new();
    properties.request_problem_info = Some(0);
    // The accepted CONNACK takes 19 bytes; the DISCONNECT with its reason, 21.
    properties.max_packet_size = Some(20);
    connect.properties = Some(properties);
    let (mut raw, ack) = Raw5::handshake(eliot.addr, connect, None).await;
    assert_eq!(ack.code, v5::ConnectReturnCode::Success);
    let mut subscribe = v5::Subscribe::new(v5::Filter::new("devices/#", m5::QoS::AtMostOnce), None);
    subscribe.pkid = 5;
    raw.send(&v5::Packet::Subscribe(subscribe)).await;
    match raw.expect().await {
        v5::Packet::SubAck(ack) => assert_eq!(ack.properties, None, "no reason string"),
        other => panic!("expected a SUBACK, got {other:?}"),
    }
    // A second CONNECT is a protocol error: the DISCONNECT with its reason would be larger
    // than 20 bytes, so only the close comes.
    raw.send(&v5::Packet::Connect(connect5("terse_v5"), None, None))
        .await;
    assert!(raw.until_closed().await.is_empty());
}

/// A connection ending its session (a v5 DISCONNECT with Session Expiry 0) whose end
/// comes after a successor took the session over for 600 s ends nothing of the
/// successor's: back later, the device finds its session (Session Present 1), and a
/// compliant client keeps the messages it had not got acked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_connections_late_end_leaves_its_successors_session() {
    let eliot = Eliot::start();
    let (mut first, _) = Raw5::handshake(eliot.addr, kept_for("robot_032", 600), None).await;
    let end_now = v5::DisconnectProperties {
        session_expiry_interval: Some(0),
        reason_string: None,
        user_properties: Vec::new(),
        server_reference: None,
    };
    let disconnect = v5::Disconnect {
        reason_code: v5::DisconnectReasonCode::NormalDisconnection,
        properties: Some(end_now),
    };
    first.send(&v5::Packet::Disconnect(disconnect)).await;
    // Eliot has closed its side; the first connection ends once the device closes its own.
    assert!(first.until_closed().await.is_empty());
    let (second, ack) = Raw5::handshake(eliot.addr, kept_for("robot_032", 600), None).await;
    assert!(
        ack.session_present,
        "the first connection has not ended yet"
    );
    drop(first);
    assert!(
        throughout(Duration::from_secs(1), || eliot.count("sessions") == 1).await,
        "the first connection's end deleted its successor's session"
    );
    drop(second);
    assert!(
        eventually_async(Duration::from_secs(5), || async {
            metric(eliot.http_addr, "eliot_connections_open").await == Some(0.0)
        })
        .await
    );
    let (_back, ack) = Raw5::handshake(eliot.addr, kept_for("robot_032", 600), None).await;
    assert!(ack.session_present, "the session was lost");
}

/// A QoS 1 re-send with DUP of a message already kept as a dead letter is acked but not
/// kept, nor counted toward its device's breaker, twice. (A breaker that trips at 2
/// rejections still lets the device through after one rejection and its re-send.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dup_resend_of_a_rejected_message_counts_once() {
    let eliot = Eliot::start_with(|c| c.breakers.device.max_rejections = 2);
    let mut raw = Raw4::connect(eliot.addr, "robot_015").await;
    let bad = |pkid: u16, dup: bool, text: &str| {
        let mut publish = v4::Publish::new(
            topic("robot_015"),
            m4::QoS::AtLeastOnce,
            text.as_bytes().to_vec(),
        );
        publish.pkid = pkid;
        publish.dup = dup;
        v4::Packet::Publish(publish)
    };
    raw.send(&bad(1, false, "not JSON")).await;
    assert_eq!(raw.expect().await, v4::Packet::PubAck(v4::PubAck::new(1)));
    raw.send(&bad(1, true, "not JSON")).await;
    assert_eq!(raw.expect().await, v4::Packet::PubAck(v4::PubAck::new(1)));
    assert_eq!(eliot.count("dead_letters"), 1);
    // The second distinct rejection trips the breaker: the connection closes.
    raw.send(&bad(2, false, "not JSON either")).await;
    assert_eq!(raw.expect().await, v4::Packet::PubAck(v4::PubAck::new(2)));
    assert!(raw.until_closed().await.is_empty());
    assert_eq!(eliot.count("dead_letters"), 2);
}

/// A v5 CONNECT continuing `client_id`'s session, kept `expiry` seconds past the connection.
pub(crate) fn kept_for(client_id: &str, expiry: u32) -> v5::Connect {
    let mut connect = connect5(client_id);
    connect.clean_start = false;
    let mut properties = v5::ConnectProperties::new();
    properties.session_expiry_interval = Some(expiry);
    connect.properties = Some(properties);
    connect
}

//! Codec edge cases this suite found (all fixed).

use super::*;

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

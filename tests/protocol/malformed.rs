//! Malformed packets: closed, with the v5 reason, and nothing else lost.

use super::*;

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

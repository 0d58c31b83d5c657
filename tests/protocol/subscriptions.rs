//! Subscriptions: Eliot is not a broker, so every one is refused.

use super::*;

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

/// Only a connection's first SUBACK says why (a reason string, to whoever points a
/// subscriber at Eliot by mistake): a later 9-byte SUBSCRIBE gets a 6-byte SUBACK, not the
/// 77 bytes it used to, so a client cannot make Eliot write eight times what it sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_first_suback_says_why() {
    let eliot = Eliot::start();
    let raw = Raw5::connect(eliot.addr, "curious_again").await;
    let mut stream = raw.into_stream();
    let first = suback(&mut stream).await;
    let text = String::from_utf8_lossy(&first);
    assert!(text.contains("does not deliver messages"), "{first:?}");
    let second = suback(&mut stream).await;
    // Fixed header, packet id, empty properties, one reason code (0x83).
    assert_eq!(second, vec![0x90, 0x04, 0x00, 0x01, 0x00, 0x83]);
}

/// Sends a 9-byte SUBSCRIBE (packet id 1, no properties, the filter "a" at QoS 0) and
/// returns the SUBACK's bytes.
async fn suback(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let subscribe = [0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'a', 0x00];
    stream.write_all(&subscribe).await.unwrap();
    let mut header = [0u8; 2];
    stream.read_exact(&mut header).await.unwrap();
    assert_eq!(header[0], 0x90, "a SUBACK");
    assert!(header[1] < 0x80, "a one-byte length");
    let mut rest = vec![0u8; usize::from(header[1])];
    stream.read_exact(&mut rest).await.unwrap();
    [header.to_vec(), rest].concat()
}

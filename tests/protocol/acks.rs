//! Acks: after commit, in arrival order, for every QoS.

use super::*;

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

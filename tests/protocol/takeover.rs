//! Session takeover: a second connection with the same client id.

use super::*;

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

//! Keep-alive: PINGREQ, and silent devices closed after one and a half keep-alives.

use super::*;

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

//! Wills: published on an abnormal close, discarded on DISCONNECT.

use super::*;

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

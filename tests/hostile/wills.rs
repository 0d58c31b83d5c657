//! Wills as the specifications say, whatever a client sends: when one is kept, when it is
//! published, when a delay holds it back, and how much of them may wait.

use super::mqtt::kept_for;
use super::*;

/// Only a v5 DISCONNECT with reason 0x00 (Normal disconnection) discards the will
/// (§3.14.4): one with 0x80 (Unspecified error) has its will stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v5_disconnect_other_than_normal_keeps_the_will() {
    let eliot = Eliot::start();
    let will = v5::LastWill::new(
        topic("robot_011"),
        reading("robot_011", 1),
        m5::QoS::AtLeastOnce,
        false,
        None,
    );
    let (mut raw, ack) = Raw5::handshake(eliot.addr, connect5("robot_011"), Some(will)).await;
    assert_eq!(ack.code, v5::ConnectReturnCode::Success);
    // DISCONNECT, reason 0x80, property length 0.
    raw.send_bytes(&[0xE0, 0x02, 0x80, 0x00]).await;
    raw.until_closed().await;
    assert!(eventually(Duration::from_secs(10), || eliot.count("readings") == 1).await);
}

/// A v5 will of `device`'s reading `n`, published `delay` seconds after its connection ends.
fn delayed_will(device: &str, n: u64, delay: u32) -> v5::LastWill {
    let properties = v5::LastWillProperties {
        delay_interval: Some(delay),
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
    };
    v5::LastWill::new(
        topic(device),
        reading(device, n),
        m5::QoS::AtLeastOnce,
        false,
        Some(properties),
    )
}

/// A v5 Will Delay Interval is honoured: the will of a device that dropped is published
/// after the delay, not at once, and not at all if the device comes back to its session
/// within it [MQTT-3.1.3-9].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_will_delay_is_honoured() {
    let eliot = Eliot::start();
    // Dropped for good: the will comes after 1 s.
    let (raw, _) = Raw5::handshake(
        eliot.addr,
        kept_for("robot_016", 60),
        Some(delayed_will("robot_016", 1, 1)),
    )
    .await;
    drop(raw);
    assert!(throughout(Duration::from_millis(600), || eliot.count("readings") == 0).await);
    assert!(eventually(Duration::from_secs(5), || eliot.count("readings") == 1).await);
    // Back within the delay: no will.
    let (raw, _) = Raw5::handshake(
        eliot.addr,
        kept_for("robot_017", 60),
        Some(delayed_will("robot_017", 1, 2)),
    )
    .await;
    drop(raw);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_back, ack) = Raw5::handshake(eliot.addr, kept_for("robot_017", 60), None).await;
    assert!(ack.session_present);
    assert!(throughout(Duration::from_secs(3), || eliot.count("readings") == 1).await);
}

/// Wills waiting for their delay are bounded in bytes: 300 devices that each leave a will
/// of 60 KiB (a will's payload has a 16-bit length) to wait 10 minutes would hold 18 MiB;
/// past 16 MiB they are published at once (here as dead letters: not readings), not held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_wills_are_bounded_in_bytes() {
    let eliot = Eliot::start();
    let big = "x".repeat(60 << 10);
    let devices = 300;
    for n in 0..devices {
        let device = format!("heavy_{n:03}");
        let mut will = delayed_will(&device, 1, 600);
        will.message = big.clone().into();
        let (raw, ack) = Raw5::handshake(eliot.addr, kept_for(&device, 3600), Some(will)).await;
        assert_eq!(ack.code, v5::ConnectReturnCode::Success);
        drop(raw);
    }
    let published = || async {
        metric(eliot.http_addr, "eliot_wills_published_total")
            .await
            .unwrap_or(0.0) as usize
    };
    let each = big.len() + topic("heavy_000").len();
    let held = (16 << 20) / each;
    assert!(
        eventually_async(Duration::from_secs(10), || async {
            published().await == devices - held
        })
        .await,
        "{} wills published at once, not {}",
        published().await,
        devices - held
    );
}

/// A takeover is the device coming back within the delay too: the connection taken over
/// reports its will only as it closes, after its successor connected, and that late will
/// is dropped when the successor continued the session [MQTT-3.1.2-8]; a successor that
/// started clean ended the session, and the will is published at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_will_is_dropped_when_a_takeover_continues_the_session() {
    let eliot = Eliot::start();
    let (mut old, _) = Raw5::handshake(
        eliot.addr,
        kept_for("robot_030", 600),
        Some(delayed_will("robot_030", 1, 1)),
    )
    .await;
    let (_new, ack) = Raw5::handshake(eliot.addr, kept_for("robot_030", 600), None).await;
    assert!(ack.session_present);
    let taken_over = old.until_closed().await;
    assert!(
        matches!(&taken_over[..], [v5::Packet::Disconnect(d)]
            if d.reason_code == v5::DisconnectReasonCode::SessionTakenOver),
        "{taken_over:?}"
    );
    drop(old);
    assert!(
        throughout(Duration::from_secs(3), || eliot.count("readings") == 0).await,
        "the old connection's will was published after its 1 s delay"
    );

    let (mut old, _) = Raw5::handshake(
        eliot.addr,
        kept_for("robot_031", 600),
        Some(delayed_will("robot_031", 1, 60)),
    )
    .await;
    let mut clean = kept_for("robot_031", 600);
    clean.clean_start = true;
    let (_new, ack) = Raw5::handshake(eliot.addr, clean, None).await;
    assert!(!ack.session_present);
    old.until_closed().await;
    assert!(
        eventually(Duration::from_secs(5), || eliot.count("readings") == 1).await,
        "the session ended with the clean start: its will is due now, not in 60 s"
    );
}

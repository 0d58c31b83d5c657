//! What logins cost in Argon2 checks, against an Eliot process: a flood of bad logins from
//! one address gets a few checks, not one per CONNECT, and a device logging in from another
//! address is answered at once, not after the flood's checks; a device refused anyway (its
//! breaker open) gets none.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;

/// How many CONNECTs the flood sends at once.
const FLOOD: usize = 150;

/// 150 CONNECTs with wrong passwords as one device, sent at once from 127.0.0.2; then the
/// right secret from 127.0.0.3, whose CONNECT→CONNACK time is measured. The flood's checks
/// are its `bad_credentials` refusals: each is one Argon2 check that said no. At most
/// `auth.max_failed_logins` (10) begin within the window, however fast the flood comes;
/// fewer when it comes at once (`auth.max_waiting_logins_per_address`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_logins_from_one_address_neither_starves_another_nor_gets_a_check_each() {
    let eliot = Outside::start(AuthMode::Password, None, "max_failed_logins = 10");
    let good = eliot.provision("robot_good");
    let addr = eliot.eliot.addr;
    let sent = Arc::new(AtomicUsize::new(0));
    let flood: Vec<_> = (0..FLOOD)
        .map(|_| {
            let sent = sent.clone();
            tokio::spawn(async move {
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.bind(([127, 0, 0, 2], 0).into()).unwrap();
                let stream = socket.connect(addr).await.expect("Eliot accepts");
                let mut raw = scripted::Raw4::over(stream);
                let mut connect = scripted::connect4("robot_stale");
                connect.set_login("robot_stale", "an-old-secret");
                raw.send(&v4::Packet::Connect(connect)).await;
                sent.fetch_add(1, Ordering::Relaxed);
                // Answered (refused) or closed, within the flood's patience.
                let _ = raw.next_within(Duration::from_secs(60)).await;
            })
        })
        .collect();
    let all_sent = eventually(Duration::from_secs(10), || {
        sent.load(Ordering::Relaxed) == FLOOD
    });
    assert!(all_sent.await, "the flood's CONNECTs are sent");

    let (code, took) = login_from([127, 0, 0, 3], addr, "robot_good", &good).await;
    println!("the good device's CONNACK under the flood: {took:?}");
    for attacker in flood {
        attacker.await.unwrap();
    }
    let checked = eliot
        .metric("eliot_connections_refused_total{code=\"bad_credentials\"}")
        .await;
    println!("Argon2 checks for the flood of {FLOOD}: {checked}");
    assert_eq!(code, Some(v4::ConnectReturnCode::Success));
    assert!(
        took < Duration::from_secs(1),
        "the good device waited {took:?} for its CONNACK"
    );
    assert!(
        (1.0..=10.0).contains(&checked),
        "the flood got {checked} checks"
    );
}

/// A device whose breaker tripped (50 bad messages) is refused for its cool-down before any
/// secret is checked: a wrong secret in its name costs no Argon2 check, and the refusal is
/// the cool-down's (3.1.1 has only "server unavailable" for it), not "bad credentials".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_in_its_cooldown_is_refused_before_any_secret_is_checked() {
    let eliot = Outside::start(AuthMode::Password, None, "");
    let secret = eliot.provision("robot_1");
    let addr = eliot.eliot.addr;
    let mut connect = scripted::connect4("robot_1");
    connect.set_login("robot_1", &secret);
    let (mut raw, ack) = scripted::Raw4::handshake(addr, connect).await;
    assert_eq!(ack.code, v4::ConnectReturnCode::Success);
    for pkid in 1..=50 {
        let qos = rumqttc::mqttbytes::QoS::AtLeastOnce;
        raw.publish(&topic("robot_1"), qos, pkid, "not json").await;
    }
    raw.until_closed().await;
    let checks = "eliot_connections_refused_total{code=\"bad_credentials\"}";
    assert_eq!(eliot.metric(checks).await, 0.0);
    let (code, _) = login_from([127, 0, 0, 1], addr, "robot_1", "a-guess").await;
    assert_eq!(code, Some(v4::ConnectReturnCode::ServiceUnavailable));
    assert_eq!(
        eliot.metric(checks).await,
        0.0,
        "no check for a device refused anyway"
    );
}

//! Revocation, against a separate `eliot` process: `eliot device rotate` and `remove`, run
//! in yet another process, close the device's live connections (v5 DISCONNECT 0x87 Not
//! authorized; 3.1.1 has no DISCONNECT from the server, so its socket is just closed); a
//! removed device's certificate no longer logs in, and one never added never did.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rumqttc::v5::mqttbytes::v5::{self as m5, DisconnectReasonCode};
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::v5::{ConnectionError, Event, Incoming, StateError};

use super::common::process::{free_addr, EliotProcess};
use super::common::scripted::{connect4, connect5, Next, Raw4, Raw5};
use super::*;

/// Generous against a one-second promise: this machine's two cores are shared.
const WITHIN: Duration = Duration::from_secs(5);

/// The secret `eliot device add|rotate` printed on its last line.
fn secret_of(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout.lines().last().expect("a last line").to_owned()
}

/// Runs `eliot device ARGS` and answers when it finished and how long it took.
fn timed_cli(data: &Path, args: &[&str]) -> (Output, Instant, Duration) {
    let started = Instant::now();
    let out = tokio::task::block_in_place(|| device_command(data, args));
    (out, Instant::now(), started.elapsed())
}

/// A 5.0 handshake with a username (the device id) and password.
async fn login5(addr: SocketAddr, device: &str, secret: &str) -> (Raw5, m5::ConnAck) {
    let mut raw = Raw5::open(addr).await;
    let login = m5::Login::new(device, secret);
    raw.send(&m5::Packet::Connect(connect5(device), None, Some(login)))
        .await;
    match raw.next().await {
        Some(m5::Packet::ConnAck(ack)) => (raw, ack),
        other => panic!("expected a CONNACK, got {other:?}"),
    }
}

/// A device logged in and storing: one reading at QoS 1, PUBACKed.
async fn serving5(addr: SocketAddr, device: &str, secret: &str) -> Raw5 {
    let (mut raw, ack) = login5(addr, device, secret).await;
    assert_eq!(ack.code, m5::ConnectReturnCode::Success, "{device} let in");
    raw.publish(&topic(device), QoS5::AtLeastOnce, 1, &reading(device, 0))
        .await;
    assert!(
        matches!(raw.next().await, Some(m5::Packet::PubAck(ack)) if ack.pkid == 1),
        "{device}'s reading acked"
    );
    raw
}

/// Waits (up to `WITHIN` after `since`) for the server's next move, which must be a v5
/// DISCONNECT 0x87 followed by the close; answers how long after `since` it came.
async fn disconnected_not_authorized(raw: &mut Raw5, since: Instant) -> Duration {
    match raw.next_within(WITHIN).await {
        Next::Packet(m5::Packet::Disconnect(d)) => {
            let after = since.elapsed();
            assert_eq!(d.reason_code, DisconnectReasonCode::NotAuthorized, "{d:?}");
            assert!(matches!(raw.next_within(WITHIN).await, Next::Closed));
            after
        }
        other => panic!("expected DISCONNECT 0x87 within {WITHIN:?}, got {other:?}"),
    }
}

fn password_eliot(data: &Path) -> EliotProcess {
    EliotProcess::start(data, free_addr(), &[("ELIOT_AUTH_MODE", "password")])
}

/// The connection that used the old secret once kept getting PUBACKs after `eliot device
/// rotate`. It is closed with 0x87; the old secret is refused; the new one gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_a_secret_in_another_process_closes_the_connection_that_used_the_old_one() {
    let data = tempfile::tempdir().unwrap();
    let eliot = password_eliot(data.path());
    let old = secret_of(&device_command(data.path(), &["add", "robot_1"]));
    let other = secret_of(&device_command(data.path(), &["add", "robot_2"]));
    let mut robot = serving5(eliot.addr, "robot_1", &old).await;
    let mut bystander = serving5(eliot.addr, "robot_2", &other).await;

    let (rotated, done, took) = timed_cli(data.path(), &["rotate", "robot_1"]);
    let new = secret_of(&rotated);
    let after = disconnected_not_authorized(&mut robot, done).await;
    eprintln!("rotate: DISCONNECT 0x87 {after:?} after the command exited (it ran {took:?})");

    let (_, refused) = login5(eliot.addr, "robot_1", &old).await;
    assert_eq!(refused.code, m5::ConnectReturnCode::BadUserNamePassword);
    serving5(eliot.addr, "robot_1", &new).await;
    // Another device's connection is left alone.
    bystander
        .publish(
            &topic("robot_2"),
            QoS5::AtLeastOnce,
            2,
            &reading("robot_2", 1),
        )
        .await;
    assert!(matches!(bystander.next().await, Some(m5::Packet::PubAck(a)) if a.pkid == 2));
}

/// `eliot device remove` closes the device's connections, 5.0 and 3.1.1 alike, and its
/// secret no longer logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_device_in_another_process_closes_its_connections() {
    let data = tempfile::tempdir().unwrap();
    let eliot = password_eliot(data.path());
    let secret = secret_of(&device_command(data.path(), &["add", "robot_1"]));
    let mut v5 = serving5(eliot.addr, "robot_1", &secret).await;
    let v4_secret = secret_of(&device_command(data.path(), &["add", "robot_4"]));
    let mut connect = connect4("robot_4");
    connect.set_login("robot_4", &v4_secret);
    let (mut v4, ack) = Raw4::handshake(eliot.addr, connect.clone()).await;
    assert_eq!(ack.code, rumqttc::mqttbytes::v4::ConnectReturnCode::Success);

    let (_, done, took) = timed_cli(data.path(), &["remove", "robot_1"]);
    let after = disconnected_not_authorized(&mut v5, done).await;
    eprintln!("remove: DISCONNECT 0x87 {after:?} after the command exited (it ran {took:?})");
    let (_, refused) = login5(eliot.addr, "robot_1", &secret).await;
    assert_eq!(refused.code, m5::ConnectReturnCode::BadUserNamePassword);

    let (_, done, _) = timed_cli(data.path(), &["remove", "robot_4"]);
    match v4.next_within(WITHIN).await {
        Next::Closed => eprintln!("remove (3.1.1): closed {:?} after", done.elapsed()),
        other => panic!("expected the 3.1.1 connection closed, got {other:?}"),
    }
    let (_, refused) = Raw4::handshake(eliot.addr, connect).await;
    assert_eq!(
        refused.code,
        rumqttc::mqttbytes::v4::ConnectReturnCode::BadUserNamePassword
    );
}

/// Eliot in `certificate` mode, as an operator configures it; its TLS address.
fn certificate_eliot(data: &Path, pki: &Pki) -> (EliotProcess, SocketAddr) {
    let tls_addr = free_addr();
    let server = pki.server_files();
    let config = data.join("certificates.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\nmode = \"certificate\"\n[tls]\nenabled = true\nlisten = \"{tls_addr}\"\n\
             cert_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"\n",
            server.cert.display(),
            server.key.display(),
            pki.ca_file().display()
        ),
    )
    .unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let eliot = EliotProcess::start_with_args(data, free_addr(), &[], &args);
    (eliot, tls_addr)
}

/// A rustls client trusting the test CA and presenting `device`'s certificate.
fn tls_client(pki: &Pki, device: &str) -> Arc<rustls::ClientConfig> {
    let pem = |path: &Path| std::fs::read(path).expect("a PEM file");
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls_pemfile::certs(&mut pem(&pki.ca_file()).as_slice()) {
        roots.add(ca.unwrap()).unwrap();
    }
    let (cert, key) = pki.client(device);
    let chain = rustls_pemfile::certs(&mut pem(&cert).as_slice())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pemfile::private_key(&mut pem(&key).as_slice())
        .unwrap()
        .expect("a private key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    Arc::new(config)
}

/// One `mosquitto_pub` run as `device`, by certificate, over MQTT `version`.
fn publish_certified(bin: &Path, pki: &Pki, tls: SocketAddr, device: &str, v: &str) -> Output {
    let mut args = tls_args(pki, Some(&pki.client(device)));
    args.extend(["-V", v, "-i", device].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    tokio::task::block_in_place(|| publish(bin, tls.port(), device, 0, &args))
}

/// A device never added once published with a valid client certificate. A certificate
/// logs in only for a device in `devices` (`eliot device add
/// --certificate`); removing it closes its live connection (0x87) and refuses the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_logs_in_only_for_a_provisioned_device_and_removal_revokes_it() {
    let Some(bin) = client("certificate revocation") else {
        return;
    };
    let pki = Pki::new();
    let data = tempfile::tempdir().unwrap();
    let (_eliot, tls) = certificate_eliot(data.path(), &pki);

    for version in ["mqttv311", "mqttv5"] {
        let out = publish_certified(&bin, &pki, tls, "robot_c", version);
        assert!(!out.status.success(), "never added, yet {}", said(&out));
        if version == "mqttv5" {
            assert_eq!(out.status.code(), Some(0x87), "{}", said(&out));
        } else {
            assert!(said(&out).contains("not authorised"), "{}", said(&out));
        }
    }

    let added = device_command(data.path(), &["add", "--certificate", "robot_c"]);
    assert!(
        !String::from_utf8_lossy(&added.stdout).contains("secret"),
        "no secret is made"
    );
    let listed = device_command(data.path(), &["list"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    let row = listed.lines().find(|l| l.starts_with("robot_c "));
    assert!(
        row.is_some_and(|row| row.split_whitespace().nth(1) == Some("certificate")),
        "{listed}"
    );
    let out = publish_certified(&bin, &pki, tls, "robot_c", "mqttv5");
    assert!(out.status.success(), "provisioned: {}", said(&out));

    let mut options = rumqttc::v5::MqttOptions::new("robot_c", "127.0.0.1", tls.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(tls_client(&pki, "robot_c")),
    ));
    let (device, mut events) = rumqttc::v5::AsyncClient::new(options, 10);
    let payload = reading("robot_c", 1);
    device
        .publish(topic("robot_c"), QoS5::AtLeastOnce, false, payload)
        .await
        .unwrap();
    let acked = tokio::time::timeout(WITHIN * 2, async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Incoming::PubAck(_))) => return,
                Ok(_) => {}
                Err(e) => panic!("the certified device's connection failed: {e}"),
            }
        }
    })
    .await;
    assert!(acked.is_ok(), "the live connection stores its reading");

    let (_, done, took) = timed_cli(data.path(), &["remove", "robot_c"]);
    let closed = tokio::time::timeout(WITHIN, async {
        loop {
            match events.poll().await {
                Err(ConnectionError::MqttState(StateError::ServerDisconnect {
                    reason_code,
                    ..
                })) => return reason_code,
                Err(e) => panic!("expected a DISCONNECT from the server, got {e}"),
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("DISCONNECT within the deadline");
    assert_eq!(closed, DisconnectReasonCode::NotAuthorized);
    eprintln!(
        "remove (certificate): DISCONNECT 0x87 {:?} after the command exited (it ran {took:?})",
        done.elapsed()
    );
    let out = publish_certified(&bin, &pki, tls, "robot_c", "mqttv5");
    assert_eq!(out.status.code(), Some(0x87), "removed: {}", said(&out));
}

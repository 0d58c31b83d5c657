//! Connection modes: plain, username and password, TLS, mutual TLS. Each refusal is
//! reported in health and the logs with what was wrong, never with the secret.

use std::time::Duration;

use super::common::certs::Pki;
use super::common::mosquitto::BrokerConfig;
use super::*;
use eliot_actors::{CapturedLogs, Secret};

const WITHIN: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_plain_tcp_each_message_is_stored_under_the_device_its_topic_names() {
    let Some(broker) = broker("plain", BrokerConfig::default()) else {
        return;
    };
    let eliot = Eliot::start_with(|c| upstream_of(c, &broker, "plain"));
    subscribed(&broker, "plain");
    let device = broker_device(&broker, "publisher");
    for (name, n) in [("robot_1", 0), ("robot_2", 1), ("robot_3", 2)] {
        publish(&device, name, n).await;
    }
    device
        .client
        .publish(topic("robot_9"), QoS::AtLeastOnce, false, "not json")
        .await
        .unwrap();
    assert!(wait_stored(&eliot, 3, WITHIN).await, "3 readings stored");
    assert!(eventually(WITHIN, || !eliot.dead_letters().is_empty()).await);
    let dead = eliot.dead_letters();
    assert_eq!(
        dead[0].client_id, "robot_9",
        "the origin is the device, not Eliot's client"
    );
    let link = eliot.health().await.upstream[0].clone();
    assert!(link.connected && link.last_error.is_none(), "{link:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_and_reported_without_the_password() {
    let config = BrokerConfig {
        users: vec![("eliot".into(), "right-secret-41".into())],
        allow_anonymous: false,
        ..BrokerConfig::default()
    };
    let Some(broker) = broker("wrong password", config) else {
        return;
    };
    let logs = CapturedLogs::default();
    let eliot = Eliot::start_logged(
        |c| {
            upstream_of(c, &broker, "wrong-password");
            c.upstream.username = "eliot".into();
            c.upstream.password = Secret::new("wrong-secret-17");
        },
        logs.logger(),
    );
    let link = link_when(&eliot, WITHIN, |l| l.last_error.is_some()).await;
    let error = link.last_error.unwrap_or_default();
    assert!(!link.connected);
    assert!(
        error.contains("refused the username or password"),
        "{error}"
    );
    assert!(!logs.events("upstream_connect_failed").is_empty());
    let everything = format!("{:?}", logs.records());
    assert!(
        !everything.contains("wrong-secret-17"),
        "the password is never logged"
    );
    drop(eliot);

    let eliot = Eliot::start_with(|c| {
        upstream_of(c, &broker, "right-password");
        c.upstream.username = "eliot".into();
        c.upstream.password = Secret::new("right-secret-41");
    });
    subscribed(&broker, "right-password");
    let device = broker_device_as(&broker, "robot_1", "right-secret-41");
    publish(&device, "robot_1", 0).await;
    assert!(wait_stored(&eliot, 1, WITHIN).await);
}

/// A publisher on a broker that wants a password.
fn broker_device_as(broker: &Mosquitto, id: &str, password: &str) -> Device {
    let mut options = options(broker.addr(), id);
    options.set_credentials("eliot", password);
    Device::connect_with(options)
}

fn tls_broker(test: &str, pki: &Pki, require_certificate: bool) -> Option<Mosquitto> {
    let config = BrokerConfig {
        tls: Some(pki.server_files()),
        require_certificate,
        ..BrokerConfig::default()
    };
    broker(test, config)
}

/// Eliot over TLS to `broker`, trusting `ca`, with an optional client certificate.
fn tls_eliot(broker: &Mosquitto, id: &str, ca: &Path, client: Option<(&Path, &Path)>) -> Eliot {
    Eliot::start_with(|c| {
        upstream_of(c, broker, id);
        c.upstream.tls = true;
        c.upstream.ca_file = ca.to_owned();
        if let Some((cert, key)) = client {
            c.upstream.client_cert_file = cert.to_owned();
            c.upstream.client_key_file = key.to_owned();
        }
    })
}

/// Publishes over TLS with `mosquitto_pub` (a client certificate where the broker wants one).
fn tls_publish(broker: &Mosquitto, pki: &Pki, device: &str, n: u64) {
    let (cert, key) = pki.client("publisher");
    let mut pub_ = std::process::Command::new("mosquitto_pub");
    pub_.args([
        "-h",
        "127.0.0.1",
        "-p",
        &broker.port().to_string(),
        "-q",
        "1",
    ])
    .arg("--cafile")
    .arg(pki.ca_file())
    .arg("--cert")
    .arg(cert)
    .arg("--key")
    .arg(key)
    .args(["-t", &topic(device), "-m", &reading(device, n)]);
    let out = common::mosquitto::run_with_timeout(&mut pub_, Duration::from_secs(10)).unwrap();
    assert!(out.status.success(), "mosquitto_pub: {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_broker_is_verified_against_the_ca() {
    let pki = Pki::new();
    let Some(broker) = tls_broker("tls", &pki, false) else {
        return;
    };
    let eliot = tls_eliot(&broker, "tls", &pki.ca_file(), None);
    subscribed(&broker, "tls");
    tls_publish(&broker, &pki, "robot_1", 0);
    assert!(wait_stored(&eliot, 1, WITHIN).await);
    drop(eliot);

    let eliot = tls_eliot(&broker, "tls-wrong-ca", &pki.other_ca_file(), None);
    let link = link_when(&eliot, WITHIN, |l| l.last_error.is_some()).await;
    let error = link.last_error.unwrap_or_default();
    assert!(!link.connected);
    assert!(error.contains("not signed by the CA"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_serves_a_valid_client_certificate_and_the_broker_refuses_none() {
    let pki = Pki::new();
    let Some(broker) = tls_broker("mtls", &pki, true) else {
        return;
    };
    let (cert, key) = pki.client("eliot");
    let eliot = tls_eliot(&broker, "mtls", &pki.ca_file(), Some((&cert, &key)));
    subscribed(&broker, "mtls");
    tls_publish(&broker, &pki, "robot_1", 0);
    assert!(wait_stored(&eliot, 1, WITHIN).await);
    drop(eliot);

    let eliot = tls_eliot(&broker, "mtls-none", &pki.ca_file(), None);
    let link = link_when(&eliot, WITHIN, |l| l.last_error.is_some()).await;
    let error = link.last_error.unwrap_or_default();
    assert!(!link.connected);
    assert!(
        error.contains("refused the handshake") && error.contains("client certificate"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_3_1_1_is_selectable_with_the_same_refusals_and_acks() {
    let config = BrokerConfig {
        users: vec![("eliot".into(), "right-secret-41".into())],
        allow_anonymous: false,
        ..BrokerConfig::default()
    };
    let Some(broker) = broker("mqtt 3.1.1", config) else {
        return;
    };
    let v311 = |c: &mut Config, id: &str, password: &str| {
        upstream_of(c, &broker, id);
        c.upstream.protocol = eliot_actors::Protocol::V311;
        c.upstream.username = "eliot".into();
        c.upstream.password = Secret::new(password);
    };
    let eliot = Eliot::start_with(|c| v311(c, "v311-wrong", "wrong-secret-17"));
    let link = link_when(&eliot, WITHIN, |l| l.last_error.is_some()).await;
    let error = link.last_error.unwrap_or_default();
    assert!(
        error.contains("refused the username or password (CONNACK 0x0"),
        "{error}"
    );
    drop(eliot);

    let eliot = Eliot::start_with(|c| v311(c, "v311", "right-secret-41"));
    subscribed(&broker, "v311");
    let device = broker_device_as(&broker, "robot_1", "right-secret-41");
    for n in 0..50 {
        publish(&device, "robot_1", n).await;
    }
    assert!(wait_stored(&eliot, 50, WITHIN).await);
    assert!(broker.wait_for_log("Received PUBACK from v311-0", WITHIN));
}

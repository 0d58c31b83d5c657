//! Self-test of the Mosquitto harness (`common/mosquitto.rs`) and the test PKI
//! (`common/certs.rs`): before other tests trust a real broker as their upstream, these
//! show that it starts, speaks MQTT to rumqttc and to Mosquitto's own clients, enforces
//! TLS client certificates and passwords, and keeps a persistent session across a restart.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use super::common::certs::Pki;
use super::common::mosquitto::{
    find_tool, require_mosquitto, run_with_timeout, BrokerConfig, Mosquitto,
};
use super::common::{options, Device};
use rumqttc::{Event, Outgoing, Packet, Publish, QoS};

/// How long any single wait in these tests may take.
const WITHIN: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_broker_delivers_what_mosquitto_pub_sends_to_a_rumqttc_subscriber() {
    let Some(bin) = require_mosquitto("a_plain_broker_delivers") else {
        return;
    };
    let broker = Mosquitto::start(&bin, BrokerConfig::default());
    let mut subscriber = Device::connect(broker.addr(), "harness-subscriber");
    subscribe(&mut subscriber, &broker, "harness/plain").await;

    let sent = blocking(|| mosquitto_pub(&broker, "harness/plain", "hello", Vec::new()));
    assert_accepted(&sent, &broker);

    let message = next_publish(&mut subscriber, &broker).await;
    assert_eq!(message.topic, "harness/plain");
    assert_eq!(&message.payload[..], b"hello");
    assert_eq!(message.qos, QoS::AtLeastOnce);
}

#[test]
fn a_tls_broker_accepts_only_current_client_certificates_from_its_ca() {
    let Some(bin) = require_mosquitto("a_tls_broker_accepts_only_current_client_certificates")
    else {
        return;
    };
    let pki = Pki::new();
    let config = BrokerConfig {
        tls: Some(pki.server_files()),
        require_certificate: true,
        ..BrokerConfig::default()
    };
    let broker = Mosquitto::start(&bin, config);
    let publish_as = |ca: PathBuf, client: Option<(PathBuf, PathBuf)>| {
        mosquitto_pub(&broker, "harness/tls", "secret", tls_args(ca, client))
    };

    let good = publish_as(pki.ca_file(), Some(pki.client("sensor-1")));
    assert_accepted(&good, &broker);

    let expired = publish_as(pki.ca_file(), Some(pki.expired_client("sensor-2")));
    assert_refused(&expired, &broker, "an expired client certificate");

    let foreign = publish_as(pki.ca_file(), Some(pki.foreign_client("sensor-3")));
    assert_refused(&foreign, &broker, "a client certificate from another CA");

    let anonymous = publish_as(pki.ca_file(), None);
    assert_refused(&anonymous, &broker, "no client certificate");

    let misled = publish_as(pki.other_ca_file(), Some(pki.client("sensor-4")));
    assert_refused(&misled, &broker, "a client that trusts another CA");
}

#[test]
fn a_broker_with_users_accepts_only_the_right_password() {
    let Some(bin) = require_mosquitto("a_broker_with_users_accepts_only_the_right_password") else {
        return;
    };
    let config = BrokerConfig {
        users: vec![("sensor".into(), "right-password".into())],
        allow_anonymous: false,
        ..BrokerConfig::default()
    };
    let broker = Mosquitto::start(&bin, config);
    let publish_as = |credentials: &[&str]| {
        let args = credentials.iter().map(OsString::from).collect();
        mosquitto_pub(&broker, "harness/users", "reading", args)
    };

    assert_accepted(
        &publish_as(&["-u", "sensor", "-P", "right-password"]),
        &broker,
    );
    let wrong = publish_as(&["-u", "sensor", "-P", "wrong-password"]);
    assert_refused(&wrong, &broker, "a wrong password");
    assert_refused(&publish_as(&[]), &broker, "no credentials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_restart_keeps_a_persistent_sessions_queued_message() {
    let Some(bin) = require_mosquitto("a_graceful_restart_keeps_queued_messages") else {
        return;
    };
    let mut broker = Mosquitto::start(&bin, BrokerConfig::default());
    let client_id = "harness-persistent";

    let mut subscriber = Device::connect_with(persistent_session(&broker, client_id));
    subscribe(&mut subscriber, &broker, "harness/persist").await;
    subscriber.disconnect().await;
    let gone = format!("Client {client_id} disconnected");
    assert!(
        broker.wait_for_log(&gone, WITHIN),
        "the subscriber disconnects:\n{}",
        broker.log()
    );

    let sent = blocking(|| mosquitto_pub(&broker, "harness/persist", "queued", Vec::new()));
    assert_accepted(&sent, &broker);
    blocking(|| broker.restart());

    let mut subscriber = Device::connect_with(persistent_session(&broker, client_id));
    let connack = next_event(&mut subscriber, &broker, "a CONNACK", |event| {
        matches!(event, Event::Incoming(Packet::ConnAck(_)))
    })
    .await;
    let Event::Incoming(Packet::ConnAck(connack)) = connack else {
        unreachable!("matched above")
    };
    assert!(
        connack.session_present,
        "the session survived the restart:\n{}",
        broker.log()
    );
    let message = next_publish(&mut subscriber, &broker).await;
    assert_eq!(&message.payload[..], b"queued");
}

/// Runs blocking work (a child process, a broker restart) without stalling the runtime's
/// other tasks, such as a client's event loop.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(work)
}

/// Options for a client whose session (subscriptions, queued messages) outlives its
/// connection.
fn persistent_session(broker: &Mosquitto, client_id: &str) -> rumqttc::MqttOptions {
    let mut options = options(broker.addr(), client_id);
    options.set_clean_session(false);
    options
}

/// Subscribes at QoS 1 and waits for the SUBACK, so that a publish after it is delivered.
async fn subscribe(device: &mut Device, broker: &Mosquitto, topic: &str) {
    device
        .client
        .subscribe(topic, QoS::AtLeastOnce)
        .await
        .expect("the subscribe request is queued");
    next_event(device, broker, "a SUBACK", |event| {
        matches!(event, Event::Incoming(Packet::SubAck(_)))
    })
    .await;
}

async fn next_publish(device: &mut Device, broker: &Mosquitto) -> Publish {
    let event = next_event(device, broker, "a PUBLISH", |event| {
        matches!(event, Event::Incoming(Packet::Publish(_)))
    })
    .await;
    match event {
        Event::Incoming(Packet::Publish(publish)) => publish,
        _ => unreachable!("matched above"),
    }
}

/// The first event matching `want`; fails, with the broker's log, on a connection error,
/// or if none arrives within `WITHIN`.
async fn next_event(
    device: &mut Device,
    broker: &Mosquitto,
    what: &str,
    mut want: impl FnMut(&Event) -> bool,
) -> Event {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let event = match tokio::time::timeout_at(deadline, device.events.recv()).await {
            Err(_) => panic!("no {what} within {WITHIN:?}:\n{}", broker.log()),
            Ok(None) => panic!("the event loop ended before {what}:\n{}", broker.log()),
            Ok(Some(Err(e))) => panic!("connection error before {what}: {e}\n{}", broker.log()),
            Ok(Some(Ok(event))) => event,
        };
        if want(&event) {
            return event;
        }
        if let Event::Outgoing(Outgoing::Disconnect) = event {
            panic!("the client disconnected before {what}");
        }
    }
}

/// Publishes `payload` at QoS 1 with Mosquitto's own client, which exits once the broker
/// acknowledged it (zero) or refused the connection (non-zero).
fn mosquitto_pub(broker: &Mosquitto, topic: &str, payload: &str, extra: Vec<OsString>) -> Output {
    let tool = find_tool("mosquitto_pub").expect("mosquitto_pub (package mosquitto-clients)");
    let mut command = Command::new(tool);
    // 127.0.0.1 is among the names the broker's certificate is valid for (certs::SERVER_NAMES).
    command
        .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
        .args(["-q", "1", "-t", topic, "-m", payload])
        .args(extra);
    run_with_timeout(&mut command, WITHIN)
        .unwrap_or_else(|why| panic!("{why}\nbroker log:\n{}", broker.log()))
}

/// mosquitto_pub's TLS arguments: the CA it trusts, and its certificate and key, if any.
fn tls_args(ca: PathBuf, client: Option<(PathBuf, PathBuf)>) -> Vec<OsString> {
    let mut args = vec!["--cafile".into(), ca.into()];
    if let Some((cert, key)) = client {
        args.extend(["--cert".into(), cert.into(), "--key".into(), key.into()]);
    }
    args
}

fn assert_accepted(output: &Output, broker: &Mosquitto) {
    assert!(
        output.status.success(),
        "mosquitto_pub succeeds, but: {}\n{}\nbroker log:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        broker.log()
    );
}

fn assert_refused(output: &Output, broker: &Mosquitto, what: &str) {
    assert!(
        !output.status.success(),
        "the broker refuses {what}, but mosquitto_pub succeeded\nbroker log:\n{}",
        broker.log()
    );
}

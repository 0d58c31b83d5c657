//! What a hostile client sends, and what Eliot does about it: the input is refused or
//! kept as a dead letter with a short reason, and nothing else is disturbed. Each test
//! states the attack it plays.

mod common;

use common::scripted::{connect4, connect5, Raw4, Raw5};
use std::time::{Duration, Instant};

use common::*;
use rumqttc::mqttbytes::{self as m4, v4};
use rumqttc::v5::mqttbytes::{self as m5, v5};
use rumqttc::QoS;

/// A reading whose timestamp is past year 9999 once converted to UTC used to panic a
/// processor, and eleven of them, each from its own connection, exceeded the restart
/// intensity and stopped Eliot. Now each is a dead letter with a reason, no processor
/// restarts, and Eliot goes on storing other readings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eleven_readings_past_year_9999_do_not_stop_eliot() {
    let eliot = Eliot::start();
    let late = r#"{"device_id":"robot_666","timestamp":"9999-12-31T23:30:00-01:00","sensor_type":"temperature","data":{"celsius":1.5}}"#;
    from_each_connection(&eliot, 11, late).await;
    let dead = eliot.dead_letters();
    assert_eq!(dead.len(), 11);
    assert!(
        dead[0].reason.contains("between 1970 and 9999"),
        "{}",
        dead[0].reason
    );
    assert_eq!(eliot.health().await.status, eliot_actors::Status::Healthy);
    still_serving(&eliot).await;
}

/// A client id longer than `mqtt.max_client_id_len` (256 bytes) is refused at CONNECT:
/// MQTT 5 CONNACK 0x85 (Client Identifier not valid), 3.1.1 CONNACK 0x02 (identifier
/// rejected). An id of exactly 256 bytes is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_over_the_limit_is_refused_at_connect() {
    let eliot = Eliot::start();
    let long = "x".repeat(257);
    let (_, v5_ack) = Raw5::handshake(eliot.addr, connect5(&long), None).await;
    assert_eq!(v5_ack.code, v5::ConnectReturnCode::ClientIdentifierNotValid);
    let (_, v4_ack) = Raw4::handshake(eliot.addr, connect4(&long)).await;
    assert_eq!(v4_ack.code, v4::ConnectReturnCode::BadClientId);
    let (_, fits) = Raw5::handshake(eliot.addr, connect5(&long[..256]), None).await;
    assert_eq!(fits.code, v5::ConnectReturnCode::Success);
}

/// A 200 KiB device id in a payload makes a dead letter whose reason quotes at most
/// about 200 bytes of it, marked as cut; the payload itself is kept whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_device_id_makes_a_short_reason() {
    let eliot = Eliot::start();
    let huge = "d".repeat(200 * 1024);
    let payload = format!(
        r#"{{"device_id":"{huge}","timestamp":"2025-06-05T14:30:00Z","sensor_type":"gps","data":{{"latitude":1.0}}}}"#
    );
    let mut device = Device::connect(eliot.addr, "robot_007");
    let sent = device
        .publish_all("robot_007", vec![payload.clone()], QoS::AtLeastOnce)
        .await;
    assert_eq!(sent, 1);
    let dead = eliot.dead_letters();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].reason.len() < 500, "{} bytes", dead[0].reason.len());
    assert!(
        dead[0]
            .reason
            .contains(&format!("[cut: {} bytes in all]", huge.len())),
        "{}",
        dead[0].reason
    );
    assert_eq!(
        dead[0].payload,
        payload.as_bytes(),
        "the payload is kept whole"
    );
}

/// The topic of a PUBLISH is checked as MQTT says, before the payload: an empty topic or
/// one with a wildcard closes the connection (v5: DISCONNECT 0x90 Topic Name invalid), a
/// v5 topic alias too (0x94, this server allows none). Nothing is stored, not even as a
/// dead letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_topic_the_protocol_forbids_closes_the_connection() {
    let eliot = Eliot::start();
    let payload = reading("robot_001", 1);

    let mut v4_device = Raw4::connect(eliot.addr, "wild_v4").await;
    v4_device
        .publish("devices/+/telemetry", m4::QoS::AtLeastOnce, 1, &payload)
        .await;
    assert!(
        v4_device.until_closed().await.is_empty(),
        "closed, no PUBACK"
    );

    let disconnect_reason = |packets: Vec<v5::Packet>| {
        packets.into_iter().find_map(|p| match p {
            v5::Packet::Disconnect(d) => Some(d.reason_code),
            _ => None,
        })
    };
    for topic in ["", "devices/#"] {
        let mut device = Raw5::connect(eliot.addr, "wild_v5").await;
        device
            .publish(topic, m5::QoS::AtLeastOnce, 1, &payload)
            .await;
        let reason = disconnect_reason(device.until_closed().await);
        assert_eq!(
            reason,
            Some(v5::DisconnectReasonCode::TopicNameInvalid),
            "{topic:?}"
        );
    }
    let mut aliased = Raw5::connect(eliot.addr, "alias_v5").await;
    let mut publish = v5::Publish::new(topic("robot_001"), m5::QoS::AtLeastOnce, payload, None);
    publish.pkid = 1;
    publish.properties = Some(v5::PublishProperties {
        topic_alias: Some(1),
        ..Default::default()
    });
    aliased.send(&v5::Packet::Publish(publish)).await;
    let reason = disconnect_reason(aliased.until_closed().await);
    assert_eq!(reason, Some(v5::DisconnectReasonCode::TopicAliasInvalid));

    assert_eq!(eliot.count("readings"), 0);
    assert_eq!(eliot.count("dead_letters"), 0);
}

/// CONNECT flags the spec forbids get no CONNACK, only the close: the reserved flag set
/// [MQTT-3.1.2-3], and in 3.1.1 a password without a user name [MQTT-3.1.2-22]; so do a v5
/// property given twice, and a Receive Maximum or Maximum Packet Size of 0. A v5 CONNECT naming an authentication
/// method, which Eliot does not support, gets CONNACK 0x8C (Bad authentication method).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_flags_the_spec_forbids_are_refused() {
    let eliot = Eliot::start();
    // CONNECT, "MQTT" level 4, flags, keep-alive 60, client id "a" (and a password "pw").
    let reserved: &[u8] = &[
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x03, 0, 60, 0, 1, b'a',
    ];
    let password_only: &[u8] = &[
        0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x42, 0, 60, 0, 1, b'a', 0, 2, b'p', b'w',
    ];
    // v5, with the Session Expiry Interval given twice [§3.1.2.11].
    let repeated: &[u8] = &[
        0x10, 24, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 10, 0x11, 0, 0, 0, 60, 0x11, 0, 0,
        0, 61, 0, 1, b'a',
    ];
    for bytes in [reserved, password_only, repeated] {
        let mut raw = Raw4::open(eliot.addr).await;
        raw.send_bytes(bytes).await;
        assert!(
            raw.until_closed().await.is_empty(),
            "no CONNACK for {bytes:02x?}"
        );
    }
    let mut connect = connect5("scram_v5");
    let mut properties = v5::ConnectProperties::new();
    properties.authentication_method = Some("SCRAM-SHA-256".into());
    connect.properties = Some(properties);
    let (_, ack) = Raw5::handshake(eliot.addr, connect, None).await;
    assert_eq!(ack.code, v5::ConnectReturnCode::BadAuthenticationMethod);
    // Receive Maximum 0 or Maximum Packet Size 0: protocol errors, closed without a CONNACK.
    for zero in ["receive_maximum", "max_packet_size"] {
        let mut connect = connect5("zero_v5");
        let mut properties = v5::ConnectProperties::new();
        match zero {
            "receive_maximum" => properties.receive_maximum = Some(0),
            _ => properties.max_packet_size = Some(0),
        }
        connect.properties = Some(properties);
        let mut raw = Raw5::open(eliot.addr).await;
        raw.send(&v5::Packet::Connect(connect, None, None)).await;
        assert!(raw.until_closed().await.is_empty(), "{zero} 0: no CONNACK");
    }
}

/// While the store writer is stuck retrying a commit (another connection holds the
/// database's write lock), a new device's CONNECT is still answered within
/// `mqtt.connect_timeout`, with a refusal (v5 0x88 Server unavailable), instead of
/// waiting for the store as long as the lock lasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_is_answered_within_its_deadline_while_the_store_is_stuck() {
    let eliot = Eliot::start_with(|c| c.mqtt.connect_timeout = Duration::from_secs(1));
    let mut busy = Device::connect(eliot.addr, "robot_010");
    busy.expect_event(Duration::from_secs(10), |e| {
        matches!(e, Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))))
    })
    .await
    .unwrap();
    let lock = eliot.db();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    busy.client
        .publish(
            topic("robot_010"),
            QoS::AtLeastOnce,
            false,
            reading("robot_010", 1),
        )
        .await
        .unwrap();
    // Let the writer take the reading and start retrying its commit.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let (_, ack) = Raw5::handshake(eliot.addr, connect5("patient"), None).await;
    let took = started.elapsed();
    lock.execute_batch("ROLLBACK").unwrap();
    assert_eq!(ack.code, v5::ConnectReturnCode::ServerUnavailable);
    assert!(took < Duration::from_secs(4), "answered in {took:?}");
}

/// A message that makes a processor panic (here a fault point, for a bug not yet found)
/// becomes that message's dead letter, counted toward its device's breaker; it restarts
/// nothing, so eleven of them from eleven connections cannot exceed the restart intensity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_tied_to_messages_restart_nothing() {
    let eliot = Eliot::start();
    fail::cfg("processor::poison", "panic(poison pill)").unwrap();
    from_each_connection(&eliot, 11, "POISON").await;
    let dead = eliot.dead_letters();
    assert_eq!(dead.len(), 11);
    assert!(dead
        .iter()
        .all(|d| d.reason == "processor panic: poison pill"));
    assert_eq!(eliot.health().await.status, eliot_actors::Status::Healthy);
    still_serving(&eliot).await;
}

/// Client ids Eliot assigns (v5, empty id) are unique across restarts: after a kill -9,
/// the next assigned id is not one that may name another device's kept session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assigned_client_ids_are_unique_across_restarts() {
    use common::process::{free_addr, EliotProcess};
    let data = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut assigned = Vec::new();
    for _ in 0..2 {
        let eliot = EliotProcess::start(data.path(), addr, &[]);
        let (_, ack) = Raw5::handshake(addr, connect5(""), None).await;
        let id = ack
            .properties
            .and_then(|p| p.assigned_client_identifier)
            .expect("an assigned client id");
        assigned.push(id);
        eliot.kill9();
    }
    assert!(assigned[0].starts_with("eliot-"), "{assigned:?}");
    assert_ne!(assigned[0], assigned[1]);
}

/// A payload that names its device twice (`"device_id":"robot_001", ..., "device_id":
/// "robot_002"`) would be read one way by Eliot (serde_json keeps the last) and another by
/// whoever reads the payload: it is a dead letter naming the duplicated key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_json_key_is_refused() {
    let eliot = Eliot::start();
    let twice = r#"{"device_id":"robot_001","timestamp":"2025-06-05T14:30:00Z","sensor_type":"gps","data":{"latitude":1,"longitude":2},"device_id":"robot_002"}"#;
    let mut device = Device::connect(eliot.addr, "robot_002");
    let sent = device
        .publish_all("robot_002", vec![twice.to_owned()], QoS::AtLeastOnce)
        .await;
    assert_eq!(sent, 1);
    let dead = eliot.dead_letters();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].reason.contains("duplicate key `device_id`"),
        "{}",
        dead[0].reason
    );
    assert_eq!(eliot.count("readings"), 0);
}

#[path = "../actors/tests/fuzz_support/mod.rs"]
mod fuzz_support;

/// Whole sessions, fuzzed: 3.1.1 and 5 sessions as rumqttc encodes them (the codec's
/// corpus), mutated, are played against a running Eliot over TCP, one connection each,
/// for `ELIOT_FUZZ_SECONDS` (3 s by default). Whatever they hold, nothing restarts, Eliot
/// stays healthy and a well-behaved device is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_sessions_stop_nothing() {
    use std::io::{Read, Write};
    let eliot = Eliot::start_with(|c| c.mqtt.connect_timeout = Duration::from_millis(500));
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("actors/tests/corpus/codec");
    let seeds = fuzz_support::read_corpus(&corpus);
    let addr = eliot.addr;
    let executions = tokio::task::spawn_blocking(move || {
        fuzz_support::fuzz("session", fuzz_support::mutated(seeds), |bytes| {
            let Ok(mut socket) = std::net::TcpStream::connect(addr) else {
                return;
            };
            let _ = socket.set_read_timeout(Some(Duration::from_secs(3)));
            let _ = socket.write_all(bytes);
            let _ = socket.shutdown(std::net::Shutdown::Write);
            // Until Eliot closes (or the timeout): whatever it answered.
            let _ = socket.read_to_end(&mut Vec::new());
        })
    })
    .await
    .unwrap();
    assert!(executions > 0);

    still_serving(&eliot).await;
}

/// A device that starts a packet and never finishes it, with a keep-alive of 0, used to
/// hold its read buffer for ever. After `mqtt.packet_timeout` it is closed (v5: DISCONNECT
/// 0x82 Protocol Error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_that_stops_half_way_is_closed_after_the_packet_timeout() {
    let eliot = Eliot::start_with(|c| c.mqtt.packet_timeout = Duration::from_secs(1));
    let mut connect = connect5("trickler");
    connect.keep_alive = 0;
    let (mut raw, ack) = Raw5::handshake(eliot.addr, connect, None).await;
    assert_eq!(ack.code, v5::ConnectReturnCode::Success);
    let started = Instant::now();
    // The first bytes of a QoS 1 PUBLISH announcing 127 more.
    raw.send_bytes(&[0x32, 0x7F, 0x00, 0x1B]).await;
    let before_close = raw.until_closed().await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "not before the timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "closed in {took:?}");
    let reason = before_close.iter().find_map(|p| match p {
        v5::Packet::Disconnect(d) => Some(d.reason_code),
        _ => None,
    });
    assert_eq!(reason, Some(v5::DisconnectReasonCode::ProtocolError));
}

/// Random client ids with persistent sessions cannot grow the sessions table for ever:
/// past `store.max_sessions`, the least recently seen session is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_client_ids_cannot_grow_the_sessions_table() {
    let eliot = Eliot::start_with(|c| c.store.max_sessions = 3);
    for n in 0..6 {
        let mut connect = connect4(&format!("random_{n}"));
        connect.clean_session = false;
        let (raw, ack) = Raw4::handshake(eliot.addr, connect).await;
        assert_eq!(ack.code, v4::ConnectReturnCode::Success);
        drop(raw);
    }
    assert_eq!(eliot.count("sessions"), 3);
    let newest: i64 = eliot
        .db()
        .query_row(
            "SELECT count(*) FROM sessions WHERE client_id IN ('random_3','random_4','random_5')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(newest, 3, "the least recently seen made room");
}

/// A client sending nothing but rejected messages cannot fill the disk with dead letters:
/// past `store.dead_letter_quota` the oldest are shed, and the newest kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_stay_within_their_quota() {
    let eliot = Eliot::start_with(|c| {
        c.store.dead_letter_quota = 4_000;
        c.breakers.device.max_rejections = 1_000;
    });
    let mut device = Device::connect(eliot.addr, "robot_009");
    let junk: Vec<String> = (0..100).map(|n| format!("{n:0>100} not JSON")).collect();
    let sent = device
        .publish_all("robot_009", junk, QoS::AtLeastOnce)
        .await;
    assert_eq!(
        sent, 100,
        "all acked: each is stored, as a dead letter, at first"
    );
    let weight: i64 = eliot
        .db()
        .query_row(
            "SELECT sum(length(payload) + length(CAST(topic AS BLOB)) \
             + length(CAST(client_id AS BLOB)) + length(CAST(reason AS BLOB))) FROM dead_letters",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(weight <= 4_000, "{weight} bytes");
    let newest = eliot.dead_letters().pop().unwrap();
    assert!(String::from_utf8(newest.payload)
        .unwrap()
        .starts_with(&format!("{:0>100}", 99)));
}

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

/// A full disk (here `store.max_size`, which gives SQLite a real SQLITE_FULL): dead
/// letters are shed first to make room for readings; once nothing is left to shed,
/// nothing more is acked, health is `failed` with the reason, and the writer retries at
/// the breaker's pace instead of spinning. Eliot stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_sheds_dead_letters_then_stops_acking_and_says_so() {
    let eliot = Eliot::start_with(|c| {
        c.store.max_size = 256 * 1024;
        c.breakers.device.max_rejections = 10_000;
    });
    let mut junk = Device::connect(eliot.addr, "robot_012");
    let payloads = (0..40).map(|n| format!("{n:0>2000}")).collect();
    assert_eq!(
        junk.publish_all("robot_012", payloads, QoS::AtLeastOnce)
            .await,
        40
    );

    let mut device = Device::connect(eliot.addr, "robot_013");
    let mut n = 0;
    let full = loop {
        device
            .client
            .publish(
                topic("robot_013"),
                QoS::AtLeastOnce,
                false,
                reading("robot_013", n),
            )
            .await
            .unwrap();
        n += 1;
        let acked = tokio::time::timeout(Duration::from_secs(3), async {
            while let Some(Ok(event)) = device.events.recv().await {
                if matches!(event, rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) {
                    return true;
                }
            }
            false
        })
        .await;
        if !matches!(acked, Ok(true)) {
            break n;
        }
        assert!(n < 20_000, "the store never filled");
    };
    let stored = eliot.count("readings");
    assert!(
        stored > 100,
        "{stored} readings stored before the disk was full"
    );
    assert_eq!(stored as u64, full - 1, "everything acked is stored");
    assert!(
        eliot.count("dead_letters") < 40,
        "dead letters made room first"
    );

    let health = eliot.health().await;
    assert_eq!(health.status, eliot_actors::Status::Failed, "{health:?}");
    let condition = health.store.condition.clone().unwrap_or_default();
    assert!(condition.contains("full"), "{condition}");
    let retries = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("eliot_store_retries_total"))
            .and_then(|l| l.split_whitespace().last()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let before = retries(&get(eliot.http_addr, "/metrics").await.1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = retries(&get(eliot.http_addr, "/metrics").await.1);
    assert!(
        after - before < 30.0,
        "{} retries in 2 s: spinning",
        after - before
    );
    assert_eq!(get(eliot.http_addr, "/ready").await.0, 503);
}

/// What a v5 client asks of the packets it receives is kept: with Request Problem
/// Information 0 its SUBACK carries no reason string, and a DISCONNECT larger than its
/// Maximum Packet Size is not sent (the connection just closes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v5_clients_limits_on_what_it_receives_are_kept() {
    let eliot = Eliot::start();
    let mut connect = connect5("terse_v5");
    let mut properties = v5::ConnectProperties::new();
    properties.request_problem_info = Some(0);
    // The accepted CONNACK takes 19 bytes; the DISCONNECT with its reason, 21.
    properties.max_packet_size = Some(20);
    connect.properties = Some(properties);
    let (mut raw, ack) = Raw5::handshake(eliot.addr, connect, None).await;
    assert_eq!(ack.code, v5::ConnectReturnCode::Success);
    let mut subscribe = v5::Subscribe::new(v5::Filter::new("devices/#", m5::QoS::AtMostOnce), None);
    subscribe.pkid = 5;
    raw.send(&v5::Packet::Subscribe(subscribe)).await;
    match raw.expect().await {
        v5::Packet::SubAck(ack) => assert_eq!(ack.properties, None, "no reason string"),
        other => panic!("expected a SUBACK, got {other:?}"),
    }
    // A second CONNECT is a protocol error: the DISCONNECT with its reason would be larger
    // than 20 bytes, so only the close comes.
    raw.send(&v5::Packet::Connect(connect5("terse_v5"), None, None))
        .await;
    assert!(raw.until_closed().await.is_empty());
}

/// A v5 DISCONNECT's Session Expiry Interval is honoured: 0 ends a kept session at once
/// (the next CONNECT finds none); setting one on a session the CONNECT did not keep is a
/// protocol error [MQTT-3.14.2-2], answered with DISCONNECT 0x82.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v5_disconnect_session_expiry_is_honoured() {
    let eliot = Eliot::start();
    let kept = || {
        let mut connect = connect5("expiring");
        connect.clean_start = false;
        let mut properties = v5::ConnectProperties::new();
        properties.session_expiry_interval = Some(3600);
        connect.properties = Some(properties);
        connect
    };
    let (mut raw, _) = Raw5::handshake(eliot.addr, kept(), None).await;
    // DISCONNECT, reason 0x00, properties: Session Expiry Interval 0.
    raw.send_bytes(&[0xE0, 0x07, 0x00, 0x05, 0x11, 0, 0, 0, 0])
        .await;
    raw.until_closed().await;
    assert!(eventually(Duration::from_secs(5), || eliot.count("sessions") == 0).await);
    let (_, again) = Raw5::handshake(eliot.addr, kept(), None).await;
    assert!(
        !again.session_present,
        "the session ended with the DISCONNECT"
    );

    let (mut unkept, _) = Raw5::handshake(eliot.addr, connect5("unkept"), None).await;
    raw_disconnect_with_expiry(&mut unkept, 30).await;
    let reason = unkept
        .until_closed()
        .await
        .into_iter()
        .find_map(|p| match p {
            v5::Packet::Disconnect(d) => Some(d.reason_code),
            _ => None,
        });
    assert_eq!(reason, Some(v5::DisconnectReasonCode::ProtocolError));
}

async fn raw_disconnect_with_expiry(raw: &mut Raw5, seconds: u8) {
    raw.send_bytes(&[0xE0, 0x07, 0x00, 0x05, 0x11, 0, 0, 0, seconds])
        .await;
}

/// Nothing restarted, health is not `failed`, and a well-behaved device is still served.
async fn still_serving(eliot: &Eliot) {
    let health = eliot.health().await;
    assert_ne!(health.status, eliot_actors::Status::Failed, "{health:?}");
    assert!(
        health.children.iter().all(|c| c.restarts == 0),
        "{health:?}"
    );
    let mut fine = Device::connect(eliot.addr, "robot_001");
    let stored = fine
        .publish_all("robot_001", vec![reading("robot_001", 1)], QoS::AtLeastOnce)
        .await;
    assert_eq!(stored, 1);
}

/// `payload` published at QoS 1 once from each of `count` connections; each is acked.
async fn from_each_connection(eliot: &Eliot, count: usize, payload: &str) {
    for n in 0..count {
        let mut device = Device::connect(eliot.addr, &format!("attacker_{n}"));
        let sent = device
            .publish_all("robot_666", vec![payload.to_owned()], QoS::AtLeastOnce)
            .await;
        assert_eq!(sent, 1, "acked, as a dead letter");
        device.disconnect().await;
    }
}

/// The database file deleted under a running Eliot: SQLite would go on writing to the
/// unlinked file, acking readings nobody would find after a restart. Eliot notices before
/// the next commit, acks nothing more, refuses to recreate the file empty, and once
/// reopening has failed past the restart intensity it exits 70, for its supervisor (and a
/// person) to deal with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_database_file_stops_eliot_with_status_70() {
    use common::process::{free_addr, EliotProcess};
    let data = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut eliot = EliotProcess::start(data.path(), addr, &[("ELIOT_LOG_LEVEL", "critical")]);
    let mut device = Device::connect(addr, "robot_014");
    let first = device
        .publish_all("robot_014", vec![reading("robot_014", 1)], QoS::AtLeastOnce)
        .await;
    assert_eq!(first, 1);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(data.path().join(format!("eliot.db{suffix}")));
    }
    device
        .client
        .publish(
            topic("robot_014"),
            QoS::AtLeastOnce,
            false,
            reading("robot_014", 2),
        )
        .await
        .unwrap();
    let outcome = device
        .expect_event(Duration::from_secs(10), |e| {
            e.is_err() || matches!(e, Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))))
        })
        .await;
    assert!(outcome.is_err(), "not acked: {outcome:?}");
    let status = tokio::task::spawn_blocking(move || eliot.exit_within(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(70));
    assert!(
        !data.path().join("eliot.db").exists(),
        "not recreated empty"
    );
}

/// A QoS 1 re-send with DUP of a message already kept as a dead letter is acked but not
/// kept, nor counted toward its device's breaker, twice. (A breaker that trips at 2
/// rejections still lets the device through after one rejection and its re-send.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dup_resend_of_a_rejected_message_counts_once() {
    let eliot = Eliot::start_with(|c| c.breakers.device.max_rejections = 2);
    let mut raw = Raw4::connect(eliot.addr, "robot_015").await;
    let bad = |pkid: u16, dup: bool, text: &str| {
        let mut publish = v4::Publish::new(
            topic("robot_015"),
            m4::QoS::AtLeastOnce,
            text.as_bytes().to_vec(),
        );
        publish.pkid = pkid;
        publish.dup = dup;
        v4::Packet::Publish(publish)
    };
    raw.send(&bad(1, false, "not JSON")).await;
    assert_eq!(raw.expect().await, v4::Packet::PubAck(v4::PubAck::new(1)));
    raw.send(&bad(1, true, "not JSON")).await;
    assert_eq!(raw.expect().await, v4::Packet::PubAck(v4::PubAck::new(1)));
    assert_eq!(eliot.count("dead_letters"), 1);
    // The second distinct rejection trips the breaker: the connection closes.
    raw.send(&bad(2, false, "not JSON either")).await;
    assert_eq!(raw.expect().await, v4::Packet::PubAck(v4::PubAck::new(2)));
    assert!(raw.until_closed().await.is_empty());
    assert_eq!(eliot.count("dead_letters"), 2);
}

/// A v5 Will Delay Interval is honoured: the will of a device that dropped is published
/// after the delay, not at once, and not at all if the device comes back to its session
/// within it [MQTT-3.1.3-9].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_will_delay_is_honoured() {
    let eliot = Eliot::start();
    let delayed = |device: &str, n: u64, delay: u32| {
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
    };
    let kept = |client_id: &str| {
        let mut connect = connect5(client_id);
        connect.clean_start = false;
        let mut properties = v5::ConnectProperties::new();
        properties.session_expiry_interval = Some(60);
        connect.properties = Some(properties);
        connect
    };
    // Dropped for good: the will comes after 1 s.
    let (raw, _) = Raw5::handshake(
        eliot.addr,
        kept("robot_016"),
        Some(delayed("robot_016", 1, 1)),
    )
    .await;
    drop(raw);
    assert!(throughout(Duration::from_millis(600), || eliot.count("readings") == 0).await);
    assert!(eventually(Duration::from_secs(5), || eliot.count("readings") == 1).await);
    // Back within the delay: no will.
    let (raw, _) = Raw5::handshake(
        eliot.addr,
        kept("robot_017"),
        Some(delayed("robot_017", 1, 2)),
    )
    .await;
    drop(raw);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_back, ack) = Raw5::handshake(eliot.addr, kept("robot_017"), None).await;
    assert!(ack.session_present);
    assert!(throughout(Duration::from_secs(3), || eliot.count("readings") == 1).await);
}

/// Timestamps are RFC 3339 as documented, and array elements count as fields: each of
/// these is a dead letter whose reason says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_that_bend_the_rules_are_refused_with_the_rule() {
    let eliot = Eliot::start();
    let with = |timestamp: &str, data: &str| {
        format!(
            r#"{{"device_id":"robot_018","timestamp":"{timestamp}","sensor_type":"x","data":{data}}}"#
        )
    };
    let numbers: Vec<String> = (0..300).map(|n| n.to_string()).collect();
    let cases = [
        (
            with("2025-06-05X14:30:00Z", r#"{"a":1}"#),
            "separated by `T`",
        ),
        (
            with("2025-06-05T14:30:00.1234567891Z", r#"{"a":1}"#),
            "fractional digits",
        ),
        (with("2016-12-31T23:59:60Z", r#"{"a":1}"#), "leap seconds"),
        (
            with(
                "2025-06-05T14:30:00Z",
                &format!(r#"{{"a":[{}]}}"#, numbers.join(",")),
            ),
            "more than 256 fields",
        ),
        (
            with("2025-06-05T14:30:00Z", r#"{"a":18446744073709551616}"#),
            "64 bits",
        ),
    ];
    let mut device = Device::connect(eliot.addr, "robot_018");
    let payloads = cases.iter().map(|(payload, _)| payload.clone()).collect();
    assert_eq!(
        device
            .publish_all("robot_018", payloads, QoS::AtLeastOnce)
            .await,
        cases.len()
    );
    let dead = eliot.dead_letters();
    assert_eq!(dead.len(), cases.len());
    for ((_, why), dead) in cases.iter().zip(&dead) {
        assert!(dead.reason.contains(why), "{why}: {}", dead.reason);
    }
}

/// The data directory is 0700 and the database files 0600, whatever the umask.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let eliot = Eliot::start();
    let mut device = Device::connect(eliot.addr, "robot_019");
    let stored = device
        .publish_all("robot_019", vec![reading("robot_019", 1)], QoS::AtLeastOnce)
        .await;
    assert_eq!(stored, 1);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let db = eliot.db_path();
    assert_eq!(mode(db.parent().unwrap()), 0o700);
    assert_eq!(mode(&db), 0o600);
}

/// A topic of 60 KiB holding line breaks and terminal escapes does not flood or forge the
/// logs: the logged value is cut and its control characters escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_topic_cannot_flood_or_forge_the_logs() {
    let logs = eliot_actors::CapturedLogs::default();
    let eliot = Eliot::start_logged(|_| {}, logs.logger());
    let topic = format!("devices/x\nFAKE LINE\x1b[31m/{}", "y".repeat(60 * 1024));
    let mut raw = Raw4::connect(eliot.addr, "robot_020").await;
    raw.publish(&topic, m4::QoS::AtLeastOnce, 1, &reading("robot_020", 1))
        .await;
    assert_eq!(raw.expect().await, v4::Packet::PubAck(v4::PubAck::new(1)));
    let rejected = logs.events("message_rejected");
    let logged = &rejected[0]["topic"];
    assert!(logged.len() < 600, "{} bytes", logged.len());
    assert!(!logged.chars().any(char::is_control), "{logged:?}");
}

/// A database made read-only under a running Eliot (immutable files, which even root
/// cannot write): no commit is acked any more, the writer restarts and fails to reopen,
/// and Eliot exits 70 once past the restart intensity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_stops_eliot_with_status_70() {
    use common::process::{free_addr, EliotProcess};
    let data = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut eliot = EliotProcess::start(data.path(), addr, &[("ELIOT_LOG_LEVEL", "critical")]);
    let mut device = Device::connect(addr, "robot_021");
    let first = device
        .publish_all("robot_021", vec![reading("robot_021", 1)], QoS::AtLeastOnce)
        .await;
    assert_eq!(first, 1);
    let db = data.path().join("eliot.db");
    let files = [db.clone(), data.path().join("eliot.db-wal")];
    for file in &files {
        let made = std::process::Command::new("chattr")
            .arg("+i")
            .arg(file)
            .status();
        assert!(
            made.is_ok_and(|s| s.success()),
            "chattr +i {}",
            file.display()
        );
    }
    device
        .client
        .publish(
            topic("robot_021"),
            QoS::AtLeastOnce,
            false,
            reading("robot_021", 2),
        )
        .await
        .unwrap();
    let outcome = device
        .expect_event(Duration::from_secs(10), |e| {
            e.is_err() || matches!(e, Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))))
        })
        .await;
    let status = tokio::task::spawn_blocking(move || eliot.exit_within(Duration::from_secs(60)))
        .await
        .unwrap();
    for file in &files {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(file)
            .status();
    }
    assert!(outcome.is_err(), "not acked: {outcome:?}");
    assert_eq!(status.and_then(|s| s.code()), Some(70));
}

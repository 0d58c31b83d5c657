//! Inputs meant to exhaust Eliot's memory or disk: every length and count is bounded (the
//! timers and slots are in `slots`).

use super::*;

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
    let junk = |n: usize| format!("{n:0>100} not JSON");
    // Kept by commit order, which is not quite the order sent: batches of one connection
    // go to the processors in turn, on threads of their own, and a later one may commit
    // first (under load, many later ones). So the oldest is acked before the rest are
    // sent, and the newest sent only once they are all acked: those two are committed
    // first and last whatever the threads do.
    let mut sent = 0;
    for batch in [vec![junk(0)], (1..99).map(junk).collect(), vec![junk(99)]] {
        sent += device
            .publish_all("robot_009", batch, QoS::AtLeastOnce)
            .await;
    }
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
    let kept: Vec<String> = eliot
        .dead_letters()
        .into_iter()
        .map(|dead| String::from_utf8(dead.payload).unwrap())
        .collect();
    assert!(kept.contains(&junk(99)), "the newest was shed: {kept:?}");
    assert!(!kept.contains(&junk(0)), "the oldest was kept");
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

/// Readings as big as the rules allow (200 fields of 1,000 bytes each: about 200 KiB a
/// reading) cannot fill memory: a generation is sealed once its readings take
/// `store.generation_bytes`, however few they are, so memory holds about two generations'
/// bytes at most. Every reading is still stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_readings_cannot_fill_memory() {
    const LIMIT: u64 = 1 << 20;
    let eliot = Eliot::start_with(|c| c.store.generation_bytes = LIMIT as usize);
    let field = "x".repeat(1_000);
    let big = |n: u64| {
        let fields: Vec<String> = (0..200).map(|f| format!(r#""f{f}":"{field}""#)).collect();
        format!(
            r#"{{"device_id":"robot_011","timestamp":"2025-01-01T00:00:{:02}Z","sensor_type":"blob","data":{{{}}}}}"#,
            n,
            fields.join(",")
        )
    };
    let one_reading = big(0).len() as u64;
    let mut device = Device::connect(eliot.addr, "robot_011");
    let published = std::sync::atomic::AtomicBool::new(false);
    let publish = async {
        for round in 0..4 {
            let payloads = (0..10).map(|i| big(round * 10 + i)).collect();
            let acked = device
                .publish_all("robot_011", payloads, QoS::AtLeastOnce)
                .await;
            assert_eq!(acked, 10);
        }
        published.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    // Watched all along: sampled only between rounds, it may read 0 each time when the
    // rounds' commits happen to end on a sealed generation.
    let watch = async {
        let mut most = 0;
        while !published.load(std::sync::atomic::Ordering::Relaxed) {
            most = most.max(eliot.health().await.store.holds.unmerged_bytes);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        most
    };
    let ((), most) = tokio::join!(publish, watch);
    assert!(
        most > 0 && most <= 2 * (LIMIT + one_reading),
        "{most} bytes of readings in memory, more than two generations of {LIMIT}"
    );
    assert_eq!(eliot.count("readings"), 40);
    still_serving(&eliot).await;
}

/// A client that sends SUBSCRIBEs and never reads its socket: each gets a SUBACK that
/// waits for it. Eliot used to read on and queue the replies in memory (about 2 MB a
/// second, without end). Now it stops reading the connection once 64 KiB of replies wait
/// unread, so its memory stays flat and the client's writes stall, and closes the
/// connection when they have waited `mqtt.packet_timeout` (here 5 s). The real binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_a_client_never_reads_cannot_fill_memory() {
    use tokio::io::AsyncWriteExt;
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("eliot.log");
    let mut launch = common::process::Launch::new(data.path(), common::process::free_addr())
        .config("[mqtt]\npacket_timeout = \"5s\"\n[log]\nlevel = \"info\"\n")
        .env("ELIOT_LOG_FORMAT", "json");
    launch.log = Some(log.clone());
    let eliot = launch.start();
    let rss_before = eliot.rss_kib();

    // Small socket buffers on the client's side, so that the kernel holds little for it.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    let mut raw = Raw5::over(socket.connect(eliot.addr).await.unwrap());
    let mut connect = connect5("deaf");
    connect.keep_alive = 0;
    raw.send(&v5::Packet::Connect(connect, None, None)).await;
    assert!(matches!(raw.expect().await, v5::Packet::ConnAck(_)));
    let mut stream = raw.into_stream();
    // 9 bytes each: packet id 1, no properties, the filter "a" at QoS 0.
    let subscribe = [0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'a', 0x00];
    let chunk = subscribe.repeat(64 * 1024 / subscribe.len());
    let cap = 48 * 1024 * 1024;
    let (mut sent, mut rss_peak) = (0usize, rss_before);
    let started = Instant::now();
    // Stalled: not one byte taken in 3 s (a slow reader would take some).
    let stalled = loop {
        let offset = sent % chunk.len();
        let write = tokio::time::timeout(Duration::from_secs(3), stream.write(&chunk[offset..]));
        match write.await {
            Ok(Ok(n)) => sent += n,
            Ok(Err(e)) => panic!("closed before the client stalled: {e}"),
            Err(_) => break true,
        }
        rss_peak = rss_peak.max(eliot.rss_kib());
        if sent >= cap || started.elapsed() > Duration::from_secs(60) {
            break false;
        }
    };
    let stalled_at = Instant::now();
    rss_peak = rss_peak.max(eliot.rss_kib());
    let grew_mib = rss_peak.saturating_sub(rss_before) as f64 / 1024.0;
    eprintln!(
        "a client that never reads: {:.1} MiB of SUBSCRIBEs sent in {:?}, then {}; Eliot's \
         memory grew {grew_mib:.1} MiB",
        sent as f64 / 1048576.0,
        stalled_at - started,
        if stalled {
            "its writes stalled"
        } else {
            "still taken"
        }
    );
    assert!(stalled, "Eliot read on: {sent} bytes of SUBSCRIBEs taken");
    assert!(grew_mib < 16.0, "memory grew {grew_mib:.1} MiB");

    let closed = |log: &std::path::Path| {
        logged(log, "device_disconnected")
            .into_iter()
            .find(|e| e["client_id"] == "deaf")
    };
    assert!(
        eventually(Duration::from_secs(20), || closed(&log).is_some()).await,
        "the connection is closed"
    );
    let after = stalled_at.elapsed();
    let reason = closed(&log).unwrap()["reason"].to_string();
    eprintln!("closed {after:?} after the client stalled: {reason}");
    assert!(reason.contains("does not read its socket"), "{reason}");
    drop(stream);
    assert_eq!(
        metric(eliot.http, "eliot_connections_open").await,
        Some(0.0)
    );
    let mut bystander = Raw4::connect(eliot.addr, "robot_bystander").await;
    bystander
        .publish(
            &topic("robot_bystander"),
            m4::QoS::AtLeastOnce,
            1,
            &reading("robot_bystander", 1),
        )
        .await;
    assert_eq!(
        bystander.expect().await,
        v4::Packet::PubAck(v4::PubAck::new(1))
    );
}

/// A device that varies `sensor_type` used to add a series, in memory and in `series`,
/// with every new name, for ever. Past `store.max_series_per_device` (here 5) a reading of
/// one more sensor type is acked as a dead letter with the reason; the limit holds across
/// a restart, and the device's known sensor types are still stored. The real binary, read
/// by the `sqlite3` shell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_cannot_add_sensor_types_without_end() {
    let data = tempfile::tempdir().unwrap();
    let launch = common::process::Launch::new(data.path(), common::process::free_addr())
        .config("[store]\nmax_series_per_device = 5\n");
    let payload = |sensor: &str, n: u64| {
        reading("robot_042", n).replace("\"temperature\"", &format!("\"{sensor}\""))
    };
    let publish_all = |addr, payloads: Vec<String>| async move {
        let mut raw = Raw4::connect(addr, "robot_042").await;
        for (pkid, payload) in (1..).zip(&payloads) {
            raw.publish(&topic("robot_042"), m4::QoS::AtLeastOnce, pkid, payload)
                .await;
            assert_eq!(
                raw.expect().await,
                v4::Packet::PubAck(v4::PubAck::new(pkid))
            );
        }
    };
    let eliot = launch.start();
    let varied = (0..12)
        .map(|n| payload(&format!("sensor_{n}"), n))
        .collect();
    publish_all(eliot.addr, varied).await;
    let reader = common::outside::default_reader();
    let db = eliot.db_path();
    let types = "SELECT count(DISTINCT sensor_type) FROM readings";
    assert_eq!(reader.number(&db, types), 5);
    let refused = "SELECT count(*) FROM dead_letters WHERE reason LIKE \
                   '%more than 5 sensor types (store.max_series_per_device)%'";
    assert_eq!(reader.number(&db, refused), 7);

    let (status, _) = eliot.terminate();
    assert!(status.success(), "{status}");
    let eliot = launch.start();
    let after = vec![payload("sensor_99", 20), payload("sensor_0", 21)];
    publish_all(eliot.addr, after).await;
    assert_eq!(
        reader.number(&db, refused),
        8,
        "the limit outlives a restart"
    );
    assert_eq!(
        reader.number(
            &db,
            "SELECT count(*) FROM readings WHERE sensor_type = 'sensor_0'"
        ),
        2,
        "a known sensor type is still stored"
    );
}

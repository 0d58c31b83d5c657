//! Inputs meant to exhaust Eliot: every length, count and timer is bounded.

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

/// `count` sockets opened back to back from `ip` to `addr`, sending nothing; with, for
/// each, whether Eliot closed it at once (refused) rather than waiting for its CONNECT.
async fn idle_sockets(
    ip: [u8; 4],
    addr: std::net::SocketAddr,
    count: usize,
) -> Vec<(tokio::net::TcpStream, bool)> {
    use tokio::io::AsyncReadExt;
    let mut streams = Vec::new();
    for _ in 0..count {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind((ip, 0).into()).unwrap();
        streams.push(socket.connect(addr).await.unwrap());
    }
    // All at once: an accepted one is closed after 3 s, so one by one would see that.
    futures_util::future::join_all(streams.into_iter().map(|mut stream| async move {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut byte));
        let refused = matches!(read.await, Ok(Ok(0)) | Ok(Err(_)));
        (stream, refused)
    }))
    .await
}

/// Slots held without a CONNECT: idle sockets cannot take `mqtt.max_connections` (here
/// 40) from the fleet. One address holds at most `mqtt.max_pending_per_address` (here 32)
/// sockets yet to send their CONNECT (the rest are closed at once); a second address takes the remaining 8, and `/ready`
/// says 503 while every slot is taken; each idle socket is closed after
/// `mqtt.first_byte_timeout` (here 4 s), not the 20 s a CONNECT may take here, and then
/// devices are served again. The real binary, with its own configuration file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_cannot_hold_the_connection_slots() {
    use tokio::io::AsyncReadExt;
    let data = tempfile::tempdir().unwrap();
    let settings =
        "[mqtt]\nmax_connections = 40\nmax_pending_per_address = 32\nfirst_byte_timeout = \"4s\"\nconnect_timeout = \"20s\"\n";
    let launch =
        common::process::Launch::new(data.path(), common::process::free_addr()).config(settings);
    let eliot = launch.start();
    assert_eq!(get(eliot.http, "/ready").await.0, 200);

    let opened = Instant::now();
    let first = idle_sockets([127, 0, 0, 2], eliot.addr, 40).await;
    let refused = first.iter().filter(|(_, refused)| *refused).count();
    assert_eq!(refused, 8, "one address holds at most 32 idle sockets");
    assert_eq!(get(eliot.http, "/ready").await.0, 200, "8 slots left");
    let second = idle_sockets([127, 0, 0, 3], eliot.addr, 10).await;
    let refused = second.iter().filter(|(_, refused)| *refused).count();
    assert_eq!(refused, 2, "the last 8 slots taken, then the limit");
    let (code, body) = get(eliot.http, "/ready").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("mqtt.max_connections"), "{body}");

    let mut held: Vec<_> = first
        .into_iter()
        .chain(second)
        .filter(|(_, r)| !r)
        .collect();
    assert_eq!(held.len(), 40);
    let closed = futures_util::future::join_all(held.iter_mut().map(|(stream, _)| async {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
        opened.elapsed()
    }))
    .await;
    let last = closed.iter().max().unwrap();
    eprintln!(
        "idle sockets closed {:?} to {last:?} after they opened",
        closed.iter().min().unwrap()
    );
    assert!(
        *last < Duration::from_secs(8),
        "closed after {last:?}, not within about 3 s"
    );
    assert!(
        eventually_async(Duration::from_secs(5), || async {
            get(eliot.http, "/ready").await.0 == 200
        })
        .await
    );
    let mut device = Device::connect(eliot.addr, "robot_after");
    let acked = device
        .publish_all(
            "robot_after",
            vec![reading("robot_after", 1)],
            QoS::AtLeastOnce,
        )
        .await;
    assert_eq!(acked, 1);
}

/// Lines of Eliot's JSON log at `log` that are the event `name`.
fn logged(log: &std::path::Path, name: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["event"] == name)
        .collect()
}

/// An open-file limit below what `mqtt.max_connections` (20,000) needs: Eliot takes the
/// connections the limit leaves room for (here 300 descriptors, half kept for the rest:
/// 150), says so once at start, and refuses the one past them, instead of failing
/// accepts (and the database's own files) once out of descriptors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_is_fitted_to_the_descriptor_limit() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("eliot.log");
    let mut launch = common::process::Launch::new(data.path(), common::process::free_addr())
        .env("ELIOT_LOG_FORMAT", "json");
    launch.before = Some("ulimit -n 300".into());
    launch.log = Some(log.clone());
    let eliot = launch.start();
    let said = logged(&log, "descriptor_limit");
    assert_eq!(said.len(), 1, "said once: {said:?}");
    assert_eq!(said[0]["limit"], 300);
    assert_eq!(said[0]["max_connections"], 150);
    let mut devices = Vec::new();
    for n in 0..150 {
        devices.push(Raw4::connect(eliot.addr, &format!("fd_{n}")).await);
    }
    let mut one_more = Raw4::open(eliot.addr).await;
    one_more
        .send(&v4::Packet::Connect(connect4("fd_150")))
        .await;
    assert_eq!(one_more.until_closed().await, vec![], "refused, no CONNACK");
    assert!(logged(&log, "accept_failed").is_empty(), "no accept failed");
    let mut last = devices.pop().unwrap();
    last.publish(
        &topic("fd_149"),
        m4::QoS::AtLeastOnce,
        1,
        &reading("fd_149", 1),
    )
    .await;
    assert_eq!(last.expect().await, v4::Packet::PubAck(v4::PubAck::new(1)));
}

/// Out of descriptors, the TLS listener's accepts fail: it pauses 100 ms after each, as the
/// plain listener does, instead of retrying at once (7,000 log records a second and two
/// thirds of a core). Here 64 descriptors, and 96 sockets that never start their TLS
/// handshake, 16 from each of six addresses (the most one address may have).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_listener_does_not_spin_when_out_of_descriptors() {
    let pki = common::certs::Pki::new();
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("eliot.log");
    let tls = common::process::free_addr();
    let server = pki.server_files();
    let config = format!(
        "[tls]\nenabled = true\nlisten = \"{tls}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n\
             handshake_timeout = \"60s\"\n",
        server.cert.display(),
        server.key.display()
    );
    let mut launch = common::process::Launch::new(data.path(), common::process::free_addr())
        .config(&config)
        .env("ELIOT_LOG_FORMAT", "json");
    launch.before = Some("ulimit -n 64".into());
    launch.log = Some(log.clone());
    let eliot = launch.start();
    let mut held = Vec::new();
    for source in 2..8 {
        for _ in 0..16 {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(([127, 0, 0, source], 0).into()).unwrap();
            held.push(socket.connect(tls).await.unwrap());
        }
    }
    assert!(
        eventually(Duration::from_secs(5), || !logged(&log, "accept_failed")
            .is_empty())
        .await,
        "the listener ran out of descriptors"
    );
    let (failed_before, cpu_before) = (
        logged(&log, "accept_failed").len(),
        cpu_seconds(eliot.pid()),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let failed = logged(&log, "accept_failed").len() - failed_before;
    let cpu = cpu_seconds(eliot.pid()) - cpu_before;
    eprintln!("out of descriptors for 2 s: {failed} failed accepts logged, {cpu:.2} s of CPU");
    assert!(
        failed <= 40,
        "{failed} failed accepts logged in 2 s: spinning"
    );
    assert!(cpu < 0.5, "{cpu:.2} s of CPU in 2 s: spinning");
    drop(held);
}

/// CPU seconds (user and system) process `pid` has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
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

//! Inputs meant to hold what every device needs: connection slots, descriptors and the
//! timers that free them. A socket that sends nothing, a packet that stops half way, a
//! store that is stuck: each is closed or answered within its bound.

use super::sampling::cpu_seconds;
use super::*;

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

//! Rate limits: a device past its own is slowed (its socket is not read), not dropped;
//! new connections are limited per address, so one address cannot crowd the others out.

use std::time::Instant;

use super::*;
use rumqttc::QoS;

/// How long `device` takes to have `count` readings acked, published as fast as it can.
async fn publish_all(addr: std::net::SocketAddr, device: &str, count: u64) -> Duration {
    let mut d = Device::connect(addr, device);
    let started = Instant::now();
    let readings = (0..count).map(|n| reading(device, n)).collect();
    let acked = d.publish_all(device, readings, QoS::AtLeastOnce).await;
    assert_eq!(
        acked, count as usize,
        "{device}: every message acked, none dropped"
    );
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_over_its_rate_limit_is_slowed_not_dropped() {
    let eliot = Eliot::start_with(|c| c.auth.device_messages_per_second = 20);
    let limited = publish_all(eliot.addr, "robot_1", 60).await;
    // 20 at once (the burst), then 20 a second: 40 more take two seconds at least.
    assert!(
        limited >= Duration::from_millis(1_900),
        "slowed: {limited:?}"
    );
    assert!(eventually(Duration::from_secs(5), || stored(&eliot) == 60).await);
    let (_, metrics) = get(eliot.http_addr, "/metrics").await;
    let slowed = metrics
        .lines()
        .find_map(|l| l.strip_prefix("eliot_rate_limited_total "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(slowed >= 30.0, "the waits are counted: {slowed}");
}

/// Control packets count toward the device's message rate too: 60 PINGREQs at 20 a
/// second take two seconds at least (they were answered at once, so a client could make
/// Eliot write as fast as it liked however low its limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_packets_count_toward_the_device_rate() {
    use common::scripted::Raw4;
    use rumqttc::mqttbytes::v4;
    let eliot = Eliot::start_with(|c| c.auth.device_messages_per_second = 20);
    let mut raw = Raw4::connect(eliot.addr, "pinger").await;
    let started = Instant::now();
    for _ in 0..60 {
        raw.send(&v4::Packet::PingReq).await;
        assert_eq!(raw.expect().await, v4::Packet::PingResp);
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1_900), "not slowed: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connections_are_limited_per_address() {
    let eliot = Eliot::start_with(|c| {
        c.auth.new_connections_per_second = 1;
        c.auth.new_connections_burst = 5;
    });
    let from = |ip: [u8; 4]| {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind((ip, 0).into()).unwrap();
        socket.connect(eliot.addr)
    };
    // All 15 opened back to back, within a few milliseconds (the burst, no refill), then
    // read at once: opening each after the last one's read let those waits refill tokens.
    let mut streams = Vec::new();
    for _ in 0..15 {
        streams.push(from([127, 0, 0, 2]).await.unwrap());
    }
    // A refused socket is closed at once; an accepted one waits for its CONNECT.
    let closed = futures_util::future::join_all(streams.iter_mut().map(|stream| async {
        use tokio::io::AsyncReadExt;
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut byte));
        matches!(read.await, Ok(Ok(0)) | Ok(Err(_)))
    }))
    .await;
    let refused = closed.iter().filter(|&&closed| closed).count();
    // 10, or 9 if a loaded machine spread Eliot's accepts over a second's refill.
    assert!(
        (9..=10).contains(&refused),
        "{refused} of 15 refused past the burst of 5"
    );
    let mut d = Device::connect(eliot.addr, "robot_2");
    let connack = d
        .expect_event(Duration::from_secs(5), |e| {
            matches!(e, Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))))
        })
        .await;
    assert!(connack.is_ok(), "another address is served");
}

/// A slowloris on the TLS port: 100 sockets from one address that never start their
/// handshake. They hold at most that address's share of the handshake turns, and a device
/// from elsewhere is served at once, not after their timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tls_sockets_from_one_address_do_not_lock_the_others_out() {
    let Some(bin) = client("tls slowloris") else {
        return;
    };
    let pki = Pki::new();
    let eliot = Eliot::start_with(|c| configure(c, AuthMode::Certificate, Some(&pki)));
    provision_certificate(&eliot.config.store.data_dir, "robot_1");
    let tls_addr = eliot.tls_addr.unwrap();
    let mut idle = Vec::new();
    for _ in 0..100 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(([127, 0, 0, 2], 0).into()).unwrap();
        idle.push(socket.connect(tls_addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cert = pki.client("robot_1");
    let mut args = tls_args(&pki, Some(&cert));
    args.extend(["-i", "robot_1"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = tokio::task::block_in_place(|| publish(&bin, tls_addr.port(), "robot_1", 0, &args));
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(stored(&eliot), 1);
    drop(idle);
}

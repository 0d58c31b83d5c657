//! Graceful shutdown of the real `eliot` binary: SIGTERM while devices publish.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rumqttc::{Event, Outgoing, Packet, QoS};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the binary with the test environment and waits until it accepts connections.
fn spawn_eliot(data_dir: &std::path::Path, addr: SocketAddr) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_eliot"))
        .env("ELIOT_ENV", "test")
        .env("ELIOT_DATA_DIR", data_dir)
        .env("ELIOT_MQTT_ADDR", addr.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the eliot binary starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "eliot listens within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// One device publishing QoS 1 readings as fast as it can until its connection ends;
/// returns the sequence numbers of the readings that were PUBACKed.
async fn publish_until_closed(addr: SocketAddr, device: String) -> Vec<u64> {
    let mut dev = Device::connect(addr, &device);
    let client = dev.client.clone();
    let name = device.clone();
    let publisher = tokio::spawn(async move {
        for n in 0.. {
            if client
                .publish(topic(&name), QoS::AtLeastOnce, false, reading(&name, n))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    // rumqttc writes publishes in request order: the n-th outgoing PUBLISH is reading n.
    let (mut sent, mut in_flight, mut acked) = (0u64, HashMap::new(), Vec::new());
    while let Some(Ok(event)) = dev.events.recv().await {
        match event {
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                in_flight.insert(pkid, sent);
                sent += 1;
            }
            Event::Incoming(Packet::PubAck(ack)) => acked.extend(in_flight.remove(&ack.pkid)),
            _ => {}
        }
    }
    publisher.abort();
    acked
}

/// SIGTERM while 20 devices publish: Eliot stops accepting, commits and acks what it
/// has read, and exits 0 within its deadline; every reading that was PUBACKed is in the
/// database afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_zero_and_keeps_every_acked_reading() {
    let data_dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut eliot = spawn_eliot(data_dir.path(), addr);

    let devices: Vec<_> = (0..20)
        .map(|d| tokio::spawn(publish_until_closed(addr, format!("device_{d:02}"))))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &eliot.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::task::spawn_blocking(move || eliot.wait().unwrap())
        .await
        .unwrap();
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "exit status 0 after SIGTERM");
    assert!(
        took < Duration::from_secs(3 + 2),
        "within the test deadline (3 s): {took:?}"
    );

    let mut acked = Vec::new();
    for (d, device) in devices.into_iter().enumerate() {
        let seqs = tokio::time::timeout(Duration::from_secs(10), device)
            .await
            .expect("devices see the close")
            .unwrap();
        acked.extend(seqs.into_iter().map(|n| (format!("device_{d:02}"), n)));
    }
    assert!(
        acked.len() > 100,
        "the devices were publishing: {} acked",
        acked.len()
    );

    let db = rusqlite::Connection::open(data_dir.path().join("eliot.db")).unwrap();
    let mut stmt = db.prepare("SELECT device_id, ts FROM readings").unwrap();
    let stored: HashSet<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let lost = acked
        .iter()
        .filter(|(device, n)| !stored.contains(&(device.clone(), reading_ts(*n))))
        .count();
    println!(
        "SIGTERM under load: exited 0 in {:.0} ms; {} readings acked, {} rows stored, {} acked but lost",
        took.as_secs_f64() * 1000.0,
        acked.len(),
        stored.len(),
        lost
    );
    assert_eq!(lost, 0, "every PUBACKed reading is stored");
}

/// The `ts` column Eliot stores for `reading(_, n)`.
fn reading_ts(n: u64) -> String {
    let ts = time::OffsetDateTime::from_unix_timestamp(1_749_132_000 + n as i64).unwrap();
    eliot_actors::timefmt::format_utc(ts)
}

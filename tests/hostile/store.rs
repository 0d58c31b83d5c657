//! A full disk, and a store that cannot heal.

use super::*;

/// A full disk (here `store.max_size`, which gives SQLite a real SQLITE_FULL): dead
/// letters are shed first to make room for readings; once nothing is left to shed,
/// nothing more is acked, health is `degraded` with the reason (`/health` stays 200: a
/// liveness probe must not restart an Eliot rightly waiting for room) and `/ready` 503 says
/// it, and the writer retries at the breaker's pace instead of spinning. Eliot stays up.
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
    assert_eq!(health.status, eliot_actors::Status::Degraded, "{health:?}");
    let condition = health.store.condition.clone().unwrap_or_default();
    assert!(condition.contains("full"), "{condition}");
    assert_eq!(get(eliot.http_addr, "/health").await.0, 200);
    let (code, body) = get(eliot.http_addr, "/ready").await;
    assert_eq!(code, 503);
    assert!(
        body.contains("takes no writes") && body.contains("full"),
        "{body}"
    );
    let retries = || metric(eliot.http_addr, "eliot_store_retries_total");
    let before = retries().await.unwrap_or(0.0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = retries().await.unwrap_or(0.0);
    assert!(
        after - before < 30.0,
        "{} retries in 2 s: spinning",
        after - before
    );
    assert_eq!(get(eliot.http_addr, "/ready").await.0, 503);
}

/// Starts the real binary on a fresh data directory and has `id` store one reading, so the
/// database exists and is open before a drill breaks it.
async fn one_reading_stored(
    id: &str,
) -> (tempfile::TempDir, common::process::EliotProcess, Device) {
    let data = tempfile::tempdir().unwrap();
    let addr = common::process::free_addr();
    let eliot =
        common::process::EliotProcess::start(data.path(), addr, &[("ELIOT_LOG_LEVEL", "critical")]);
    let mut device = Device::connect(addr, id);
    let first = device
        .publish_all(id, vec![reading(id, 1)], QoS::AtLeastOnce)
        .await;
    assert_eq!(first, 1);
    (data, eliot, device)
}

/// Sends `id`'s second reading once the store is broken, and returns what came back
/// within 10 s (a PUBACK, or the connection's end) and how Eliot exited within 60 s.
async fn second_reading_then_exit(
    device: &mut Device,
    mut eliot: common::process::EliotProcess,
    id: &str,
) -> (
    Result<rumqttc::Event, String>,
    Option<std::process::ExitStatus>,
) {
    device
        .client
        .publish(topic(id), QoS::AtLeastOnce, false, reading(id, 2))
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
    (outcome, status)
}

/// The database file deleted under a running Eliot: SQLite would go on writing to the
/// unlinked file, acking readings nobody would find after a restart. Eliot notices before
/// the next commit, acks nothing more, refuses to recreate the file empty, and once
/// reopening has failed past the restart intensity it exits 70, for its supervisor (and a
/// person) to deal with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_database_file_stops_eliot_with_status_70() {
    let (data, eliot, mut device) = one_reading_stored("robot_014").await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(data.path().join(format!("eliot.db{suffix}")));
    }
    let (outcome, status) = second_reading_then_exit(&mut device, eliot, "robot_014").await;
    assert!(outcome.is_err(), "not acked: {outcome:?}");
    assert_eq!(status.and_then(|s| s.code()), Some(70));
    assert!(
        !data.path().join("eliot.db").exists(),
        "not recreated empty"
    );
}

/// A database made read-only under a running Eliot (immutable files, which even root
/// cannot write): no commit is acked any more, the writer restarts and fails to reopen,
/// and Eliot exits 70 once past the restart intensity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_stops_eliot_with_status_70() {
    let (data, eliot, mut device) = one_reading_stored("robot_021").await;
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
    let (outcome, status) = second_reading_then_exit(&mut device, eliot, "robot_021").await;
    for file in &files {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(file)
            .status();
    }
    assert!(outcome.is_err(), "not acked: {outcome:?}");
    assert_eq!(status.and_then(|s| s.code()), Some(70));
}

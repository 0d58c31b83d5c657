//! Replaying dead letters in a running Eliot, through the `Replayer` its HTTP API calls:
//! messages from real MQTT clients, refused by the `eliot` binary under one configuration
//! (devices provisioned with `eliot device`), taken up again by an Eliot started on the same
//! database under another, and the database read with the sqlite3 shell. The versions over
//! HTTP, wholly against the binary, come with the API's routes.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use eliot_actors::{AuthMode, DeadLetterFilter, ReplayError, ReplayOutcome};
use rumqttc::QoS;

/// The fault point these tests set is global to this process: one test at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A reading of `device` whose `data` holds a string of `len` bytes.
fn long_reading(device: &str, n: u64, len: usize) -> String {
    reading(device, n).replace(
        "\"celsius\":",
        &format!("\"note\":\"{}\",\"celsius\":", "x".repeat(len)),
    )
}

/// Eliot on the database in `dir`, strings in `data` limited to `max_string_len` bytes.
fn eliot_on(dir: &Path, max_string_len: usize, mode: AuthMode) -> Eliot {
    let dir = dir.to_owned();
    Eliot::start_with(move |config| {
        config.store.data_dir = dir;
        config.ingest.max_string_len = max_string_len;
        config.auth.mode = mode;
        config.replay.max_rows = 20;
    })
}

/// The `eliot` binary on the database in `dir`, strings in `data` limited to 1,024 bytes.
fn binary_on(dir: &Path, mode: &str) -> process::EliotProcess {
    let mut launch = process::Launch::new(dir, process::free_addr())
        .config("[ingest]\nmax_string_len = 1024\n")
        .env("ELIOT_AUTH_MODE", mode);
    launch.log = Some(dir.join("eliot.log"));
    launch.start()
}

/// Stops it with SIGTERM: it drains, and exits 0.
async fn stop_binary(eliot: process::EliotProcess) {
    let (status, _) = tokio::task::spawn_blocking(move || eliot.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
}

/// `eliot device ARGS` on the database in `dir`; its last line (a secret, for `add`).
fn device_command(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eliot"))
        .arg("device")
        .args(args)
        .env("ELIOT_ENV", "test")
        .env("ELIOT_DATA_DIR", dir)
        .output()
        .expect("eliot device runs");
    assert!(out.status.success(), "eliot device {args:?}: {out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout.lines().last().unwrap_or_default().to_owned()
}

fn count(dir: &Path, sql: &str) -> i64 {
    outside::default_reader().number(&dir.join("eliot.db"), sql)
}

/// A reading refused by a limit is replayed once the limit is raised: it is stored, and
/// its dead letter is gone; replayed again, it is gone; the one still too long stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_made_valid_by_a_configuration_change_is_stored_and_leaves() {
    let _one = ONE_AT_A_TIME.lock().await;
    let data = tempfile::tempdir().unwrap();
    let eliot = binary_on(data.path(), "none");
    let mut device = Device::connect(eliot.addr, "robot_r");
    let payloads = vec![
        long_reading("robot_r", 1, 2000),
        long_reading("robot_r", 2, 9000),
    ];
    assert_eq!(
        device
            .publish_all("robot_r", payloads, QoS::AtLeastOnce)
            .await,
        2
    );
    device.disconnect().await;
    stop_binary(eliot).await;
    assert_eq!(count(data.path(), "SELECT count(*) FROM dead_letters"), 2);

    let eliot = eliot_on(data.path(), 4096, AuthMode::None);
    let replayed = eliot.replayer.replay(&[2, 1, 1, 7]).await.unwrap();
    let outcomes: Vec<(i64, &ReplayOutcome)> =
        replayed.iter().map(|r| (r.id, &r.outcome)).collect();
    assert_eq!(outcomes.len(), 3, "each id once: {outcomes:?}");
    assert_eq!(outcomes[1], (1, &ReplayOutcome::Accepted { readings: 1 }));
    assert_eq!(outcomes[2], (7, &ReplayOutcome::Gone));
    let (2, ReplayOutcome::Rejected { reason }) = outcomes[0] else {
        panic!("{outcomes:?}")
    };
    assert!(reason.contains("4096"), "today's reason: {reason}");
    assert_eq!(
        count(
            data.path(),
            "SELECT count(*) FROM readings WHERE device_id = 'robot_r'"
        ),
        1
    );
    assert_eq!(
        count(data.path(), "SELECT group_concat(id) FROM dead_letters"),
        2
    );
    let again = eliot.replayer.replay(&[1]).await.unwrap();
    assert_eq!(again[0].outcome, ReplayOutcome::Gone);
    eliot.stop().await;
}

/// Where devices authenticate, a replay is its sender's: a device's message on another
/// device's topic stays refused, whatever the limits now, and a device removed since
/// cannot have its messages replayed at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_never_lets_in_what_its_sender_could_not_send() {
    let _one = ONE_AT_A_TIME.lock().await;
    let data = tempfile::tempdir().unwrap();
    let secret = device_command(data.path(), &["add", "robot_a"]);
    device_command(data.path(), &["add", "robot_b"]);
    let eliot = binary_on(data.path(), "password");
    let mut options = options(eliot.addr, "robot_a");
    options.set_credentials("robot_a", secret);
    let mut device = Device::connect_with(options);
    // As robot_b (its topic and payload), and a too-long reading of its own.
    let payloads = vec![reading("robot_b", 1)];
    assert_eq!(
        device
            .publish_all("robot_b", payloads, QoS::AtLeastOnce)
            .await,
        1
    );
    let payloads = vec![
        long_reading("robot_a", 2, 2000),
        long_reading("robot_a", 3, 2000),
    ];
    assert_eq!(
        device
            .publish_all("robot_a", payloads, QoS::AtLeastOnce)
            .await,
        2
    );
    device.disconnect().await;
    stop_binary(eliot).await;

    let eliot = eliot_on(data.path(), 4096, AuthMode::Password);
    let replayed = eliot.replayer.replay(&[1, 2]).await.unwrap();
    let ReplayOutcome::Rejected { reason } = &replayed[0].outcome else {
        panic!("{replayed:?}")
    };
    assert!(reason.contains("robot_a"), "bound to its sender: {reason}");
    assert_eq!(replayed[1].outcome, ReplayOutcome::Accepted { readings: 1 });
    device_command(data.path(), &["remove", "robot_a"]);
    let replayed = eliot.replayer.replay(&[3]).await.unwrap();
    let ReplayOutcome::Rejected { reason } = &replayed[0].outcome else {
        panic!("{replayed:?}")
    };
    assert!(reason.contains("not provisioned"), "{reason}");
    assert_eq!(
        count(
            data.path(),
            "SELECT count(*) FROM readings WHERE device_id = 'robot_b'"
        ),
        0
    );
    assert_eq!(
        count(
            data.path(),
            "SELECT count(*) FROM dead_letters WHERE id IN (1, 3)"
        ),
        2,
        "both refused again, kept"
    );
    eliot.stop().await;
}

/// The store writer fails (a panic) after a replay's dead letter was deleted and before
/// its readings were inserted: neither happened; the same replay then succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_between_the_delete_and_the_insert_leaves_the_dead_letter_and_no_reading() {
    let _one = ONE_AT_A_TIME.lock().await;
    let data = tempfile::tempdir().unwrap();
    let eliot = eliot_on(data.path(), 1024, AuthMode::None);
    let mut device = Device::connect(eliot.addr, "robot_f");
    let payloads = vec![long_reading("robot_f", 1, 2000)];
    assert_eq!(
        device
            .publish_all("robot_f", payloads, QoS::AtLeastOnce)
            .await,
        1
    );
    device.disconnect().await;
    eliot.stop().await;

    let eliot = eliot_on(data.path(), 4096, AuthMode::None);
    fail::cfg(
        "store::replay",
        "1*panic(between the delete and the insert)",
    )
    .unwrap();
    let failed = eliot.replayer.replay(&[1]).await;
    fail::remove("store::replay");
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(count(data.path(), "SELECT count(*) FROM dead_letters"), 1);
    assert_eq!(count(data.path(), "SELECT count(*) FROM readings"), 0);
    // The writer restarts (after its backoff) and the replay goes through.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let replayed = loop {
        match eliot.replayer.replay(&[1]).await {
            Ok(replayed) => break replayed,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("not yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the writer did not come back: {e}"),
        }
    };
    assert_eq!(replayed[0].outcome, ReplayOutcome::Accepted { readings: 1 });
    assert_eq!(count(data.path(), "SELECT count(*) FROM dead_letters"), 0);
    assert_eq!(count(data.path(), "SELECT count(*) FROM readings"), 1);
    eliot.stop().await;
}

/// A replay by filter takes up what matches, `replay.max_rows` (20 here) at most a call, in
/// id order, and says where the next call goes on; what it refuses again stays and is not
/// taken up twice by the same walk. Too many ids in one call are refused whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_by_filter_walks_the_matching_dead_letters_a_bounded_page_at_a_time() {
    let _one = ONE_AT_A_TIME.lock().await;
    let data = tempfile::tempdir().unwrap();
    let eliot = eliot_on(data.path(), 1024, AuthMode::None);
    let mut walked = Device::connect(eliot.addr, "robot_m");
    let mut other = Device::connect(eliot.addr, "robot_n");
    let mut payloads: Vec<String> = (0..30).map(|n| long_reading("robot_m", n, 2000)).collect();
    payloads.extend((0..10).map(|n| format!("not json {n}")));
    assert_eq!(
        walked
            .publish_all("robot_m", payloads, QoS::AtLeastOnce)
            .await,
        40
    );
    let payloads = (0..5).map(|n| long_reading("robot_n", n, 2000)).collect();
    assert_eq!(
        other
            .publish_all("robot_n", payloads, QoS::AtLeastOnce)
            .await,
        5
    );
    walked.disconnect().await;
    other.disconnect().await;
    eliot.stop().await;

    let eliot = eliot_on(data.path(), 4096, AuthMode::None);
    let too_many = eliot.replayer.replay(&[1; 101]).await;
    assert!(matches!(
        too_many,
        Err(ReplayError::TooManyIds {
            given: 101,
            max: 100
        })
    ));
    let filter = DeadLetterFilter {
        device: Some("robot_m".into()),
        ..DeadLetterFilter::default()
    };
    let (mut after, mut pages, mut accepted, mut rejected) = (0, 0, 0, 0);
    loop {
        let page = eliot
            .replayer
            .replay_matching(&filter, after, 25)
            .await
            .unwrap();
        assert!(page.replayed.len() <= 20, "bounded by replay.max_rows");
        assert!(
            page.replayed.iter().all(|r| r.id > after),
            "past the cursor"
        );
        for replayed in &page.replayed {
            match &replayed.outcome {
                ReplayOutcome::Accepted { readings: 1 } => accepted += 1,
                ReplayOutcome::Rejected { .. } => rejected += 1,
                other => panic!("{other:?}"),
            }
        }
        pages += 1;
        match page.next_after {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!((pages, accepted, rejected), (2, 30, 10));
    let of = |device| format!("SELECT count(*) FROM readings WHERE device_id = '{device}'");
    assert_eq!(count(data.path(), &of("robot_m")), 30);
    assert_eq!(
        count(data.path(), &of("robot_n")),
        0,
        "not matched, not replayed"
    );
    assert_eq!(count(data.path(), "SELECT count(*) FROM dead_letters"), 15);
    eliot.stop().await;
}

//! Inputs that used to crash Eliot, or could: nothing an input does restarts anything.

use super::*;

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

/// Whole sessions, fuzzed: 3.1.1 and 5 sessions as rumqttc encodes them (the codec's
/// corpus), mutated, are played against a running Eliot over TCP, one connection each,
/// for `ELIOT_FUZZ_SECONDS` (3 s by default). Whatever they hold, nothing restarts, Eliot
/// stays healthy and a well-behaved device is still served.
///
/// The new-connection rate per address is lifted: all sessions come from 127.0.0.1, and at
/// thousands a second the default rate would refuse most of them before a byte is read
/// (fuzzing nothing), then refuse the well-behaved device too. That an address past its
/// rate locks out no other is `identity::limits::new_connections_are_limited_per_address`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_sessions_stop_nothing() {
    use std::io::{Read, Write};
    let eliot = Eliot::start_with(|c| {
        c.mqtt.connect_timeout = Duration::from_millis(500);
        c.auth.new_connections_per_second = u32::MAX;
        c.auth.new_connections_burst = u32::MAX;
    });
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

//! Identity binding and lock-outs: an authenticated client publishes as itself only, and
//! what a thief does counts against the thief (its identity, its address), never against
//! the device it pretends to be.

use super::*;
use eliot_actors::AuthMode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_publishing_as_another_device_is_dead_lettered_and_nothing_stored() {
    let Some(bin) = client("binding") else {
        return;
    };
    let eliot = eliot_with(AuthMode::Password, None);
    let secret = provision(&eliot, "robot_1");
    provision(&eliot, "robot_2");
    let args = ["-i", "robot_1", "-u", "robot_1", "-P", &secret];
    let out = tokio::task::block_in_place(|| publish(&bin, eliot.addr.port(), "robot_2", 0, &args));
    assert!(out.status.success(), "{}", said(&out));
    assert!(eventually(Duration::from_secs(10), || !eliot.dead_letters().is_empty()).await);
    let dead = &eliot.dead_letters()[0];
    assert!(
        dead.reason.starts_with("identity mismatch"),
        "{}",
        dead.reason
    );
    assert_eq!(dead.client_id, "robot_1");
    assert_eq!(stored(&eliot), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thief_cannot_lock_the_real_device_out() {
    let Some(bin) = client("lock-out") else {
        return;
    };
    let eliot = Eliot::start_with(|c| {
        configure(c, AuthMode::Password, None);
        c.auth.max_failed_logins = 5;
    });
    let port = eliot.addr.port();
    let robot = provision(&eliot, "robot_1");
    let thief = provision(&eliot, "thief_1");
    let run = |device: &str, n: u64, args: &[&str]| {
        tokio::task::block_in_place(|| publish(&bin, port, device, n, args))
    };
    // Its own credentials under the device's client id: refused, the id is not its own.
    let stolen_id = run(
        "robot_1",
        0,
        &[
            "-V", "mqttv5", "-i", "robot_1", "-u", "thief_1", "-P", &thief,
        ],
    );
    assert_eq!(stolen_id.status.code(), Some(0x85), "{}", said(&stolen_id));
    // 60 bad messages in the device's name, on one connection: dead letters counted
    // against the thief.
    let lines: Vec<String> = (0..60).map(|n| reading("robot_1", n)).collect();
    let thief_args = [
        "-A",
        "127.0.0.2",
        "-i",
        "thief_1",
        "-u",
        "thief_1",
        "-P",
        &thief,
    ];
    tokio::task::block_in_place(|| publish_lines(&bin, port, "robot_1", &lines, &thief_args));
    // Logs in as robot_1 from `address` with `password`, publishing reading `n`.
    let as_robot = |address: &str, password: &str, n: u64| {
        let args = [
            "-A", address, "-i", "robot_1", "-u", "robot_1", "-P", password,
        ];
        run("robot_1", n, &args)
    };
    // Guessing the device's secret from another address locks that address only.
    for _ in 0..8 {
        as_robot("127.0.0.2", "guess", 0);
    }
    let locked = as_robot("127.0.0.2", &robot, 0);
    assert!(
        !locked.status.success(),
        "the thief's address is locked out, even with the secret"
    );

    let real = as_robot("127.0.0.3", &robot, 100);
    assert!(
        real.status.success(),
        "the real device is served: {}",
        said(&real)
    );
    assert!(eventually(Duration::from_secs(10), || stored(&eliot) == 1).await);
    let (_, metrics) = get(eliot.http_addr, "/metrics").await;
    assert!(
        metrics.contains("eliot_device_breaker_trips_total 1"),
        "the thief's breaker tripped"
    );
}

//! The `eliot` command: `check-config`, configuration errors, and the logs of a run.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rumqttc::QoS;

fn eliot(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eliot"));
    command.args(args);
    for var in [
        "ELIOT_ENV",
        "ELIOT_DATA_DIR",
        "ELIOT_MQTT_ADDR",
        "ELIOT_HTTP_ADDR",
        "ELIOT_API_TOKENS",
        "ELIOT_LOG_LEVEL",
        "ELIOT_LOG_FORMAT",
        "MQTT_BROKER_HOST",
        "MQTT_BROKER_PORT",
        "MQTT_USERNAME",
        "MQTT_PASSWORD",
        "MQTT_CLIENT_CERT_FILE",
        "MQTT_CLIENT_KEY_FILE",
        "MQTT_CA_FILE",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    command.output().expect("the eliot binary runs")
}

/// `check-config` prints the effective configuration (defaults, then the ELIOT_ENV
/// overlay, then environment variables) and exits 0.
#[test]
fn check_config_prints_the_effective_configuration() {
    let out = eliot(&["check-config"], &[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("listen = \"127.0.0.1:1883\""), "{text}");
    assert!(
        text.contains("topic = \"devices/{device_id}/telemetry\""),
        "{text}"
    );
    assert!(text.contains("batch_delay = \"5ms\""), "{text}");

    let prod = eliot(
        &["check-config"],
        &[("ELIOT_ENV", "prod"), ("ELIOT_MQTT_ADDR", "127.0.0.1:2883")],
    );
    let text = String::from_utf8(prod.stdout).unwrap();
    assert!(text.contains("format = \"json\""), "{text}");
    assert!(text.contains("synchronous = \"full\""), "{text}");
    assert!(text.contains("listen = \"127.0.0.1:2883\""), "{text}");
}

/// A file with an unknown key and a bad value: exit status 2, and the error names the
/// file, the key and what was expected.
#[test]
fn a_bad_config_file_is_reported_with_file_key_and_expectation() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "[store]\nbatch_max = \"lots\"").unwrap();
    let path = file.path().to_str().unwrap();
    let out = eliot(&["--config", path, "check-config"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains(path), "{err}");
    assert!(err.contains("`store.batch_max`"), "{err}");
    assert!(err.contains("expected usize"), "{err}");

    let out = eliot(&["check-config"], &[("ELIOT_ENV", "staging")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("unknown environment `staging`"));
}

/// SIGHUP (a closed terminal, `systemctl reload`) would end Eliot at once by its default
/// action, without a drain, whatever it had in flight: it is logged, Eliot goes on serving,
/// and a SIGTERM afterwards still drains and exits 0. TLS is off here: with it on, the TLS
/// listener reads its files again on SIGHUP (tests/identity).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_is_logged_and_eliot_goes_on() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("eliot.log");
    let mut launch = common::process::Launch::new(data.path(), common::process::free_addr())
        .env("ELIOT_LOG_LEVEL", "info")
        .env("ELIOT_LOG_FORMAT", "json");
    launch.log = Some(log.clone());
    let mut eliot = launch.start();
    eliot.hangup();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("\"event\":\"hangup\"")
    {
        if let Some(status) = eliot.exit_within(Duration::ZERO) {
            panic!("eliot exited on SIGHUP ({status})");
        }
        assert!(Instant::now() < deadline, "no `hangup` event logged");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(eliot.running());
    let mut device = Device::connect(eliot.addr, "robot_hup");
    let acked = device
        .publish_all("robot_hup", vec![reading("robot_hup", 1)], QoS::AtLeastOnce)
        .await;
    assert_eq!(acked, 1);
    device.disconnect().await;
    let (status, _) = tokio::task::spawn_blocking(move || eliot.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
}

/// Off loopback, the API v1 needs tokens: without any, Eliot refuses to start (status 2)
/// and says why, naming the key and what to do; with `ELIOT_API_TOKENS`, it starts and the
/// API answers the token, while `/health` stays open. A malformed `ELIOT_API_TOKENS` is
/// refused without quoting its tokens, and `http.reads_off_loopback`, which this replaced,
/// is refused with what replaced it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_is_not_served_off_loopback_without_tokens() {
    let data = tempfile::tempdir().unwrap();
    let mut launch = common::process::Launch::new(data.path(), common::process::free_addr());
    let port = launch.http.port();
    launch.http = std::net::SocketAddr::from(([0, 0, 0, 0], port));
    let data_dir = data.path().to_str().unwrap();
    let refused = eliot(
        &["run"],
        &[
            ("ELIOT_ENV", "test"),
            ("ELIOT_DATA_DIR", data_dir),
            ("ELIOT_HTTP_ADDR", &launch.http.to_string()),
        ],
    );
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("`http.listen`")
            && err.contains("no API token")
            && err.contains("api-token new"),
        "{err}"
    );

    for (tokens, says) in [
        ("read:short", "at least 16 characters"),
        ("reader-token-0123456789", "expected role:token"),
        ("reader-token-0123456789:read", "the role before `:`"),
    ] {
        let out = eliot(&["check-config"], &[("ELIOT_API_TOKENS", tokens)]);
        assert_eq!(out.status.code(), Some(2), "{tokens}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("ELIOT_API_TOKENS") && err.contains(says),
            "{err}"
        );
        assert!(
            !err.contains("0123456789"),
            "a token is never quoted: {err}"
        );
    }
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "[http]\nreads_off_loopback = true").unwrap();
    let out = eliot(
        &["--config", file.path().to_str().unwrap(), "check-config"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("reads_off_loopback") && err.contains("[api] tokens"),
        "{err}"
    );

    let eliot = launch
        .env("ELIOT_API_TOKENS", "read:reader-token-0123456789")
        .start();
    let here = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let (code, body) = get(here, "/api/v1/dead-letters").await;
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("\"unauthorized\""), "{body}");
    assert_eq!(get(here, "/health").await.0, 200);
    drop(eliot);
}

/// `eliot api-token new` prints a fresh token and the line that keeps its hash; `hash`
/// gives the same line for that token, read on standard input; neither reads the
/// configuration (one refused for want of tokens is where they are needed).
#[test]
fn api_token_new_prints_a_token_and_the_line_that_keeps_its_hash() {
    let out = eliot(
        &["api-token", "new", "--role", "admin"],
        &[("ELIOT_HTTP_ADDR", "0.0.0.0:1")],
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    let [token, line] = lines[..] else {
        panic!("a token and a line: {text}")
    };
    assert_eq!(token.len(), 43, "{text}");
    assert!(
        line.starts_with("\"admin:sha256:") && !line.contains(token),
        "{text}"
    );
    let mut hash = Command::new(env!("CARGO_BIN_EXE_eliot"))
        .args(["api-token", "hash", "--role", "admin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(hash.stdin.take().unwrap(), "{token}").unwrap();
    let hashed = hash.wait_with_output().unwrap();
    assert_eq!(String::from_utf8(hashed.stdout).unwrap().trim(), line);
    let bad = eliot(&["api-token", "new", "--role", "root"], &[]);
    assert_eq!(bad.status.code(), Some(2));
}

/// The device commands work on the database of a data directory. One that only reads or
/// changes devices, given a mistyped directory, says there is no database there and leaves
/// nothing behind; `device add` on a shared directory (1777, as `/tmp` is) creates the
/// database without closing the directory to its other users.
#[cfg(unix)]
#[test]
fn device_commands_refuse_a_missing_database_and_leave_a_shared_directory_shared() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let mistyped = parent.path().join("dta");
    let env = |dir: &std::path::Path| vec![("ELIOT_DATA_DIR", dir.to_str().unwrap().to_owned())];
    let run = |args: &[&str], dir: &std::path::Path| {
        let env = env(dir);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        eliot(args, &env)
    };
    for args in [
        &["device", "list"][..],
        &["device", "rotate", "robot_001"],
        &["device", "remove", "robot_001"],
    ] {
        let out = run(args, &mistyped);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("there is no database at"), "{args:?}: {err}");
        assert!(
            !mistyped.exists(),
            "{args:?} created {}",
            mistyped.display()
        );
    }

    let shared = parent.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = run(&["device", "add", "robot_001"], &shared);
    assert!(out.status.success(), "{out:?}");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&shared), 0o1777);
    assert_eq!(mode(&shared.join("eliot.db")), 0o600);
    let out = run(&["device", "list"], &shared);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("robot_001"));
}

/// A port already in use stops the start with a clear log line and exit status 1.
#[test]
fn a_busy_port_fails_the_start_clearly() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let data = tempfile::tempdir().unwrap();
    let out = eliot(
        &[],
        &[
            ("ELIOT_ENV", "test"),
            ("ELIOT_MQTT_ADDR", &addr),
            ("ELIOT_DATA_DIR", data.path().to_str().unwrap()),
            ("ELIOT_LOG_FORMAT", "json"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("\"event\":\"start_failed\""), "{err}");
    assert!(err.contains(&addr), "{err}");
}

/// In JSON format every line is one object with a stable `event` key: a run logs the
/// listener, the device's connection, the rejected message with its reason, and the
/// shutdown. The device's password appears nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_typed_events_and_never_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let data = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_eliot"))
        .env("ELIOT_ENV", "test")
        .env("ELIOT_LOG_FORMAT", "json")
        .env("ELIOT_LOG_LEVEL", "info")
        .env("ELIOT_DATA_DIR", data.path())
        .env("ELIOT_MQTT_ADDR", addr.to_string())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "eliot listens within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut options = options(addr, "robot_001");
    options.set_credentials("robot_001", "s3cret-Pa55word");
    let mut device = Device::connect_with(options);
    let acked = device
        .publish_all("robot_001", vec!["{not json".into()], QoS::AtLeastOnce)
        .await;
    assert_eq!(acked, 1);
    device.disconnect().await;

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success());
    let logs = String::from_utf8(out.stderr).unwrap();
    assert!(
        !logs.contains("s3cret-Pa55word"),
        "the password leaked:\n{logs}"
    );

    let events: Vec<serde_json::Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let find = |name: &str| {
        events
            .iter()
            .find(|e| e["event"] == name)
            .unwrap_or_else(|| panic!("no `{name}` event in:\n{logs}"))
    };
    assert_eq!(find("listening")["addr"], addr.to_string());
    assert_eq!(find("device_connected")["client_id"], "robot_001");
    let rejected = find("message_rejected");
    assert_eq!(rejected["topic"], "devices/robot_001/telemetry");
    assert!(rejected["reason"]
        .as_str()
        .unwrap()
        .starts_with("payload is not valid JSON"));
    assert_eq!(find("shutdown_finished")["forced"], false);
}

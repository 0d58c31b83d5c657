//! Secrets: provisioning, the right one accepted, wrong and unknown ones refused with the
//! code each MQTT version has for it, and no secret ever in a log line.

use super::*;
use eliot_actors::{AuthMode, CapturedLogs};

#[test]
fn device_add_prints_the_secret_once_on_the_last_line_and_keeps_only_a_hash() {
    let eliot = Eliot::start();
    let secret = provision(&eliot, "robot_1");
    assert!(
        secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()),
        "{secret}"
    );
    let hash: String = eliot
        .db()
        .query_row(
            "SELECT secret_hash FROM devices WHERE device_id = 'robot_1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$") && !hash.contains(&secret),
        "{hash}"
    );

    let eliot_cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_eliot"))
            .args(args)
            .env("ELIOT_ENV", "test")
            .env("ELIOT_DATA_DIR", &eliot.config.store.data_dir)
            .output()
            .unwrap()
    };
    let list = eliot_cli(&["device", "list"]);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains("robot_1") && !listed.contains(&secret),
        "{listed}"
    );
    let rotated = eliot_cli(&["device", "rotate", "robot_1"]);
    let new = String::from_utf8_lossy(&rotated.stdout)
        .lines()
        .last()
        .unwrap()
        .to_owned();
    assert!(rotated.status.success() && new != secret && new.len() == 64);
    let again = eliot_cli(&["device", "add", "robot_1"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert!(eliot_cli(&["device", "remove", "robot_1"]).status.success());
    let gone = eliot_cli(&["device", "remove", "robot_1"]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no device `robot_1`"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_secret_is_served_and_wrong_or_unknown_ones_get_the_right_refusal() {
    let Some(bin) = client("secrets") else {
        return;
    };
    let eliot = eliot_with(AuthMode::Password, None);
    let secret = provision(&eliot, "robot_1");
    let port = eliot.addr.port();
    let as_robot = |password: &str, version: &str| {
        let args = [
            "-V", version, "-i", "robot_1", "-u", "robot_1", "-P", password,
        ];
        tokio::task::block_in_place(|| publish(&bin, port, "robot_1", 0, &args))
    };
    for version in ["mqttv311", "mqttv5"] {
        let out = as_robot(&secret, version);
        assert!(out.status.success(), "{version}: {}", said(&out));
    }
    assert_eq!(stored(&eliot), 1, "the same reading twice is stored once");

    let wrong = as_robot("not-the-secret", "mqttv311");
    assert!(
        said(&wrong).contains("bad user name or password"),
        "{}",
        said(&wrong)
    );
    let wrong_v5 = as_robot("not-the-secret", "mqttv5");
    assert_eq!(
        wrong_v5.status.code(),
        Some(0x86),
        "v5 0x86: {}",
        said(&wrong_v5)
    );
    let unknown = [
        "-V", "mqttv5", "-i", "robot_9", "-u", "robot_9", "-P", &secret,
    ];
    let unknown = tokio::task::block_in_place(|| publish(&bin, port, "robot_9", 0, &unknown));
    assert_eq!(
        unknown.status.code(),
        Some(0x86),
        "unknown device: {}",
        said(&unknown)
    );
    let anonymous = ["-V", "mqttv311", "-i", "robot_1"];
    let anonymous = tokio::task::block_in_place(|| publish(&bin, port, "robot_1", 1, &anonymous));
    assert!(
        said(&anonymous).contains("not authorised"),
        "{}",
        said(&anonymous)
    );
    let anonymous_v5 = ["-V", "mqttv5", "-i", "robot_1"];
    let anonymous_v5 =
        tokio::task::block_in_place(|| publish(&bin, port, "robot_1", 1, &anonymous_v5));
    assert_eq!(
        anonymous_v5.status.code(),
        Some(0x87),
        "{}",
        said(&anonymous_v5)
    );
    assert_eq!(stored(&eliot), 1);
}

/// The auth and TLS paths run with every record kept (trace level included): no record
/// holds a secret, a password tried, or a private key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_password_or_key_reaches_a_log_line_at_trace_level() {
    let Some(bin) = client("secrets in logs") else {
        return;
    };
    let pki = Pki::new();
    let logs = CapturedLogs::default();
    let eliot = Eliot::start_logged(
        |c| configure(c, AuthMode::PasswordOrCertificate, Some(&pki)),
        logs.logger(),
    );
    let secret = provision(&eliot, "robot_1");
    let (port, tls_port) = (eliot.addr.port(), eliot.tls_addr.unwrap().port());
    let client_cert = pki.client("robot_1");
    let tls = tls_args(&pki, Some(&client_cert));
    let mut tls: Vec<&str> = tls.iter().map(String::as_str).collect();
    tls.extend(["-i", "robot_1"]);
    tokio::task::block_in_place(|| {
        publish(
            &bin,
            port,
            "robot_1",
            0,
            &["-i", "robot_1", "-u", "robot_1", "-P", &secret],
        );
        publish(
            &bin,
            port,
            "robot_1",
            1,
            &["-i", "robot_1", "-u", "robot_1", "-P", "guess-Xy7"],
        );
        publish(&bin, tls_port, "robot_1", 2, &tls);
        publish(
            &bin,
            tls_port,
            "robot_1",
            3,
            &[&tls[..], &["-u", "robot_1", "-P", "tls-guess-Q"]].concat(),
        );
    });
    assert!(eventually(Duration::from_secs(10), || stored(&eliot) >= 2).await);
    let key = std::fs::read_to_string(&client_cert.1).unwrap();
    let key_body = key.lines().nth(1).expect("a PEM body line").to_owned();
    let server_key = std::fs::read_to_string(pki.server_files().key).unwrap();
    let server_key_body = server_key.lines().nth(1).unwrap().to_owned();
    let records = format!("{:?}", logs.records());
    assert!(records.len() > 1_000, "records were kept: {records}");
    for needle in [
        &secret,
        "guess-Xy7",
        "tls-guess-Q",
        &key_body,
        &server_key_body,
    ] {
        assert!(!records.contains(needle), "`{needle}` in the logs");
    }
    let config = format!("{:?}", eliot.config);
    assert!(!config.contains("guess") && !config.contains(&secret));
}

/// A device's secret typed into the username field (and the password field) of a CONNECT,
/// to an Eliot process logging at trace level: the refusal is logged, naming the username
/// only by its digest prefix; the secret is in no line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_sent_as_the_username_is_not_logged() {
    let eliot = Outside::start(AuthMode::Password, None, "");
    let secret = eliot.provision("robot_1");
    let (code, _) = login_from([127, 0, 0, 1], eliot.eliot.addr, &secret, &secret).await;
    assert_eq!(code, Some(v4::ConnectReturnCode::BadUserNamePassword));
    let refused = |logged: &str| {
        logged
            .lines()
            .any(|l| l.contains("connection_refused") && l.contains("bad_credentials"))
    };
    assert!(
        eventually(Duration::from_secs(10), || refused(&eliot.logged())).await,
        "the refusal is logged: {}",
        eliot.logged()
    );
    let logged = eliot.logged();
    assert!(logged.lines().count() > 5, "records were kept: {logged}");
    assert!(
        !logged.contains(&secret),
        "the secret is in the log: {logged}"
    );
    assert!(
        !logged.contains(&secret[..16]),
        "part of the secret is logged"
    );
}

//! Mutual TLS: a client certificate signed by the configured CA that names a provisioned
//! device authenticates it without a password; every other certificate, or none, is
//! refused.
//! The listener's files are read again on SIGHUP, without dropping connections.

use std::io::Write;
use std::process::Stdio;

use super::common::process::{free_addr, EliotProcess};
use super::*;
use eliot_actors::AuthMode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_client_certificate_authenticates_the_device_without_a_password() {
    let Some(bin) = client("certificate accepted") else {
        return;
    };
    let pki = Pki::new();
    let eliot = eliot_with(AuthMode::Certificate, Some(&pki));
    provision_certificate(&eliot.config.store.data_dir, "robot_1");
    let port = eliot.tls_addr.unwrap().port();
    let cert = pki.client("robot_1");
    for version in ["mqttv311", "mqttv5"] {
        let mut args = tls_args(&pki, Some(&cert));
        args.extend(["-V", version, "-i", "robot_1"].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = tokio::task::block_in_place(|| publish(&bin, port, "robot_1", 0, &args));
        assert!(out.status.success(), "{version}: {}", said(&out));
    }
    assert_eq!(stored(&eliot), 1);
    // With certificates only, the plain port takes nobody.
    let plain = ["-i", "robot_1"];
    let out =
        tokio::task::block_in_place(|| publish(&bin, eliot.addr.port(), "robot_1", 1, &plain));
    assert!(said(&out).contains("not authorised"), "{}", said(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_foreign_misnamed_and_missing_certificates_are_refused() {
    let Some(bin) = client("certificates refused") else {
        return;
    };
    let pki = Pki::new();
    let eliot = eliot_with(AuthMode::Certificate, Some(&pki));
    // Both provisioned: each certificate is refused for what it is, not for the device.
    provision_certificate(&eliot.config.store.data_dir, "robot_1");
    provision_certificate(&eliot.config.store.data_dir, "robot_2");
    let port = eliot.tls_addr.unwrap().port();
    let cases = [
        ("expired", Some(pki.expired_client("robot_1"))),
        ("from another CA", Some(pki.foreign_client("robot_1"))),
        ("naming another device", Some(pki.client("robot_2"))),
        ("none", None),
    ];
    for (case, cert) in &cases {
        let mut args = tls_args(&pki, cert.as_ref());
        args.extend(["-V", "mqttv5", "-i", "robot_1"].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = tokio::task::block_in_place(|| publish(&bin, port, "robot_1", 0, &args));
        assert!(!out.status.success(), "{case} accepted: {}", said(&out));
        if *case == "naming another device" {
            assert_eq!(out.status.code(), Some(0x87), "{case}: {}", said(&out));
        }
    }
    assert_eq!(stored(&eliot), 0);
}

/// A TLS device that stays connected (`mosquitto_pub -l`: one message per line of its
/// standard input) across a SIGHUP that replaces the server certificate: its messages
/// before and after are stored, and a new handshake gets the new certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_and_keeps_the_connections() {
    let Some(bin) = client("sighup") else {
        return;
    };
    let pki = Pki::new();
    let data = tempfile::tempdir().unwrap();
    let (cert, key) = (
        data.path().join("server.pem"),
        data.path().join("server.key"),
    );
    let server = pki.server_files();
    std::fs::copy(&server.cert, &cert).unwrap();
    std::fs::copy(&server.key, &key).unwrap();
    let tls_addr = free_addr();
    let config = data.path().join("tls.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\nmode = \"certificate\"\n[tls]\nenabled = true\nlisten = \"{tls_addr}\"\n\
             cert_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"\n",
            cert.display(),
            key.display(),
            pki.ca_file().display()
        ),
    )
    .unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let eliot = EliotProcess::start_with_args(data.path(), free_addr(), &[], &args);
    provision_certificate(data.path(), "robot_1");
    let db = data.path().join("eliot.db");
    let stored = || -> i64 {
        rusqlite::Connection::open(&db)
            .and_then(|c| c.query_row("SELECT count(*) FROM readings", [], |r| r.get(0)))
            .unwrap_or(0)
    };

    let mut device = Command::new(&bin);
    device
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &tls_addr.port().to_string(),
            "-q",
            "1",
            "-l",
        ])
        .args(tls_args(&pki, Some(&pki.client("robot_1"))))
        .args(["-i", "robot_1", "-t", &topic("robot_1")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut device = device.spawn().unwrap();
    let mut lines = device.stdin.take().unwrap();
    writeln!(lines, "{}", reading("robot_1", 0)).unwrap();
    assert!(eventually(Duration::from_secs(10), || stored() == 1).await);
    assert_eq!(served_subject(tls_addr.port(), &pki), "CN=localhost");

    let renewed = pki.server_named("eliot-renewed");
    std::fs::copy(&renewed.cert, &cert).unwrap();
    std::fs::copy(&renewed.key, &key).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &eliot.pid().to_string()])
        .status();
    assert!(hup.unwrap().success());
    let reloaded = eventually(Duration::from_secs(10), || {
        served_subject(tls_addr.port(), &pki) == "CN=eliot-renewed"
    })
    .await;
    assert!(reloaded, "new handshakes get the new certificate");
    writeln!(lines, "{}", reading("robot_1", 1)).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || stored() == 2).await,
        "the connection made before the reload still works"
    );
    drop(lines);
    let _ = device.wait();
    assert!(eliot.terminate().0.success());
}

/// The subject of the certificate the TLS listener on `port` presents now.
fn served_subject(port: u16, pki: &Pki) -> String {
    let mut command = Command::new("openssl");
    command
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-CAfile",
        ])
        .arg(pki.ca_file())
        .stdin(Stdio::null());
    let out = run_with_timeout(&mut command, Duration::from_secs(10)).expect("openssl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("subject="))
        .map(|s| s.trim().replace(' ', ""))
        .unwrap_or_default()
}

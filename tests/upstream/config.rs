//! `eliot check-config` on the upstream mode, configured as the original Eliot was: from
//! `MQTT_*` environment variables. Every problem names its key and, for a file, the file
//! and what is wrong with it. No broker is needed.

use std::process::{Command, Output};

use super::common::certs::Pki;

fn check_config(env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eliot"));
    command.arg("check-config").env("ELIOT_ENV", "test");
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("MQTT_")) {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().expect("the eliot binary runs")
}

fn errors(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_original_variables_turn_the_mode_on_and_the_password_is_shown_redacted() {
    let pki = Pki::new();
    let ca = pki.ca_file();
    let (cert, key) = pki.client("eliot");
    let out = check_config(&[
        ("MQTT_BROKER_HOST", "broker.example"),
        ("MQTT_BROKER_PORT", "8884"),
        ("MQTT_USERNAME", "ingest"),
        ("MQTT_PASSWORD", "s3cret-password-99"),
        ("MQTT_CA_FILE", ca.to_str().unwrap()),
        ("MQTT_CLIENT_CERT_FILE", cert.to_str().unwrap()),
        ("MQTT_CLIENT_KEY_FILE", key.to_str().unwrap()),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("host = \"broker.example\""), "{text}");
    assert!(text.contains("port = 8884"), "{text}");
    assert!(text.contains("password = \"(redacted)\""), "{text}");
    assert!(!text.contains("s3cret-password-99"), "{text}");
    let upstream = text.split("[upstream]").nth(1).unwrap();
    assert!(upstream.contains("enabled = true"), "{text}");
}

#[test]
fn tls_without_a_ca_is_refused_unless_the_system_roots_are_chosen() {
    let text = errors(&check_config(&[("MQTT_BROKER_HOST", "broker.example")]));
    assert!(text.contains("`upstream.ca_file`"), "{text}");
    assert!(text.contains("system_roots = true"), "{text}");
}

#[test]
fn a_port_out_of_range_is_named() {
    let pki = Pki::new();
    let ca = pki.ca_file();
    let env = [
        ("MQTT_BROKER_HOST", "broker.example"),
        ("MQTT_CA_FILE", ca.to_str().unwrap()),
        ("MQTT_BROKER_PORT", "70000"),
    ];
    let text = errors(&check_config(&env));
    assert!(
        text.contains("`upstream.port`: expected a port from 1 to 65535"),
        "{text}"
    );
}

#[test]
fn unreadable_expired_and_mismatched_files_each_say_which_and_why() {
    let pki = Pki::new();
    let ca = pki.ca_file();
    let ca = ca.to_str().unwrap();
    let (good_cert, good_key) = pki.client("eliot");
    let (expired_cert, expired_key) = pki.expired_client("eliot");
    let (_, other_key) = pki.client("someone-else");
    let s = |p: &std::path::PathBuf| p.to_str().unwrap().to_owned();
    let cases = [
        (
            (
                "/nonexistent/ca.pem".to_owned(),
                s(&good_cert),
                s(&good_key),
            ),
            ["`upstream.ca_file`", "/nonexistent/ca.pem", "cannot read"],
        ),
        (
            (ca.to_owned(), s(&expired_cert), s(&expired_key)),
            ["`upstream.client_cert_file`", "expired on", "CN=eliot"],
        ),
        (
            (ca.to_owned(), s(&good_cert), s(&other_key)),
            [
                "`upstream.client_key_file`",
                "is not the key of the certificate",
                "",
            ],
        ),
        (
            (ca.to_owned(), s(&good_key), s(&good_key)),
            [
                "`upstream.client_cert_file`",
                "holds no PEM certificate",
                "",
            ],
        ),
    ];
    for ((ca, cert, key), expected) in cases {
        let text = errors(&check_config(&[
            ("MQTT_BROKER_HOST", "broker.example"),
            ("MQTT_CA_FILE", &ca),
            ("MQTT_CLIENT_CERT_FILE", &cert),
            ("MQTT_CLIENT_KEY_FILE", &key),
        ]));
        for needle in expected {
            assert!(text.contains(needle), "{needle:?} in {text}");
        }
    }
}

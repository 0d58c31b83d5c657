//! Insecure defaults refused: `none` only on loopback; `prod` requires authentication.

use super::*;

fn check_config(env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eliot"))
        .arg("check-config")
        .env_remove("ELIOT_AUTH_MODE")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn none_on_a_non_loopback_listener_refuses_to_start_and_says_why() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_eliot"))
        .env("ELIOT_ENV", "test")
        .env("ELIOT_DATA_DIR", data.path())
        .env("ELIOT_MQTT_ADDR", "0.0.0.0:0")
        .env("ELIOT_AUTH_MODE", "none")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("`auth.mode`") && text.contains("loopback"),
        "{text}"
    );
}

#[test]
fn prod_requires_authentication_and_dev_keeps_none_on_loopback() {
    let prod = check_config(&[("ELIOT_ENV", "prod")]);
    assert!(prod.status.success(), "{prod:?}");
    let text = String::from_utf8_lossy(&prod.stdout);
    assert!(
        text.contains("mode = \"password_or_certificate\""),
        "{text}"
    );
    let open = check_config(&[("ELIOT_ENV", "prod"), ("ELIOT_AUTH_MODE", "none")]);
    assert_eq!(open.status.code(), Some(2));
    let dev = check_config(&[("ELIOT_ENV", "dev")]);
    assert!(String::from_utf8_lossy(&dev.stdout).contains("mode = \"none\""));
}

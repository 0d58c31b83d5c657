//! Device identity with third-party clients: Mosquitto's `mosquitto_pub` connects with a
//! secret from `eliot device add`, or over TLS with a client certificate made by rcgen.
//! Without Mosquitto's clients these tests say they were skipped; under CI they fail.

#[path = "../common/mod.rs"]
mod common;

mod binding;
mod certificates;
mod limits;
mod revocation;
mod secrets;
mod startup;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::certs::Pki;
use common::mosquitto::{find_tool, run_with_timeout};
use common::*;
use eliot::config::Config;
use eliot_actors::AuthMode;

/// `mosquitto_pub`, or `None` (the test is skipped) where it is not installed.
fn client(test: &str) -> Option<PathBuf> {
    match find_tool("mosquitto_pub") {
        Ok(path) => Some(path),
        Err(why) if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) => {
            panic!("{test}: CI must have mosquitto_pub (.ci/run installs mosquitto-clients): {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED {test}: mosquitto_pub not found ({why}); install mosquitto-clients");
            None
        }
    }
}

/// `eliot device ARGS` with the real binary, on the database in `data_dir`, as an
/// operator runs it beside the server; it must succeed.
fn device_command(data_dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_eliot"))
        .arg("device")
        .args(args)
        .env("ELIOT_ENV", "test")
        .env("ELIOT_DATA_DIR", data_dir)
        .output()
        .expect("eliot device runs");
    assert!(out.status.success(), "eliot device {args:?}: {out:?}");
    out
}

/// Provisions `device` with the real binary, on `eliot`'s database; its secret, read from
/// the last line of standard output as a script would.
fn provision(eliot: &Eliot, device: &str) -> String {
    let out = device_command(&eliot.config.store.data_dir, &["add", device]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout.lines().last().expect("a last line").to_owned()
}

/// Provisions `device` without a secret: it logs in by client certificate only.
fn provision_certificate(data_dir: &Path, device: &str) {
    device_command(data_dir, &["add", "--certificate", device]);
}

/// Eliot requiring `mode`, over TCP and, with `pki`, over TLS with client certificates.
fn eliot_with(mode: AuthMode, pki: Option<&Pki>) -> Eliot {
    Eliot::start_with(|c| configure(c, mode, pki))
}

fn configure(c: &mut Config, mode: AuthMode, pki: Option<&Pki>) {
    c.auth.mode = mode;
    if let Some(pki) = pki {
        let server = pki.server_files();
        c.tls.enabled = true;
        c.tls.listen = "127.0.0.1:0".parse().unwrap();
        c.tls.cert_file = server.cert;
        c.tls.key_file = server.key;
        c.tls.client_ca_file = pki.ca_file();
    }
}

/// One `mosquitto_pub` run: a reading of `device` at QoS 1 on `device`'s topic, with
/// `args` for the connection.
fn publish(bin: &Path, port: u16, device: &str, n: u64, args: &[&str]) -> Output {
    let mut command = Command::new(bin);
    command
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(args)
        .args(["-t", &topic(device), "-m", &reading(device, n)]);
    run_with_timeout(&mut command, Duration::from_secs(15)).expect("mosquitto_pub ends")
}

/// `mosquitto_pub -l`: one connection publishing each of `lines` on `device`'s topic.
fn publish_lines(bin: &Path, port: u16, device: &str, lines: &[String], args: &[&str]) -> Output {
    use std::io::Write;
    let mut child = Command::new(bin)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-l"])
        .args(args)
        .args(["-t", &topic(device)])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_pub starts");
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        let _ = writeln!(stdin, "{line}");
    }
    drop(stdin);
    child.wait_with_output().expect("mosquitto_pub ends")
}

fn said(out: &Output) -> String {
    format!(
        "status {:?}, stderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

fn stored(eliot: &Eliot) -> i64 {
    eliot
        .db()
        .query_row("SELECT count(*) FROM readings", [], |r| r.get(0))
        .unwrap()
}

/// TLS arguments for `mosquitto_pub`: trust the test CA, present `cert` if given.
fn tls_args(pki: &Pki, cert: Option<&(PathBuf, PathBuf)>) -> Vec<String> {
    let mut args = vec!["--cafile".to_owned(), pki.ca_file().display().to_string()];
    if let Some((cert, key)) = cert {
        args.extend(["--cert".to_owned(), cert.display().to_string()]);
        args.extend(["--key".to_owned(), key.display().to_string()]);
    }
    args
}

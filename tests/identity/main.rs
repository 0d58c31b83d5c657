//! Device identity with third-party clients: Mosquitto's `mosquitto_pub` connects with a
//! secret from `eliot device add`, or over TLS with a client certificate made by rcgen.
//! Without Mosquitto's clients these tests say they were skipped; under CI they fail.

#[path = "../common/mod.rs"]
mod common;

mod binding;
mod certificates;
mod flood;
mod limits;
mod lockout;
mod revocation;
mod secrets;
mod startup;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::certs::Pki;
use common::mosquitto::{find_tool, run_with_timeout};
use common::process::{free_addr, EliotProcess};
use common::*;
use eliot::config::Config;
use eliot_actors::AuthMode;
use rumqttc::mqttbytes::v4;

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
    provision_in(&eliot.config.store.data_dir, device)
}

/// Provisions `device` with the real binary, on the database in `data_dir`.
fn provision_in(data_dir: &Path, device: &str) -> String {
    let out = device_command(data_dir, &["add", device]);
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

/// Eliot as a process of its own (the real binary), requiring `mode`, with a TLS listener
/// taking client certificates from `pki` if given, and `auth` lines added to its `[auth]`
/// section. It logs at trace level to `log` (in `data`).
struct Outside {
    data: tempfile::TempDir,
    eliot: EliotProcess,
    tls_addr: Option<std::net::SocketAddr>,
    log: PathBuf,
}

impl Outside {
    fn start(mode: AuthMode, pki: Option<&Pki>, auth: &str) -> Outside {
        let data = tempfile::tempdir().unwrap();
        let mut config = format!("[auth]\nmode = \"{}\"\n{auth}\n", mode.name());
        let tls_addr = pki.map(|pki| {
            let (server, addr) = (pki.server_files(), free_addr());
            config += &format!(
                "[tls]\nenabled = true\nlisten = \"{addr}\"\ncert_file = \"{}\"\n\
                 key_file = \"{}\"\nclient_ca_file = \"{}\"\n",
                server.cert.display(),
                server.key.display(),
                pki.ca_file().display()
            );
            addr
        });
        let log = data.path().join("eliot.log");
        let mut launch = process::Launch::new(data.path(), free_addr())
            .config(&config)
            .env("ELIOT_LOG_LEVEL", "trace")
            .env("ELIOT_LOG_FORMAT", "json");
        launch.log = Some(log.clone());
        let eliot = launch.start();
        Outside {
            data,
            eliot,
            tls_addr,
            log,
        }
    }

    fn provision(&self, device: &str) -> String {
        provision_in(self.data.path(), device)
    }

    /// Everything it has logged so far.
    fn logged(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A counter (or gauge) from `/metrics`, by its whole series name; 0 when absent.
    async fn metric(&self, series: &str) -> f64 {
        let (_, metrics) = get(self.eliot.http, "/metrics").await;
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

/// A 3.1.1 CONNECT as `device` (client id and username) with `password`, sent over TCP
/// from the loopback address `from` to `addr`; answers the CONNACK's code, or `None` when
/// the connection is closed without one, and how long the CONNACK took from the CONNECT.
async fn login_from(
    from: [u8; 4],
    addr: std::net::SocketAddr,
    device: &str,
    password: &str,
) -> (Option<v4::ConnectReturnCode>, Duration) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((from, 0).into()).unwrap();
    let stream = socket.connect(addr).await.expect("Eliot accepts");
    let mut raw = scripted::Raw4::over(stream);
    let mut connect = scripted::connect4(device);
    connect.set_login(device, password);
    let sent = std::time::Instant::now();
    raw.send(&v4::Packet::Connect(connect)).await;
    // Longer than Eliot's connect timeout (10 s), which closes a CONNECT unanswered by then.
    let answer = match raw.next_within(Duration::from_secs(30)).await {
        scripted::Next::Packet(v4::Packet::ConnAck(ack)) => Some(ack.code),
        scripted::Next::Closed => None,
        other => panic!("expected a CONNACK, got {other:?}"),
    };
    (answer, sent.elapsed())
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

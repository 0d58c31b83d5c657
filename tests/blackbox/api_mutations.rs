//! The API v1's mutations against the `eliot` binary, over HTTP, with real MQTT devices and
//! the database read by the `sqlite3` shell: provisioning (the secret shown once logs in),
//! rotate and delete closing live connections, delete keeping or purging readings, replay
//! after a configuration change (one id, and a filter walked page by page), and the roles
//! each mutation needs.
//!
//! - `devices`: `POST /devices`, `POST /devices/{id}/rotate`, `DELETE /devices/{id}`;
//! - `replay`: `POST /dead-letters/{id}/replay` and `POST /dead-letters/replay`;
//! - `roles`: every mutation with a read token (403) and without one (401).
//!
//! What they share is here: HTTP calls with a JSON body, and a device that logs in and
//! keeps publishing until the server closes its connection, saying when that was.

mod devices;
mod replay;
mod roles;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use libtest_mimic::Trial;
use rumqttc::mqttbytes::{v4, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::scripted::{connect4, Raw4};
use crate::common::{reading, topic};
use crate::support::trial;

pub fn tests() -> Vec<Trial> {
    vec![
        trial(
            "api_mutations::provisioning_shows_a_secret_once_that_logs_in",
            devices::provisioning,
        ),
        trial(
            "api_mutations::rotate_closes_the_live_connection_and_only_the_new_secret_logs_in",
            devices::rotate,
        ),
        trial(
            "api_mutations::delete_closes_a_publishing_device_where_no_credentials_are_needed",
            devices::delete_without_credentials,
        ),
        trial(
            "api_mutations::delete_revokes_keeps_readings_and_purge_deletes_only_that_devices",
            devices::delete_and_purge,
        ),
        trial(
            "api_mutations::without_the_fleet_provisioning_rotate_and_delete_still_work",
            devices::without_the_fleet,
        ),
        trial(
            "api_mutations::a_dead_letter_made_valid_by_a_configuration_change_is_replayed",
            replay::after_a_configuration_change,
        ),
        trial(
            "api_mutations::every_mutation_needs_an_admin_token",
            roles::every_mutation_needs_admin,
        ),
    ]
}

/// Generous against promises of about a second: this machine's two cores are shared.
pub const WITHIN: Duration = Duration::from_secs(10);

/// One answer of the API.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The body as JSON (`Null` if it is not).
    pub body: serde_json::Value,
    pub location: Option<String>,
    /// The body as it came, to look for what must not be there (a secret).
    pub text: String,
}

impl Answer {
    /// The error body's code, if the body is one.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

/// What a request carries as its body.
pub enum Body {
    None,
    Json(serde_json::Value),
    /// Sent as it is, with `Content-Type: application/json`.
    Raw(&'static str),
}

/// `method path` on Eliot's HTTP port, with a bearer `token` if given, and `body`.
pub async fn call(
    http: SocketAddr,
    method: &'static str,
    path: &str,
    token: Option<&str>,
    body: Body,
) -> Answer {
    let url = format!("http://{http}{path}");
    let authorization = token.map(|t| format!("Bearer {t}"));
    tokio::task::spawn_blocking(move || {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(20))
            .build();
        let mut request = agent.request(method, &url);
        if let Some(value) = &authorization {
            request = request.set("Authorization", value);
        }
        let sent = match body {
            Body::None => request.call(),
            Body::Json(value) => request.send_json(value),
            Body::Raw(text) => request
                .set("Content-Type", "application/json")
                .send_string(text),
        };
        let response = match sent {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(e) => panic!("{method} {url}: {e}"),
        };
        let status = response.status();
        let location = response.header("Location").map(str::to_owned);
        let text = response.into_string().unwrap_or_default();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or_default(),
            location,
            text,
        }
    })
    .await
    .unwrap()
}

/// `method path` with an admin token.
pub async fn admin(http: SocketAddr, method: &'static str, path: &str, body: Body) -> Answer {
    call(http, method, path, Some(crate::support::ADMIN_TOKEN), body).await
}

/// `POST /api/v1/devices` for `device` (login secret): its secret, shown once.
pub async fn provision(http: SocketAddr, device: &str) -> String {
    let body = Body::Json(serde_json::json!({ "device_id": device }));
    let answer = admin(http, "POST", "/api/v1/devices", body).await;
    assert_eq!(answer.status, 201, "provisioning {device}: {answer:?}");
    let secret = answer.body["secret"].as_str().unwrap_or_default();
    assert!(!secret.is_empty(), "a secret for {device}: {answer:?}");
    secret.to_owned()
}

/// Once the device's connection is closed and the fleet has had a moment (2 s) to hear of
/// the close, the fleet does not know the device: a deleted device does not come back.
pub async fn assert_forgotten(http: SocketAddr, device: &str) {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let path = format!("/api/v1/devices/{device}");
    let answer = call(
        http,
        "GET",
        &path,
        Some(crate::support::READ_TOKEN),
        Body::None,
    )
    .await;
    assert_eq!(
        (answer.status, answer.code()),
        (404, "not_found"),
        "a deleted device is not known to the fleet again: {answer:?}"
    );
}

/// One number from the database, read by the `sqlite3` shell (another process).
pub fn count(db: &Path, sql: &str) -> i64 {
    crate::common::outside::default_reader().number(db, sql)
}

/// The readings of `device` stored, read by the `sqlite3` shell.
pub fn readings_of(db: &Path, device: &str) -> i64 {
    count(
        db,
        &format!("SELECT count(*) FROM readings WHERE device_id = '{device}'"),
    )
}

/// An MQTT 3.1.1 login as `device` (username `device`, password `secret` when given):
/// the connection once accepted, else what the server answered (a CONNACK's refusal, or
/// a close).
pub async fn login(addr: SocketAddr, device: &str, secret: Option<&str>) -> Result<Raw4, String> {
    let mut connect = connect4(device);
    if let Some(secret) = secret {
        connect.set_login(device, secret);
    }
    let mut raw = Raw4::open(addr).await;
    raw.send(&v4::Packet::Connect(connect)).await;
    match raw.next().await {
        Some(v4::Packet::ConnAck(ack)) if ack.code == v4::ConnectReturnCode::Success => Ok(raw),
        Some(v4::Packet::ConnAck(ack)) => Err(format!("refused: {:?}", ack.code)),
        Some(other) => panic!("{device}: expected a CONNACK, got {other:?}"),
        None => Err("closed without a CONNACK".into()),
    }
}

/// A logged-in device publishing a reading at QoS 1 every `period` until the server closes
/// its connection (or a minute passes).
pub struct Publishing {
    acked: Arc<AtomicU64>,
    /// When the server closed the connection; `None` if it never did.
    closed: tokio::task::JoinHandle<Option<Instant>>,
}

impl Publishing {
    /// One reading every `period` (a short one keeps several in flight at once).
    pub fn every(raw: Raw4, device: &str, period: Duration) -> Publishing {
        let acked = Arc::new(AtomicU64::new(0));
        let closed = tokio::spawn(publish_until_closed(
            raw.into_stream(),
            device.to_owned(),
            period,
            acked.clone(),
        ));
        Publishing { acked, closed }
    }

    /// Readings acked so far.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::SeqCst)
    }

    /// Waits until `n` readings were acked: the device is live and storing. Fails at once
    /// if the server closes the connection first.
    pub async fn wait_acked(&self, n: u64, device: &str) {
        let acked = crate::common::eventually(Duration::from_secs(30), || {
            assert!(
                !self.closed.is_finished() || self.acked() >= n,
                "{device}: the server closed the connection after {} acks, before {n}",
                self.acked()
            );
            self.acked() >= n
        })
        .await;
        assert!(acked, "{device}: {n} readings acked, only {}", self.acked());
    }

    /// Waits (up to `WITHIN` after `since`) for the server to close the connection;
    /// fails the test if it does not. Answers the readings acked in all.
    pub async fn closed_within(self, since: Instant, device: &str) -> u64 {
        let deadline = tokio::time::Instant::from_std(since + WITHIN);
        let closed = tokio::time::timeout_at(deadline, self.closed).await;
        let at = match closed {
            Ok(Ok(Some(at))) => at,
            Ok(Ok(None)) => panic!("{device}: the connection stayed open for a minute"),
            Ok(Err(e)) => panic!("{device}: the publishing task failed: {e}"),
            Err(_) => panic!("{device}: still connected {WITHIN:?} after the call"),
        };
        assert!(at >= since, "{device}: closed before the call");
        self.acked.load(Ordering::SeqCst)
    }
}

async fn publish_until_closed(
    stream: TcpStream,
    device: String,
    period: Duration,
    acked: Arc<AtomicU64>,
) -> Option<Instant> {
    let (mut read, mut write) = stream.into_split();
    let mut every = tokio::time::interval(period);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (mut buf, mut n) = (BytesMut::new(), 0u64);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return None,
            _ = every.tick() => {
                n += 1;
                let mut publish = v4::Publish::new(topic(&device), QoS::AtLeastOnce, reading(&device, n));
                publish.pkid = (n % u64::from(u16::MAX)) as u16 + 1;
                let mut out = BytesMut::new();
                v4::Packet::Publish(publish).write(&mut out, usize::MAX).expect("encodes");
                if write.write_all(&out).await.is_err() {
                    return Some(Instant::now());
                }
            }
            got = read.read_buf(&mut buf) => match got {
                Ok(0) | Err(_) => return Some(Instant::now()),
                Ok(_) => loop {
                    match v4::Packet::read(&mut buf, usize::MAX) {
                        Ok(v4::Packet::PubAck(_)) => { acked.fetch_add(1, Ordering::SeqCst); }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                },
            },
        }
    }
}

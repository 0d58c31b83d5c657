//! Admission: what stands between a device's CONNECT and its CONNACK. It decides the
//! client id, asks the device guard whether the device claimed may connect, asks the
//! `Authenticator` who the client is, as the auth mode requires, then records the session
//! durably (so Session Present survives a crash). The guard comes before the secret's
//! check: a device refused anyway costs no Argon2 check.
//!
//! Every step answers `Err(Refusal)` with the CONNACK code to send; the device endpoint
//! sends it and logs why.

use std::future::Future;

use actix::prelude::*;
use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::Encoder;

use super::transport::DeviceWriter;
use crate::identity::credentials::LogPosition;
use crate::identity::{AuthMode, Authenticated, Authenticator, Claim};
use crate::mqtt::packet::{Connect, ConnectCode, Outbound, PeerLimits, ServerLimits, Version};
use crate::mqtt::MqttCodec;
use crate::store::{SessionRequest, Sessions};
use crate::supervision::{GuardRefusal, MayConnect};

/// What admission needs from the rest of the tree.
#[derive(Clone)]
pub struct Gate {
    /// `mqtt.max_client_id_len`.
    pub max_client_id_len: usize,
    /// The per-device breakers.
    pub guard: Recipient<MayConnect>,
    pub sessions: Sessions,
    pub authenticator: Authenticator,
}

/// The session a device was admitted into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The endpoint's id for this connection.
    pub id: u64,
    /// The CONNACK's Session Present.
    pub present: bool,
    /// Set when a v5 device sent an empty client id and Eliot chose one.
    pub assigned_client_id: Option<String>,
    /// True when the session outlives the connection (its end is recorded).
    pub kept: bool,
    /// The device the client authenticated as (`None` with `auth.mode = none`).
    pub identity: Option<String>,
    /// The revocation log's position when its credentials were checked (0 without
    /// authentication): only revocations past it revoke this login (`revoking`).
    pub checked_at: LogPosition,
    /// What its breaker is keyed by: who it is. Its client id, which is its device id
    /// once authenticated; for an anonymous client whose id Eliot chose (a new one at each
    /// CONNECT), its address, so that it cannot shed its cool-down by reconnecting.
    pub guard_key: String,
}

/// Why a CONNECT is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ConnectCode,
    pub reason: String,
    /// Set when the device's own breaker is open.
    pub device: Option<GuardRefusal>,
    /// Set when the client failed to authenticate: counted against its address.
    pub failed_login: bool,
}

impl Refusal {
    /// Eliot cannot take the device now (shutting down, a part unavailable).
    pub fn server(reason: String) -> Refusal {
        Refusal {
            code: ConnectCode::ServerUnavailable,
            reason,
            device: None,
            failed_login: false,
        }
    }

    /// The client is not let in as who it claims to be.
    pub fn not_authorized(reason: String) -> Refusal {
        Refusal {
            code: ConnectCode::NotAuthorized,
            reason,
            device: None,
            failed_login: false,
        }
    }

    /// What a v5 CONNACK tells the device (3.1.1 has nowhere to say it).
    pub fn reason_for_device(&self) -> Option<String> {
        self.device.as_ref().map(|refusal| {
            format!(
                "refused for {} s more: {}",
                refusal.retry_after.as_secs_f64().ceil(),
                refusal.reason
            )
        })
    }
}

/// Admits `connect` as connection `id`, over a transport whose client certificate names
/// `certified`: fills in its client id if it had none, then runs the asynchronous steps
/// (the device guard, authentication, the session). The future owns what it needs; it
/// answers with the client id settled, which authentication may have set.
pub fn admit(
    connect: &mut Connect,
    (id, peer): (u64, std::net::IpAddr),
    certified: std::sync::Arc<[String]>,
    gate: &Gate,
) -> impl Future<Output = Result<(Session, String), Refusal>> + 'static {
    let claim = Claim::of(connect, certified, peer);
    let chose_id = connect.client_id.is_empty();
    // Who the breaker is keyed by: the device claimed, which is who the client is once
    // authenticated (see `bind_client_id`); without authentication, its client id, or its
    // address when Eliot chose the id.
    let guard_key = match (gate.authenticator.mode(), chose_id) {
        (AuthMode::None, true) => format!("address {peer}"),
        (AuthMode::None, false) => connect.client_id.clone(),
        _ => claim.claimed().to_owned(),
    };
    let assigned = match &connect.authentication_method {
        // v5 enhanced authentication: not supported (yet), so refused by name.
        Some(method) => Err(Refusal {
            code: ConnectCode::BadAuthenticationMethod,
            reason: format!(
                "authentication method `{}` is not supported",
                crate::ingest::Quoted::from(method.as_str())
            ),
            device: None,
            failed_login: false,
        }),
        None => assign_client_id(connect, id, gate.max_client_id_len),
    };
    let mut request = session_request(connect, id);
    let gate = gate.clone();
    async move {
        let mut assigned_client_id = assigned?;
        let client_id = guard_key.clone();
        match gate.guard.send(MayConnect { client_id }).await {
            Ok(Ok(())) => {}
            Ok(Err(refusal)) => {
                return Err(Refusal {
                    code: ConnectCode::QuotaExceeded,
                    reason: refusal.reason.clone(),
                    device: Some(refusal),
                    failed_login: false,
                })
            }
            Err(e) => return Err(Refusal::server(format!("device guard unavailable: {e}"))),
        }
        let authenticated = gate
            .authenticator
            .authenticate(claim)
            .await
            .map_err(|refused| Refusal {
                code: refused.code,
                reason: refused.reason,
                device: None,
                failed_login: refused.code != ConnectCode::ServerUnavailable,
            })?;
        let (identity, checked_at) = match authenticated {
            Some(Authenticated { device, checked_at }) => (Some(device), checked_at),
            None => (None, 0),
        };
        if let Some(device) = &identity {
            bind_client_id(
                &mut request.client_id,
                &mut assigned_client_id,
                device,
                chose_id,
            )?;
        }
        let kept = request.keep.is_some();
        let client_id = request.client_id.clone();
        let present = gate
            .sessions
            .open(request)
            .await
            .map_err(|e| Refusal::server(format!("cannot record the session: {e}")))?;
        let session = Session {
            id,
            present,
            assigned_client_id,
            kept,
            identity,
            checked_at,
            guard_key,
        };
        Ok((session, client_id))
    }
}

/// An authenticated client's client id is its device id: so its breaker, its session and
/// the registry all key on who it is, and nobody can take another device's session over by
/// using its client id. Where the client sent none (`chose_id`), the device id is its id.
fn bind_client_id(
    client_id: &mut String,
    assigned: &mut Option<String>,
    device: &str,
    chose_id: bool,
) -> Result<(), Refusal> {
    if chose_id {
        if assigned.is_some() {
            *assigned = Some(device.to_owned());
        }
        *client_id = device.to_owned();
        return Ok(());
    }
    match client_id == device {
        true => Ok(()),
        false => Err(Refusal {
            code: ConnectCode::ClientIdRejected,
            reason: format!(
                "client id `{}` is not the device id `{device}` it authenticated as",
                crate::ingest::Quoted::from(client_id.as_str())
            ),
            device: None,
            failed_login: false,
        }),
    }
}

/// A client id longer than `max_len` bytes is refused. An empty one: 3.1.1 (§3.1.3.1)
/// allows it only with a clean session; 5.0 lets the server choose one and say so in the
/// CONNACK. Answers the id Eliot assigned, if any.
pub fn assign_client_id(
    connect: &mut Connect,
    id: u64,
    max_len: usize,
) -> Result<Option<String>, Refusal> {
    if connect.client_id.len() > max_len {
        return Err(Refusal {
            code: ConnectCode::ClientIdRejected,
            reason: format!(
                "client id of {} bytes, more than the limit of {max_len} (mqtt.max_client_id_len)",
                connect.client_id.len()
            ),
            device: None,
            failed_login: false,
        });
    }
    if !connect.client_id.is_empty() {
        return Ok(None);
    }
    if connect.version == Version::V4 && !connect.clean_start {
        return Err(Refusal {
            code: ConnectCode::ClientIdRejected,
            reason: "empty client id with a persistent session".into(),
            device: None,
            failed_login: false,
        });
    }
    connect.client_id = format!("eliot-{}-{id}", process_tag());
    Ok((connect.version == Version::V5).then(|| connect.client_id.clone()))
}

/// A tag drawn once per process, so that ids Eliot assigns are unique across restarts: an
/// assigned id must never name another device's kept session.
fn process_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        hasher.write_u128(now.as_nanos());
        hasher.write_u32(std::process::id());
        format!("{:016x}", hasher.finish())
    })
}

/// The session a CONNECT asks for: 3.1.1 keeps it for ever unless clean session is set;
/// 5 keeps it for the Session Expiry Interval (0, the default: not past this connection;
/// 0xFFFFFFFF: for ever).
pub fn session_request(connect: &Connect, owner: u64) -> SessionRequest {
    let keep = match connect.version {
        Version::V4 if connect.clean_start => None,
        Version::V4 => Some(None),
        Version::V5 => match connect.session_expiry.unwrap_or(0) {
            0 => None,
            u32::MAX => Some(None),
            seconds => Some(Some(seconds)),
        },
    };
    SessionRequest {
        client_id: connect.client_id.clone(),
        clean_start: connect.clean_start,
        keep,
        owner,
    }
}

/// Answers a CONNECT with a refusal code (and, in v5, the reason), then closes the
/// transport.
pub fn refuse_connect(
    mut writer: DeviceWriter,
    (version, peer): (Version, PeerLimits),
    code: ConnectCode,
    limits: ServerLimits,
    reason: Option<String>,
) {
    let mut buf = BytesMut::new();
    let connack = Outbound::ConnAck {
        code,
        session_present: false,
        assigned_client_id: None,
        limits,
        reason,
    };
    if MqttCodec::for_peer(version, 0, peer)
        .encode(connack, &mut buf)
        .is_ok()
    {
        actix_rt::spawn(async move {
            let _ = writer.write_all(&buf).await;
            let _ = writer.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn connect(version: Version, client_id: &str, clean_start: bool) -> Connect {
        Connect {
            version,
            client_id: client_id.into(),
            clean_start,
            keep_alive: 30,
            will: None,
            username: None,
            password: None,
            session_expiry: None,
            authentication_method: None,
            peer: Default::default(),
        }
    }

    #[test]
    fn an_empty_client_id_is_assigned_or_refused_by_version() {
        let mut v5 = connect(Version::V5, "", false);
        let assigned = format!("eliot-{}-7", process_tag());
        assert_eq!(assign_client_id(&mut v5, 7, 64), Ok(Some(assigned.clone())));
        assert_eq!(v5.client_id, assigned);
        let mut v4_clean = connect(Version::V4, "", true);
        assert_eq!(assign_client_id(&mut v4_clean, 8, 64), Ok(None));
        assert!(v4_clean.client_id.ends_with("-8"), "{}", v4_clean.client_id);
        let mut v4_kept = connect(Version::V4, "", false);
        let refusal = assign_client_id(&mut v4_kept, 9, 64).unwrap_err();
        assert_eq!(refusal.code, ConnectCode::ClientIdRejected);
        let mut named = connect(Version::V4, "robot_001", false);
        assert_eq!(assign_client_id(&mut named, 10, 64), Ok(None));
        assert_eq!(named.client_id, "robot_001");
        let mut long = connect(Version::V5, &"x".repeat(65), false);
        let refusal = assign_client_id(&mut long, 11, 64).unwrap_err();
        assert_eq!(refusal.code, ConnectCode::ClientIdRejected);
        assert!(refusal.reason.contains("65 bytes"), "{}", refusal.reason);
        assert!(!refusal.reason.contains("xxx"), "the id is not quoted");
    }

    #[test]
    fn an_authenticated_client_id_is_its_device_id() {
        let (mut id, mut assigned) = (String::from("robot_1"), None);
        assert!(bind_client_id(&mut id, &mut assigned, "robot_1", false).is_ok());
        let (mut id, mut assigned) = (String::from("robot_2"), None);
        let refusal = bind_client_id(&mut id, &mut assigned, "robot_1", false).unwrap_err();
        assert_eq!(refusal.code, ConnectCode::ClientIdRejected);
        let (mut id, mut assigned) = (String::from("eliot-x-1"), Some("eliot-x-1".into()));
        assert!(bind_client_id(&mut id, &mut assigned, "robot_1", true).is_ok());
        assert_eq!(
            (id.as_str(), assigned.as_deref()),
            ("robot_1", Some("robot_1"))
        );
    }

    #[test]
    fn a_connect_shows_no_password_in_debug() {
        let mut c = connect(Version::V4, "robot_1", true);
        c.password = Some(crate::secret::Secret::new("hunter2-secret"));
        assert!(!format!("{c:?}").contains("hunter2-secret"));
    }

    #[test]
    fn the_session_request_follows_clean_start_and_expiry() {
        assert_eq!(
            session_request(&connect(Version::V4, "d", true), 1).keep,
            None
        );
        assert_eq!(
            session_request(&connect(Version::V4, "d", false), 1).keep,
            Some(None)
        );
        let mut v5 = connect(Version::V5, "d", false);
        assert_eq!(session_request(&v5, 1).keep, None, "no expiry: not kept");
        v5.session_expiry = Some(60);
        assert_eq!(session_request(&v5, 1).keep, Some(Some(60)));
        v5.session_expiry = Some(u32::MAX);
        assert_eq!(session_request(&v5, 1).keep, Some(None));
    }

    #[test]
    fn a_device_refusal_tells_the_device_how_long_it_waits() {
        let refusal = Refusal {
            code: ConnectCode::QuotaExceeded,
            reason: "too many".into(),
            device: Some(GuardRefusal {
                retry_after: Duration::from_millis(4_200),
                reason: "more than 50 rejected messages within 60s".into(),
            }),
            failed_login: false,
        };
        assert_eq!(
            refusal.reason_for_device().unwrap(),
            "refused for 5 s more: more than 50 rejected messages within 60s"
        );
        assert_eq!(Refusal::server("x".into()).reason_for_device(), None);
    }
}

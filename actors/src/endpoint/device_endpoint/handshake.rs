//! From a new socket to the answer to its CONNECT: the first packet read within
//! `mqtt.connect_timeout` (and its first byte within `mqtt.first_byte_timeout`), the login
//! attempt counted, admission run, then the connection started or the device refused.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use actix::prelude::*;
use futures_util::StreamExt;
use tokio_util::codec::FramedRead;

use super::{DeviceEndpoint, NEXT_ID};
use crate::endpoint::admission::{admit, refuse_connect, Gate, Refusal};
use crate::endpoint::transport::{DeviceReader, DeviceWriter, Transport};
use crate::identity::{claimed_name, Attempt, AuthMode};
use crate::mqtt::packet::*;
use crate::mqtt::{CodecError, MqttCodec};
use crate::observe::Event;

/// How a new socket failed to send its CONNECT in time.
enum Silent {
    /// Not a byte within `mqtt.first_byte_timeout`.
    NoByte,
    /// Not the whole CONNECT within `mqtt.connect_timeout`.
    NoConnect,
}

impl DeviceEndpoint {
    /// Reads the transport's first packet, which must be a CONNECT, within
    /// `mqtt.connect_timeout`.
    pub(super) fn handshake(&mut self, transport: Transport, ctx: &mut Context<Self>) {
        let Transport {
            reader,
            writer,
            peer,
            certified,
        } = transport;
        let codec = MqttCodec::new(self.settings.max_packet_size as usize);
        let mut reader = FramedRead::new(reader, codec);
        let timeout = self.settings.connect_timeout;
        let first_byte = self.settings.first_byte_timeout.min(timeout);
        self.count_handshakes(1);
        async move {
            // Reading is cancel-safe: what arrived stays in the read buffer.
            let started = tokio::select! {
                first = reader.next() => Some(first),
                () = tokio::time::sleep(first_byte) => None,
            };
            let first = match started {
                Some(first) => Ok(first),
                None if reader.read_buffer().is_empty() => Err(Silent::NoByte),
                None => tokio::time::timeout(timeout.saturating_sub(first_byte), reader.next())
                    .await
                    .map_err(|_| Silent::NoConnect),
            };
            (first, reader)
        }
        .into_actor(self)
        .map(move |(first, reader), endpoint, ctx| {
            endpoint.count_handshakes(-1);
            endpoint.awaiting_connect.leave(peer.ip());
            let (code, refusal) = match first {
                Ok(Some(Ok(Inbound::Connect(connect)))) => {
                    let transport = (reader, writer, peer);
                    return endpoint.on_connect(connect, transport, certified, ctx);
                }
                Err(Silent::NoByte) => (
                    None,
                    format!("not a byte within {first_byte:?} (mqtt.first_byte_timeout)"),
                ),
                Err(Silent::NoConnect) => (None, format!("no CONNECT within {timeout:?}")),
                Ok(None) => (None, "closed before sending CONNECT".into()),
                Ok(Some(Ok(_))) => (None, "the first packet must be CONNECT".into()),
                Ok(Some(Err(CodecError::UnsupportedProtocol { name, level }))) => {
                    // 3.1.1 §3.2.2.3: answer return code 0x01, then close.
                    let code = ConnectCode::UnsupportedProtocol;
                    let v4 = (Version::V4, PeerLimits::default());
                    refuse_connect(writer, v4, code, endpoint.limits(), None);
                    let why = format!("unsupported protocol `{name}` level {level}");
                    (Some(code), why)
                }
                Ok(Some(Err(e))) => (None, e.to_string()),
            };
            endpoint.refuse(peer, code, &refusal);
        })
        .spawn(ctx);
    }

    /// Admits the device (see `admission`), then starts its connection or refuses it.
    fn on_connect(
        &mut self,
        mut connect: Connect,
        (reader, writer, peer): (
            FramedRead<DeviceReader, MqttCodec>,
            DeviceWriter,
            SocketAddr,
        ),
        certified: std::sync::Arc<[String]>,
        ctx: &mut Context<Self>,
    ) {
        if self.draining {
            let refusal = Refusal::server("server shutting down".into());
            return self.refuse_admission(&connect, peer, writer, refusal);
        }
        let attempt = match self.begin_login(&connect, peer, &certified) {
            Ok(attempt) => attempt,
            Err(refusal) => return self.refuse_admission(&connect, peer, writer, refusal),
        };
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let gate = Gate {
            max_client_id_len: self.settings.max_client_id_len,
            guard: self.links.guard.clone().recipient(),
            sessions: self.links.sessions.clone(),
            authenticator: self.links.authenticator.clone(),
        };
        self.count_handshakes(1);
        let deadline = self.settings.connect_timeout;
        let admitted = admit(&mut connect, (id, peer.ip()), certified, &gate);
        async move { tokio::time::timeout(deadline, admitted).await }
            .into_actor(self)
            .map(move |admitted, endpoint, ctx| {
                endpoint.count_handshakes(-1);
                // A login that got no answer in time counts as failed.
                let failed = admitted.as_ref().map_or(true, |outcome| {
                    outcome.as_ref().is_err_and(|r| r.failed_login)
                });
                if let Some(attempt) = attempt {
                    let now = std::time::Instant::now();
                    endpoint.logins.settle(attempt, failed, now);
                }
                let admitted = admitted.unwrap_or_else(|_| {
                    Err(Refusal::server(format!("no CONNACK within {deadline:?}")))
                });
                match admitted {
                    Ok(_) if endpoint.draining => {
                        let refusal = Refusal::server("server shutting down".into());
                        endpoint.refuse_admission(&connect, peer, writer, refusal)
                    }
                    // Checked before a revocation already acted on (see `revoking`).
                    Ok((session, _))
                        if session.identity.as_deref().is_some_and(|device| {
                            endpoint
                                .revocations
                                .recent
                                .revoked_after(session.checked_at, device)
                        }) =>
                    {
                        let refusal = Refusal::not_authorized(
                            "credentials revoked while the device was logging in".into(),
                        );
                        endpoint.refuse_admission(&connect, peer, writer, refusal)
                    }
                    Ok((session, client_id)) => {
                        connect.client_id = client_id;
                        endpoint.start_connection(connect, session, (reader, writer, peer), ctx)
                    }
                    Err(refusal) => endpoint.refuse_admission(&connect, peer, writer, refusal),
                }
            })
            .spawn(ctx);
    }

    /// Begins a login attempt from `peer` as the device `connect` claims, unless that
    /// device failed too often from there lately. Nothing is tracked where nothing is
    /// checked: with `auth.mode = none`, or a client certificate the TLS listener verified.
    fn begin_login(
        &mut self,
        connect: &Connect,
        peer: SocketAddr,
        certified: &[String],
    ) -> Result<Option<Attempt>, Refusal> {
        let mode = self.links.authenticator.mode();
        if mode == AuthMode::None || (!certified.is_empty() && mode.accepts_certificate()) {
            return Ok(None);
        }
        let claimed = claimed_name(connect.username.as_deref(), &connect.client_id, certified);
        let now = std::time::Instant::now();
        match self.logins.begin(peer.ip(), claimed, now) {
            Ok(attempt) => Ok(Some(attempt)),
            Err(wait) => Err(Refusal::not_authorized(format!(
                "too many failed logins as this device from {}: refused for up to {wait:?} \
                 (auth.max_failed_logins)",
                peer.ip()
            ))),
        }
    }

    fn refuse_admission(
        &self,
        connect: &Connect,
        peer: SocketAddr,
        writer: DeviceWriter,
        refusal: Refusal,
    ) {
        match &refusal.device {
            Some(device) => Event::DeviceRefused {
                client_id: &connect.client_id,
                reason: &device.reason,
                retry_after: device.retry_after,
            }
            .emit(&self.telemetry),
            None => self.refuse(peer, Some(refusal.code), &refusal.reason),
        }
        let reason = refusal.reason_for_device();
        let peer = (connect.version, connect.peer);
        refuse_connect(writer, peer, refusal.code, self.limits(), reason);
    }
}

//! One MQTT client to the broker, over rumqttc, whichever version it speaks: options
//! safe for ingestion (persistent session, manual acks, a receive maximum), and what the
//! event loop reports, reduced to what an upstream connection acts on.

use std::sync::Arc;

use bytes::Bytes;
use rumqttc::v5::mqttbytes as v5q;
use rumqttc::v5::mqttbytes::v5 as v5p;
use rumqttc::{v5, TlsConfiguration, Transport};
use rustls::ClientConfig;

use super::filter::Filter;
use super::settings::{Protocol, UpstreamSettings};

/// A message received from the broker.
#[derive(Debug)]
pub struct Delivery {
    pub topic: String,
    pub payload: Bytes,
    pub ack: AckToken,
    pub dup: bool,
}

/// What an ack needs: the QoS and packet id of what it acknowledges.
#[derive(Debug, Clone, Copy)]
pub struct AckToken {
    pub qos: u8,
    pub pkid: u16,
}

/// What the event loop reported, as far as Eliot cares.
#[derive(Debug)]
pub enum Happening {
    Connected {
        session_present: bool,
    },
    Delivered(Delivery),
    /// A SUBACK: the filters the broker refused, with its reason.
    Subscribed {
        refused: Vec<String>,
    },
    /// The broker said why it is closing the connection (v5 DISCONNECT).
    Disconnected {
        reason: String,
    },
    Nothing,
}

/// The handle requests go through: subscribe and ack. Never awaited on the task that
/// polls the event loop (rumqttc can deadlock when its request channel is full).
#[derive(Clone)]
pub enum Client {
    V311(rumqttc::AsyncClient),
    V5(v5::AsyncClient),
}

/// The event loop: polled by one task, on its own.
pub enum Poller {
    V311(Box<rumqttc::EventLoop>),
    V5(Box<v5::EventLoop>),
}

/// Requests that may wait in rumqttc's channel: acks above all, up to a window's worth.
fn request_capacity(settings: &UpstreamSettings) -> usize {
    usize::from(settings.receive_maximum).max(16)
}

/// A client and its event loop for connection `index`; nothing is sent before the first
/// poll.
pub fn open(
    settings: &UpstreamSettings,
    index: usize,
    tls: Option<Arc<ClientConfig>>,
) -> (Client, Poller) {
    let client_id = settings.client_id_of(index);
    let port = u16::try_from(settings.port).expect("validated: a port from 1 to 65535");
    let transport = match tls {
        Some(config) => Transport::tls_with_config(TlsConfiguration::Rustls(config)),
        None => Transport::tcp(),
    };
    let capacity = request_capacity(settings);
    let timeout = settings.connect_timeout.as_secs().max(1);
    match settings.protocol {
        Protocol::V311 => {
            let mut o = rumqttc::MqttOptions::new(client_id, &settings.host, port);
            o.set_transport(transport)
                .set_keep_alive(settings.keepalive)
                .set_clean_session(false)
                .set_manual_acks(true)
                .set_request_channel_capacity(capacity)
                .set_max_packet_size(settings.max_packet_size as usize, 64 * 1024);
            if !settings.username.is_empty() {
                o.set_credentials(&settings.username, settings.password.expose());
            }
            let (client, mut eventloop) = rumqttc::AsyncClient::new(o, capacity);
            let mut network = rumqttc::NetworkOptions::new();
            network.set_connection_timeout(timeout);
            eventloop.set_network_options(network);
            (Client::V311(client), Poller::V311(Box::new(eventloop)))
        }
        Protocol::V5 => {
            let mut o = v5::MqttOptions::new(client_id, &settings.host, port);
            let expiry = u32::try_from(settings.session_expiry.as_secs()).unwrap_or(u32::MAX);
            o.set_transport(transport)
                .set_keep_alive(settings.keepalive)
                .set_clean_start(false)
                .set_session_expiry_interval(Some(expiry))
                .set_receive_maximum(Some(settings.receive_maximum))
                .set_max_packet_size(Some(settings.max_packet_size))
                .set_manual_acks(true)
                .set_request_channel_capacity(capacity)
                .set_connection_timeout(timeout);
            if !settings.username.is_empty() {
                o.set_credentials(&settings.username, settings.password.expose());
            }
            let (client, eventloop) = v5::AsyncClient::new(o, capacity);
            (Client::V5(client), Poller::V5(Box::new(eventloop)))
        }
    }
}

impl Client {
    /// Subscribes every filter at QoS 1.
    pub async fn subscribe(&self, filters: &[Filter]) -> Result<(), String> {
        match self {
            Client::V311(c) => {
                let all = filters.iter().map(|f| {
                    rumqttc::SubscribeFilter::new(
                        f.subscribed().to_owned(),
                        rumqttc::QoS::AtLeastOnce,
                    )
                });
                c.subscribe_many(all).await.map_err(|e| e.to_string())
            }
            Client::V5(c) => {
                let all = filters
                    .iter()
                    .map(|f| v5p::Filter::new(f.subscribed(), v5q::QoS::AtLeastOnce));
                c.subscribe_many(all).await.map_err(|e| e.to_string())
            }
        }
    }

    /// Acknowledges one QoS 1 message (QoS 0 needs nothing).
    pub async fn ack(&self, token: AckToken) -> Result<(), String> {
        match (self, token.qos) {
            (_, 0) => Ok(()),
            (Client::V311(c), qos) => {
                let mut p = rumqttc::Publish::new("", v4_qos(qos), Vec::new());
                p.pkid = token.pkid;
                c.ack(&p).await.map_err(|e| e.to_string())
            }
            (Client::V5(c), qos) => {
                let mut p = v5p::Publish::new("", v5_qos(qos), Vec::new(), None);
                p.pkid = token.pkid;
                c.ack(&p).await.map_err(|e| e.to_string())
            }
        }
    }
}

fn v4_qos(qos: u8) -> rumqttc::QoS {
    match qos {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    }
}

fn v5_qos(qos: u8) -> v5q::QoS {
    match qos {
        0 => v5q::QoS::AtMostOnce,
        1 => v5q::QoS::AtLeastOnce,
        _ => v5q::QoS::ExactlyOnce,
    }
}

impl Poller {
    /// The next happening; `Err` says, for a person, why the connection failed or broke.
    /// Polling again after an error reconnects at once: the caller waits first.
    pub async fn poll(&mut self) -> Result<Happening, String> {
        match self {
            Poller::V311(l) => match l.poll().await {
                Ok(rumqttc::Event::Incoming(p)) => Ok(from_v4(p)),
                Ok(rumqttc::Event::Outgoing(_)) => Ok(Happening::Nothing),
                Err(e) => Err(describe_v4(&e)),
            },
            Poller::V5(l) => match l.poll().await {
                Ok(v5::Event::Incoming(p)) => Ok(from_v5(p)),
                Ok(v5::Event::Outgoing(_)) => Ok(Happening::Nothing),
                Err(e) => Err(describe_v5(&e)),
            },
        }
    }
}

fn from_v4(packet: rumqttc::Packet) -> Happening {
    use rumqttc::{Packet, SubscribeReasonCode};
    match packet {
        Packet::ConnAck(c) => Happening::Connected {
            session_present: c.session_present,
        },
        Packet::Publish(p) => Happening::Delivered(Delivery {
            topic: p.topic,
            payload: p.payload,
            ack: AckToken {
                qos: p.qos as u8,
                pkid: p.pkid,
            },
            dup: p.dup,
        }),
        Packet::SubAck(s) => Happening::Subscribed {
            refused: s
                .return_codes
                .iter()
                .filter(|c| matches!(c, SubscribeReasonCode::Failure))
                .map(|c| format!("{c:?}"))
                .collect(),
        },
        _ => Happening::Nothing,
    }
}

fn from_v5(packet: v5p::Packet) -> Happening {
    use v5p::{Packet, SubscribeReasonCode};
    match packet {
        Packet::ConnAck(c) => Happening::Connected {
            session_present: c.session_present,
        },
        Packet::Publish(p) => Happening::Delivered(Delivery {
            topic: String::from_utf8_lossy(&p.topic).into_owned(),
            payload: p.payload,
            ack: AckToken {
                qos: p.qos as u8,
                pkid: p.pkid,
            },
            dup: p.dup,
        }),
        Packet::SubAck(s) => Happening::Subscribed {
            refused: s
                .return_codes
                .iter()
                .filter(|c| !matches!(c, SubscribeReasonCode::Success(_)))
                .map(|c| format!("{c:?}"))
                .collect(),
        },
        Packet::Disconnect(d) => Happening::Disconnected {
            reason: match d.properties.and_then(|p| p.reason_string) {
                Some(text) => format!("{:?}: {text}", d.reason_code),
                None => format!("{:?}", d.reason_code),
            },
        },
        _ => Happening::Nothing,
    }
}

fn describe_v4(e: &rumqttc::ConnectionError) -> String {
    use rumqttc::{ConnectReturnCode as Code, ConnectionError as E};
    match e {
        E::ConnectionRefused(Code::BadUserNamePassword) => refused_credentials("0x04"),
        E::ConnectionRefused(Code::NotAuthorized) => refused_credentials("0x05"),
        E::ConnectionRefused(code) => format!("the broker refused the connection: {code:?}"),
        other => describe_error(other),
    }
}

fn describe_v5(e: &v5::ConnectionError) -> String {
    use v5::ConnectionError as E;
    use v5p::ConnectReturnCode as Code;
    match e {
        E::ConnectionRefused(Code::BadUserNamePassword) => refused_credentials("0x86"),
        E::ConnectionRefused(Code::NotAuthorized) => refused_credentials("0x87"),
        E::ConnectionRefused(code) => format!("the broker refused the connection: {code:?}"),
        E::Timeout(_) => "no CONNACK within upstream.connect_timeout".into(),
        other => describe_error(other),
    }
}

/// Brokers answer a wrong password with either code (Mosquitto: "not authorised").
fn refused_credentials(code: &str) -> String {
    format!(
        "the broker refused the username or password (CONNACK {code}): check \
         upstream.username and upstream.password, and the broker's ACL"
    )
}

const HANDSHAKE_REFUSED: &str = "the broker refused the handshake: it did not accept Eliot's \
    client certificate (upstream.client_cert_file), or requires one";

/// TLS failures come wrapped in I/O and protocol errors, some carrying rustls' own error
/// and some only its text: either way, say which side refused what.
fn describe_error(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = cause {
        let tls = error.downcast_ref::<rustls::Error>().or_else(|| {
            let io = error.downcast_ref::<std::io::Error>()?;
            io.get_ref()?.downcast_ref::<rustls::Error>()
        });
        if let Some(tls) = tls {
            return describe_rustls(tls);
        }
        cause = error.source();
    }
    let text = e.to_string();
    match text.contains("received fatal alert") {
        true => format!("TLS: {HANDSHAKE_REFUSED}: {text}"),
        false => text,
    }
}

fn describe_rustls(e: &rustls::Error) -> String {
    use rustls::{CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "TLS: the broker's certificate has expired".into()
        }
        E::InvalidCertificate(C::UnknownIssuer) => {
            "TLS: the broker's certificate is not signed by the CA in upstream.ca_file".into()
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "TLS: the broker's certificate does not name upstream.host".into()
        }
        E::InvalidCertificate(other) => {
            format!("TLS: the broker's certificate is invalid: {other:?}")
        }
        E::AlertReceived(alert) => format!("TLS: {HANDSHAKE_REFUSED} (alert {alert:?})"),
        other => format!("TLS: {other}"),
    }
}

//! Scripted MQTT devices: rumqttc's packet codecs (no client logic) over a bare TCP
//! socket. A test decides every byte sent, sees every packet the server answers, and
//! sees exactly when the server closes the connection: what a real client hides.
//!
//! [`Raw4`] speaks MQTT 3.1.1, [`Raw5`] MQTT 5. Every wait is bounded.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::{self as m4, v4};
use rumqttc::v5::mqttbytes::{self as m5, v5};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest any single wait for the server may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A protocol version's packet codec.
pub trait Wire {
    type Packet: Debug;
    fn encode(packet: &Self::Packet, out: &mut BytesMut);
    /// `Ok(None)` while `buf` does not hold a whole packet yet.
    fn decode(buf: &mut BytesMut) -> Result<Option<Self::Packet>, String>;
}

/// MQTT 3.1.1.
pub struct V4;

/// MQTT 5.
pub struct V5;

impl Wire for V4 {
    type Packet = v4::Packet;

    fn encode(packet: &v4::Packet, out: &mut BytesMut) {
        packet.write(out, usize::MAX).expect("the packet encodes");
    }

    fn decode(buf: &mut BytesMut) -> Result<Option<v4::Packet>, String> {
        match v4::Packet::read(buf, usize::MAX) {
            Ok(packet) => Ok(Some(packet)),
            Err(m4::Error::InsufficientBytes(_)) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Wire for V5 {
    type Packet = v5::Packet;

    fn encode(packet: &v5::Packet, out: &mut BytesMut) {
        packet.write(out, None).expect("the packet encodes");
    }

    fn decode(buf: &mut BytesMut) -> Result<Option<v5::Packet>, String> {
        match v5::Packet::read(buf, None) {
            Ok(packet) => Ok(Some(packet)),
            Err(m5::Error::InsufficientBytes(_)) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// What the server did next.
#[derive(Debug)]
pub enum Next<P> {
    /// It sent this packet.
    Packet(P),
    /// It closed the connection (end of stream, or reset).
    Closed,
    /// Nothing arrived within the wait.
    Silent,
}

/// A device scripted packet by packet, over TCP unless told otherwise.
pub struct Raw<W: Wire, S = TcpStream> {
    stream: S,
    buf: BytesMut,
    _wire: PhantomData<W>,
}

pub type Raw4 = Raw<V4>;
pub type Raw5 = Raw<V5>;

impl<W: Wire> Raw<W> {
    /// A TCP connection to the server, nothing sent yet.
    pub async fn open(addr: SocketAddr) -> Self {
        let stream = tokio::time::timeout(PATIENCE, TcpStream::connect(addr))
            .await
            .expect("the server accepts within the patience")
            .expect("the server accepts");
        Raw::over(stream)
    }
}

impl<W: Wire, S: AsyncRead + AsyncWrite + Unpin> Raw<W, S> {
    /// A device on `stream` (any byte stream to the server), nothing sent yet.
    pub fn over(stream: S) -> Self {
        Raw {
            stream,
            buf: BytesMut::new(),
            _wire: PhantomData,
        }
    }

    /// The byte stream, to go on without the script; what was read and not yet parsed
    /// must be nothing.
    pub fn into_stream(self) -> S {
        assert!(self.buf.is_empty(), "unparsed bytes: {:?}", self.buf);
        self.stream
    }

    pub async fn send(&mut self, packet: &W::Packet) {
        let mut out = BytesMut::new();
        W::encode(packet, &mut out);
        self.send_bytes(&out).await;
    }

    /// Writes bytes as they are; fails the test if the connection refuses them.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        tokio::time::timeout(PATIENCE, self.stream.write_all(bytes))
            .await
            .expect("the server reads within the patience")
            .expect("the connection takes the bytes");
    }

    /// The next thing the server does within `within`.
    pub async fn next_within(&mut self, within: Duration) -> Next<W::Packet> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match W::decode(&mut self.buf) {
                Ok(Some(packet)) => return Next::Packet(packet),
                Ok(None) => {}
                Err(e) => panic!(
                    "the server sent a malformed packet: {e}: {:02x?}",
                    &self.buf[..]
                ),
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return Next::Silent,
                Ok(Ok(0)) | Ok(Err(_)) => {
                    assert!(
                        self.buf.is_empty(),
                        "the server closed in the middle of a packet: {:02x?}",
                        &self.buf[..]
                    );
                    return Next::Closed;
                }
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The next packet, or `None` if the server closes first; fails the test if the
    /// server stays silent for the whole patience.
    pub async fn next(&mut self) -> Option<W::Packet> {
        match self.next_within(PATIENCE).await {
            Next::Packet(packet) => Some(packet),
            Next::Closed => None,
            Next::Silent => panic!("the server stayed silent for {PATIENCE:?}"),
        }
    }

    /// The next packet; fails the test if the server closes or stays silent instead.
    pub async fn expect(&mut self) -> W::Packet {
        self.next()
            .await
            .expect("a packet, but the server closed the connection")
    }

    /// Waits until the server closes the connection; returns what it sent before.
    pub async fn until_closed(&mut self) -> Vec<W::Packet> {
        let mut before = Vec::new();
        while let Some(packet) = self.next().await {
            before.push(packet);
        }
        before
    }
}

/// A 3.1.1 CONNECT: clean session, keep-alive 30 s.
pub fn connect4(client_id: &str) -> v4::Connect {
    let mut connect = v4::Connect::new(client_id);
    connect.keep_alive = 30;
    connect
}

/// A 5.0 CONNECT: clean start, keep-alive 30 s.
pub fn connect5(client_id: &str) -> v5::Connect {
    v5::Connect {
        keep_alive: 30,
        client_id: client_id.into(),
        clean_start: true,
        properties: None,
    }
}

impl Raw4 {
    /// Sends `connect` and returns the server's answer, which must be a CONNACK.
    pub async fn handshake(addr: SocketAddr, connect: v4::Connect) -> (Raw4, v4::ConnAck) {
        let mut raw = Raw4::open(addr).await;
        raw.send(&v4::Packet::Connect(connect)).await;
        match raw.next().await {
            Some(v4::Packet::ConnAck(ack)) => (raw, ack),
            other => panic!("expected a CONNACK, got {other:?}"),
        }
    }

    /// A connected device (clean session, keep-alive 30 s).
    pub async fn connect(addr: SocketAddr, client_id: &str) -> Raw4 {
        let (raw, ack) = Raw4::handshake(addr, connect4(client_id)).await;
        assert_eq!(
            ack.code,
            v4::ConnectReturnCode::Success,
            "{client_id} accepted"
        );
        raw
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Raw<V4, S> {
    pub async fn publish(&mut self, topic: &str, qos: m4::QoS, pkid: u16, payload: &str) {
        let mut publish = v4::Publish::new(topic, qos, payload.as_bytes().to_vec());
        publish.pkid = pkid;
        self.send(&v4::Packet::Publish(publish)).await;
    }
}

impl Raw5 {
    /// Sends `connect` (with `will`) and returns the server's answer, which must be a
    /// CONNACK.
    pub async fn handshake(
        addr: SocketAddr,
        connect: v5::Connect,
        will: Option<v5::LastWill>,
    ) -> (Raw5, v5::ConnAck) {
        let mut raw = Raw5::open(addr).await;
        raw.send(&v5::Packet::Connect(connect, will, None)).await;
        match raw.next().await {
            Some(v5::Packet::ConnAck(ack)) => (raw, ack),
            other => panic!("expected a CONNACK, got {other:?}"),
        }
    }

    /// A connected device (clean start, keep-alive 30 s).
    pub async fn connect(addr: SocketAddr, client_id: &str) -> Raw5 {
        let (raw, ack) = Raw5::handshake(addr, connect5(client_id), None).await;
        assert_eq!(
            ack.code,
            v5::ConnectReturnCode::Success,
            "{client_id} accepted"
        );
        raw
    }

    pub async fn publish(&mut self, topic: &str, qos: m5::QoS, pkid: u16, payload: &str) {
        let mut publish = v5::Publish::new(topic, qos, payload.as_bytes().to_vec(), None);
        publish.pkid = pkid;
        self.send(&v5::Packet::Publish(publish)).await;
    }
}

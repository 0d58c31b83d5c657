//! What a device connection reads from and writes to: any byte stream, boxed. TCP is
//! one; TLS will be another, and only the accept path will know the difference.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// The receiving half of a device's transport.
pub type DeviceReader = Box<dyn AsyncRead + Unpin + Send>;
/// The sending half of a device's transport.
pub type DeviceWriter = Box<dyn AsyncWrite + Unpin + Send>;

/// A device's transport, split, with the address it came from.
pub struct Transport {
    pub reader: DeviceReader,
    pub writer: DeviceWriter,
    pub peer: SocketAddr,
    /// The names (subject CN, then SANs) of the client certificate the TLS listener
    /// verified; empty over TCP, or without one.
    pub certified: Arc<[String]>,
}

impl Transport {
    /// A plain TCP socket. Acks are tiny and latency matters more than packet count, so
    /// Nagle's algorithm is off. TCP keepalive probes a peer silent for `keepalive`, so a
    /// device that vanished (power cut, NAT timeout) does not hold its socket for ever,
    /// even with an MQTT keep-alive of 0.
    pub fn tcp(socket: TcpStream, peer: SocketAddr, keepalive: Duration) -> Transport {
        let _ = socket.set_nodelay(true);
        let probes = socket2::TcpKeepalive::new()
            .with_time(keepalive)
            .with_interval(keepalive / 4)
            .with_retries(4);
        let _ = socket2::SockRef::from(&socket).set_tcp_keepalive(&probes);
        let (reader, writer) = socket.into_split();
        Transport {
            reader: Box::new(reader),
            writer: Box::new(writer),
            peer,
            certified: Arc::new([]),
        }
    }

    /// Any other byte stream (TLS, an in-memory pipe in tests), split in two.
    pub fn stream<S>(stream: S, peer: SocketAddr) -> Transport
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (reader, writer) = tokio::io::split(stream);
        Transport {
            reader: Box::new(reader),
            writer: Box::new(writer),
            peer,
            certified: Arc::new([]),
        }
    }

    /// The same transport, whose client certificate (verified) names `names`.
    pub fn certified(self, names: Vec<String>) -> Transport {
        Transport {
            certified: names.into(),
            ..self
        }
    }
}

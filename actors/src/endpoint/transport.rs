//! What a device connection reads from and writes to: any byte stream, boxed. TCP is
//! one; TLS will be another, and only the accept path will know the difference.

use std::net::SocketAddr;

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
}

impl Transport {
    /// A plain TCP socket. Acks are tiny and latency matters more than packet count, so
    /// Nagle's algorithm is off.
    pub fn tcp(socket: TcpStream, peer: SocketAddr) -> Transport {
        let _ = socket.set_nodelay(true);
        let (reader, writer) = socket.into_split();
        Transport {
            reader: Box::new(reader),
            writer: Box::new(writer),
            peer,
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
        }
    }
}

//! `Backlog`: the bytes Eliot wrote for one connection that its socket has not taken
//! yet (acks, SUBACKs, PINGRESPs waiting in the writer's buffer). A client that sends and
//! never reads would grow that buffer without end: past `LIMIT` Eliot stops reading the
//! connection until the device takes its replies, and the connection closes if it is
//! still full after `mqtt.packet_timeout`.
//!
//! The writer's encoder counts bytes in (`Counted`), its socket counts bytes out
//! (`CountingWriter`); the difference is the backlog.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::AsyncWrite;
use tokio::sync::Notify;
use tokio_util::codec::Encoder;

use super::transport::DeviceWriter;

/// Replies one connection may have waiting before Eliot stops reading it. A device
/// that reads its socket never gets near: its acks are a few bytes each, and the
/// kernel's send buffer holds megabytes before anything waits here.
pub const LIMIT: usize = 64 * 1024;

#[derive(Default)]
pub struct Backlog {
    state: Mutex<State>,
    /// Woken when the backlog falls back to `LIMIT`, or the writer is gone.
    room: Notify,
}

#[derive(Default)]
struct State {
    queued: usize,
    /// Since when `queued` has been over `LIMIT`.
    full_since: Option<Instant>,
    /// Nothing will be written any more: reading need not wait for room.
    writer_gone: bool,
}

impl Backlog {
    /// Bytes queued for the socket.
    pub fn queued(&self) -> usize {
        self.state().queued
    }

    /// How long the backlog has been over `LIMIT`, if it is.
    pub fn full_for(&self) -> Option<Duration> {
        self.state().full_since.map(|since| since.elapsed())
    }

    /// Waits until the backlog is within `LIMIT` (at once when it is).
    pub async fn room(&self) {
        loop {
            // Made before the check, so a wake between the two is not missed.
            let woken = self.room.notified();
            let waits = {
                let state = self.state();
                state.full_since.is_some() && !state.writer_gone
            };
            if !waits {
                return;
            }
            woken.await;
        }
    }

    /// The writer is gone (closed or failed): nothing will drain the backlog now.
    pub fn writer_gone(&self) {
        self.state().writer_gone = true;
        self.room.notify_waiters();
    }

    fn encoded(&self, bytes: usize) {
        let mut state = self.state();
        state.queued += bytes;
        if state.queued > LIMIT && state.full_since.is_none() {
            state.full_since = Some(Instant::now());
        }
    }

    fn written(&self, bytes: usize) {
        let mut state = self.state();
        state.queued = state.queued.saturating_sub(bytes);
        if state.queued <= LIMIT && state.full_since.take().is_some() {
            self.room.notify_waiters();
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a few numbers, consistent after any panic.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// An encoder that counts what it encodes into `backlog`.
pub struct Counted<E> {
    pub encoder: E,
    pub backlog: Arc<Backlog>,
}

impl<I, E: Encoder<I>> Encoder<I> for Counted<E> {
    type Error = E::Error;

    fn encode(&mut self, item: I, dst: &mut BytesMut) -> Result<(), Self::Error> {
        let before = dst.len();
        let encoded = self.encoder.encode(item, dst);
        self.backlog.encoded(dst.len().saturating_sub(before));
        encoded
    }
}

/// A device's sending half that counts what its socket takes out of `backlog`.
pub struct CountingWriter {
    pub inner: DeviceWriter,
    pub backlog: Arc<Backlog>,
}

impl AsyncWrite for CountingWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.backlog.written(n);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reading_waits_while_more_than_the_limit_is_unread() {
        let backlog = Backlog::default();
        backlog.encoded(LIMIT);
        assert_eq!(backlog.full_for(), None, "at the limit is not over it");
        backlog.room().await;
        backlog.encoded(10);
        assert!(backlog.full_for().is_some());
        let waiting = backlog.room();
        tokio::pin!(waiting);
        let waited = tokio::time::timeout(Duration::from_millis(50), &mut waiting).await;
        assert!(waited.is_err(), "over the limit: reading waits");
        backlog.written(9);
        let waited = tokio::time::timeout(Duration::from_millis(50), &mut waiting).await;
        assert!(waited.is_err(), "still one byte over");
        backlog.written(1);
        tokio::time::timeout(Duration::from_millis(50), waiting)
            .await
            .expect("back within the limit: reading goes on");
        assert_eq!((backlog.queued(), backlog.full_for()), (LIMIT, None));
    }

    #[tokio::test]
    async fn a_writer_gone_lets_reading_go_on() {
        let backlog = Backlog::default();
        backlog.encoded(LIMIT + 1);
        let waiting = backlog.room();
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut waiting)
                .await
                .is_err()
        );
        backlog.writer_gone();
        tokio::time::timeout(Duration::from_millis(50), waiting)
            .await
            .expect("nothing will drain it: reading goes on, to finish the close");
    }

    #[tokio::test]
    async fn the_backlog_is_what_was_encoded_less_what_the_socket_took() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let backlog = Arc::new(Backlog::default());
        let mut encoder = Counted {
            encoder: tokio_util::codec::BytesCodec::new(),
            backlog: backlog.clone(),
        };
        let mut buffer = BytesMut::new();
        encoder
            .encode(bytes::Bytes::from_static(b"0123456789"), &mut buffer)
            .unwrap();
        assert_eq!(backlog.queued(), 10);
        let (near, mut far) = tokio::io::duplex(64);
        let mut writer = CountingWriter {
            inner: Box::new(near),
            backlog: backlog.clone(),
        };
        writer.write_all(&buffer[..4]).await.unwrap();
        assert_eq!(backlog.queued(), 6);
        let mut got = [0u8; 4];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"0123");
    }
}

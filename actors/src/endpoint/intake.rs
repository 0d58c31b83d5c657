//! The packet stream of one connection. Each packet first waits for the device's rate
//! limits (control packets count as messages of no bytes), and each PUBLISH for a slot of
//! the connection's in-flight window and for its size in the shared byte budget, before
//! the next packet is read; no packet is read while the connection's replies wait unread
//! past the backlog's limit. So when the store is slow, or the device too fast or deaf,
//! Eliot stops reading the socket (TCP backpressure) instead of queueing in memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::FramedRead;

use super::backlog::Backlog;
use super::transport::DeviceReader;
use crate::identity::DeviceRate;
use crate::mqtt::packet::Inbound;
use crate::mqtt::{CodecError, MqttCodec};
use crate::pipeline::{ByteBudget, BytePermit};

/// A PUBLISH's share of the limits, given back when it is acked (dropped).
pub struct Permit {
    _slot: OwnedSemaphorePermit,
    _bytes: BytePermit,
}

/// One packet read from the device; a PUBLISH carries its permit.
pub type Received = Result<(Inbound, Option<Permit>), CodecError>;

/// What reading waits for.
#[derive(Clone)]
pub struct Limits {
    /// The connection's in-flight window.
    pub window: Arc<Semaphore>,
    /// Payload bytes all connections may hold unacked.
    pub budget: ByteBudget,
    pub rate: Option<Arc<DeviceRate>>,
    /// The connection's replies not yet taken by its socket.
    pub replies: Arc<Backlog>,
}

impl Limits {
    /// Waits until `packet` is within the limits; a PUBLISH gets its permit.
    async fn admit(&self, packet: &Inbound) -> Option<Permit> {
        let size = match packet {
            Inbound::Publish(p) => p.payload.len(),
            _ => 0,
        };
        if let Some(rate) = &self.rate {
            rate.admit(size).await;
        }
        if !matches!(packet, Inbound::Publish(_)) {
            return None;
        }
        let slot = self.window.clone().acquire_owned().await.ok()?;
        let bytes = self.budget.admit(size).await?;
        Some(Permit {
            _slot: slot,
            _bytes: bytes,
        })
    }
}

/// The packets of `reader`, each gated by `limits`. `waiting` is true while reading
/// waits on them: the device's silence then says nothing of its keep-alive.
pub fn gated(
    reader: FramedRead<DeviceReader, MqttCodec>,
    limits: Limits,
    waiting: Arc<AtomicBool>,
) -> impl Stream<Item = Received> {
    let state = (reader, limits, waiting);
    futures_util::stream::unfold(state, |(mut reader, limits, waiting)| async move {
        if limits.replies.full_for().is_some() {
            waiting.store(true, Ordering::Relaxed);
            limits.replies.room().await;
            waiting.store(false, Ordering::Relaxed);
        }
        let received = match reader.next().await? {
            Ok(packet) => {
                waiting.store(true, Ordering::Relaxed);
                let permit = limits.admit(&packet).await;
                waiting.store(false, Ordering::Relaxed);
                Ok((packet, permit))
            }
            Err(e) => Err(e),
        };
        Some((received, (reader, limits, waiting)))
    })
}

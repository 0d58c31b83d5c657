//! The packet stream of one connection, where each PUBLISH first waits for a slot of the
//! connection's in-flight window, for its size in the shared byte budget, and for the
//! device's rate limits, before the next packet is read. So when the store is slow (or
//! the device too fast), Eliot stops reading the socket (TCP backpressure), instead of
//! queueing in memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::FramedRead;

use super::budget::{ByteBudget, BytePermit};
use super::transport::DeviceReader;
use crate::identity::DeviceRate;
use crate::mqtt::packet::Inbound;
use crate::mqtt::{CodecError, MqttCodec};

/// A PUBLISH's share of the limits, given back when it is acked (dropped).
pub struct Permit {
    _slot: OwnedSemaphorePermit,
    _bytes: BytePermit,
}

/// One packet read from the device; a PUBLISH carries its permit.
pub type Received = Result<(Inbound, Option<Permit>), CodecError>;

/// What a PUBLISH waits for before the next packet is read.
#[derive(Clone)]
pub struct Limits {
    /// The connection's in-flight window.
    pub window: Arc<Semaphore>,
    /// Payload bytes all connections may hold unacked.
    pub budget: ByteBudget,
    pub rate: Option<Arc<DeviceRate>>,
}

/// The packets of `reader`, each PUBLISH gated by `limits`. `waiting` is true while a
/// PUBLISH waits for room: the device's silence is then Eliot's doing.
pub fn gated(
    reader: FramedRead<DeviceReader, MqttCodec>,
    limits: Limits,
    waiting: Arc<AtomicBool>,
) -> impl Stream<Item = Received> {
    let state = (reader, limits, waiting);
    futures_util::stream::unfold(state, |(mut reader, limits, waiting)| async move {
        let received = match reader.next().await? {
            Ok(Inbound::Publish(p)) => {
                let size = p.payload.len();
                let Limits {
                    window,
                    budget,
                    rate,
                } = &limits;
                let admitted = async {
                    if let Some(rate) = rate {
                        rate.admit(size).await;
                    }
                    let slot = window.clone().acquire_owned().await.ok()?;
                    let bytes = budget.admit(size).await?;
                    Some(Permit {
                        _slot: slot,
                        _bytes: bytes,
                    })
                };
                waiting.store(true, Ordering::Relaxed);
                let permit = admitted.await;
                waiting.store(false, Ordering::Relaxed);
                Ok((Inbound::Publish(p), permit))
            }
            Ok(other) => Ok((other, None)),
            Err(e) => Err(e),
        };
        Some((received, (reader, limits, waiting)))
    })
}

//! The packet stream of one connection, where each PUBLISH first waits for a slot of the
//! connection's in-flight window and for its size in the shared byte budget, before the
//! next packet is read. So when the store is slow, the window or the budget fills and
//! Eliot stops reading the socket (TCP backpressure), instead of queueing in memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::FramedRead;

use super::budget::{ByteBudget, BytePermit};
use super::transport::DeviceReader;
use crate::mqtt::packet::Inbound;
use crate::mqtt::{CodecError, MqttCodec};

/// A PUBLISH's share of the limits, given back when it is acked (dropped).
pub struct Permit {
    _slot: OwnedSemaphorePermit,
    _bytes: BytePermit,
}

/// One packet read from the device; a PUBLISH carries its permit.
pub type Received = Result<(Inbound, Option<Permit>), CodecError>;

/// The packets of `reader`, each PUBLISH gated by `window` and `budget`. `waiting` is
/// true while a PUBLISH waits for room: the device's silence is then Eliot's doing.
pub fn gated(
    reader: FramedRead<DeviceReader, MqttCodec>,
    window: Arc<Semaphore>,
    budget: ByteBudget,
    waiting: Arc<AtomicBool>,
) -> impl Stream<Item = Received> {
    let state = (reader, window, budget, waiting);
    futures_util::stream::unfold(state, |(mut reader, window, budget, waiting)| async move {
        let received = match reader.next().await? {
            Ok(Inbound::Publish(p)) => {
                let size = p.payload.len();
                let admitted = async {
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
        Some((received, (reader, window, budget, waiting)))
    })
}

//! `ByteBudget`: the in-flight byte budget both ways in share, device connections and
//! upstream connections alike. Payloads received and not yet acked never add up to more
//! than its total: when it is used up, Eliot stops reading sockets (and taking upstream
//! deliveries) until acks give bytes back.

use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub struct ByteBudget {
    bytes: Arc<Semaphore>,
    total: u32,
    /// The bytes in use, for `/metrics`.
    in_use: Gauge,
}

/// Bytes of the budget, given back when dropped.
pub struct BytePermit {
    _permit: OwnedSemaphorePermit,
    size: u32,
    in_use: Gauge,
}

impl Drop for BytePermit {
    fn drop(&mut self) {
        self.in_use.dec_by(i64::from(self.size));
    }
}

impl ByteBudget {
    pub fn new(total: u32, in_use: Gauge) -> Self {
        ByteBudget {
            bytes: Arc::new(Semaphore::new(total as usize)),
            total,
            in_use,
        }
    }

    /// Waits until `size` bytes are free (a payload larger than the whole budget takes
    /// all of it). The bytes come back when the permit is dropped.
    pub async fn admit(&self, size: usize) -> Option<BytePermit> {
        let size = u32::try_from(size)
            .unwrap_or(u32::MAX)
            .clamp(1, self.total.max(1));
        let permit = self.bytes.clone().acquire_many_owned(size).await.ok()?;
        self.in_use.inc_by(i64::from(size));
        Some(BytePermit {
            _permit: permit,
            size,
            in_use: self.in_use.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[actix_rt::test]
    async fn the_byte_budget_makes_readers_wait_until_acks_give_bytes_back() {
        let in_use = Gauge::default();
        let budget = ByteBudget::new(100, in_use.clone());
        let first = budget.admit(60).await.unwrap();
        assert_eq!(in_use.get(), 60);
        let second = budget.admit(60);
        tokio::pin!(second);
        let waited = tokio::time::timeout(Duration::from_millis(50), &mut second).await;
        assert!(waited.is_err(), "60 + 60 bytes do not fit in 100");
        drop(first);
        let second = tokio::time::timeout(Duration::from_millis(50), second).await;
        let second = second.unwrap().expect("admitted once the first was acked");
        assert_eq!(
            in_use.get(),
            60,
            "the first's bytes back, the second's in use"
        );
        drop(second);
        assert_eq!(in_use.get(), 0);
        // A payload larger than the whole budget waits for all of it, not for ever.
        let small = ByteBudget::new(10, Gauge::default());
        let whole = tokio::time::timeout(Duration::from_millis(50), small.admit(1_000)).await;
        assert!(whole.unwrap().is_some());
    }
}

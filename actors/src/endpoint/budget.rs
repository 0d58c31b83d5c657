//! `ByteBudget`: the in-flight byte budget all connections share. PUBLISH payloads read
//! and not yet acked never add up to more than its total: when it is used up, Eliot
//! stops reading sockets until acks give bytes back.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub struct ByteBudget {
    bytes: Arc<Semaphore>,
    total: u32,
}

impl ByteBudget {
    pub fn new(total: u32) -> Self {
        ByteBudget {
            bytes: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// Waits until `size` bytes are free (a payload larger than the whole budget takes
    /// all of it). The bytes come back when the permit is dropped.
    pub async fn admit(&self, size: usize) -> Option<OwnedSemaphorePermit> {
        let size = u32::try_from(size)
            .unwrap_or(u32::MAX)
            .clamp(1, self.total.max(1));
        self.bytes.clone().acquire_many_owned(size).await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[actix_rt::test]
    async fn the_byte_budget_makes_readers_wait_until_acks_give_bytes_back() {
        let budget = ByteBudget::new(100);
        let first = budget.admit(60).await.unwrap();
        let second = budget.admit(60);
        tokio::pin!(second);
        let waited = tokio::time::timeout(Duration::from_millis(50), &mut second).await;
        assert!(waited.is_err(), "60 + 60 bytes do not fit in 100");
        drop(first);
        let second = tokio::time::timeout(Duration::from_millis(50), second).await;
        assert!(
            second.unwrap().is_some(),
            "admitted once the first was acked"
        );
        // A payload larger than the whole budget waits for all of it, not for ever.
        let whole =
            tokio::time::timeout(Duration::from_millis(50), ByteBudget::new(10).admit(1_000)).await;
        assert!(whole.unwrap().is_some());
    }
}

//! A shard's memory of connection ends, for the deletion of a device:
//!
//! - who waits for a connection it was asked to close to end (`FleetHandle::disconnect`
//!   resolves once it did: by then everything that connection read is stored, acked and
//!   told to the shard, since a connection ends only after its last acks, and the
//!   pipeline tells the fleet before a message is acked);
//! - which devices were forgotten while a connection still carried them: what that
//!   connection still had in flight must not bring them back. Kept until that
//!   connection's end (after which nothing of it can come), at most `MAX_FORGOTTEN`
//!   connections (the oldest go first). A new connection of the device is not affected.

use std::collections::{HashMap, VecDeque};

use tokio::sync::oneshot;

use super::state::DeviceId;

/// Connections whose forgotten devices a shard remembers, at most.
pub(super) const MAX_FORGOTTEN: usize = 4096;

#[derive(Default)]
pub(super) struct Endings {
    /// Per connection asked to close: who waits for its end.
    waiting: HashMap<u64, Vec<oneshot::Sender<()>>>,
    /// Per connection still up: the devices forgotten while it carried them.
    forgotten: HashMap<u64, Vec<DeviceId>>,
    /// The connections of `forgotten`, oldest first.
    order: VecDeque<u64>,
}

impl Endings {
    /// Answered when `connection` ends. Waiters that gave up are dropped first, so the
    /// waiting are bounded by those still waiting.
    pub fn wait_for(&mut self, connection: u64) -> oneshot::Receiver<()> {
        self.waiting.retain(|_, waiters| {
            waiters.retain(|w| !w.is_closed());
            !waiters.is_empty()
        });
        let (tell, told) = oneshot::channel();
        self.waiting.entry(connection).or_default().push(tell);
        told
    }

    /// `device` was forgotten while `connection` carried it.
    pub fn forgot(&mut self, connection: u64, device: DeviceId) {
        let devices = self.forgotten.entry(connection).or_default();
        if devices.is_empty() {
            self.order.push_back(connection);
        }
        if !devices.contains(&device) {
            devices.push(device);
        }
        while self.order.len() > MAX_FORGOTTEN {
            if let Some(oldest) = self.order.pop_front() {
                self.forgotten.remove(&oldest);
            }
        }
    }

    /// What `connection` tells of `device` comes from before its forgetting.
    pub fn is_forgotten(&self, connection: u64, device: &str) -> bool {
        self.forgotten
            .get(&connection)
            .is_some_and(|devices| devices.iter().any(|d| **d == *device))
    }

    /// `connection` ended: its waiters are answered, and nothing more can come from it.
    pub fn ended(&mut self, connection: u64) {
        for waiter in self.waiting.remove(&connection).unwrap_or_default() {
            let _ = waiter.send(());
        }
        if self.forgotten.remove(&connection).is_some() {
            self.order.retain(|c| *c != connection);
        }
    }

    #[cfg(test)]
    pub fn remembered(&self) -> (usize, usize) {
        (self.waiting.len(), self.forgotten.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn an_end_answers_its_waiters_and_clears_its_forgotten_devices() {
        let mut endings = Endings::default();
        let mut first = endings.wait_for(1);
        let mut other = endings.wait_for(2);
        endings.forgot(1, Arc::from("d"));
        assert!(endings.is_forgotten(1, "d"));
        assert!(!endings.is_forgotten(1, "e"));
        assert!(
            !endings.is_forgotten(3, "d"),
            "another connection's d is new"
        );
        endings.ended(1);
        assert_eq!(first.try_recv(), Ok(()));
        assert!(other.try_recv().is_err(), "2 has not ended");
        assert!(!endings.is_forgotten(1, "d"));
        assert_eq!(endings.remembered(), (1, 0));
    }

    #[test]
    fn waiters_that_gave_up_and_old_forgotten_connections_do_not_pile_up() {
        let mut endings = Endings::default();
        for c in 0..100 {
            drop(endings.wait_for(c));
        }
        let _kept = endings.wait_for(100);
        assert_eq!(endings.remembered().0, 1);
        for c in 0..(MAX_FORGOTTEN as u64 + 10) {
            endings.forgot(c, Arc::from("d"));
        }
        assert_eq!(endings.remembered().1, MAX_FORGOTTEN);
        assert!(!endings.is_forgotten(0, "d"), "the oldest went");
        assert!(endings.is_forgotten(MAX_FORGOTTEN as u64 + 9, "d"));
    }
}

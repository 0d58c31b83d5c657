//! Turns at the Argon2 checks, shared fairly between remote addresses. A check takes a core
//! for tens of milliseconds, so only `HASHING_AT_ONCE` run at once; in one first-come queue,
//! a flood of logins from one address would stand in front of everyone else.
//!
//! Here each address has at most one login in the shared queue (its other logins wait
//! behind it, in its own queue), so the shared queue serves addresses in turn: a login from
//! a quiet address waits for at most one check per busy address. An address may have at
//! most `max_waiting` logins waiting or being checked; more are refused at once, unchecked.
//! Entries exist only while an address has logins waiting: the map holds at most as many
//! addresses as there are connections in their handshake.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Argon2 verifications at once, at most: each takes a core for tens of milliseconds, and
/// a flood of logins must not take them all.
const HASHING_AT_ONCE: usize = 2;

#[derive(Clone)]
pub struct HashingTurns {
    all: Arc<Semaphore>,
    addresses: Arc<Mutex<HashMap<IpAddr, Waiting>>>,
    max_waiting: usize,
}

/// One address's logins waiting for a check or being checked.
struct Waiting {
    /// One permit: who holds it stands in the shared queue.
    queue: Arc<Semaphore>,
    logins: usize,
}

/// A turn at an Argon2 check; the next login gets it when this is dropped.
pub struct Turn {
    _all: OwnedSemaphorePermit,
    _waiting: Leaving,
}

/// Counts one login of an address out when dropped (checked, or given up).
struct Leaving {
    addresses: Arc<Mutex<HashMap<IpAddr, Waiting>>>,
    address: IpAddr,
}

impl Drop for Leaving {
    fn drop(&mut self) {
        let mut addresses = self.addresses.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(waiting) = addresses.get_mut(&self.address) {
            waiting.logins -= 1;
            if waiting.logins == 0 {
                addresses.remove(&self.address);
            }
        }
    }
}

/// Why a login gets no turn.
#[derive(Debug, PartialEq, Eq)]
pub enum NoTurn {
    /// The address has `max_waiting` logins waiting or being checked already.
    Busy(usize),
    ShuttingDown,
}

impl HashingTurns {
    pub fn new(max_waiting: usize) -> Self {
        HashingTurns {
            all: Arc::new(Semaphore::new(HASHING_AT_ONCE)),
            addresses: Default::default(),
            max_waiting: max_waiting.max(1),
        }
    }

    /// Waits for `address`'s next turn at a check.
    pub async fn take(&self, address: IpAddr) -> Result<Turn, NoTurn> {
        let queue = {
            let mut addresses = self.addresses.lock().unwrap_or_else(|e| e.into_inner());
            let waiting = addresses.entry(address).or_insert_with(|| Waiting {
                queue: Arc::new(Semaphore::new(1)),
                logins: 0,
            });
            if waiting.logins >= self.max_waiting {
                return Err(NoTurn::Busy(waiting.logins));
            }
            waiting.logins += 1;
            waiting.queue.clone()
        };
        let waiting = Leaving {
            addresses: self.addresses.clone(),
            address,
        };
        let own = queue.acquire_owned().await;
        let own = own.map_err(|_| NoTurn::ShuttingDown)?;
        let all = self.all.clone().acquire_owned().await;
        let all = all.map_err(|_| NoTurn::ShuttingDown)?;
        // Checked now: the address's next login may join the shared queue.
        drop(own);
        Ok(Turn {
            _all: all,
            _waiting: waiting,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_busy_address_waits_its_turn_behind_a_quiet_one_and_a_few_logins_at_most() {
        let turns = HashingTurns::new(4);
        let (flood, quiet): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let take = |address| {
            let turns = turns.clone();
            tokio::spawn(async move { turns.take(address).await })
        };
        let settle = || tokio::time::sleep(Duration::from_millis(20));
        let first = turns.take(flood).await.unwrap();
        let second = turns.take(flood).await.unwrap();
        let early = take(flood);
        settle().await;
        let late = take(flood);
        settle().await;
        assert_eq!(
            turns.take(flood).await.err(),
            Some(NoTurn::Busy(4)),
            "past four waiting or checked, refused at once"
        );
        let quiet_turn = take(quiet);
        settle().await;
        drop(first);
        let early = early.await.unwrap().unwrap();
        drop(second);
        // In one first-come queue, the flood's later login would be served first.
        let quiet_turn = quiet_turn.await.unwrap().unwrap();
        assert!(
            !late.is_finished(),
            "the flood's later login waits behind the quiet one"
        );
        drop(early);
        drop(late.await.unwrap().unwrap());
        drop(quiet_turn);
        assert!(turns.addresses.lock().unwrap().is_empty(), "nothing kept");
    }
}

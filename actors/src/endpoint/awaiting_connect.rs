//! Sockets accepted and not yet past their CONNECT, counted per remote address. Without
//! a cap, one address could hold most of `mqtt.max_connections` with sockets that never
//! send a byte (each for `mqtt.connect_timeout`), and two could hold them all: a rate limit
//! alone only slows that down. The TLS listener caps its handshakes the same way.

use std::collections::HashMap;
use std::net::IpAddr;

pub struct AwaitingConnect {
    per_address: HashMap<IpAddr, u32>,
    /// `mqtt.max_pending_per_address`: a burst of devices behind one NAT connecting at
    /// once needs room; idle sockets get no more than this.
    max: u32,
}

impl AwaitingConnect {
    pub fn new(max: u32) -> AwaitingConnect {
        AwaitingConnect {
            per_address: HashMap::new(),
            max,
        }
    }

    /// Counts one more socket from `address`, unless it already has the most it may.
    pub fn enter(&mut self, address: IpAddr) -> bool {
        let waiting = self.per_address.entry(address).or_insert(0);
        if *waiting >= self.max {
            return false;
        }
        *waiting += 1;
        true
    }

    /// A socket from `address` sent its CONNECT, or was closed.
    pub fn leave(&mut self, address: IpAddr) {
        if let Some(waiting) = self.per_address.get_mut(&address) {
            *waiting -= 1;
            if *waiting == 0 {
                self.per_address.remove(&address);
            }
        }
    }

    /// The endpoint restarted: the handshakes it was waiting on are gone.
    pub fn clear(&mut self) {
        self.per_address.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_waits_for_at_most_its_share_and_forgets_it_after() {
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let mut waiting = AwaitingConnect::new(32);
        assert!((0..32).all(|_| waiting.enter(a)));
        assert!(!waiting.enter(a), "the next one from a is refused");
        assert!(waiting.enter(b), "b is not held back by a");
        waiting.leave(a);
        assert!(waiting.enter(a));
        for _ in 0..32 {
            waiting.leave(a);
        }
        waiting.leave(b);
        assert!(waiting.per_address.is_empty(), "no address kept once done");
    }
}

//! A connection's QoS 1 messages sent and not yet acked, by packet id.

use std::time::Instant;

/// One message sent and not yet acked.
#[derive(Clone)]
struct Sent {
    at: Instant,
    /// Its place in the order of sending: what is sent again goes in this order.
    order: u64,
    /// The whole PUBLISH, kept when the connection may have to send it again.
    packet: Option<Box<[u8]>>,
}

/// The messages sent and not yet acked, by packet id, with when each was sent.
pub struct InFlight {
    /// Indexed by packet id; ids cycle through 1..len, skipping ones still in flight.
    sent: Vec<Option<Sent>>,
    last_pkid: usize,
    count: usize,
    sent_so_far: u64,
}

impl InFlight {
    pub fn new(window: usize) -> InFlight {
        let ids = (window * 4).clamp(16, usize::from(u16::MAX));
        InFlight {
            sent: vec![None; ids + 1],
            last_pkid: 0,
            count: 0,
            sent_so_far: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// A free packet id for a message sent `now` (there is one: at most `window` are taken).
    pub fn insert(&mut self, now: Instant) -> u16 {
        loop {
            self.last_pkid = self.last_pkid % (self.sent.len() - 1) + 1;
            let slot = &mut self.sent[self.last_pkid];
            if slot.is_none() {
                self.sent_so_far += 1;
                *slot = Some(Sent {
                    at: now,
                    order: self.sent_so_far,
                    packet: None,
                });
                self.count += 1;
                return self.last_pkid as u16;
            }
        }
    }

    /// Keeps the PUBLISH of `pkid` (just inserted), to send it again if it is not acked.
    pub fn keep(&mut self, pkid: u16, packet: &[u8]) {
        if let Some(sent) = &mut self.sent[usize::from(pkid)] {
            sent.packet = Some(packet.into());
        }
    }

    /// When the message with `pkid` was sent, as it leaves (`None`: it was not in flight).
    pub fn remove(&mut self, pkid: u16) -> Option<Instant> {
        let sent = self.sent.get_mut(usize::from(pkid))?.take()?;
        self.count -= 1;
        Some(sent.at)
    }

    /// The PUBLISHes kept of the messages still in flight, in the order they were sent.
    pub fn kept_in_order(&self) -> Vec<&[u8]> {
        let mut kept: Vec<&Sent> = self.sent.iter().flatten().collect();
        kept.sort_unstable_by_key(|sent| sent.order);
        kept.iter()
            .filter_map(|sent| sent.packet.as_deref())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_kept_comes_back_in_the_order_it_was_sent() {
        let now = Instant::now();
        let mut in_flight = InFlight::new(4);
        // 16 ids: the 17th message wraps around to id 1 once it is free.
        let ids: Vec<u16> = (0..16).map(|_| in_flight.insert(now)).collect();
        for (n, &id) in ids.iter().enumerate() {
            in_flight.keep(id, &[n as u8]);
        }
        for &id in &ids[..15] {
            assert!(in_flight.remove(id).is_some());
        }
        let wrapped = in_flight.insert(now);
        assert_eq!(wrapped, 1);
        in_flight.keep(wrapped, &[99]);
        assert_eq!(in_flight.kept_in_order(), [&[15u8][..], &[99][..]]);
        assert_eq!(in_flight.remove(wrapped), Some(now));
        assert_eq!(in_flight.remove(wrapped), None);
        assert_eq!(in_flight.len(), 1);
    }
}

//! A connection's QoS 1 messages sent and not yet acked, by packet id.

use std::time::Instant;

/// The messages sent and not yet acked, by packet id, with when each was sent.
pub struct InFlight {
    /// Indexed by packet id; ids cycle through 1..len, skipping ones still in flight.
    sent_at: Vec<Option<Instant>>,
    last_pkid: usize,
    count: usize,
}

impl InFlight {
    pub fn new(window: usize) -> InFlight {
        let ids = (window * 4).clamp(16, usize::from(u16::MAX));
        InFlight {
            sent_at: vec![None; ids + 1],
            last_pkid: 0,
            count: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// A free packet id for a message sent `now` (there is one: at most `window` are taken).
    pub fn insert(&mut self, now: Instant) -> u16 {
        loop {
            self.last_pkid = self.last_pkid % (self.sent_at.len() - 1) + 1;
            let slot = &mut self.sent_at[self.last_pkid];
            if slot.is_none() {
                *slot = Some(now);
                self.count += 1;
                return self.last_pkid as u16;
            }
        }
    }

    pub fn remove(&mut self, pkid: u16) -> Option<Instant> {
        let sent_at = self.sent_at.get_mut(usize::from(pkid))?.take()?;
        self.count -= 1;
        Some(sent_at)
    }
}

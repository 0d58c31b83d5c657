//! Receipt order for one upstream connection: messages are stored in batches that may
//! commit out of order, but acks go to the broker in the order the messages came, and
//! only for those received on the current connection (an ack from an earlier one could
//! acknowledge a different message that reuses its packet id).

use std::collections::VecDeque;

use tokio::sync::OwnedSemaphorePermit;

use super::link::AckToken;
use crate::pipeline::BytePermit;

/// What a message holds while in Eliot (given back when dropped): a slot of its
/// connection's window, and its size in the byte budget all ways in share.
pub struct Slot {
    pub _window: OwnedSemaphorePermit,
    pub _bytes: Option<BytePermit>,
}

struct Waiting {
    token: AckToken,
    /// The connection it arrived on (counted from 1 at each CONNACK).
    generation: u64,
    stored: bool,
    /// Its slot of the window; freed once its ack is due (or it is given up).
    permit: Option<Slot>,
}

/// An ack to send. Its message's slot of the window is freed as it becomes due, not once
/// the ack is written: only the event loop's poll task writes it, and that task waits for
/// slots, so a slot held until then could stop both for good.
pub struct Ack {
    pub token: AckToken,
    pub generation: u64,
}

#[derive(Default)]
pub struct InOrder {
    /// Sequence number of the front of `waiting`.
    front: u64,
    waiting: VecDeque<Waiting>,
}

impl InOrder {
    /// Records a message; answers its sequence number.
    pub fn arrive(&mut self, token: AckToken, generation: u64, permit: Option<Slot>) -> u64 {
        self.waiting.push_back(Waiting {
            token,
            generation,
            stored: false,
            permit,
        });
        self.front + self.waiting.len() as u64 - 1
    }

    /// Marks `count` messages from `first` stored. Sequence numbers already given up
    /// (`forget`) are ignored.
    pub fn stored(&mut self, first: u64, count: usize) {
        for seq in first..first + count as u64 {
            if let Some(w) = seq
                .checked_sub(self.front)
                .and_then(|i| self.waiting.get_mut(i as usize))
            {
                w.stored = true;
            }
        }
    }

    /// The acks now due, in receipt order: the stored prefix of the queue, except those
    /// received on an earlier connection than `current` (the broker redelivers those).
    pub fn due(&mut self, current: u64) -> Vec<Ack> {
        let mut due = Vec::new();
        while self.waiting.front().is_some_and(|w| w.stored) {
            let w = self.waiting.pop_front().expect("checked above");
            self.front += 1;
            if w.generation == current {
                due.push(Ack {
                    token: w.token,
                    generation: w.generation,
                });
            }
            drop(w.permit);
        }
        due
    }

    /// Gives up every message waiting (the connection is being dropped): none is acked,
    /// their slots are freed, and their commits, when they come, change nothing.
    pub fn forget(&mut self) -> usize {
        let n = self.waiting.len();
        self.front += n as u64;
        self.waiting.clear();
        n
    }

    /// The sequence number of the first message not yet due (every earlier one is
    /// acked, or given up).
    pub fn front(&self) -> u64 {
        self.front
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(pkid: u16) -> AckToken {
        AckToken { qos: 1, pkid }
    }

    fn pkids(acks: &[Ack]) -> Vec<u16> {
        acks.iter().map(|a| a.token.pkid).collect()
    }

    #[test]
    fn acks_follow_receipt_order_whatever_order_batches_commit_in() {
        let mut q = InOrder::default();
        let first = q.arrive(token(1), 1, None);
        q.arrive(token(2), 1, None);
        let third = q.arrive(token(3), 1, None);
        q.stored(third, 1);
        assert!(q.due(1).is_empty(), "3 waits for 1 and 2");
        q.stored(first, 2);
        assert_eq!(pkids(&q.due(1)), [1, 2, 3]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn messages_of_an_earlier_connection_are_not_acked() {
        let mut q = InOrder::default();
        let old = q.arrive(token(7), 1, None);
        let new = q.arrive(token(7), 2, None);
        q.stored(old, 1);
        q.stored(new, 1);
        assert_eq!(pkids(&q.due(2)), [7]);
        assert!(q.due(2).is_empty());
    }

    #[test]
    fn commits_of_forgotten_messages_change_nothing() {
        let mut q = InOrder::default();
        let lost = q.arrive(token(1), 1, None);
        assert_eq!(q.forget(), 1);
        let next = q.arrive(token(2), 2, None);
        q.stored(lost, 1);
        assert!(q.due(2).is_empty());
        q.stored(next, 1);
        assert_eq!(pkids(&q.due(2)), [2]);
    }
}

//! `AckQueue`: one connection's PUBLISHes from the moment they are read to their ack.
//!
//! The rules it keeps, without an actor or a socket:
//! - acks leave in the order the PUBLISHes arrived, and only for the prefix of the queue
//!   whose outcome is committed (a PUBACK or PUBREC promises "stored");
//! - what a PUBLISH holds (its slot in the window, its bytes in the shared budget) is
//!   given back when its ack is handed out;
//! - QoS 2: a PUBREC'd packet id waits for its PUBREL. A duplicate PUBLISH with that id
//!   on the same connection is not stored again, only answered with PUBREC (MQTT's
//!   "method B"). The ids kept are bounded by the connection's in-flight window: the
//!   oldest is forgotten first. A forgotten id, or a resend after a reconnect (the ids
//!   are not part of the durable session), is stored again: idempotent for readings,
//!   a second row for a dead letter.

use std::collections::VecDeque;

use crate::mqtt::packet::{Outbound, QoS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    Pending,
    Stored,
    Failed,
}

struct Entry<H> {
    /// The ack to send once stored (`None` for QoS 0).
    ack: Option<Outbound>,
    /// A QoS 2 resend answered without storing: its PUBREC reserves nothing (the id may
    /// have been released meanwhile).
    duplicate: bool,
    progress: Progress,
    /// Given back (dropped) when the entry leaves the queue.
    _hold: H,
}

/// What to do with a PUBLISH just read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Send it down the pipeline; it is entry `seq` of the queue.
    Store { seq: u64 },
    /// A QoS 2 duplicate of a message already stored: only its PUBREC is due.
    AlreadyStored,
}

pub struct AckQueue<H> {
    entries: VecDeque<Entry<H>>,
    /// Sequence number of `entries[0]`.
    first_seq: u64,
    /// Entries still `Pending`.
    pending: usize,
    /// QoS 2 packet ids PUBREC'd and not yet released, oldest first.
    awaiting_release: VecDeque<u16>,
    max_awaiting_release: usize,
}

impl<H> AckQueue<H> {
    /// `max_awaiting_release` is the connection's in-flight window.
    pub fn new(max_awaiting_release: usize) -> Self {
        AckQueue {
            entries: VecDeque::new(),
            first_seq: 0,
            pending: 0,
            awaiting_release: VecDeque::new(),
            max_awaiting_release: max_awaiting_release.max(1),
        }
    }

    /// Entries whose outcome is not known yet.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Queues a PUBLISH of `qos` with packet id `pkid`, holding `hold` until its ack.
    pub fn arrive(&mut self, qos: QoS, pkid: u16, hold: H) -> Arrival {
        let ack = match qos {
            QoS::AtMostOnce => None,
            QoS::AtLeastOnce => Some(Outbound::PubAck(pkid)),
            QoS::ExactlyOnce => Some(Outbound::PubRec(pkid)),
        };
        let duplicate = qos == QoS::ExactlyOnce && self.awaiting_release.contains(&pkid);
        let progress = if duplicate {
            Progress::Stored
        } else {
            self.pending += 1;
            Progress::Pending
        };
        let seq = self.first_seq + self.entries.len() as u64;
        self.entries.push_back(Entry {
            ack,
            duplicate,
            progress,
            _hold: hold,
        });
        if duplicate {
            Arrival::AlreadyStored
        } else {
            Arrival::Store { seq }
        }
    }

    /// The `count` messages sent down the pipeline together, the first being entry
    /// `first`, were committed (`stored`) or not. They are the next `count` pending
    /// entries from `first` on: QoS 2 duplicates read in the same turn sit between them,
    /// already settled.
    pub fn settle(&mut self, first: u64, count: usize, stored: bool) {
        let start = usize::try_from(first.saturating_sub(self.first_seq)).unwrap_or(usize::MAX);
        let progress = if stored {
            Progress::Stored
        } else {
            Progress::Failed
        };
        let batch = self
            .entries
            .iter_mut()
            .skip(start)
            .filter(|e| e.progress == Progress::Pending)
            .take(count);
        for entry in batch {
            entry.progress = progress;
            self.pending -= 1;
        }
    }

    /// Takes the stored prefix of the queue off, and answers its acks in arrival order.
    /// (A failed entry stops the prefix: nothing after it is acked.)
    pub fn take_acks(&mut self) -> Vec<Outbound> {
        let mut acks = Vec::new();
        while self
            .entries
            .front()
            .is_some_and(|e| e.progress == Progress::Stored)
        {
            let Some(entry) = self.entries.pop_front() else {
                break;
            };
            self.first_seq += 1;
            if let Some(ack) = entry.ack {
                match ack {
                    Outbound::PubRec(pkid) if !entry.duplicate => self.await_release(pkid),
                    _ => {}
                }
                acks.push(ack);
            }
        }
        acks
    }

    /// A PUBREL for `pkid`: the exchange is over. Answers whether the id was awaited.
    pub fn release(&mut self, pkid: u16) -> bool {
        let before = self.awaiting_release.len();
        self.awaiting_release.retain(|id| *id != pkid);
        self.awaiting_release.len() < before
    }

    fn await_release(&mut self, pkid: u16) {
        if self.awaiting_release.contains(&pkid) {
            return;
        }
        if self.awaiting_release.len() == self.max_awaiting_release {
            self.awaiting_release.pop_front();
        }
        self.awaiting_release.push_back(pkid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    fn seq(arrival: Arrival) -> u64 {
        match arrival {
            Arrival::Store { seq } => seq,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn acks_leave_in_arrival_order_once_the_prefix_is_stored() {
        let mut q = AckQueue::new(8);
        let a = seq(q.arrive(QoS::AtLeastOnce, 1, ()));
        let b = seq(q.arrive(QoS::AtMostOnce, 0, ()));
        let c = seq(q.arrive(QoS::AtLeastOnce, 3, ()));
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(q.pending(), 3);
        // The later batch commits first: nothing may be acked before packet 1.
        q.settle(b, 2, true);
        assert!(q.take_acks().is_empty());
        q.settle(a, 1, true);
        assert_eq!(
            q.take_acks(),
            [Outbound::PubAck(1), Outbound::PubAck(3)],
            "QoS 0 has no ack, and the order is kept"
        );
        assert_eq!(q.pending(), 0);
        // Sequence numbers go on after the queue emptied.
        assert_eq!(seq(q.arrive(QoS::AtLeastOnce, 4, ())), 3);
    }

    #[test]
    fn a_failed_entry_blocks_every_ack_behind_it() {
        let mut q = AckQueue::new(8);
        let first = seq(q.arrive(QoS::AtLeastOnce, 1, ()));
        q.arrive(QoS::AtLeastOnce, 2, ());
        q.settle(first, 1, false);
        q.settle(first + 1, 1, true);
        assert!(q.take_acks().is_empty());
        assert_eq!(q.pending(), 0);
    }

    #[test]
    fn what_a_publish_holds_is_given_back_with_its_ack() {
        let hold = Rc::new(());
        let mut q = AckQueue::new(8);
        let s = seq(q.arrive(QoS::AtLeastOnce, 1, hold.clone()));
        assert_eq!(Rc::strong_count(&hold), 2);
        q.settle(s, 1, true);
        q.take_acks();
        assert_eq!(Rc::strong_count(&hold), 1);
    }

    #[test]
    fn a_qos2_duplicate_before_pubrel_is_not_stored_again() {
        let mut q = AckQueue::new(8);
        let s = seq(q.arrive(QoS::ExactlyOnce, 7, ()));
        q.settle(s, 1, true);
        assert_eq!(q.take_acks(), [Outbound::PubRec(7)]);
        // The device did not get the PUBREC and sends the PUBLISH again (DUP).
        assert_eq!(q.arrive(QoS::ExactlyOnce, 7, ()), Arrival::AlreadyStored);
        assert_eq!(q.pending(), 0);
        assert_eq!(q.take_acks(), [Outbound::PubRec(7)]);
        // After PUBREL the id is free: the same id is a new message.
        assert!(q.release(7));
        assert!(!q.release(7));
        assert!(matches!(
            q.arrive(QoS::ExactlyOnce, 7, ()),
            Arrival::Store { .. }
        ));
    }

    #[test]
    fn a_qos2_duplicate_read_amid_a_batch_does_not_shift_its_settlement() {
        let mut q = AckQueue::new(8);
        let s = seq(q.arrive(QoS::ExactlyOnce, 5, ()));
        q.settle(s, 1, true);
        q.take_acks();
        // One turn reads A, a duplicate of 5, then C; A and C go down together.
        let a = seq(q.arrive(QoS::AtLeastOnce, 1, ()));
        assert_eq!(q.arrive(QoS::ExactlyOnce, 5, ()), Arrival::AlreadyStored);
        q.arrive(QoS::AtLeastOnce, 3, ());
        q.settle(a, 2, true);
        assert_eq!(q.pending(), 0);
        assert_eq!(
            q.take_acks(),
            [
                Outbound::PubAck(1),
                Outbound::PubRec(5),
                Outbound::PubAck(3)
            ]
        );
    }

    #[test]
    fn a_duplicates_late_pubrec_does_not_reserve_a_released_id() {
        let mut q = AckQueue::new(8);
        let s = seq(q.arrive(QoS::ExactlyOnce, 7, ()));
        q.settle(s, 1, true);
        q.take_acks();
        // A resend of 7 waits behind a pending message; PUBREL 7 arrives meanwhile.
        let pending = seq(q.arrive(QoS::AtLeastOnce, 1, ()));
        assert_eq!(q.arrive(QoS::ExactlyOnce, 7, ()), Arrival::AlreadyStored);
        assert!(q.release(7));
        q.settle(pending, 1, true);
        assert_eq!(q.take_acks(), [Outbound::PubAck(1), Outbound::PubRec(7)]);
        // 7 is free: a new message with it is stored.
        assert!(matches!(
            q.arrive(QoS::ExactlyOnce, 7, ()),
            Arrival::Store { .. }
        ));
    }

    #[test]
    fn qos2_ids_awaiting_release_are_bounded_by_the_window() {
        let mut q = AckQueue::new(2);
        for pkid in 1..=3 {
            let s = seq(q.arrive(QoS::ExactlyOnce, pkid, ()));
            q.settle(s, 1, true);
            q.take_acks();
        }
        assert!(!q.release(1), "the oldest was forgotten");
        assert!(q.release(2) && q.release(3));
    }
}

//! Timers, not scans: a shard's devices' deadlines (late, offline, quarantine's end) in
//! one min-heap, with one actix timer armed for the earliest. No periodic sweep over the
//! devices: a device costs work only when its own deadline comes.
//!
//! About one heap entry per device: a device's deadline lives in its state (`Slot`), and
//! the heap holds an entry standing for it. When a device's deadline moves later (it
//! reported), nothing is pushed; when its entry is popped early, it is pushed again at its
//! current deadline (lazily). Only a deadline moved earlier (a quarantine's end before
//! the late deadline) pushes a second entry, and the first goes stale. So the heap holds
//! at most two entries per device, which `max_devices` bounds.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

/// Microseconds since 1970.
pub type Micros = i64;

#[derive(Debug, Default)]
pub struct TimerQueue {
    heap: BinaryHeap<Reverse<(Micros, Arc<str>)>>,
}

impl TimerQueue {
    /// Queues `device` at `deadline`; the caller marks it queued.
    pub fn push(&mut self, deadline: Micros, device: Arc<str>) {
        self.heap.push(Reverse((deadline, device)));
    }

    /// The earliest deadline queued.
    pub fn next(&self) -> Option<Micros> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The next entry whose deadline is at or before `now`: its time and device.
    pub fn pop_due(&mut self, now: Micros) -> Option<(Micros, Arc<str>)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(entry)| entry),
            _ => None,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn clear(&mut self) {
        self.heap.clear();
    }
}

/// A device's side of the timers: its current deadline, and the time of the heap entry
/// that stands for it (if any). `NONE` stands for "none" (16 bytes, not 32: a device's
/// box stays within its allocator's 256-byte class).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    /// `NONE`: nothing to wait for.
    deadline: Micros,
    queued_at: Micros,
}

const NONE: Micros = Micros::MIN;

fn some(at: Micros) -> Option<Micros> {
    (at != NONE).then_some(at)
}

impl Default for Slot {
    fn default() -> Slot {
        Slot {
            deadline: NONE,
            queued_at: NONE,
        }
    }
}

impl Slot {
    /// Sets the deadline; answers when an entry must be pushed: when none is queued, or
    /// the deadline moved earlier than the one queued (which then goes stale).
    pub fn set(&mut self, deadline: Option<Micros>) -> Option<Micros> {
        // A deadline at the very start of time is none (it cannot be: times are now-ish).
        self.deadline = deadline.unwrap_or(NONE);
        let at = some(self.deadline)?;
        match some(self.queued_at) {
            Some(queued) if at >= queued => None,
            _ => {
                self.queued_at = at;
                Some(at)
            }
        }
    }

    /// Its entry for `entry_at` was popped at `now`: whether the deadline has come
    /// (`Fired`), must be waited for again (`Requeue(at)`: it moved later), is gone, or the
    /// entry was a stale one (superseded by an earlier one).
    pub fn popped(&mut self, entry_at: Micros, now: Micros) -> Popped {
        if self.queued_at != entry_at {
            return Popped::Stale;
        }
        self.queued_at = NONE;
        match some(self.deadline) {
            Some(at) if at <= now => {
                self.deadline = NONE;
                Popped::Fired
            }
            Some(at) => {
                self.queued_at = at;
                Popped::Requeue(at)
            }
            None => Popped::Gone,
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum Popped {
    Fired,
    Requeue(Micros),
    Gone,
    Stale,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_devices_come_out_in_deadline_order() {
        let mut timers = TimerQueue::default();
        timers.push(30, "c".into());
        timers.push(10, "a".into());
        timers.push(20, "b".into());
        assert_eq!(timers.next(), Some(10));
        assert_eq!(timers.pop_due(5), None);
        assert_eq!(timers.pop_due(25), Some((10, "a".into())));
        assert_eq!(timers.pop_due(25), Some((20, "b".into())));
        assert_eq!(timers.pop_due(25), None);
        assert_eq!(timers.len(), 1);
    }

    #[test]
    fn a_deadline_moved_later_is_requeued_not_pushed_twice() {
        let mut slot = Slot::default();
        assert_eq!(slot.set(Some(100)), Some(100), "first deadline: push");
        assert_eq!(
            slot.set(Some(200)),
            None,
            "moved later: the entry will requeue"
        );
        assert_eq!(slot.popped(100, 100), Popped::Requeue(200));
        assert_eq!(slot.popped(200, 200), Popped::Fired);
        assert_eq!(slot.set(Some(300)), Some(300), "after firing, push again");
        slot.set(None);
        assert_eq!(slot.popped(300, 300), Popped::Gone);
        assert_eq!(slot.set(Some(400)), Some(400));
    }

    #[test]
    fn a_deadline_moved_earlier_pushes_and_the_old_entry_goes_stale() {
        let mut slot = Slot::default();
        slot.set(Some(1_000));
        assert_eq!(slot.set(Some(50)), Some(50));
        assert_eq!(slot.popped(50, 50), Popped::Fired);
        assert_eq!(slot.popped(1_000, 1_000), Popped::Stale);
    }
}

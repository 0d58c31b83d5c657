//! Which devices' rows a shard still has to hand over, and when.
//!
//! Two cadences, because they cost differently: a device whose *status* changed (online,
//! late, offline, quarantined) has its row written at the next `fleet.flush_interval`,
//! with its event; a device that only *progressed* (counts, quality, rhythm, last
//! readings, last seen: every message changes these) has its row written
//! `fleet.state_interval` after it first progressed unsaved, once for everything it did
//! meanwhile. Writing every active device's row every second was most of what the fleet
//! cost per message (a row upsert for each device heard in that second, and for a device
//! reporting every few seconds one upsert per message).
//!
//! No hashing per message: a device carries a flag (`Device::unsaved`) that is set when it
//! first progresses unsaved, and only then is it queued here, with the time; so each
//! device is queued at most once (the flag is true exactly while it is queued), and the
//! queue is bounded by the devices a shard tracks. A queued device whose row went out
//! earlier with a status change stays queued: its row is written once more when due
//! (cheap, rare), which keeps the flag's rule simple.

use std::collections::{HashSet, VecDeque};

use super::state::DeviceId;

#[derive(Default)]
pub struct Unsaved {
    /// Devices whose status changed since their row was last handed over.
    changed: HashSet<DeviceId>,
    /// Devices that progressed unsaved, with when they first did (µs), oldest first.
    progressed: VecDeque<(i64, DeviceId)>,
}

impl Unsaved {
    /// The device's status changed: its row goes with the next hand-over.
    pub fn status_changed(&mut self, id: &DeviceId) {
        if !self.changed.contains(id) {
            self.changed.insert(id.clone());
        }
    }

    /// The device progressed unsaved at `at` (its flag was clear and is now set).
    pub fn progressed(&mut self, id: DeviceId, at: i64) {
        self.progressed.push_back((at, id));
    }

    /// A device forgotten: its row is not to be written (its queued progress, if any, is
    /// skipped when due: the device is gone).
    pub fn forget(&mut self, id: &str) {
        self.changed.remove(id);
    }

    /// Whether anything is due at `now`, progress unsaved for `wait` µs or more counting.
    pub fn any_due(&self, now: i64, wait: i64) -> bool {
        !self.changed.is_empty()
            || self
                .progressed
                .front()
                .is_some_and(|(at, _)| now - at >= wait)
    }

    /// What is due at `now`: the devices whose status changed, and the ones whose progress
    /// has waited `wait` µs or more (every one with `everything`). The second are handed
    /// out unqueued: their flag must be cleared (`Due::progressed`).
    pub fn take_due(&mut self, now: i64, wait: i64, everything: bool) -> Due {
        let changed = std::mem::take(&mut self.changed);
        let mut progressed = Vec::new();
        while let Some((at, _)) = self.progressed.front() {
            if !everything && now - at < wait {
                break;
            }
            let (_, id) = self.progressed.pop_front().expect("a front entry");
            progressed.push(id);
        }
        Due {
            changed,
            progressed,
        }
    }

    pub fn clear(&mut self) {
        self.changed.clear();
        self.progressed.clear();
    }

    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.progressed.len()
    }
}

/// The devices whose rows are due.
pub struct Due {
    pub changed: HashSet<DeviceId>,
    /// Dequeued: each one's `Device::unsaved` flag is to be cleared.
    pub progressed: Vec<DeviceId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> DeviceId {
        DeviceId::from(s)
    }

    #[test]
    fn a_status_change_is_due_at_once_and_progress_after_its_wait() {
        let mut unsaved = Unsaved::default();
        unsaved.progressed(id("quiet"), 0);
        unsaved.progressed(id("later"), 5);
        unsaved.status_changed(&id("flipped"));
        unsaved.status_changed(&id("flipped"));
        assert!(unsaved.any_due(1, 10));
        let due = unsaved.take_due(1, 10, false);
        assert_eq!(due.changed, HashSet::from([id("flipped")]));
        assert!(due.progressed.is_empty(), "progress waits");
        assert!(!unsaved.any_due(9, 10));
        assert!(unsaved.any_due(10, 10));
        let due = unsaved.take_due(12, 10, false);
        assert_eq!(
            due.progressed,
            vec![id("quiet")],
            "oldest first, only the due"
        );
        assert_eq!(unsaved.queued(), 1);
    }

    #[test]
    fn everything_is_due_at_shutdown() {
        let mut unsaved = Unsaved::default();
        unsaved.progressed(id("a"), 100);
        unsaved.progressed(id("b"), 200);
        let due = unsaved.take_due(0, 1_000_000, true);
        assert_eq!(due.progressed, vec![id("a"), id("b")]);
        assert_eq!(unsaved.queued(), 0);
    }

    #[test]
    fn a_forgotten_device_is_not_written_for_its_status() {
        let mut unsaved = Unsaved::default();
        unsaved.status_changed(&id("gone"));
        unsaved.forget("gone");
        assert!(unsaved.take_due(0, 0, false).changed.is_empty());
    }
}

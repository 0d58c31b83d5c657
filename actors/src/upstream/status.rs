//! The devices' status topic (`fleet.status_topic`, e.g. `devices/{device_id}/status`),
//! subscribed beside the telemetry: a status (`online`/`offline`, often a will) has nothing
//! to commit, but it takes its place in receipt order all the same. It is marked stored at
//! once, and is told to the fleet only when its ack is due, that is once every message
//! received before it was committed and told to the fleet: a will never overtakes the
//! device's last readings, and its ack never overtakes theirs. It keeps its slot of the
//! window until the fleet's shard has handled it.

use std::collections::VecDeque;

use super::filter::Filter;
use super::in_order::Slot;
use crate::fleet::{parse_status, FleetFeed};
use crate::ingest::{TopicPattern, DEVICE_ID_PLACEHOLDER};

struct Pending {
    /// Its sequence number in the connection's receipt order.
    seq: u64,
    device_id: String,
    /// `None`: a payload that says nothing (ignored, acked in its turn).
    online: Option<bool>,
    slot: Slot,
}

/// The statuses of one connection, waiting for their turn.
pub struct Statuses {
    pattern: Option<TopicPattern>,
    waiting: VecDeque<Pending>,
}

impl Statuses {
    pub fn new(pattern: Option<TopicPattern>) -> Self {
        Statuses {
            pattern,
            waiting: VecDeque::new(),
        }
    }

    /// The subscription for the status topic (`+` for the device), in the shared group
    /// of the telemetry's first shared filter, if any, so that several Eliot nodes split
    /// the statuses as they split the readings.
    pub fn filter(&self, telemetry: &[Filter]) -> Option<Filter> {
        let pattern = self.pattern.as_ref()?.to_string();
        let topic = pattern.replace(DEVICE_ID_PLACEHOLDER, "+");
        let filter = match telemetry.iter().find_map(Filter::group) {
            Some(group) => format!("$share/{group}/{topic}"),
            None => topic,
        };
        Filter::parse(&filter).ok()
    }

    /// The device a status topic names (`None`: not a status topic).
    pub fn device_of<'t>(&self, topic: &'t str) -> Option<&'t str> {
        self.pattern.as_ref()?.device_id(topic)
    }

    /// A status received, `seq` in receipt order.
    pub fn arrived(&mut self, seq: u64, device_id: String, payload: &[u8], slot: Slot) {
        self.waiting.push_back(Pending {
            seq,
            device_id,
            online: parse_status(payload),
            slot,
        });
    }

    /// Tells the fleet the statuses whose turn came: those before `front`, the receipt
    /// order's first message not yet due.
    pub fn due(&mut self, front: u64, fleet: Option<&FleetFeed>) {
        while self.waiting.front().is_some_and(|p| p.seq < front) {
            let pending = self.waiting.pop_front().expect("checked above");
            if let (Some(online), Some(fleet)) = (pending.online, fleet) {
                fleet.status(&pending.device_id, online, Box::new(pending.slot));
            }
        }
    }

    /// Gives up every status waiting (the link is dropped: the broker redelivers them).
    pub fn forget(&mut self) {
        self.waiting.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statuses() -> Statuses {
        Statuses::new(Some(
            TopicPattern::parse("devices/{device_id}/status").unwrap(),
        ))
    }

    #[test]
    fn the_status_topic_is_subscribed_like_the_telemetry() {
        let plain = [Filter::parse("devices/+/telemetry").unwrap()];
        assert_eq!(
            statuses().filter(&plain).unwrap().subscribed(),
            "devices/+/status"
        );
        let shared = [Filter::parse("$share/eliot/devices/+/telemetry").unwrap()];
        assert_eq!(
            statuses().filter(&shared).unwrap().subscribed(),
            "$share/eliot/devices/+/status"
        );
        assert!(Statuses::new(None).filter(&plain).is_none());
    }

    #[test]
    fn only_status_topics_name_a_device() {
        let s = statuses();
        assert_eq!(s.device_of("devices/robot_1/status"), Some("robot_1"));
        assert_eq!(s.device_of("devices/robot_1/telemetry"), None);
        assert_eq!(s.device_of("devices/a/b/status"), None);
    }
}

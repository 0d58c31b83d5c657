//! A device's alerts, as its shard keeps them: the rules of its scope (computed at its
//! first use, so a reading meets only its device's rules, not every rule), the alerts
//! those rules ever raised, and the times of its recent dead letters (for `dead_letters`
//! rules). And the rows one change of an alert writes.

use std::collections::VecDeque;

use super::machine::{Slot, Transition};
use super::rules::{Rule, RuleId};
use super::Alerting;
use crate::store::{AlertEventRow, AlertStateRow, AlertWrites};

#[derive(Debug, Default)]
pub struct DeviceAlerts {
    /// The rules whose scope covers the device.
    pub rules: Box<[RuleId]>,
    /// The alerts of those rules raised at least once since the device was loaded.
    pub slots: Vec<(RuleId, Slot)>,
    /// When its recent dead letters came, oldest first: the newest `count` of its
    /// dead-letter rules' largest (whether `count` came within a window is whether the
    /// `count`-th newest did), so at most `rules::MAX_COUNT`.
    pub dead_letters: VecDeque<i64>,
}

impl DeviceAlerts {
    pub fn new(rules: Vec<RuleId>) -> DeviceAlerts {
        DeviceAlerts {
            rules: rules.into(),
            ..DeviceAlerts::default()
        }
    }

    pub fn get(&self, rule: RuleId) -> Option<&Slot> {
        self.slots.iter().find(|(r, _)| *r == rule).map(|(_, s)| s)
    }

    /// The alert of `rule`, inactive if it was never raised.
    pub fn slot(&mut self, rule: RuleId) -> &mut Slot {
        let at = match self.slots.iter().position(|(r, _)| *r == rule) {
            Some(at) => at,
            None => {
                self.slots.push((rule, Slot::default()));
                self.slots.len() - 1
            }
        };
        &mut self.slots[at].1
    }

    /// A dead letter came at `at`; the newest `keep` times are kept.
    pub fn dead_letter(&mut self, at: i64, keep: usize) {
        self.dead_letters.push_back(at);
        while self.dead_letters.len() > keep {
            self.dead_letters.pop_front();
        }
    }

    pub fn forget_dead_letters_before(&mut self, at: i64) {
        let before = self.dead_letters.partition_point(|t| *t <= at);
        self.dead_letters.drain(..before);
    }

    /// Of the dead letters kept, those within `window` micros before `now`.
    pub fn dead_letters_within(&self, window: i64, now: i64) -> usize {
        let before = self.dead_letters.partition_point(|t| *t <= now - window);
        self.dead_letters.len() - before
    }
}

/// The rows one change of an alert writes: its state row (or the row's removal), and the
/// event of a firing, resolution or acknowledgement, with a delivery due if a webhook is
/// set and no silence covers it.
pub fn change_rows(
    (rule, device_id): (&Rule, &str),
    slot: &Slot,
    event: Option<&'static str>,
    summary: &str,
    at: i64,
    alerting: &Alerting,
) -> AlertWrites {
    let state = AlertStateRow {
        rule: rule.name.clone(),
        device_id: device_id.to_owned(),
        phase: slot.phase.stored(),
        since: slot.since,
        value: slot.value,
        acked_at: slot.acked_at,
    };
    let events = event.map(|kind| AlertEventRow {
        id: 0,
        rule: rule.name.clone(),
        device_id: device_id.to_owned(),
        at,
        kind,
        severity: rule.severity.name(),
        value: slot.value,
        summary: summary.to_owned(),
        silenced: alerting.silences.covers(&rule.name, device_id, at),
        notify: alerting.notify && kind != "acknowledged",
    });
    AlertWrites {
        states: vec![state],
        events: events.into_iter().collect(),
        deliveries: Vec::new(),
    }
}

/// The name a transition is counted and logged by.
pub fn change_name(transition: Transition) -> &'static str {
    match transition {
        Transition::Pending => "pending",
        Transition::Fired => "fired",
        Transition::Resolved => "resolved",
        Transition::Cancelled => "cancelled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_are_counted_within_a_window_and_only_the_newest_kept() {
        let mut alerts = DeviceAlerts::new(vec![0]);
        for at in [10, 20, 30, 40] {
            alerts.dead_letter(at, 3);
        }
        assert_eq!(alerts.dead_letters, [20, 30, 40], "the newest 3");
        assert_eq!(
            alerts.dead_letters_within(15, 40),
            2,
            "30 and 40 (after 25)"
        );
        assert_eq!(alerts.dead_letters_within(100, 40), 3);
        assert_eq!(alerts.dead_letters_within(10, 60), 0);
        alerts.forget_dead_letters_before(30);
        assert_eq!(alerts.dead_letters, [40], "30 and before forgotten");
    }

    #[test]
    fn a_slot_is_made_once() {
        let mut alerts = DeviceAlerts::new(vec![3]);
        alerts.slot(3).since = 9;
        assert_eq!(alerts.slot(3).since, 9);
        assert_eq!(alerts.slots.len(), 1);
        assert!(alerts.get(4).is_none());
    }
}

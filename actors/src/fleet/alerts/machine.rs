//! One alert's state machine, for one (rule, device): inactive → pending → firing →
//! resolved (and inactive again), or pending → inactive when the condition ends before
//! the rule's `for`. A plain value taking the time, so that every path is a unit test.

/// Where an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Inactive,
    /// The condition holds, not yet for the rule's `for`.
    Pending,
    Firing,
}

impl Phase {
    /// Its name in `alert_states` (`None`: no row).
    pub fn stored(self) -> Option<&'static str> {
        match self {
            Phase::Inactive => None,
            Phase::Pending => Some("pending"),
            Phase::Firing => Some("firing"),
        }
    }

    pub fn parse(text: &str) -> Option<Phase> {
        match text {
            "pending" => Some(Phase::Pending),
            "firing" => Some(Phase::Firing),
            _ => None,
        }
    }
}

/// A step of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Inactive → pending.
    Pending,
    /// → firing: notified.
    Fired,
    /// Firing → inactive: notified.
    Resolved,
    /// Pending → inactive, before it fired: nothing to tell.
    Cancelled,
}

impl Transition {
    /// The event it leaves in the alert's history, if any.
    pub fn event(self) -> Option<&'static str> {
        match self {
            Transition::Fired => Some("fired"),
            Transition::Resolved => Some("resolved"),
            Transition::Pending | Transition::Cancelled => None,
        }
    }
}

/// One alert: its phase since when, the value that last held it, whether its firing was
/// acknowledged, and a version that every change moves (an undo applies only if nothing
/// changed the alert since).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    pub phase: Phase,
    /// Microseconds since 1970: when the phase began (pending: when the condition began).
    pub since: i64,
    pub value: Option<f64>,
    pub acked_at: Option<i64>,
    pub version: u32,
}

impl Default for Slot {
    fn default() -> Slot {
        Slot {
            phase: Phase::Inactive,
            since: 0,
            value: None,
            acked_at: None,
            version: 0,
        }
    }
}

impl Slot {
    pub fn raised(&self) -> bool {
        self.phase != Phase::Inactive
    }

    /// The condition was judged at `at` (`holds`, on `value`); `hold`: the rule's `for`,
    /// in microseconds.
    pub fn judge(
        &mut self,
        holds: bool,
        value: Option<f64>,
        at: i64,
        hold: i64,
    ) -> Option<Transition> {
        let step = match (self.phase, holds) {
            (Phase::Inactive, false) => return None,
            (Phase::Inactive, true) if hold <= 0 => (Phase::Firing, Transition::Fired),
            (Phase::Inactive, true) => (Phase::Pending, Transition::Pending),
            (Phase::Pending, true) if at.saturating_sub(self.since) >= hold => {
                (Phase::Firing, Transition::Fired)
            }
            (Phase::Pending, false) => (Phase::Inactive, Transition::Cancelled),
            (Phase::Firing, false) => (Phase::Inactive, Transition::Resolved),
            // Still pending, or still firing: the value moves, nothing else.
            (Phase::Pending | Phase::Firing, true) => {
                self.value = value.or(self.value);
                return None;
            }
        };
        Some(self.enter(step, value, at))
    }

    /// The rule's `for` may have passed at `now`, with no new judgement: a pending alert
    /// whose condition still holds fires.
    pub fn tick(&mut self, now: i64, hold: i64) -> Option<Transition> {
        (self.phase == Phase::Pending && now.saturating_sub(self.since) >= hold)
            .then(|| self.enter((Phase::Firing, Transition::Fired), self.value, now))
    }

    /// When `tick` may fire it (pending only).
    pub fn due(&self, hold: i64) -> Option<i64> {
        (self.phase == Phase::Pending).then(|| self.since.saturating_add(hold))
    }

    /// Acknowledges a firing alert at `now`; false if it is not firing or already was.
    pub fn acknowledge(&mut self, now: i64) -> bool {
        if self.phase != Phase::Firing || self.acked_at.is_some() {
            return false;
        }
        self.acked_at = Some(now);
        self.version = self.version.wrapping_add(1);
        true
    }

    fn enter(
        &mut self,
        (phase, why): (Phase, Transition),
        value: Option<f64>,
        at: i64,
    ) -> Transition {
        // A pending alert fires at the time it began holding only if `for` is zero; else
        // `since` is when it fired.
        self.phase = phase;
        self.since = at;
        self.value = value.or(self.value);
        if phase != Phase::Firing {
            self.acked_at = None;
        }
        self.version = self.version.wrapping_add(1);
        why
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOR: i64 = 5_000_000;

    #[test]
    fn a_condition_held_past_for_fires_once_and_resolves_once() {
        let mut slot = Slot::default();
        assert_eq!(
            slot.judge(true, Some(31.0), 0, FOR),
            Some(Transition::Pending)
        );
        assert_eq!(slot.judge(true, Some(32.0), 1_000_000, FOR), None);
        assert_eq!(slot.due(FOR), Some(FOR));
        assert_eq!(slot.tick(FOR - 1, FOR), None);
        assert_eq!(slot.tick(FOR, FOR), Some(Transition::Fired));
        assert_eq!(slot.tick(FOR + 1, FOR), None, "fired once");
        assert_eq!(slot.judge(true, Some(33.0), FOR + 2, FOR), None);
        assert_eq!(slot.value, Some(33.0));
        assert_eq!(
            slot.judge(false, Some(20.0), FOR + 3, FOR),
            Some(Transition::Resolved)
        );
        assert_eq!(
            slot.judge(false, Some(20.0), FOR + 4, FOR),
            None,
            "resolved once"
        );
        assert_eq!(slot.phase, Phase::Inactive);
    }

    #[test]
    fn a_reading_after_for_fires_without_the_timer() {
        let mut slot = Slot::default();
        slot.judge(true, Some(31.0), 0, FOR);
        assert_eq!(
            slot.judge(true, Some(31.0), FOR, FOR),
            Some(Transition::Fired)
        );
        assert_eq!(slot.since, FOR);
    }

    #[test]
    fn a_condition_ended_before_for_is_cancelled_silently() {
        let mut slot = Slot::default();
        slot.judge(true, Some(31.0), 0, FOR);
        let cancelled = slot.judge(false, Some(20.0), 1, FOR).unwrap();
        assert_eq!(cancelled, Transition::Cancelled);
        assert_eq!(cancelled.event(), None);
        assert_eq!(slot.tick(FOR, FOR), None, "nothing pending to fire");
    }

    #[test]
    fn without_for_the_first_reading_fires() {
        let mut slot = Slot::default();
        assert_eq!(slot.judge(true, Some(1.0), 7, 0), Some(Transition::Fired));
        assert_eq!(slot.since, 7);
    }

    #[test]
    fn an_acknowledgement_holds_until_the_alert_is_over() {
        let mut slot = Slot::default();
        assert!(!slot.acknowledge(1), "nothing firing");
        slot.judge(true, Some(1.0), 0, 0);
        let version = slot.version;
        assert!(slot.acknowledge(2));
        assert!(!slot.acknowledge(3), "once");
        assert_ne!(slot.version, version);
        slot.judge(false, None, 4, 0);
        slot.judge(true, Some(1.0), 5, 0);
        assert_eq!(slot.acked_at, None, "a new firing is not acknowledged");
    }

    #[test]
    fn every_change_moves_the_version() {
        let mut slot = Slot::default();
        let mut versions = vec![slot.version];
        slot.judge(true, Some(1.0), 0, FOR);
        versions.push(slot.version);
        slot.judge(true, Some(2.0), 1, FOR);
        assert_eq!(slot.version, versions[1], "a value alone is no change");
        slot.tick(FOR, FOR);
        versions.push(slot.version);
        versions.dedup();
        assert_eq!(versions.len(), 3);
    }
}

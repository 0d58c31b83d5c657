//! What a shard does with its devices' alerts.
//!
//! - **Threshold rules, before the commit** (`Evaluate`): the pipeline sends the readings
//!   of accepted messages whose sensor type some threshold rule is about; the shard judges
//!   each against its device's rules, in arrival order, and answers the changes. The
//!   pipeline hands each change to the store writer tied to its message, so it is written
//!   in the transaction that stores the reading. If the reading was not stored as judged
//!   (the commit failed, or the store amended the message: a duplicate, a conflict), the
//!   pipeline sends the change back (`Unsettled`) and the shard undoes it, if nothing
//!   changed the alert since; otherwise the alert's current row and the lost event are
//!   written with the next hand-over.
//! - **The rest, as the shard hears it**: absence when a device's presence changes,
//!   dead-letter rates as dead letters are told, anomaly scores as they are computed, and
//!   each rule's `for` (and a dead-letter window's end) by timers. These changes are
//!   written with the fleet's next hand-over, at once.
//!
//! A reading older than its device's last of that sensor type is not judged: an alert
//! follows a series' newest value, so a backfill does not raise yesterday's alerts.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use actix::prelude::*;

use super::super::shard::{now_micros, FleetShard};
use super::super::state::{Device, DeviceId, Presence};
use super::device::{change_name, change_rows, DeviceAlerts};
use super::machine::{Phase, Slot, Transition};
use super::rules::{Kind, Rule, RuleId, RuleSet};
use super::Alerting;
use crate::observe::Event;
use crate::store::{AlertStateRow, AlertWrites};

/// A reading of an accepted message, to judge before its commit.
#[derive(Debug, Clone)]
pub struct ToJudge {
    /// Its message's position in the pipeline's request.
    pub message: usize,
    pub device_id: String,
    pub sensor_type: String,
    pub ts: i64,
    pub received_at: i64,
    /// The values of the fields the threshold rules about its sensor type read, by name.
    pub values: Vec<(Arc<str>, f64)>,
}

/// Judge these readings (one shard's, in arrival order); answers the changes made.
#[derive(Message)]
#[rtype(result = "Vec<Judged>")]
pub struct Evaluate(pub Vec<ToJudge>);

/// A change made by judging a reading of message `message`: its rows, to be written with
/// that message, and how to undo it if they are not.
#[derive(Debug)]
pub struct Judged {
    pub message: usize,
    pub undo: Undo,
}

#[derive(Debug, Clone)]
pub struct Undo {
    pub device_id: DeviceId,
    pub rule: RuleId,
    pub before: Slot,
    /// The alert's version the change left: the undo applies only if it is still that.
    pub version: u32,
    pub writes: AlertWrites,
}

/// These changes were not written with their readings.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsettled(pub Vec<Undo>);

/// The alerts' deadlines: a pending alert's `for`, a dead-letter window's end. Entries are
/// checked when they come (the alert may have moved on: nothing to do then).
#[derive(Debug, Default)]
pub struct AlertTimers {
    heap: BinaryHeap<Reverse<(i64, DeviceId, RuleId)>>,
}

impl AlertTimers {
    pub fn push(&mut self, at: i64, device: DeviceId, rule: RuleId) {
        self.heap.push(Reverse((at, device, rule)));
    }

    pub fn next(&self) -> Option<i64> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    fn pop_due(&mut self, now: i64) -> Option<(DeviceId, RuleId)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                self.heap.pop().map(|Reverse((_, d, r))| (d, r))
            }
            _ => None,
        }
    }

    pub fn clear(&mut self) {
        self.heap.clear();
    }
}

/// A change of one alert, made in a device's state.
struct Change {
    rule: RuleId,
    transition: Option<Transition>,
    /// For an acknowledgement, which has no transition.
    event: Option<&'static str>,
    before: Slot,
    after: Slot,
    summary: String,
    at: i64,
}

/// The device's alerts, made with the rules of its scope at first use.
fn alerts_of<'d>(
    alerts: &'d mut Option<Box<DeviceAlerts>>,
    rules: &RuleSet,
    id: &str,
) -> &'d mut DeviceAlerts {
    alerts.get_or_insert_with(|| Box::new(DeviceAlerts::new(rules.covering(id))))
}

fn micros_text(micros: i64) -> String {
    format!("{:.1}s", micros as f64 / 1e6)
}

/// Judges one condition of `rule` on the device's alert; the change, if any.
fn judge(
    alerts: &mut DeviceAlerts,
    (id, rule): (RuleId, &Rule),
    (holds, value): (bool, Option<f64>),
    at: i64,
    summary: impl FnOnce(Option<Transition>) -> String,
) -> Option<Change> {
    let slot = alerts.slot(id);
    let before = *slot;
    let transition = slot.judge(holds, value, at, rule.hold)?;
    Some(Change {
        rule: id,
        transition: Some(transition),
        event: transition.event(),
        before,
        after: *slot,
        summary: summary(Some(transition)),
        at,
    })
}

fn threshold_summary(rule: &Rule, value: f64, transition: Option<Transition>) -> String {
    let Kind::Threshold {
        sensor_type,
        field,
        value: bound,
        clear,
        ..
    } = &rule.kind
    else {
        return String::new();
    };
    let op = rule.config.op.as_deref().unwrap_or("?");
    match transition {
        Some(Transition::Resolved | Transition::Cancelled) => {
            format!("{sensor_type}.{field} = {value}: back past {clear}")
        }
        _ => format!("{sensor_type}.{field} = {value} {op} {bound}"),
    }
}

impl FleetShard {
    /// Judges readings against the threshold rules, before their commit.
    fn evaluate(&mut self, readings: Vec<ToJudge>) -> Vec<Judged> {
        let Some(alerting) = self.alerting.clone() else {
            return Vec::new();
        };
        let rules = self.alert_rules.clone();
        let mut judged = Vec::new();
        for reading in readings {
            let Some((id, _)) = self.known_or_added(&reading.device_id, reading.received_at) else {
                continue;
            };
            let changes = self
                .book
                .update(&id, |device| judge_reading(device, &rules, &id, &reading))
                .unwrap_or_default();
            for change in changes {
                let undo = self.settle(&alerting, &id, change, false);
                judged.push(Judged {
                    message: reading.message,
                    undo,
                });
            }
        }
        judged
    }

    /// Logs and counts a change, arms its timer; answers its rows (and how to undo it).
    /// `hand_over`: the rows go with the fleet's next hand-over (no reading carries them).
    fn settle(
        &mut self,
        alerting: &Alerting,
        id: &DeviceId,
        change: Change,
        hand_over: bool,
    ) -> Undo {
        let rules = self.alert_rules.clone();
        let Some(rule) = rules.get(change.rule) else {
            unreachable!("a slot's rule is in the set that made it");
        };
        let name = change
            .transition
            .map(change_name)
            .or(change.event)
            .unwrap_or("");
        let writes = change_rows(
            (rule, id),
            &change.after,
            change.event,
            &change.summary,
            change.at,
            alerting,
        );
        Event::AlertChanged {
            rule: &rule.name,
            device_id: id,
            severity: rule.severity.name(),
            to: name,
            summary: &change.summary,
            silenced: writes.events.iter().any(|e| e.silenced),
        }
        .emit(&self.telemetry);
        if let Some(due) = change.after.due(rule.hold) {
            self.alert_timers.push(due, id.clone(), change.rule);
        }
        if let (Kind::DeadLetters { window, .. }, Phase::Firing) = (&rule.kind, change.after.phase)
        {
            let window = i64::try_from(window.as_micros()).unwrap_or(i64::MAX / 4);
            self.alert_timers
                .push(change.at.saturating_add(window), id.clone(), change.rule);
        }
        let undo = Undo {
            device_id: id.clone(),
            rule: change.rule,
            before: change.before,
            version: change.after.version,
            writes: writes.clone(),
        };
        if hand_over {
            self.hand_over_alerts(writes);
        }
        undo
    }

    /// Queues rows for the fleet's next hand-over, within `alerts.max_pending`.
    pub(in crate::fleet) fn hand_over_alerts(&mut self, writes: AlertWrites) {
        let max = self.alerting.as_ref().map_or(usize::MAX, |a| a.max_pending);
        self.alert_writes.append(writes);
        let over = self.alert_writes.rows().saturating_sub(max);
        if over > 0 {
            let states = over.min(self.alert_writes.states.len());
            self.alert_writes.states.drain(..states);
            let events = (over - states).min(self.alert_writes.events.len());
            self.alert_writes.events.drain(..events);
            Event::AlertChangesDropped {
                dropped: states + events,
            }
            .emit(&self.telemetry);
        }
        self.alerts_due = true;
    }

    /// Changes made without a reading to carry them (presence, dead letters, scores,
    /// timers, acknowledgements): logged, and handed over.
    fn settle_all(&mut self, id: &DeviceId, changes: Vec<Change>) {
        let Some(alerting) = self.alerting.clone() else {
            return;
        };
        for change in changes {
            self.settle(&alerting, id, change, true);
        }
    }

    /// The device's presence may have changed: its absence rules are judged.
    pub(in crate::fleet) fn presence_alerts(&mut self, id: &DeviceId, now: i64) {
        let rules = self.alert_rules.clone();
        if self.alerting.is_none() || !rules.absence {
            return;
        }
        let changes = self.book.update(id, |device| {
            // A device never heard is not absent: it never started.
            if device.last_seen.is_none() {
                return Vec::new();
            }
            let presence = device.presence;
            let alerts = alerts_of(&mut device.alerts, &rules, id);
            let mut changes = Vec::new();
            for rule_id in alerts.rules.clone().iter().copied() {
                let Some(rule) = rules.get(rule_id) else {
                    continue;
                };
                let Kind::Absence { offline_only } = rule.kind else {
                    continue;
                };
                let holds = match presence {
                    Presence::Offline => true,
                    Presence::Late => !offline_only,
                    Presence::Online => false,
                };
                let wanted = if offline_only { "offline" } else { "late" };
                changes.extend(judge(
                    alerts,
                    (rule_id, rule),
                    (holds, None),
                    now,
                    |t| match t {
                        Some(Transition::Resolved | Transition::Cancelled) => {
                            "reporting again".to_owned()
                        }
                        _ => format!("{wanted} for {}", micros_text(rule.hold)),
                    },
                ));
            }
            changes
        });
        self.settle_all(id, changes.unwrap_or_default());
    }

    /// A dead letter of the device came at `at` (not a quarantine's: that is its own
    /// state); its dead-letter rules are judged.
    pub(in crate::fleet) fn dead_letter_alerts(&mut self, id: &DeviceId, at: i64) {
        let rules = self.alert_rules.clone();
        if self.alerting.is_none() || !rules.dead_letters {
            return;
        }
        let changes = self.book.update(id, |device| {
            let alerts = alerts_of(&mut device.alerts, &rules, id);
            let keep = dead_letter_rules(alerts, &rules).iter().map(|r| r.2).max();
            let Some(keep) = keep else {
                return Vec::new();
            };
            alerts.dead_letter(at, keep as usize);
            dead_letter_changes(alerts, &rules, at)
        });
        self.settle_all(id, changes.unwrap_or_default());
    }

    /// The device's anomaly scores moved: its anomaly rules are judged on the highest
    /// latest score of the series each names.
    pub(in crate::fleet) fn anomaly_alerts(&mut self, id: &DeviceId, at: i64) {
        let rules = self.alert_rules.clone();
        if self.alerting.is_none() || !rules.anomaly {
            return;
        }
        let changes = self.book.update(id, |device| {
            let Some(anomalies) = device.anomalies.as_deref() else {
                return Vec::new();
            };
            let alerts = alerts_of(&mut device.alerts, &rules, id);
            let mut changes = Vec::new();
            for rule_id in alerts.rules.clone().iter().copied() {
                let Some(rule) = rules.get(rule_id) else {
                    continue;
                };
                let Kind::Anomaly {
                    sensor_type,
                    field,
                    score,
                    clear,
                } = &rule.kind
                else {
                    continue;
                };
                let highest = anomalies
                    .scores()
                    .filter(|(t, f, _)| {
                        sensor_type.as_deref().is_none_or(|s| s == *t)
                            && field.as_deref().is_none_or(|x| x == *f)
                    })
                    .map(|(_, _, s)| s)
                    .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
                let Some(highest) = highest else { continue };
                let raised = alerts.get(rule_id).is_some_and(Slot::raised);
                let holds = if raised {
                    highest >= *clear
                } else {
                    highest >= *score
                };
                changes.extend(judge(
                    alerts,
                    (rule_id, rule),
                    (holds, Some(highest)),
                    at,
                    |t| match t {
                        Some(Transition::Resolved) => {
                            format!("anomaly score {highest:.2}: below {clear}")
                        }
                        _ => format!("anomaly score {highest:.2} >= {score}"),
                    },
                ));
            }
            changes
        });
        self.settle_all(id, changes.unwrap_or_default());
    }

    /// Alert deadlines that came: a pending alert whose `for` passed fires; a firing
    /// dead-letter alert whose window emptied resolves.
    pub(in crate::fleet) fn alert_deadlines(&mut self, now: i64) {
        if self.alerting.is_none() {
            return;
        }
        let rules = self.alert_rules.clone();
        while let Some((id, rule_id)) = self.alert_timers.pop_due(now) {
            let Some(rule) = rules.get(rule_id) else {
                continue;
            };
            let changes = self.book.update(&id, |device| {
                let Some(alerts) = device.alerts.as_deref_mut() else {
                    return Vec::new();
                };
                if let Kind::DeadLetters { .. } = rule.kind {
                    return dead_letter_changes(alerts, &rules, now);
                }
                let slot = alerts.slot(rule_id);
                let before = *slot;
                let Some(transition) = slot.tick(now, rule.hold) else {
                    return Vec::new();
                };
                let after = *slot;
                let summary = match &rule.kind {
                    Kind::Threshold { .. } => {
                        threshold_summary(rule, after.value.unwrap_or(f64::NAN), Some(transition))
                    }
                    _ => format!("{} for {}", "absent", micros_text(rule.hold)),
                };
                vec![Change {
                    rule: rule_id,
                    transition: Some(transition),
                    event: transition.event(),
                    before,
                    after,
                    summary,
                    at: now,
                }]
            });
            self.settle_all(&id, changes.unwrap_or_default());
        }
    }

    /// Acknowledges the firing alert of rule `name` on `device_id`.
    pub(in crate::fleet) fn acknowledge(&mut self, name: &str, device_id: &str, by: &str) -> Acked {
        if self.alerting.is_none() {
            return Acked::NotFiring;
        }
        let rules = self.alert_rules.clone();
        let Some((rule_id, _)) = rules.by_name(name) else {
            return Acked::UnknownRule;
        };
        let Some(id) = self.book.key(device_id) else {
            return Acked::NotFiring;
        };
        let now = now_micros();
        let change = self.book.update(&id, |device| {
            let alerts = device.alerts.as_deref_mut()?;
            let slot = alerts.slots.iter_mut().find(|(r, _)| *r == rule_id)?;
            let before = slot.1;
            slot.1.acknowledge(now).then(|| Change {
                rule: rule_id,
                transition: None,
                event: Some("acknowledged"),
                before,
                after: slot.1,
                summary: format!("acknowledged by {by}"),
                at: now,
            })
        });
        match change.flatten() {
            Some(change) => {
                self.settle_all(&id, vec![change]);
                Acked::Acknowledged
            }
            None => Acked::NotFiring,
        }
    }

    /// Loaded rows of alerts raised before the start; a rule no longer configured has its
    /// alerts resolved.
    pub(in crate::fleet) fn load_alerts(&mut self, rows: Vec<AlertStateRow>, now: i64) {
        let Some(alerting) = self.alerting.clone() else {
            return;
        };
        let rules = self.alert_rules.clone();
        for row in rows {
            // A device whose alert was committed with its first readings may have no
            // state row yet (written within `fleet.state_interval`): it is known now.
            let Some((id, _)) = self.known_or_added(&row.device_id, now) else {
                continue;
            };
            let Some(phase) = row.phase.and_then(super::machine::Phase::parse) else {
                continue;
            };
            let slot = Slot {
                phase,
                since: row.since,
                value: row.value,
                acked_at: row.acked_at,
                version: 0,
            };
            let Some((rule_id, rule)) = rules.by_name(&row.rule) else {
                let mut over = AlertWrites::default();
                over.states.push(AlertStateRow {
                    phase: None,
                    ..row.clone()
                });
                if phase == Phase::Firing {
                    over.events.push(crate::store::AlertEventRow {
                        id: 0,
                        rule: row.rule.clone(),
                        device_id: row.device_id.clone(),
                        at: now,
                        kind: "resolved",
                        severity: "info",
                        value: row.value,
                        summary: "its rule is no longer configured".into(),
                        silenced: false,
                        notify: alerting.notify,
                    });
                }
                self.hand_over_alerts(over);
                continue;
            };
            let hold = rule.hold;
            let kind = rule.kind.clone();
            self.book.update(&id, |device| {
                *alerts_of(&mut device.alerts, &rules, &id).slot(rule_id) = slot;
            });
            if let Some(due) = slot.due(hold) {
                self.alert_timers.push(due, id.clone(), rule_id);
            }
            if let (Kind::DeadLetters { .. }, Phase::Firing) = (kind, phase) {
                // Its dead letters' times died with the last run: the window starts over.
                self.alert_timers.push(now, id.clone(), rule_id);
            }
        }
    }
}

/// What one reading changes in its device's threshold alerts.
fn judge_reading(device: &mut Device, rules: &RuleSet, id: &str, r: &ToJudge) -> Vec<Change> {
    if device
        .last_of(&r.sensor_type)
        .is_some_and(|last| r.ts < last.ts)
    {
        return Vec::new();
    }
    let alerts = alerts_of(&mut device.alerts, rules, id);
    let mut changes = Vec::new();
    for rule_id in alerts.rules.clone().iter().copied() {
        let Some(rule) = rules.get(rule_id) else {
            continue;
        };
        let Kind::Threshold { sensor_type, .. } = &rule.kind else {
            continue;
        };
        let Kind::Threshold { field, .. } = &rule.kind else {
            continue;
        };
        let value = r.values.iter().find(|(name, _)| **name == **field);
        let (Some((_, value)), true) = (value, *sensor_type == r.sensor_type) else {
            continue;
        };
        let value = *value;
        let raised = alerts.get(rule_id).is_some_and(Slot::raised);
        let holds = rule.threshold_holds(value, raised);
        changes.extend(judge(
            alerts,
            (rule_id, rule),
            (holds, Some(value)),
            r.received_at,
            |t| threshold_summary(rule, value, t),
        ));
    }
    changes
}

/// The device's dead-letter rules: each with its `count` and its window in micros.
fn dead_letter_rules<'r>(
    alerts: &DeviceAlerts,
    rules: &'r RuleSet,
) -> Vec<(RuleId, &'r Rule, u32, i64)> {
    let kept = alerts.rules.iter().filter_map(|id| {
        let rule = rules.get(*id)?;
        match rule.kind {
            Kind::DeadLetters { count, window } => Some((
                *id,
                rule,
                count,
                i64::try_from(window.as_micros()).unwrap_or(i64::MAX / 4),
            )),
            _ => None,
        }
    });
    kept.collect()
}

/// The device's dead-letter rules judged at `now` on its dead letters' times.
fn dead_letter_changes(alerts: &mut DeviceAlerts, rules: &RuleSet, now: i64) -> Vec<Change> {
    let rules = dead_letter_rules(alerts, rules);
    // Past the longest window a time counts for no rule.
    let longest = rules.iter().map(|r| r.3).max().unwrap_or(0);
    alerts.forget_dead_letters_before(now - longest);
    let mut changes = Vec::new();
    for (rule_id, rule, count, window) in rules {
        let seen = alerts.dead_letters_within(window, now);
        let holds = seen >= count as usize;
        let window_text = micros_text(window);
        changes.extend(judge(
            alerts,
            (rule_id, rule),
            (holds, Some(seen as f64)),
            now,
            |t| match t {
                Some(Transition::Resolved) => {
                    format!("{seen} dead letters within {window_text}: under {count}")
                }
                _ => format!("{seen} dead letters within {window_text}"),
            },
        ));
    }
    changes
}

/// What an acknowledgement found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acked {
    Acknowledged,
    /// No such alert firing (or it was acknowledged already).
    NotFiring,
    UnknownRule,
}

impl Handler<Evaluate> for FleetShard {
    type Result = MessageResult<Evaluate>;

    fn handle(&mut self, Evaluate(readings): Evaluate, ctx: &mut Context<Self>) -> Self::Result {
        let judged = self.evaluate(readings);
        self.arm(ctx);
        MessageResult(judged)
    }
}

impl Handler<Unsettled> for FleetShard {
    type Result = ();

    fn handle(&mut self, Unsettled(undos): Unsettled, _: &mut Context<Self>) {
        for undo in undos {
            let undone = self.book.update(&undo.device_id, |device| {
                let alerts = device.alerts.as_deref_mut()?;
                let slot = alerts.slots.iter_mut().find(|(r, _)| *r == undo.rule)?;
                (slot.1.version == undo.version).then(|| {
                    let version = slot.1.version.wrapping_add(1);
                    slot.1 = Slot {
                        version,
                        ..undo.before
                    };
                })
            });
            match undone.flatten() {
                Some(()) => {
                    if let Some(rule) = self.alert_rules.get(undo.rule) {
                        Event::AlertChanged {
                            rule: &rule.name,
                            device_id: &undo.device_id,
                            severity: rule.severity.name(),
                            to: "undone",
                            summary: "its reading was not stored as judged",
                            silenced: false,
                        }
                        .emit(&self.telemetry);
                    }
                }
                // Moved on since: its event is written now, so the history misses
                // nothing, with the alert's current row (which the later change's
                // commit may have written already: the same row again).
                None => {
                    let current = self.book.get(&undo.device_id).and_then(|d| {
                        let slot = d.alerts.as_deref()?.get(undo.rule)?;
                        let rule = self.alert_rules.get(undo.rule)?;
                        Some(AlertStateRow {
                            rule: rule.name.clone(),
                            device_id: undo.device_id.to_string(),
                            phase: slot.phase.stored(),
                            since: slot.since,
                            value: slot.value,
                            acked_at: slot.acked_at,
                        })
                    });
                    let Some(current) = current else { continue };
                    self.hand_over_alerts(AlertWrites {
                        states: vec![current],
                        events: undo.writes.events,
                        deliveries: Vec::new(),
                    });
                }
            }
        }
    }
}

/// The rules in force changed (the API): the shard judges by `0` from now on. Its
/// devices' alerts are kept by rule name; an alert whose rule is gone, or no longer covers
/// its device, is over (a firing one resolved, and notified). The alerts' timers are set
/// again by the new rules' `for`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RulesChanged(pub std::sync::Arc<RuleSet>);

impl Handler<RulesChanged> for FleetShard {
    type Result = ();

    fn handle(&mut self, RulesChanged(new): RulesChanged, ctx: &mut Context<Self>) {
        let Some(alerting) = self.alerting.clone() else {
            return;
        };
        let old = std::mem::replace(&mut self.alert_rules, new.clone());
        let now = now_micros();
        self.alert_timers.clear();
        let mut over: Vec<(DeviceId, RuleId, Slot)> = Vec::new();
        let mut timers: Vec<(i64, DeviceId, RuleId)> = Vec::new();
        for id in self.book.ids() {
            self.book.update(&id, |device| {
                let Some(alerts) = device.alerts.as_deref_mut() else {
                    return;
                };
                let covering = new.covering(&id);
                let mut kept = Vec::with_capacity(alerts.slots.len());
                for (old_id, slot) in alerts.slots.drain(..) {
                    let Some(rule) = old.get(old_id) else {
                        continue;
                    };
                    match new.by_name(&rule.name) {
                        Some((new_id, new_rule)) if covering.contains(&new_id) => {
                            if let Some(due) = slot.due(new_rule.hold) {
                                timers.push((due, id.clone(), new_id));
                            }
                            if let (Kind::DeadLetters { .. }, Phase::Firing) =
                                (&new_rule.kind, slot.phase)
                            {
                                timers.push((now, id.clone(), new_id));
                            }
                            kept.push((new_id, slot));
                        }
                        _ if slot.raised() => over.push((id.clone(), old_id, slot)),
                        _ => {}
                    }
                }
                alerts.slots = kept;
                alerts.rules = covering.into();
            });
        }
        for (at, id, rule) in timers {
            self.alert_timers.push(at, id, rule);
        }
        for (id, old_id, slot) in over {
            let Some(rule) = old.get(old_id) else {
                continue;
            };
            let ended = Slot {
                phase: Phase::Inactive,
                ..slot
            };
            let event = (slot.phase == Phase::Firing).then_some("resolved");
            let summary = "its rule was removed, or no longer covers the device";
            let writes = change_rows((rule, &id), &ended, event, summary, now, &alerting);
            if event.is_some() {
                Event::AlertChanged {
                    rule: &rule.name,
                    device_id: &id,
                    severity: rule.severity.name(),
                    to: "resolved",
                    summary,
                    silenced: writes.events.iter().any(|e| e.silenced),
                }
                .emit(&self.telemetry);
            }
            self.hand_over_alerts(writes);
        }
        self.arm(ctx);
        self.flush(ctx);
    }
}

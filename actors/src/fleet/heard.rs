//! What a shard hears, and what it makes of it: presence from connections (`Connected`,
//! `Disconnected`) and from committed messages (`Observed`), quality and rhythm samples,
//! quarantine when a threshold is crossed; and when a device's deadline comes, late and
//! offline.
//!
//! A replaced connection's late end does not mark its successor's device offline: a
//! `Disconnected` names its connection, and only the devices that connection still
//! carries go offline.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use actix::prelude::*;

use super::anomalies::{Detection, DeviceAnomalies, Scored};
use super::feed::{Carrier, Connected, Disconnected, Note, Observed, Source};
use super::intake::take_in;
use super::rhythm::Bounds;
use super::shard::{now_micros, FleetShard};
use super::state::{Connection, Device, DeviceId, Link, Presence, Quarantined, Status};
use crate::observe::Event;

/// Turns handled, by every shard: each `Observed` is one, and stamps the devices it
/// samples (`Device::turn`). It wraps after 2^32 turns: a device silent since exactly then
/// would miss one rhythm sample.
static TURNS: AtomicU32 = AtomicU32::new(0);

/// A status change to record.
pub(super) struct Change {
    pub from: Option<Status>,
    pub to: Status,
    pub reason: String,
}

/// Sets the device's presence; a change of its status (a quarantined device's presence
/// changes silently) is answered, to be recorded.
pub(super) fn set_presence(
    device: &mut Device,
    presence: Presence,
    reason: impl FnOnce() -> String,
    now: i64,
) -> Option<Change> {
    if device.presence == presence {
        return None;
    }
    let from = device.status();
    device.presence = presence;
    let to = device.status();
    (from != to).then(|| {
        let reason = reason();
        device.since = now;
        device.reason = reason.as_str().into();
        Change {
            from: Some(from),
            to,
            reason,
        }
    })
}

/// Quarantines the device for `why` until `until` (`None`: until released).
pub(super) fn quarantine(device: &mut Device, why: String, until: Option<i64>, now: i64) -> Change {
    let from = device.status();
    let reason = format!("quarantined: {why}");
    device.quarantine = Some(Box::new(Quarantined {
        since: now,
        until,
        why: why.into(),
    }));
    device.since = now;
    device.reason = reason.as_str().into();
    Change {
        from: Some(from),
        to: Status::Quarantined,
        reason,
    }
}

/// Ends the quarantine; the rolling signals start over.
pub(super) fn release(device: &mut Device, why: &str, now: i64) -> Option<Change> {
    device.quarantine.take()?;
    device.quality.start_over();
    device.since = now;
    device.reason = why.into();
    Some(Change {
        from: Some(Status::Quarantined),
        to: device.status(),
        reason: why.to_owned(),
    })
}

/// Scores the readings of one committed message with the device's detectors.
fn score(device: &mut Device, detection: &Detection, note: &Note, scored: &mut Scored) {
    for r in &note.readings {
        let Some(data) = r.data.as_deref() else {
            continue;
        };
        let anomalies = device.anomalies.get_or_insert_with(|| {
            // Heard before this message, and its detectors made only now: heard before this
            // start. They learn its history first.
            if detection.history > 0 && device.last_seen.is_some() {
                scored.wants_history = true;
                Box::new(DeviceAnomalies::waiting_for_history())
            } else {
                Box::default()
            }
        });
        let times = (r.ts, note.received_at);
        anomalies.reading(detection, &r.sensor_type, times, data, scored);
    }
}

fn live(device: &Device) -> bool {
    device.connection_id().is_some()
}

/// The device's next deadline: late (online, rhythm known), offline (no live
/// connection), its quarantine's end; the earliest.
pub(super) fn deadline(device: &Device, bounds: &Bounds, _now: i64) -> Option<i64> {
    let last_seen = device.last_seen?;
    let late = match device.presence {
        Presence::Online => device.rhythm.late_after(bounds).map(|d| last_seen + d),
        _ => None,
    };
    let offline = match device.presence {
        Presence::Online | Presence::Late if !live(device) => {
            Some(last_seen + device.rhythm.offline_after(bounds))
        }
        _ => None,
    };
    let released = device.quarantine.as_ref().and_then(|q| q.until);
    [late, offline, released].into_iter().flatten().min()
}

fn seconds(micros: i64) -> f64 {
    micros as f64 / 1e6
}

impl FleetShard {
    /// Records the change (or marks the device changed), keeping the quarantine set in
    /// step with it.
    fn apply(&mut self, id: &DeviceId, change: Option<Change>, now: i64) {
        let Some(c) = change else {
            return self.mark(id);
        };
        if c.to == Status::Quarantined {
            let why = c.reason.trim_start_matches("quarantined: ");
            self.quarantine.insert(id, why);
        } else if c.from == Some(Status::Quarantined) {
            self.quarantine.remove(id);
        }
        self.record(id, c.from, c.to, &c.reason, now);
    }

    /// A deadline of the device came at `now`.
    pub(super) fn deadline_came(&mut self, id: &DeviceId, now: i64) {
        let bounds = self.bounds;
        let changes = self.book.update(id, |device| {
            let mut changes = Vec::new();
            if device
                .quarantine
                .as_ref()
                .is_some_and(|q| q.until.is_some_and(|u| u <= now))
            {
                changes.extend(release(device, "released: quarantine expired", now));
            }
            let Some(last_seen) = device.last_seen else {
                return changes;
            };
            let silent = now - last_seen;
            if device.presence == Presence::Online {
                if let Some(late) = device.rhythm.late_after(&bounds).filter(|l| silent >= *l) {
                    let every = device.rhythm.interval;
                    changes.extend(set_presence(
                        device,
                        Presence::Late,
                        || {
                            format!(
                                "late: silent for {:.1}s, usually every {:.1}s (late after {:.1}s)",
                                seconds(silent),
                                seconds(every),
                                seconds(late)
                            )
                        },
                        now,
                    ));
                }
            }
            let offline_after = device.rhythm.offline_after(&bounds);
            if device.presence != Presence::Offline && !live(device) && silent >= offline_after {
                changes.extend(set_presence(
                    device,
                    Presence::Offline,
                    || format!("offline: silent for {:.1}s", seconds(silent)),
                    now,
                ));
            }
            changes
        });
        for change in changes.unwrap_or_default() {
            self.apply(id, Some(change), now);
        }
    }

    /// The device named by a connection or a message: known, or added if the fleet has
    /// room (`None` otherwise, counted and logged once).
    pub(super) fn known_or_added(&mut self, device_id: &str, now: i64) -> Option<(DeviceId, bool)> {
        if let Some(id) = self.book.key(device_id) {
            return Some((id, false));
        }
        let tracked = &self.tracked;
        if tracked.devices.load(Ordering::Relaxed) >= self.settings.max_devices {
            self.telemetry.metrics().fleet_untracked.inc();
            if !tracked.full_logged.swap(true, Ordering::Relaxed) {
                Event::FleetFull {
                    max_devices: self.settings.max_devices,
                }
                .emit(&self.telemetry);
            }
            return None;
        }
        tracked.devices.fetch_add(1, Ordering::Relaxed);
        let id: DeviceId = Arc::from(device_id);
        self.book
            .insert(id.clone(), Device::unheard(now, "first seen"));
        Some((id, true))
    }

    /// One committed message of the device, from `source`, in turn `turn` (its rhythm is
    /// sampled once per turn). One lookup of the device for all of it, and one more for
    /// its shared id when something is recorded or queued.
    fn heard(&mut self, source: &Source, mut note: Note, turn: u32) {
        if let Source::Connection(carrier) = source {
            // In flight on a connection that carried the device when it was deleted.
            if self
                .endings
                .is_forgotten(carrier.connection, &note.device_id)
            {
                return;
            }
        }
        let now = note.received_at;
        let device_id = std::mem::take(&mut note.device_id);
        let (rejected, quarantined) = (note.rejected, note.quarantined);
        let settings = self.settings.clone();
        let (bounds, max_series) = (self.bounds, self.max_series);
        let detection = self.detection.clone();
        let mut scored = Scored::default();
        let mut hear = |device: &mut Device| {
            if let Some(detection) = detection.as_deref() {
                score(device, detection, &note, &mut scored);
            }
            let sample = device.turn != turn;
            device.turn = turn;
            let changes = take_in(device, source, &mut note, sample, &settings, max_series);
            let push = device.timer.set(deadline(device, &bounds, now));
            (changes, push, device.progress_unsaved())
        };
        let (new, (mut changes, push, first_unsaved)) =
            match self.book.update(&device_id, &mut hear) {
                Some(heard) => (false, heard),
                // A dead letter never adds a device: a flood of random ids must not grow the
                // fleet. Only a message that was stored, or a connection, does.
                None if rejected => {
                    self.telemetry.metrics().dead_letters_unattributed.inc();
                    return;
                }
                None if matches!(source, Source::Will) => return,
                None => {
                    let Some((id, _)) = self.known_or_added(&device_id, now) else {
                        return;
                    };
                    match self.book.update(&id, hear) {
                        Some(heard) => (true, heard),
                        None => return,
                    }
                }
            };
        if scored != Scored::default() {
            self.scored(&device_id, scored);
        }
        self.judge_heard(&device_id, rejected, quarantined, now);
        // Most messages end here: nothing to record or queue.
        if !new && changes.is_empty() && push.is_none() && !first_unsaved {
            return;
        }
        let Some(id) = self.book.key(&device_id) else {
            return;
        };
        if new {
            if let Some(first) = changes.first_mut() {
                first.from = None;
            } else {
                let to = self.book.get(&id).map_or(Status::Offline, Device::status);
                changes.push(Change {
                    from: None,
                    to,
                    reason: "first seen".into(),
                });
            }
        }
        if first_unsaved {
            self.unsaved.progressed(id.clone(), now);
        }
        for change in changes {
            self.apply(&id, Some(change), now);
        }
        if let Some(at) = push {
            self.timers.push(at, id);
        }
    }

    /// The alert rules a message of the device may move: its dead-letter rate (a dead
    /// letter not of a quarantine), its anomaly scores (readings, scored).
    fn judge_heard(&mut self, device_id: &str, rejected: bool, quarantined: bool, now: i64) {
        if self.alerting.is_none() {
            return;
        }
        let rules = &self.alert_rules;
        let dead_letter = rejected && !quarantined && rules.dead_letters;
        let scored = !rejected && rules.anomaly && self.detection.is_some();
        if !(dead_letter || scored) {
            return;
        }
        let Some(id) = self.book.key(device_id) else {
            return;
        };
        if dead_letter {
            self.dead_letter_alerts(&id, now);
        } else {
            self.anomaly_alerts(&id, now);
        }
    }

    /// Records the changes (or marks the device changed), keeps the quarantine set in
    /// step, and reschedules the device's deadline.
    pub(super) fn after_changes(&mut self, id: &DeviceId, changes: Vec<Change>, now: i64) {
        if changes.is_empty() {
            self.mark(id);
        }
        for change in changes {
            self.apply(id, Some(change), now);
        }
        self.reschedule(id, now_micros().max(now));
    }
}

/// A connection carries the device: online, and linked to it, unless it already was.
pub(super) fn carried(device: &mut Device, carrier: &Arc<Carrier>, now: i64) -> Option<Change> {
    if device.connection_id() == Some(carrier.connection) {
        return set_presence(
            device,
            Presence::Online,
            || "online: reporting again".to_owned(),
            now,
        );
    }
    device.link = Some(Box::new(Link {
        peer: Some(carrier.peer),
        protocol: Some(carrier.protocol),
        connection: Some(Connection {
            id: carrier.connection,
            closer: carrier.closer.clone(),
        }),
    }));
    device.connected_since = Some(now);
    let change = set_presence(device, Presence::Online, || "online: connected".into(), now);
    if change.is_none() && device.quarantine.is_none() {
        // Already online through another connection: the new one carries it now.
        device.since = now;
    }
    change
}

impl Handler<Observed> for FleetShard {
    type Result = ();

    fn handle(&mut self, observed: Observed, ctx: &mut Context<Self>) {
        let Observed {
            source,
            notes,
            room,
        } = observed;
        // One rhythm sample per device per turn: a turn's messages arrived together.
        let turn = TURNS.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        for note in notes {
            self.heard(&source, note, turn);
        }
        self.read_histories(ctx);
        // Handled: its room in the mailbox is free for the next update.
        drop(room);
        self.arm(ctx);
    }
}

impl Handler<Connected> for FleetShard {
    type Result = ();

    fn handle(&mut self, connected: Connected, ctx: &mut Context<Self>) {
        let carrier = connected.carrier.connection;
        if self.endings.is_forgotten(carrier, &connected.device_id) {
            return;
        }
        let now = now_micros();
        let Some((id, new)) = self.known_or_added(&connected.device_id, now) else {
            return;
        };
        let change = self
            .book
            .update(&id, |device| carried(device, &connected.carrier, now))
            .flatten();
        let mut changes: Vec<Change> = change.into_iter().collect();
        if new {
            if let Some(first) = changes.first_mut() {
                first.from = None;
            }
        }
        self.after_changes(&id, changes, now);
        self.arm(ctx);
    }
}

impl Handler<Disconnected> for FleetShard {
    type Result = ();

    fn handle(&mut self, ended: Disconnected, ctx: &mut Context<Self>) {
        let now = now_micros();
        for id in self.book.carried_by(ended.connection) {
            let change = self.book.update(&id, |device| {
                if let Some(link) = device.link.as_mut() {
                    link.connection = None;
                }
                device.connected_since = None;
                set_presence(
                    device,
                    Presence::Offline,
                    || format!("offline: disconnected: {}", ended.reason),
                    now,
                )
            });
            self.after_changes(&id, change.flatten().into_iter().collect(), now);
        }
        // Nothing of it comes after this: whoever waits for its end may go on.
        self.endings.ended(ended.connection);
        self.arm(ctx);
    }
}

//! `FleetShard`: owns the devices whose id hashes to it (`feed::shard_of`). Everything
//! about a device changes here, in the shard's handlers, one message at a time: no lock.
//!
//! - Load: at start (and after a restart), the shard reads its devices' last persisted
//!   state and resumes their presence (`persist::resume`); after a restart of the shard
//!   alone, the devices its live connections carry stay online.
//! - Timers (`timers.rs`): one actix timer, armed for the earliest deadline of the heap.
//! - Persistence: new events and the rows of devices whose status changed are handed to
//!   the store writer every `fleet.flush_interval`, the rows of devices that only
//!   progressed `fleet.state_interval` after they did (`unsaved.rs`), one hand-over in
//!   flight at a time, and written in its next batch's transaction. What is handed over is
//!   at most one row per device and `fleet.max_pending_events` events.
//!
//! The handlers that change devices are in `heard.rs` (what the pipeline and the
//! connections tell) and `requests.rs` (what the `FleetHandle` asks).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::alerts::{AlertTimers, Alerting, RuleSet};
use super::anomalies::Detection;
use super::book::Book;
use super::endings::Endings;
use super::history::Histories;
use super::persist::{device_of, event_row, resume, row_of};
use super::quarantine::QuarantineSet;
use super::rhythm::Bounds;
use super::settings::FleetSettings;
use super::state::{Device, DeviceId, Link, Status};
use super::timers::{Popped, TimerQueue};
use super::unsaved::Unsaved;
use crate::observe::{Event, Telemetry};
use crate::store::{
    load_alert_states, load_device_rows, load_known_ids, open_for_reading, AlertWrites, AnomalyRow,
    EventRow, FleetWrites, PersistFleet, Reader, StoreWriter,
};
use crate::supervision::Restarts;

/// What every shard shares: the bound on tracked devices, and whether reaching it was
/// logged.
#[derive(Default)]
pub struct Tracked {
    pub devices: AtomicUsize,
    pub full_logged: AtomicBool,
}

/// What a shard is started with.
pub struct ShardLinks {
    pub index: usize,
    pub shards: usize,
    pub settings: Arc<FleetSettings>,
    pub store: Addr<StoreWriter>,
    pub db_path: PathBuf,
    pub quarantine: Arc<QuarantineSet>,
    pub tracked: Arc<Tracked>,
    /// Sensor types whose last reading a device keeps (`store.max_series_per_device`).
    pub max_series: usize,
    /// Anomaly detection, shared by every shard; `None` with `anomaly.enabled = false`.
    pub detection: Option<Arc<Detection>>,
    /// Kept anomaly scores a shard may hold unwritten (`anomaly.max_pending`).
    pub max_pending_anomalies: usize,
    /// Where the detectors' history is read back from.
    pub reader: Reader,
    /// The alert rules and what the shards share of them; `None`: no rule, or alerting off.
    pub alerting: Option<Arc<Alerting>>,
    pub restarts: Restarts,
}

pub struct FleetShard {
    pub(super) index: usize,
    shards: usize,
    pub(super) settings: Arc<FleetSettings>,
    pub(super) bounds: Bounds,
    pub(super) book: Book,
    pub(super) timers: TimerQueue,
    /// The actix timer armed for the heap's earliest deadline, and that deadline.
    armed: Option<(i64, SpawnHandle)>,
    /// Devices whose row is to be handed over, and when.
    pub(super) unsaved: Unsaved,
    /// Status events not yet handed over, oldest first.
    events: VecDeque<EventRow>,
    pub(super) detection: Option<Arc<Detection>>,
    /// Kept anomaly scores not yet handed over, oldest first (`scores.rs`).
    pub(super) anomalies: VecDeque<AnomalyRow>,
    pub(super) max_pending_anomalies: usize,
    /// Devices whose detectors wait for their history, and the reads in flight
    /// (`history.rs`).
    pub(super) histories: Histories,
    /// The alert rules (`alerts/`); `None`: none is evaluated.
    pub(super) alerting: Option<Arc<Alerting>>,
    /// This shard's view of the rules: the set its devices' alerts are judged by
    /// (`RulesChanged` replaces it).
    pub(super) alert_rules: Arc<RuleSet>,
    /// Alert changes no reading carried, not yet handed over.
    pub(super) alert_writes: AlertWrites,
    /// Alert changes wait: hand them over at the next chance, not at the next interval.
    pub(super) alerts_due: bool,
    pub(super) alert_timers: AlertTimers,
    /// Devices deleted, whose rows are to go.
    forgets: Vec<String>,
    /// Who waits for a connection's end; devices forgotten while a connection carried
    /// them. Kept across a restart of the shard (its mailbox is too).
    pub(super) endings: Endings,
    /// A hand-over to the store writer is in flight.
    pub(super) writing: bool,
    pub(super) store: Addr<StoreWriter>,
    pub(super) db_path: PathBuf,
    pub(super) quarantine: Arc<QuarantineSet>,
    pub(super) tracked: Arc<Tracked>,
    pub(super) max_series: usize,
    /// Across a restart of this shard: the devices its live connections carry, with
    /// their links, so that they stay online once the state is reloaded.
    live_after_restart: Vec<(DeviceId, Box<Link>, Option<i64>)>,
    restarts: Restarts,
    pub(super) telemetry: Telemetry,
}

/// Now, in microseconds since 1970.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

impl FleetShard {
    pub fn new(links: ShardLinks, telemetry: &Telemetry) -> Self {
        let settings = links.settings;
        let bounds = Bounds {
            late_factor: settings.late_factor,
            late_floor: settings.late_floor,
            offline_factor: settings.offline_factor,
            offline_floor: settings.offline_floor,
            min_samples: settings.min_samples,
        };
        FleetShard {
            index: links.index,
            shards: links.shards,
            settings,
            bounds,
            book: Book::default(),
            timers: TimerQueue::default(),
            armed: None,
            unsaved: Unsaved::default(),
            events: VecDeque::new(),
            detection: links.detection,
            anomalies: VecDeque::new(),
            max_pending_anomalies: links.max_pending_anomalies,
            histories: Histories::new(links.reader),
            alert_rules: links
                .alerting
                .as_ref()
                .map_or_else(Default::default, |a| a.rules()),
            alerting: links.alerting,
            alert_writes: AlertWrites::default(),
            alerts_due: false,
            alert_timers: AlertTimers::default(),
            forgets: Vec::new(),
            endings: Endings::default(),
            writing: false,
            store: links.store,
            db_path: links.db_path,
            quarantine: links.quarantine,
            tracked: links.tracked,
            max_series: links.max_series,
            live_after_restart: Vec::new(),
            telemetry: telemetry.for_actor(links.restarts.child()),
            restarts: links.restarts,
        }
    }

    /// Reads this shard's devices from the database and resumes their presence. `live`:
    /// links of connections still up (after a restart of the shard alone).
    fn load(&mut self, live: Vec<(DeviceId, Box<Link>, Option<i64>)>, ctx: &mut Context<Self>) {
        let (index, shards) = (self.index, self.shards);
        let mine = |id: &str| super::feed::shard_of(id, shards) == index;
        let loaded = open_for_reading(&self.db_path).and_then(|conn| {
            Ok((
                load_device_rows(&conn, mine)?,
                load_known_ids(&conn, mine)?,
                load_alert_states(&conn, mine)?,
            ))
        });
        let (rows, known, alerts) = match loaded {
            Ok(loaded) => loaded,
            Err(error) => {
                Event::StoreFailed {
                    error: &format!("loading the fleet's devices: {error}"),
                    requests: 0,
                }
                .emit(&self.telemetry);
                return ctx.stop();
            }
        };
        let now = now_micros();
        self.histories.loaded(now);
        let mut resumed = Vec::new();
        for row in &rows {
            // Deleted, and its row not removed yet (a restart of the shard alone).
            if self.forgets.contains(&row.device_id) {
                continue;
            }
            let id: DeviceId = Arc::from(row.device_id.as_str());
            let mut device = device_of(row);
            if let Some(q) = &device.quarantine {
                self.quarantine.insert(&id, &q.why);
            }
            let live_link = live.iter().find(|(d, _, _)| *d == id);
            match live_link {
                Some((_, link, since)) => {
                    device.link = Some(link.clone());
                    device.connected_since = *since;
                    self.unsaved.status_changed(&id);
                }
                None => {
                    if let Some(reason) = resume(&mut device, &self.bounds, now) {
                        resumed.push((id.clone(), reason));
                    }
                }
            }
            self.book.insert(id, device);
        }
        for id in known {
            self.book
                .insert(Arc::from(id.as_str()), Device::unheard(now, "provisioned"));
        }
        self.book.compact();
        self.load_alerts(alerts, now);
        for (id, reason) in resumed {
            self.record(&id, Some(Status::Online), Status::Offline, &reason, now);
        }
        self.tracked
            .devices
            .fetch_add(self.book.len(), Ordering::Relaxed);
        Event::FleetLoaded {
            shard: self.index,
            devices: self.book.per_status(),
        }
        .emit(&self.telemetry);
        for id in self.book.ids() {
            self.reschedule(&id, now);
        }
        self.arm(ctx);
    }

    /// Records a status change: logged, counted, and stored with the next hand-over.
    pub(super) fn record(
        &mut self,
        id: &DeviceId,
        from: Option<Status>,
        to: Status,
        reason: &str,
        at: i64,
    ) {
        Event::DeviceStatusChanged {
            device_id: id,
            from: from.map(Status::name),
            to: to.name(),
            reason,
        }
        .emit(&self.telemetry);
        if self.events.len() >= self.settings.max_pending_events {
            self.events.pop_front();
            Event::DeviceEventsDropped { dropped: 1 }.emit(&self.telemetry);
        }
        self.events.push_back(event_row(id, at, to.name(), reason));
        self.unsaved.status_changed(id);
        self.presence_alerts(id, at);
    }

    /// The device progressed (no status change): its row is written within
    /// `fleet.state_interval`.
    pub(super) fn mark(&mut self, id: &DeviceId) {
        let first = self.book.update(id, Device::progress_unsaved);
        if first == Some(true) {
            self.unsaved.progressed(id.clone(), now_micros());
        }
    }

    pub(super) fn forgotten(&mut self, id: &str) {
        self.unsaved.forget(id);
        self.forgets.push(id.to_owned());
    }

    /// Sets the device's next deadline from its state; queues it if need be.
    pub(super) fn reschedule(&mut self, id: &DeviceId, now: i64) {
        let bounds = self.bounds;
        let push = self.book.update(id, |device| {
            let deadline = super::heard::deadline(device, &bounds, now);
            device.timer.set(deadline)
        });
        if let Some(Some(at)) = push {
            self.timers.push(at, id.clone());
        }
    }

    /// Arms the actix timer for the earliest deadline, if it is not armed for it already.
    pub(super) fn arm(&mut self, ctx: &mut Context<Self>) {
        let next = match (self.timers.next(), self.alert_timers.next()) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(next) => next,
                None => return,
            },
        };
        if let Some((at, handle)) = self.armed {
            if at <= next {
                return;
            }
            ctx.cancel_future(handle);
        }
        let wait = u64::try_from(next.saturating_sub(now_micros())).unwrap_or(0);
        let handle = ctx.run_later(Duration::from_micros(wait), |shard, ctx| {
            shard.armed = None;
            shard.fire(ctx);
        });
        self.armed = Some((next, handle));
    }

    /// Handles every deadline that has come, then arms for the next.
    fn fire(&mut self, ctx: &mut Context<Self>) {
        let now = now_micros();
        while let Some((at, id)) = self.timers.pop_due(now) {
            let popped = self.book.update(&id, |device| device.timer.popped(at, now));
            match popped {
                Some(Popped::Fired) => {
                    self.deadline_came(&id, now);
                    self.reschedule(&id, now);
                }
                Some(Popped::Requeue(later)) => self.timers.push(later, id),
                _ => {}
            }
        }
        self.alert_deadlines(now);
        self.arm(ctx);
        if self.alerts_due {
            self.flush(ctx);
        }
    }

    /// Hands what is due (`unsaved.rs`) and the new events to the store writer, if nothing
    /// is in flight; on failure, they wait for the next hand-over.
    pub(super) fn flush(&mut self, ctx: &mut Context<Self>) {
        if let Some(detection) = &self.detection {
            let series = i64::try_from(detection.series()).unwrap_or(i64::MAX);
            self.telemetry.metrics().anomaly_series.set(series);
        }
        let (now, wait) = (now_micros(), self.state_wait());
        if self.writing
            || !(self.unsaved.any_due(now, wait)
                || !self.events.is_empty()
                || !self.anomalies.is_empty()
                || !self.alert_writes.is_empty()
                || !self.forgets.is_empty())
        {
            return;
        }
        self.alerts_due = false;
        let writes = self.writes(false);
        self.writing = true;
        self.store
            .send(PersistFleet(writes.clone()))
            .into_actor(self)
            .map(move |sent, shard, ctx| {
                shard.writing = false;
                if sent.is_err() {
                    shard.requeue(writes);
                } else if shard.alerts_due {
                    // Alert changes came meanwhile: no reason to wait for the interval.
                    shard.flush(ctx);
                }
            })
            .spawn(ctx);
    }

    fn state_wait(&self) -> i64 {
        i64::try_from(self.settings.state_interval.as_micros()).unwrap_or(i64::MAX)
    }

    /// The rows due now (every unsaved one with `everything`), and the events.
    pub(super) fn writes(&mut self, everything: bool) -> FleetWrites {
        let due = self
            .unsaved
            .take_due(now_micros(), self.state_wait(), everything);
        let mut upserts: Vec<_> = due
            .changed
            .iter()
            .filter_map(|id| Some(row_of(id, self.book.get(id)?)))
            .collect();
        for id in due.progressed {
            let row = self.book.update(&id, |device| {
                // Not unsaved: a device forgotten and added again since it was queued
                // (its own entry comes later).
                let unsaved = std::mem::take(&mut device.unsaved);
                (unsaved && !due.changed.contains(&id)).then(|| row_of(&id, device))
            });
            upserts.extend(row.flatten());
        }
        FleetWrites {
            upserts,
            forgets: std::mem::take(&mut self.forgets),
            events: self.events.drain(..).collect(),
            anomalies: self.anomalies.drain(..).collect(),
            alerts: std::mem::take(&mut self.alert_writes),
        }
    }

    fn requeue(&mut self, writes: FleetWrites) {
        for row in writes.upserts {
            if let Some(id) = self.book.key(&row.device_id) {
                self.unsaved.status_changed(&id);
            }
        }
        self.forgets.extend(writes.forgets);
        for event in writes.events.into_iter().rev() {
            self.events.push_front(event);
        }
        self.events.truncate(self.settings.max_pending_events);
        for anomaly in writes.anomalies.into_iter().rev() {
            self.anomalies.push_front(anomaly);
        }
        self.anomalies.truncate(self.max_pending_anomalies);
        let later = std::mem::replace(&mut self.alert_writes, writes.alerts);
        self.alert_writes.append(later);
    }
}

impl Actor for FleetShard {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.settings.mailbox);
        self.restarts.start(ctx, |shard, ctx| {
            let live = std::mem::take(&mut shard.live_after_restart);
            shard.load(live, ctx)
        });
        ctx.run_interval(self.settings.flush_interval, |shard, ctx| shard.flush(ctx));
    }
}

impl Supervised for FleetShard {
    /// The state is reloaded from the database (what was not handed over yet is lost,
    /// but the status events already recorded are kept); the devices that live
    /// connections carry stay online.
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.live_after_restart = self
            .book
            .iter()
            .filter_map(|(id, device)| {
                let link = device.link.as_ref()?;
                link.connection.as_ref()?;
                Some((id.clone(), link.clone(), device.connected_since))
            })
            .collect();
        Event::FleetUnloaded {
            shard: self.index,
            devices: self.book.per_status(),
        }
        .emit(&self.telemetry);
        for (id, device) in self.book.iter() {
            self.quarantine.remove(id);
            if let (Some(detection), Some(anomalies)) = (&self.detection, &device.anomalies) {
                anomalies.release(detection);
            }
        }
        self.tracked
            .devices
            .fetch_sub(self.book.len(), Ordering::Relaxed);
        self.book = Book::default();
        self.timers.clear();
        self.armed = None;
        self.unsaved.clear();
        self.histories.clear();
        // Reloaded from what was written: changes not handed over yet are made again as
        // their conditions are judged again, by the rules in force now.
        if let Some(alerting) = &self.alerting {
            self.alert_rules = alerting.rules();
        }
        self.alert_writes = AlertWrites::default();
        self.alert_timers.clear();
        self.alerts_due = false;
        self.writing = false;
        self.restarts.restarting("stopped".into());
    }
}

crate::answers_pings!(FleetShard);

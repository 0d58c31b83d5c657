//! `DeviceGuard`: the per-device circuit breakers.
//!
//! A device whose messages are rejected `max_rejections` times within `window` trips its
//! breaker: its connection is closed and it is refused at CONNECT for a cool-down, which
//! doubles each time the device trips again (up to `cooldown_max`) and resets once the
//! device has not tripped for `window + cooldown_max`. Other devices are untouched.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::{Deserialize, Serialize};

use super::backoff::Backoff;
use super::window::SlidingWindow;
use crate::observe::{Event, Telemetry};
use crate::settings::Problems;

/// The `[breakers.device]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceBreakerSettings {
    /// Rejected messages within `window` that trip a device's breaker.
    pub max_rejections: u32,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// First cool-down; it doubles with each trip, up to `cooldown_max`.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
    #[serde(with = "humantime_serde")]
    pub cooldown_max: Duration,
    /// Devices tracked at most. Past it, a device whose breaker is not open is forgotten
    /// to make room: random client ids cannot grow the map for ever, and a tripped device
    /// stays refused.
    pub max_tracked: usize,
}

impl DeviceBreakerSettings {
    pub fn validate(&self, problems: &mut Problems) {
        problems.at_least("max_rejections", self.max_rejections, 1);
        problems.at_least("max_tracked", self.max_tracked, 1);
        problems.positive("window", self.window);
        problems.positive("cooldown", self.cooldown);
        problems.ordered(
            ("cooldown", self.cooldown),
            ("cooldown_max", self.cooldown_max),
        );
    }
}

/// A message of `client_id` was rejected. Answers the cool-down if this tripped the
/// device's breaker.
#[derive(Message)]
#[rtype(result = "Option<Duration>")]
pub struct Rejected {
    pub client_id: String,
}

/// May `client_id` connect?
#[derive(Message)]
#[rtype(result = "Result<(), GuardRefusal>")]
pub struct MayConnect {
    pub client_id: String,
}

/// The device's breaker is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardRefusal {
    pub retry_after: Duration,
    pub reason: String,
}

struct DeviceRecord {
    rejections: SlidingWindow,
    cooldown: Backoff,
    open_until: Option<Instant>,
    last_trip: Option<Instant>,
}

pub struct DeviceGuard {
    settings: DeviceBreakerSettings,
    /// Only devices with recent rejections or an open breaker; pruned every window.
    devices: HashMap<String, DeviceRecord>,
    telemetry: Telemetry,
}

impl DeviceGuard {
    pub fn new(settings: DeviceBreakerSettings, telemetry: &Telemetry) -> Self {
        DeviceGuard {
            settings,
            devices: HashMap::new(),
            telemetry: telemetry.for_actor("device_guard"),
        }
    }

    /// How long a record is worth keeping after its last event.
    fn memory(&self) -> Duration {
        self.settings.window + self.settings.cooldown_max
    }

    /// Counts a rejection at `now`; returns the cool-down if the breaker trips.
    pub fn rejected(&mut self, client_id: &str, now: Instant) -> Option<Duration> {
        if !self.devices.contains_key(client_id) && self.devices.len() >= self.settings.max_tracked
        {
            self.make_room(now);
        }
        let memory = self.memory();
        let s = &self.settings;
        let record = self
            .devices
            .entry(client_id.to_owned())
            .or_insert_with(|| DeviceRecord {
                rejections: SlidingWindow::new(s.window),
                cooldown: Backoff::new(s.cooldown, s.cooldown_max),
                open_until: None,
                last_trip: None,
            });
        // A device that has not tripped for `window + cooldown_max` starts afresh.
        if record
            .last_trip
            .is_some_and(|t| now.saturating_duration_since(t) > memory)
        {
            record.cooldown.reset();
        }
        if record.rejections.record(now) < s.max_rejections as usize {
            return None;
        }
        let cooldown = record.cooldown.next_delay();
        record.open_until = Some(now + cooldown);
        record.last_trip = Some(now);
        record.rejections.clear();
        Some(cooldown)
    }

    pub fn may_connect(&self, client_id: &str, now: Instant) -> Result<(), GuardRefusal> {
        match self.devices.get(client_id).and_then(|r| r.open_until) {
            Some(until) if until > now => Err(GuardRefusal {
                retry_after: until - now,
                reason: format!(
                    "more than {} rejected messages within {:?}",
                    self.settings.max_rejections, self.settings.window
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Forgets one device whose breaker is not open (any will do: all are within their
    /// window, or the prune would have forgotten them).
    fn make_room(&mut self, now: Instant) {
        let idle = self
            .devices
            .iter()
            .find(|(_, r)| r.open_until.is_none_or(|until| until <= now))
            .map(|(id, _)| id.clone());
        if let Some(id) = idle {
            self.devices.remove(&id);
        }
    }

    fn prune(&mut self, now: Instant) {
        let memory = self.memory();
        let recent =
            |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) <= memory);
        self.devices
            .retain(|_, r| recent(r.rejections.last()) || recent(r.last_trip));
    }
}

impl Actor for DeviceGuard {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.settings.window, |guard, _| guard.prune(Instant::now()));
    }
}

impl Supervised for DeviceGuard {}

crate::answers_pings!(DeviceGuard);

impl Handler<Rejected> for DeviceGuard {
    type Result = Option<Duration>;

    fn handle(&mut self, msg: Rejected, _: &mut Context<Self>) -> Option<Duration> {
        let tripped = self.rejected(&msg.client_id, Instant::now());
        if let Some(cooldown) = tripped {
            Event::DeviceBreakerTripped {
                client_id: &msg.client_id,
                reason: &format!("{} rejected messages", self.settings.max_rejections),
                cooldown,
            }
            .emit(&self.telemetry);
        }
        tripped
    }
}

impl Handler<MayConnect> for DeviceGuard {
    type Result = Result<(), GuardRefusal>;

    fn handle(&mut self, msg: MayConnect, _: &mut Context<Self>) -> Self::Result {
        self.may_connect(&msg.client_id, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> DeviceGuard {
        let settings = DeviceBreakerSettings {
            max_rejections: 3,
            window: Duration::from_secs(10),
            cooldown: Duration::from_secs(2),
            cooldown_max: Duration::from_secs(5),
            max_tracked: 4,
        };
        DeviceGuard::new(settings, &Telemetry::discard())
    }

    #[test]
    fn trips_after_the_threshold_with_a_cooldown_that_doubles() {
        let mut g = guard();
        let t = Instant::now();
        assert_eq!(g.rejected("robot_002", t), None);
        assert_eq!(g.rejected("robot_002", t), None);
        assert_eq!(g.rejected("robot_002", t), Some(Duration::from_secs(2)));
        assert!(g
            .may_connect("robot_002", t + Duration::from_secs(1))
            .is_err());
        assert!(
            g.may_connect("robot_001", t).is_ok(),
            "other devices are untouched"
        );
        let later = t + Duration::from_secs(3);
        assert!(g.may_connect("robot_002", later).is_ok());
        for _ in 0..2 {
            assert_eq!(g.rejected("robot_002", later), None);
        }
        assert_eq!(g.rejected("robot_002", later), Some(Duration::from_secs(4)));
        for _ in 0..2 {
            g.rejected("robot_002", later);
        }
        // Capped at cooldown_max.
        assert_eq!(g.rejected("robot_002", later), Some(Duration::from_secs(5)));
    }

    #[test]
    fn the_map_is_bounded_and_a_tripped_device_stays_refused() {
        let mut g = guard();
        let t = Instant::now();
        for _ in 0..3 {
            g.rejected("tripped", t);
        }
        for n in 0..100 {
            g.rejected(&format!("random_{n}"), t);
        }
        assert!(g.devices.len() <= 4, "{}", g.devices.len());
        assert!(g
            .may_connect("tripped", t + Duration::from_secs(1))
            .is_err());
    }

    #[test]
    fn rejections_outside_the_window_do_not_count() {
        let mut g = guard();
        let t = Instant::now();
        g.rejected("d", t);
        g.rejected("d", t);
        assert_eq!(g.rejected("d", t + Duration::from_secs(11)), None);
    }

    #[test]
    fn a_device_that_behaved_starts_again_from_the_first_cooldown() {
        let mut g = guard();
        let t = Instant::now();
        for _ in 0..3 {
            g.rejected("d", t);
        }
        let much_later = t + Duration::from_secs(16);
        g.rejected("d", much_later);
        g.rejected("d", much_later);
        assert_eq!(g.rejected("d", much_later), Some(Duration::from_secs(2)));
        g.prune(much_later + Duration::from_secs(16));
        assert!(g.devices.is_empty(), "forgotten once nothing is recent");
    }
}

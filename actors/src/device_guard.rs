//! `DeviceGuard`: the per-device circuit breakers.
//!
//! A device whose messages are rejected `max_rejections` times within `window` trips its
//! breaker: its connection is closed and it is refused at CONNECT for a cool-down, which
//! doubles each time the device trips again (up to `cooldown_max`) and resets once the
//! device has behaved for a whole window. Other devices are untouched.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use slog::Logger;

use crate::events::Event;

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
}

/// A message of `client_id` was rejected. Answers the cool-down if this tripped the
/// device's breaker.
#[derive(Message)]
#[rtype(result = "Option<Duration>")]
pub struct Rejected {
    pub client_id: String,
}

/// May `client_id` connect? `Err(remaining cool-down, reason)` if not.
#[derive(Message)]
#[rtype(result = "Result<(), Refusal>")]
pub struct MayConnect {
    pub client_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub retry_after: Duration,
    pub reason: String,
}

#[derive(Default)]
struct DeviceRecord {
    rejections: VecDeque<Instant>,
    open_until: Option<Instant>,
    /// The next cool-down (the previous one doubled), `None` before the first trip.
    next_cooldown: Option<Duration>,
    last_trip: Option<Instant>,
}

pub struct DeviceGuard {
    settings: DeviceBreakerSettings,
    /// Only devices with recent rejections or an open breaker; pruned every window.
    devices: HashMap<String, DeviceRecord>,
    log: Logger,
}

impl DeviceGuard {
    pub fn new(settings: DeviceBreakerSettings, log: &Logger) -> Self {
        DeviceGuard {
            settings,
            devices: HashMap::new(),
            log: log.new(slog::o!("actor" => "device_guard")),
        }
    }

    /// Counts a rejection at `now`; returns the cool-down if the breaker trips.
    pub fn rejected(&mut self, client_id: &str, now: Instant) -> Option<Duration> {
        let s = &self.settings;
        let record = self.devices.entry(client_id.to_owned()).or_default();
        // A device that behaved for a whole window since its last trip starts afresh.
        if record
            .last_trip
            .is_some_and(|t| now.duration_since(t) > s.window + s.cooldown_max)
        {
            record.next_cooldown = None;
        }
        while record
            .rejections
            .front()
            .is_some_and(|t| now.duration_since(*t) > s.window)
        {
            record.rejections.pop_front();
        }
        record.rejections.push_back(now);
        if (record.rejections.len() as u32) < s.max_rejections {
            return None;
        }
        let cooldown = record
            .next_cooldown
            .unwrap_or(s.cooldown)
            .min(s.cooldown_max);
        record.next_cooldown = Some((cooldown * 2).min(s.cooldown_max));
        record.open_until = Some(now + cooldown);
        record.last_trip = Some(now);
        record.rejections.clear();
        Some(cooldown)
    }

    pub fn may_connect(&self, client_id: &str, now: Instant) -> Result<(), Refusal> {
        match self.devices.get(client_id).and_then(|r| r.open_until) {
            Some(until) if until > now => Err(Refusal {
                retry_after: until - now,
                reason: format!(
                    "more than {} rejected messages within {:?}",
                    self.settings.max_rejections, self.settings.window
                ),
            }),
            _ => Ok(()),
        }
    }

    fn prune(&mut self, now: Instant) {
        let keep_for = self.settings.window + self.settings.cooldown_max;
        self.devices.retain(|_, r| {
            let recent = r
                .rejections
                .back()
                .is_some_and(|t| now.duration_since(*t) <= keep_for);
            let tripped = r
                .last_trip
                .is_some_and(|t| now.duration_since(t) <= keep_for);
            recent || tripped
        });
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
            .emit(&self.log);
        }
        tripped
    }
}

impl Handler<MayConnect> for DeviceGuard {
    type Result = Result<(), Refusal>;

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
        };
        DeviceGuard::new(settings, &Logger::root(slog::Discard, slog::o!()))
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
        for _ in 0..3 {
            g.rejected("robot_002", later);
        }
        // Capped at cooldown_max.
        assert_eq!(
            g.devices["robot_002"].next_cooldown,
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn rejections_outside_the_window_do_not_count() {
        let mut g = guard();
        let t = Instant::now();
        g.rejected("d", t);
        g.rejected("d", t);
        assert_eq!(g.rejected("d", t + Duration::from_secs(11)), None);
    }
}

//! The alerts' events: an alert changed (pending, fired, resolved, cancelled,
//! acknowledged, or a change undone because its reading was not stored), and what became of
//! each notification.

use slog::{info, warn, Logger};

use super::values::Clean;
use super::Observe;
use crate::observe::Metrics;

/// The changes an alert makes, as counted (`eliot_alert_changes_total{to}`).
pub const ALERT_CHANGES: [&str; 6] = [
    "pending",
    "fired",
    "resolved",
    "cancelled",
    "acknowledged",
    "undone",
];

/// An alert of `rule` on `device_id` changed.
pub struct AlertChanged<'a> {
    pub rule: &'a str,
    pub device_id: &'a str,
    pub severity: &'static str,
    /// One of `ALERT_CHANGES`.
    pub to: &'static str,
    pub summary: &'a str,
    /// A silence covers it: recorded, not notified.
    pub silenced: bool,
}

impl Observe for AlertChanged<'_> {
    const NAME: &'static str = "alert_changed";
    const MOVES: &'static [&'static str] = &["eliot_alert_changes_total"];

    fn log(&self, log: &Logger) {
        let AlertChanged {
            rule,
            device_id,
            severity,
            to,
            summary,
            silenced,
        } = self;
        let record = |log: &Logger| {
            info!(log, "alert {}", to;
                "event" => Self::NAME, "rule" => %Clean(rule), "device_id" => %Clean(device_id),
                "severity" => *severity, "to" => *to, "summary" => %Clean(summary),
                "silenced" => *silenced)
        };
        match *to {
            "fired" => {
                warn!(log, "alert fired";
                    "event" => Self::NAME, "rule" => %Clean(rule), "device_id" => %Clean(device_id),
                    "severity" => *severity, "to" => *to, "summary" => %Clean(summary),
                    "silenced" => *silenced)
            }
            _ => record(log),
        }
    }

    fn count(&self, m: &Metrics) {
        m.alert_changes.get_or_create(&[("to", self.to)]).inc();
    }
}

/// A notification reached the webhook (a 2xx answer).
pub struct AlertNotified {
    pub event_id: i64,
    pub attempts: u32,
}

impl Observe for AlertNotified {
    const NAME: &'static str = "alert_notified";
    const MOVES: &'static [&'static str] = &["eliot_alert_notifications_total"];

    fn log(&self, log: &Logger) {
        info!(log, "alert notification delivered";
            "event" => Self::NAME, "event_id" => self.event_id, "attempts" => self.attempts)
    }

    fn count(&self, m: &Metrics) {
        m.alert_notifications.inc();
    }
}

/// An attempt to notify the webhook failed; `gave_up`: it was the last
/// (`alerts.webhook.max_attempts`), and the notification is kept as failed.
pub struct AlertNotificationFailed<'a> {
    pub event_id: i64,
    pub attempt: u32,
    pub error: &'a str,
    pub gave_up: bool,
}

impl Observe for AlertNotificationFailed<'_> {
    const NAME: &'static str = "alert_notification_failed";
    const MOVES: &'static [&'static str] = &["eliot_alert_notification_failures_total"];

    fn log(&self, log: &Logger) {
        warn!(log, "alert notification failed";
            "event" => Self::NAME, "event_id" => self.event_id, "attempt" => self.attempt,
            "error" => %Clean(self.error), "gave_up" => self.gave_up)
    }

    fn count(&self, m: &Metrics) {
        m.alert_notification_failures.inc();
    }
}

/// A shard held `alerts.max_pending` unwritten alert changes: the oldest went.
pub struct AlertChangesDropped {
    pub dropped: usize,
}

impl Observe for AlertChangesDropped {
    const NAME: &'static str = "alert_changes_dropped";
    const MOVES: &'static [&'static str] = &["eliot_alert_changes_dropped_total"];

    fn log(&self, log: &Logger) {
        warn!(log, "alert changes not written: the store writer is behind";
            "event" => Self::NAME, "dropped" => self.dropped)
    }

    fn count(&self, m: &Metrics) {
        m.alert_changes_dropped.inc_by(self.dropped as u64);
    }
}

/// A rule made through the API was not put in force at start: it no longer compiles (the
/// rules' checks changed), or the configuration now has a rule of its name.
pub struct AlertRuleLeftOut<'a> {
    pub rule: &'a str,
}

impl Observe for AlertRuleLeftOut<'_> {
    const NAME: &'static str = "alert_rule_left_out";
    const MOVES: &'static [&'static str] = &[];

    fn log(&self, log: &Logger) {
        warn!(log, "an alert rule made through the API is left out: it no longer compiles, or the configuration has its name";
            "event" => Self::NAME, "rule" => %Clean(self.rule))
    }

    fn count(&self, _: &Metrics) {}
}

/// A notification of an `eliot` rule (sent by the self-watch, not from the outbox) failed:
/// retried unless `gave_up` (after `max_attempts`, or dropped from a full queue).
pub struct SelfAlertNotificationFailed<'a> {
    pub key: &'a str,
    pub attempt: u32,
    pub error: &'a str,
    pub gave_up: bool,
}

impl Observe for SelfAlertNotificationFailed<'_> {
    const NAME: &'static str = "self_alert_notification_failed";
    const MOVES: &'static [&'static str] = &["eliot_alert_notification_failures_total"];

    fn log(&self, log: &Logger) {
        warn!(log, "notification of an alert about Eliot failed";
            "event" => Self::NAME, "key" => %Clean(self.key), "attempt" => self.attempt,
            "error" => %Clean(self.error), "gave_up" => self.gave_up)
    }

    fn count(&self, m: &Metrics) {
        m.alert_notification_failures.inc();
    }
}

/// The `eliot` rules' state file could not be replaced: after a restart, what changed
/// since it was last written is judged again.
pub struct SelfAlertsNotSaved<'a> {
    pub path: &'a std::path::Path,
    pub error: &'a str,
}

impl Observe for SelfAlertsNotSaved<'_> {
    const NAME: &'static str = "self_alerts_not_saved";
    const MOVES: &'static [&'static str] = &[];

    fn log(&self, log: &Logger) {
        warn!(log, "the state of the alerts about Eliot was not saved";
            "event" => Self::NAME, "path" => %self.path.display(), "error" => %Clean(self.error))
    }

    fn count(&self, _: &Metrics) {}
}
